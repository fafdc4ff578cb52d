"""The on-chip training dataflow (archsim/sim/training.py): exact times and energies on small
cases derived by hand, contention for a shared digital unit, every operation counted once,
RA24's update-time table, and refusals."""

from __future__ import annotations

import pytest

from archsim.config import load_chip
from archsim.errors import ConfigError, MappingError, SpecError
from archsim.sim.core import CoreTiming
from archsim.sim.training import (
    PARTS,
    UPDATE_PARTS,
    UpdateSchedule,
    schedule_for,
    training_cost,
)
from archsim.sim.training_table import RA24_ROWS, format_cost, network_layers, ra24_table
from archsim.workload.catalog import load_workload

N = 512
MVM = 40.0  # ra24-train: 8-bit PWM, 128 x 0.3125 ns, conversion inside the window
PULSE = 5.0
FLOPS_PER_NS = 700.0


@pytest.fixture(scope="module")
def chip():
    return load_chip("ra24-train")


def mvm_pj(chip, driven: int, converted: int, activity: float = 1.0) -> float:
    """One MVM by hand: driven lines x activity x 127 LSB x (array + driver energy per LSB),
    one conversion and one LDPU op per converted line (one phase)."""
    per_lsb = chip.crossbar.energy_pj_per_row_lsb + chip.input.energy_pj_per_row_lsb
    return (
        driven * activity * 127 * per_lsb
        + converted * chip.adc.energy_pj
        + converted * chip.ldpu.energy_pj_per_op
    )


def test_the_preset_has_seed_001s_assumptions(chip):
    assert CoreTiming.of(chip).mvm_latency_ns == MVM
    assert (chip.crossbar.rows, chip.crossbar.cols) == (N, N)
    t = chip.training
    assert (t.pulse_ns, t.digital_flops_per_ns, t.arrays_per_digital_unit) == (5.0, 700.0, 4)
    assert t.digital_precision == "fp8"


@pytest.mark.parametrize("n_s", [1, 2])
def test_one_layer_ttv2_equals_the_hand_derivation(chip, n_s):
    """One 512 x 512 tile, 4 samples: forward = one MVM + the LDPU pass (512 ops at 512 per
    ns), no backward (first layer), per sample 5 pulses, per n_s samples one 40-ns read, 6N
    FLOPs alone on the unit and one W pulse."""
    cost = training_cost(
        chip, [(N, N)], schedule_for("ttv2", n=N, pulse_slots=5, transfer_every=n_s), samples=4
    )
    t = cost.latency_by_part_ns
    assert t["forward"] == pytest.approx(MVM + 1.0, rel=1e-12)
    assert t["backward"] == 0.0
    assert t["update_pulses"] == pytest.approx(5 * PULSE, rel=1e-12)
    assert t["reads"] == pytest.approx(MVM / n_s, rel=1e-12)
    assert t["digital"] == pytest.approx(6 * N / FLOPS_PER_NS / n_s, rel=1e-12)
    assert t["transfer"] == pytest.approx(PULSE / n_s, rel=1e-12)
    expected = 5 * PULSE + (MVM + PULSE + 6 * N / FLOPS_PER_NS) / n_s
    assert cost.update_ns_per_sample == pytest.approx(expected, rel=1e-12)
    assert cost.latency_ns_per_sample == pytest.approx(MVM + 1.0 + expected, rel=1e-12)


def test_four_arrays_contending_take_four_times_the_digital_time(chip):
    """4 tiles on one unit read in the same sample: the last waits for three; with one unit
    per tile (arrays_per_digital_unit 1) each takes its own time only."""
    sched = schedule_for("cttv2", n=N, pulse_slots=5, transfer_every=1)
    alone = training_cost(chip, [(N, N)], sched, samples=2)
    shared = training_cost(chip, [(N, 4 * N)], sched, samples=2)
    own = load_chip("ra24-train", {"training.arrays_per_digital_unit": 1})
    separate = training_cost(own, [(N, 4 * N)], sched, samples=2)
    one = 10 * N / FLOPS_PER_NS
    assert alone.latency_by_part_ns["digital"] == pytest.approx(one, rel=1e-12)
    assert shared.latency_by_part_ns["digital"] == pytest.approx(4 * one, rel=1e-12)
    assert separate.latency_by_part_ns["digital"] == pytest.approx(one, rel=1e-12)
    assert (shared.digital_units, separate.digital_units) == (1, 4)
    for part in ("update_pulses", "reads", "transfer"):
        assert shared.latency_by_part_ns[part] == alone.latency_by_part_ns[part]


def test_every_operation_is_counted_once_and_the_parts_sum_to_the_total(chip):
    """Three layers (4 + 1 + 1 tiles of 512 x 512 at most): counts per sample by hand, energy
    per part from the counts, and the parts add up to the totals."""
    layers = [(784, 256), (256, 128), (128, 10)]
    tiles = [(512, 256), (272, 256), (256, 128), (128, 10)]
    n_s, slots = 2, 3
    cost = training_cost(
        chip, layers, schedule_for("agad", n=N, pulse_slots=slots, transfer_every=n_s), samples=8
    )
    c, t = cost.counts, chip.training
    assert cost.tiles == 4 and cost.digital_units == 1
    assert c["forward_mvms"] == 4 and c["backward_mvms"] == 2
    assert c["row_reads"] == 4 / n_s and c["transfer_pulse_slots"] == 4 / n_s
    assert c["pulse_slots"] == 4 * slots
    assert c["device_pulses"] == slots * sum(k * n for k, n in tiles)
    assert c["digital_flops"] == pytest.approx(14 * sum(n for _, n in tiles) / n_s, rel=1e-12)
    e = cost.energy_by_part_pj
    assert e["forward"] == pytest.approx(sum(mvm_pj(chip, k, n) for k, n in tiles), rel=1e-12)
    assert e["backward"] == pytest.approx(mvm_pj(chip, 128, 256) + mvm_pj(chip, 10, 128))
    assert e["reads"] == pytest.approx(sum(mvm_pj(chip, 1, n) for _, n in tiles) / n_s)
    pulses = sum(
        slots * (k + n) * t.energy_pj_per_line_pulse + slots * k * n * t.energy_pj_per_device_pulse
        for k, n in tiles
    )
    assert e["update_pulses"] == pytest.approx(pulses, rel=1e-12)
    assert e["digital"] == pytest.approx(c["digital_flops"] * t.digital_energy_pj_per_flop)
    transfer = sum(
        (1 + n) * t.energy_pj_per_line_pulse + n * t.energy_pj_per_device_pulse for _, n in tiles
    )
    assert e["transfer"] == pytest.approx(transfer / n_s, rel=1e-12)
    assert cost.energy_pj_per_sample == pytest.approx(sum(e.values()), rel=1e-12)
    assert cost.latency_ns_per_sample == pytest.approx(
        sum(cost.latency_by_part_ns.values()), rel=1e-12
    )
    assert cost.update_ns_per_sample == pytest.approx(
        sum(cost.latency_by_part_ns[p] for p in UPDATE_PARTS), rel=1e-12
    )
    table = format_cost(cost, "agad")
    assert all(f"| {p} |" in table for p in PARTS) and "nan" not in table


def test_measured_pulses_per_device_replace_the_upper_bound(chip):
    sched = UpdateSchedule("analog-sgd", 5, 0, n=N, pulses_per_device=0.5)
    cost = training_cost(chip, [(N, N)], sched, samples=2)
    t = chip.training
    assert cost.counts["device_pulses"] == 0.5 * N * N
    assert cost.energy_by_part_pj["update_pulses"] == pytest.approx(
        5 * 2 * N * t.energy_pj_per_line_pulse + 0.5 * N * N * t.energy_pj_per_device_pulse
    )
    assert cost.latency_by_part_ns["reads"] == cost.latency_by_part_ns["digital"] == 0.0


def test_mixed_precision_computes_2n2_plus_n_flops_per_sample(chip):
    cost = training_cost(chip, [(N, N)], schedule_for("mp", n=N, pulse_slots=5, transfer_every=1))
    assert cost.counts["digital_flops"] == 2 * N * N + N
    assert cost.latency_by_part_ns["digital"] == pytest.approx((2 * N * N + N) / FLOPS_PER_NS)
    assert cost.latency_by_part_ns["update_pulses"] == 5 * PULSE


def test_samples_are_rounded_up_to_whole_transfer_periods_and_batches(chip):
    """n_s = 3, batch 2: 64 samples become 66 (lcm 6), so reads are exactly 1/3 per sample."""
    sched = schedule_for("ttv2", n=N, pulse_slots=5, transfer_every=3)
    cost = training_cost(chip, [(N, N)], sched, samples=64, batch=2)
    assert cost.samples == 66
    assert cost.counts["row_reads"] == pytest.approx(1 / 3, rel=1e-12)
    assert cost.latency_by_part_ns["reads"] == pytest.approx(MVM / 3, rel=1e-12)


def test_a_layer_with_several_mat_vecs_per_sample_updates_after_each(chip):
    """(N, N, 3): 3 forward MVMs, 3 pulse trains and 3/2 transfers per sample (n_s = 2
    counts mat-vecs); 2 samples are simulated at least (3 x 2 = 6 mat-vecs, 3 transfers)."""
    sched = schedule_for("ttv2", n=N, pulse_slots=5, transfer_every=2)
    cost = training_cost(chip, [(N, N, 3)], sched, samples=1)
    assert cost.samples == 2
    t = cost.latency_by_part_ns
    assert cost.counts["forward_mvms"] == 3 and cost.counts["row_reads"] == 1.5
    assert t["forward"] == pytest.approx(3 * (MVM + 1.0), rel=1e-12)  # 3 MVMs, 3 LDPU passes
    assert t["update_pulses"] == pytest.approx(3 * 5 * PULSE, rel=1e-12)
    assert t["reads"] == pytest.approx(1.5 * MVM, rel=1e-12)


def test_network_layers_give_each_matrix_its_mat_vecs():
    """lenet: convolutions run once per output pixel, linear layers once per sample."""
    layers = network_layers(load_workload("lenet"))
    assert all(len(shape) == 3 for shape in layers)
    assert layers[0][2] > 1 and layers[-1][2] == 1
    assert network_layers(load_workload("mlp")) == [(784, 256, 1), (256, 128, 1), (128, 10, 1)]


def test_a_batch_runs_its_forward_passes_back_to_back(chip):
    """Batch 4: per sample the same MVMs and pulses; the forward pass of the batch holds the
    array for 4 MVMs, then the LDPU does their 4 passes of 1 ns (as `Core.mvm` of a chunk)."""
    sched = schedule_for("ttv2", n=N, pulse_slots=5, transfer_every=2)
    cost = training_cost(chip, [(N, N), (N, N)], sched, samples=8, batch=4)
    assert cost.counts["forward_mvms"] == 2 and cost.counts["backward_mvms"] == 1
    assert cost.latency_by_part_ns["forward"] == pytest.approx(2 * (4 * MVM + 4.0) / 4)


def test_ra24_rows_within_five_percent(chip):
    """TTv2 and c-TTv2 (k fitted on their rows) and mixed precision (predicted) within 5 %,
    equal to the closed form; the AGAD rows are reported, not gated."""
    results = {r.row.label: r for r in ra24_table(chip)}
    assert len(results) == len(RA24_ROWS)
    u = N / (FLOPS_PER_NS / 4)  # RA24's u: N FLOPs at F = 0.7 TFLOPS / 4 arrays
    assert results["TTv2"].archsim_ns == pytest.approx(25 + (45 + 6 * u) / 2, rel=1e-12)
    assert results["c-TTv2"].archsim_ns == pytest.approx(25 + (45 + 10 * u) / 2, rel=1e-12)
    assert results["mixed precision"].archsim_ns == pytest.approx((2 * N * N + N) / 175 + 25)
    for label in ("TTv2", "c-TTv2", "mixed precision"):
        assert abs(results[label].ratio - 1) <= 0.05 and not results[label].failed
        assert results[label].gated
    assert results["AGAD"].row.basis == "disputed"


def test_the_command_prints_the_table(cli):
    code, out, _ = cli("train-time")
    assert code == 0
    assert "| TTv2 | 5 | 2 | 56.3 | 56.28 | 1.000 | yes | fitted |" in out
    assert "| mixed precision | 5 | 1 | 3024.5 | 3023.86 | 1.000 | yes | predicted |" in out


def test_the_table_is_not_gated_on_a_chip_with_other_assumptions(cli):
    """hermes (256 columns, 133-ns MVM, 100-ns pulses, ...) is far from RA24's numbers: the
    rows are shown with their ratios and the reason, and the command does not fail."""
    code, out, _ = cli("train-time", "--chip", "hermes")
    assert code == 0
    assert "Not gated: hermes differs from RA24's assumptions in array columns 256" in out
    assert "| no |" not in out and "no (not gated)" in out


def test_the_command_writes_the_cost_by_part(cli):
    code, out, _ = cli("train-time", "--workload", "mlp", "--method", "agad", "--csv", "c.csv")
    assert code == 0 and "**agad**" in out
    lines = (cli.workdir / "c.csv").read_text().splitlines()
    assert lines[0] == "method,part,latency_ns,energy_pj" and len(lines) == 1 + len(PARTS) + 1


@pytest.mark.parametrize(
    "override, match",
    [
        ({"training.pulse_ns": 0}, "training.pulse_ns: expected > 0"),
        ({"training.arrays_per_digital_unit": 0}, "training.arrays_per_digital_unit"),
        ({"training.digital_precision": "int4"}, "training.digital_precision: expected one of"),
        ({"training.energy_pj_per_device_pulse": -1.0}, "expected >= 0"),
        ({"training.pulse_width_ns": 5.0}, "training.pulse_width_ns: unknown key"),
        ({"training.digital_flops_per_ns": "fast"}, "expected a number"),
    ],
)
def test_bad_training_values_are_refused(override, match):
    with pytest.raises(ConfigError, match=match):
        load_chip("ra24-train", override)


def test_refusals(chip, cli):
    with pytest.raises(SpecError, match="method: expected one of"):
        schedule_for("sgd", n=N, pulse_slots=5, transfer_every=2)
    with pytest.raises(SpecError, match="pulse_slots"):
        schedule_for("ttv2", n=N, pulse_slots=-1, transfer_every=2)
    sched = schedule_for("ttv2", n=N, pulse_slots=5, transfer_every=2)
    with pytest.raises(ConfigError, match="no \\[training\\] table"):
        training_cost(load_chip("ibm-speech"), [(N, N)], sched)
    with pytest.raises(MappingError, match="65 tiles"):
        training_cost(chip, [(N, 65 * N)], sched)
    with pytest.raises(SpecError, match="layers"):
        training_cost(chip, [], sched)
    with pytest.raises(SpecError, match="layers\\[0\\]"):
        training_cost(chip, [(0, N)], sched)
    with pytest.raises(SpecError, match="layers\\[0\\]"):
        training_cost(chip, [(N, N, 0)], sched)
    cli.refused("train-time", "--method", "sgd", match="--method")
    cli.refused("train-time", "--chip", "ibm-speech", match="no [training] table")
    cli.refused("train-time", "--workload", "nosuchnet", match="unknown workload")
    cli.refused("train-time", "--csv", "x.csv", match="--csv")
    cli.refused("train-time", "--pulse-slots", "nan", match="--pulse-slots")
