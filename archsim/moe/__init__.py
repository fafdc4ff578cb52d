"""3D AIMC tiles running mixture-of-experts transformers (BUE25): system presets
(models/systems/), MoE models (workloads/moe/), routing, tier mapping and a SimPy engine."""
