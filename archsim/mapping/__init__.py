"""Mapping a workload onto a chip: lowering, tiling, replication, placement."""

from archsim.mapping.mapper import Block, LayerMapping, Mapping, TrafficEdge, map_workload

__all__ = ["Block", "LayerMapping", "Mapping", "TrafficEdge", "map_workload"]
