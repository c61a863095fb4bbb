"""How close the default preset gets to each built-in target, against the data's own floor.

For every built-in target and training seed: train the default preset on 10,000 draws, sample
100,000 points, and compare both with 100,000 fresh target draws. ratio = distance(samples) /
distance(training data); 1 means the model is as good as its data. The seed preset's row stands
beside the default's. ``--ablation`` measures what each design choice of the default does.

    .venv/bin/python benchmarks/quality.py                     # every target, 3 seeds
    .venv/bin/python benchmarks/quality.py --targets moons --seeds 0
    .venv/bin/python benchmarks/quality.py --ablation

Results go to BENCHMARKS.md (between this script's markers) and benchmarks/results/quality.json,
where a run measured again replaces its row and the other targets' rows stay.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

import simple_diffusion as sd
from simple_diffusion.data.targets import TARGETS
from simple_diffusion.evaluation import metrics

ROOT = Path(__file__).resolve().parent.parent
ABLATION_TARGETS = ("two_gaussians", "moons")
ABLATIONS = {
    "default": ({}, {}),
    "seed's schedule (constant beta 0.02, T=250)": (
        {"schedule": {"kind": "constant", "num_timesteps": 250}, "train": {"t_max": 249}}, {}),
    "linear schedule": ({"schedule": {"kind": "linear"}}, {}),
    "discrete timesteps (DDPM's whole t)": ({"train": {"timesteps": "discrete"}}, {}),
    "log-SNR-uniform noise levels in training": ({"train": {"timesteps": "logsnr"}}, {}),
    "v prediction": ({"model": {"prediction_type": "v"}}, {}),
    "no EMA": ({"train": {"ema_decay": 0.0}}, {}),
    "constant learning rate": ({"train": {"lr_schedule": "constant"}}, {}),
    "ReLU instead of SiLU": ({"model": {"activation": "relu"}}, {}),
    "3 x 128 hidden layers instead of 4": ({"model": {"hidden": [128, 128, 128]}}, {}),
    "no standardisation": ({"data": {"preprocess": "none"}}, {}),
    "SDE sampler with 30 steps instead of 50": ({}, {"num_steps": 30}),
    "DPM-Solver++(2M), the same solver without noise": ({}, {"sampler": "dpmpp_2m"}),
    "DPM-Solver++(3M), 20 steps (deterministic)": ({}, {"sampler": "dpmpp_3m", "num_steps": 20}),
    "ancestral sampler, 100 steps": ({}, {"sampler": "ancestral", "num_steps": 100}),
    "sampling from sigma 80 to the schedule's lowest": ({}, {"sigma_max": 80.0, "sigma_min": 0.0064}),
}


def measure(target: str, preset: str, seed: int, samples: int, config=None, sampling=None) -> dict:
    data = sd.training_data(target)
    reference = data.reference()
    start = time.perf_counter()
    model = sd.fit(target, preset=preset, config=config or None, seed=seed, progress=False)
    train_seconds = time.perf_counter() - start
    start = time.perf_counter()
    x = model.sample(samples, seed=seed + 100, **(sampling or {})).numpy()
    sample_seconds = time.perf_counter() - start
    result = metrics.evaluate(x, reference, model.columns, train=data.train, target=target,
                              two_sample_tests=False)
    masses = result.get("mode_masses", {}).get("max_error")
    return {
        "target": target, "preset": preset, "seed": seed, "train_seconds": train_seconds,
        "sample_seconds": sample_seconds, "distance": result["distance"],
        "floor": result["floor"], "ratio": result["ratio"], "mode_mass_error": masses,
    }


def quality_table(rows: list[dict]) -> str:
    lines = [
        "| target | preset | seeds | train (s) | distance | floor | ratio (each seed) "
        "| worst mode-mass error |",
        "| --- | --- | ---: | ---: | ---: | ---: | --- | ---: |",
    ]
    groups: dict[tuple[str, str], list[dict]] = {}
    for row in rows:
        groups.setdefault((row["target"], row["preset"]), []).append(row)
    for (target, preset), group in groups.items():
        ratios = ", ".join(f"{r['ratio']:.2f}" for r in group)
        errors = [r["mode_mass_error"] for r in group if r["mode_mass_error"] is not None]
        worst = f"{max(errors):.3f}" if errors else "-"
        lines.append(
            f"| {target} | {preset} | {len(group)} | "
            f"{statistics.median(r['train_seconds'] for r in group):.1f} | "
            f"{statistics.median(r['distance'] for r in group):.4f} | "
            f"{statistics.median(r['floor'] for r in group):.4f} | {ratios} | {worst} |"
        )
    return "\n".join(lines)


def ablation_table(rows: list[dict]) -> str:
    header = " | ".join(f"{t} ratio" for t in ABLATION_TARGETS)
    lines = [f"| variant (one change from the default) | {header} | train (s) |",
             "| --- | " + " | ".join("---:" for _ in ABLATION_TARGETS) + " | ---: |"]
    for name in ABLATIONS:
        cells = {r["target"]: r for r in rows if r["variant"] == name}
        ratios = " | ".join(f"{cells[t]['ratio']:.2f}" for t in ABLATION_TARGETS if t in cells)
        seconds = statistics.median(c["train_seconds"] for c in cells.values())
        lines.append(f"| {name} | {ratios} | {seconds:.1f} |")
    return "\n".join(lines)


def write_section(name: str, body: str) -> None:
    """Replace this script's section of BENCHMARKS.md (between markers), keeping the rest."""
    path = ROOT / "BENCHMARKS.md"
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    start, end = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    block = f"{start}\n{body}\n{end}"
    if start in text:
        before, rest = text.split(start, 1)
        text = before + block + rest.split(end, 1)[1]
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    sd.io.write_text(path, text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--targets", default=",".join(TARGETS), help="comma-separated targets")
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated training seeds")
    parser.add_argument("--samples", type=int, default=100_000)
    parser.add_argument("--no-seed-preset", action="store_true", help="skip the seed preset's rows")
    parser.add_argument("--ablation", action="store_true", help="run the ablation instead")
    args = parser.parse_args()
    torch.set_num_threads(1)
    results = ROOT / "benchmarks" / "results"
    results.mkdir(parents=True, exist_ok=True)
    environment = f"torch {torch.__version__}, 1 thread, {args.samples:,} samples"

    if args.ablation:
        rows = []
        for name, (config, sampling) in ABLATIONS.items():
            for target in ABLATION_TARGETS:
                row = measure(target, "default", 0, args.samples, config, sampling) | {"variant": name}
                rows.append(row)
                print(f"{name:55s} {target:14s} ratio {row['ratio']:.2f}", flush=True)
        (results / "ablation.json").write_text(json.dumps(rows, indent=2) + "\n")
        body = (f"### Ablation (seed 0; {environment})\n\nRegenerate: "
                f"`.venv/bin/python benchmarks/quality.py --ablation`\n\n{ablation_table(rows)}")
        write_section("ablation", body)
        print(ablation_table(rows))
        return

    saved = results / "quality.json"
    rows = json.loads(saved.read_text()) if saved.exists() else []
    seeds = [int(s) for s in args.seeds.split(",")]
    for target in args.targets.split(","):
        runs = [("default", seed) for seed in seeds]
        if not args.no_seed_preset:
            runs.append(("seed", 42))
        for preset, seed in runs:
            row = measure(target, preset, seed, args.samples)
            rows = [r for r in rows if (r["target"], r["preset"], r["seed"]) != (target, preset, seed)]
            rows = sorted([*rows, row], key=lambda r: (list(TARGETS).index(r["target"]),
                                                       r["preset"] != "default", r["seed"]))
            print(f"{target:16s} {preset:8s} seed {seed:3d} train {row['train_seconds']:5.1f}s "
                  f"ratio {row['ratio']:.2f}", flush=True)
            saved.write_text(json.dumps(rows, indent=2) + "\n")  # a run measured is kept
    body = (f"### Quality against the data's floor ({environment})\n\nRegenerate: "
            f"`.venv/bin/python benchmarks/quality.py`\n\n{quality_table(rows)}")
    write_section("quality", body)
    print(quality_table(rows))


if __name__ == "__main__":
    main()
