"""Discrete-event (SimPy) model of the chip: cores, fabric, global units, off-chip interface."""
