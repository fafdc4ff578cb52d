"""The trained conductances of an on-chip-trained network, aged with the device's inference
model, and the network evaluated at each time (the all-in-one flow of FAL25).

Each tile's W devices hold hidden weights w in device units; they map linearly onto the
device's conductance range, g = g_min + (w - w_min) / (w_max - w_min) (g_max - g_min), with the
update model's mean bounds w_min, w_max (one device per weight, as FAL25's arrays). They were
trained in place, so there is no programming step and no programming noise: the
`ProgrammedDevices` hold g itself (no drift exponents), and `DeviceSpec.model.at_time` ages
them (relaxation, read noise). The aged g map back to w; the network is evaluated with those
weights through the same tiles and periphery, then the trained state is put back.

References (`REFERENCES`): "digital" subtracts a fixed mid-range current, so a relaxation that
moves every conductance by the same mean (CMO/HfOx: state-independent, FAL25 §2.2.2) becomes an
offset on every weight; "column" subtracts, per row, one reference device programmed to the
zero weight at the end of training that ages with the array (the compensation FAL25 §3 point
to), so the mean shift cancels and the devices' independent spreads remain.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np

from archsim.devices.base import ProgrammedDevices
from archsim.spec.device import DeviceSpec

REFERENCES = ("digital", "column")
"""What a column's current is read against after training (module docstring)."""


def to_conductance(w: np.ndarray, w_min: float, w_max: float, spec: DeviceSpec) -> np.ndarray:
    """Device units -> conductance (uS), linearly [w_min, w_max] -> [g_min, g_max]."""
    g_min, g_max = spec.model.g_min_us, spec.model.g_max_us
    frac = (np.asarray(w, np.float64) - w_min) / (w_max - w_min)
    return (g_min + frac * (g_max - g_min)).astype(np.float32)


def from_conductance(g: np.ndarray, w_min: float, w_max: float, spec: DeviceSpec) -> np.ndarray:
    """Conductance (uS) -> device units, the inverse of `to_conductance`."""
    g_min, g_max = spec.model.g_min_us, spec.model.g_max_us
    frac = (np.asarray(g, np.float64) - g_min) / (g_max - g_min)
    return (w_min + frac * (w_max - w_min)).astype(np.float32)


def age_and_evaluate(
    product,
    spec: DeviceSpec,
    times_s: Iterable[float],
    evaluate: Callable[[], dict[str, float]],
    rng: np.random.Generator,
    reference: str = "digital",
) -> list[dict[str, float]]:
    """Per time: the metrics `evaluate()` returns with every tile's W aged to that time.

    Args:
        product: the OnChipProduct after training (its tiles are aged in turn and restored).
        spec: the device preset whose inference model ages the conductances.
        times_s: seconds after the end of training.
        evaluate: runs the test split through `product` (in eval mode) -> metrics.
        rng: draws the relaxation and read noise.
        reference: one of REFERENCES.
    """
    if reference not in REFERENCES:
        raise ValueError(f"reference: expected one of {REFERENCES}, got {reference!r}")
    tiles = [b.tile for blocks in product.tiles.values() for b in blocks]
    model = product.device
    trained = [(t.W.w.copy(), ProgrammedDevices(_g(t, model, spec), None)) for t in tiles]
    rows = []
    was_eval = product.eval
    product.eval = True
    try:
        for t_s in times_s:
            for tile, (_, programmed) in zip(tiles, trained, strict=True):
                g = spec.model.at_time(programmed, float(t_s), rng)
                w = from_conductance(g, model.w_min, model.w_max, spec)
                if reference == "column":
                    w -= _reference_drift(tile, model, spec, float(t_s), rng)
                tile.W.w[...] = w
            rows.append({"t_s": float(t_s), **evaluate()})
    finally:
        product.eval = was_eval
        for tile, (w, _) in zip(tiles, trained, strict=True):
            tile.W.w[...] = w
    return rows


def _reference_drift(tile, model, spec: DeviceSpec, t_s: float, rng) -> np.ndarray:
    """(K, 1): per row, what a reference device programmed to the zero weight reads as after
    `t_s` (device units), to subtract from every weight of that row."""
    zero = np.zeros((tile.W.w.shape[0], 1), np.float32)
    ref = ProgrammedDevices(to_conductance(zero, model.w_min, model.w_max, spec), None)
    g = spec.model.at_time(ref, t_s, rng)
    return from_conductance(g, model.w_min, model.w_max, spec) - zero


def _g(tile, model, spec: DeviceSpec) -> np.ndarray:
    return to_conductance(tile.W.w, model.w_min, model.w_max, spec)
