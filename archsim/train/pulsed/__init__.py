"""On-chip (pulsed) training: device update models, pulsed updates, algorithms and tiles."""
