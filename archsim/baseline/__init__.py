"""Baselines a user compares archsim's chips against: analytical models read from presets in
`models/baselines/` (today a GPU roofline)."""
