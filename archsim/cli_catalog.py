"""The information commands of the CLI: `archsim validate`, `archsim workloads`, `archsim presets`
(their options are defined with the others in archsim/cli.py)."""

from __future__ import annotations

import argparse

from archsim.outputs import check_file


def validate(args: argparse.Namespace) -> int:
    from archsim.config import chip_presets, load_chip
    from archsim.run_report import write_csv
    from archsim.validate import failed, format_rows, validate

    if args.csv:
        check_file("--csv", args.csv)
    names = args.chip or [n for n in chip_presets() if load_chip(n).published]
    rows = []
    for name in names:
        rows += validate(load_chip(name))
    print(format_rows(rows))
    if args.csv:
        write_csv(
            [
                {
                    "preset": r.preset,
                    "metric": r.metric if not r.read_mode else f"{r.metric} ({r.read_mode})",
                    "published": r.published,
                    "simulated": r.simulated,
                    "ratio": r.ratio,
                    "ok": "" if r.ok is None else str(r.ok).lower(),
                    "basis": r.basis,
                    "note": r.note,
                }
                for r in rows
            ],
            args.csv,
        )
    return 1 if failed(rows) else 0


def workloads(args: argparse.Namespace) -> int:
    from archsim.workload.catalog import catalog

    print("built-in workloads (archsim --workload NAME; or a path to an .onnx or .toml file):")
    for name, entry in sorted(catalog().items()):
        data = f"[{entry.dataset}]" if entry.dataset else ""
        print(f"  {name:<12} {entry.description} {data}")
    return 0


def presets(args: argparse.Namespace) -> int:
    from archsim.baseline.gpu import gpu_presets, load_gpu
    from archsim.config import chip_presets, device_presets, load_chip, load_device
    from archsim.train.pulsed.settings import load_onchip, onchip_presets
    from archsim.train.settings import load_training, training_presets

    print("chip presets (models/):")
    for name in chip_presets():
        print(f"  {name:<16} {load_chip(name).description}")
    print("device presets (models/devices/; [update]: trains on chip):")
    for name in device_presets():
        spec = load_device(name)
        mark = " [update]" if spec.update is not None else ""
        print(f"  {name:<16} {spec.description}{mark}")
    print("hardware-aware training presets (models/training/, --method hwa --training):")
    for name in training_presets():
        print(f"  {name:<16} {load_training(name).description}")
    print("on-chip training presets (models/onchip/, --onchip):")
    for name in onchip_presets():
        print(f"  {name:<22} {load_onchip(name).description}")
    print("GPU baseline presets (models/baselines/, archsim baseline --gpu):")
    for name in gpu_presets():
        print(f"  {name:<16} {load_gpu(name).description}")
    from archsim.moe.model import load_moe, moe_presets
    from archsim.moe.spec import load_system, system_presets

    print("3D AIMC systems (models/systems/, archsim moe --system):")
    for name in system_presets():
        print(f"  {name:<16} {load_system(name).description}")
    print("MoE models (workloads/moe/, archsim moe --model):")
    for name in moe_presets():
        print(f"  {name:<16} {load_moe(name).description}")
    return 0
