"""Speed against the seed's own loop, measured in one process as ratios.

Baseline and project run alternately, several repetitions each, on one thread; the table gives
medians and the ratio baseline / project (higher is better for the project). Training is timed
over the same number of epochs on the same 10,000 points (the seed preset is the same algorithm
as the baseline); sampling draws 100,000 points.

    .venv/bin/python benchmarks/speed.py              # about 3 minutes
    .venv/bin/python benchmarks/speed.py --epochs 50 --repeats 5

Results go to BENCHMARKS.md (between this script's markers) and benchmarks/results/speed.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import seed_reference
from quality import write_section

import simple_diffusion as sd
from simple_diffusion import build, config
from simple_diffusion.diffusion import samplers
from simple_diffusion.evaluation import metrics
from simple_diffusion.training.loop import Trainer

ROOT = Path(__file__).resolve().parent.parent
TARGET = "two_gaussians"
SAMPLER_SETTINGS = [
    ("ancestral", 0), ("ddim", 20), ("dpmpp_2m", 20), ("dpmpp_3m", 20), ("heun", 10),
    ("dpmpp_2m_sde", 20), ("dpmpp_2m_sde", 50),
]


def timed(function) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def project_trainer(preset: str, epochs: int, fast: bool, data: torch.Tensor) -> Trainer:
    cfg = config.override(config.preset(preset), {"train": {"epochs": epochs, "fast": fast, "threads": 1}})
    schedule = build.schedule(cfg.schedule)
    torch.manual_seed(0)
    net = build.denoiser(cfg.model, 1, schedule.num_timesteps)
    return build.trainer(cfg, net, schedule, data, data[:1000])


def alternate(candidates: dict, repeats: int) -> dict[str, float]:
    """Median seconds of each callable, run in turn ``repeats`` times."""
    seconds: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(repeats):
        for name, function in candidates.items():
            seconds[name].append(timed(function))
    return {name: statistics.median(values) for name, values in seconds.items()}


def memory_section(counts: tuple[int, ...] = (100_000, 10_000_000)) -> str:
    """Peak resident memory of `simple-diffusion sample` to .npy as N grows (a small model)."""
    import subprocess
    import tempfile

    command = str(Path(sys.executable).with_name("simple-diffusion"))
    lines = ["### Sampling to a file in chunks: peak memory against N",
             "", "Regenerate: `.venv/bin/python benchmarks/speed.py --memory` (a 2 x 32 MLP, "
             "the default sampler with 10 steps, chunks of 8,192).", "",
             "| samples | file (MB) | peak resident memory (MiB) | seconds |",
             "| ---: | ---: | ---: | ---: |"]
    with tempfile.TemporaryDirectory() as folder:
        run = Path(folder) / "run"
        sd.fit(TARGET, config={"model": {"hidden": [32, 32]}}, epochs=2, out=run, progress=False,
               num_samples=0)
        for n in counts:
            output = Path(folder) / f"s{n}.npy"
            script = (f"import resource, subprocess, time; start = time.time(); "
                      f"subprocess.run([{command!r}, 'sample', {str(run)!r}, '-n', '{n}', '-o', "
                      f"{str(output)!r}, '--num-steps', '10', '--quiet'], check=True); "
                      "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, "
                      "time.time() - start)")
            peak_kib, seconds = subprocess.run([sys.executable, "-c", script], capture_output=True,
                                               text=True, check=True).stdout.split()
            lines.append(f"| {n:,} | {output.stat().st_size / 1e6:.0f} | {int(peak_kib) / 1024:.0f} | "
                         f"{float(seconds):.0f} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=20, help="epochs per training measurement")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--samples", type=int, default=100_000)
    parser.add_argument("--memory", action="store_true", help="measure peak memory of sampling to a file")
    args = parser.parse_args()
    if args.memory:
        section = memory_section()
        write_section("memory", section)
        print(section)
        return
    torch.set_num_threads(1)
    data = sd.training_data(TARGET)
    train_x = torch.as_tensor(data.train, dtype=torch.float32)
    val_x = torch.as_tensor(data.val, dtype=torch.float32)
    steps = args.epochs * (len(train_x) // 64)
    rows = []

    # Training, seed preset: same algorithm and step count as the baseline.
    medians = alternate({
        "baseline": lambda: seed_reference.train(train_x, val_x, args.epochs),
        "autograd": lambda: project_trainer("seed", args.epochs, False, train_x).run(progress=False),
        "fast": lambda: project_trainer("seed", args.epochs, True, train_x).run(progress=False),
    }, args.repeats)
    for name in ("autograd", "fast"):
        rows.append({
            "what": f"train, seed preset ({args.epochs} epochs, {steps:,} steps), {name} path",
            "baseline_s": medians["baseline"], "project_s": medians[name],
            "ratio": medians["baseline"] / medians[name],
            "per_step_us": 1e6 * medians[name] / steps,
            "full_run_s": medians[name] * 1000 / args.epochs,
        })
    baseline_step_us = 1e6 * medians["baseline"] / steps

    # Training, default preset: the fast path against the same preset through autograd.
    default_steps = args.epochs * (len(train_x) // config.preset("default").train.batch_size)
    medians = alternate({
        "autograd": lambda: project_trainer("default", args.epochs, False, train_x).run(progress=False),
        "fast": lambda: project_trainer("default", args.epochs, True, train_x).run(progress=False),
    }, args.repeats)
    rows.append({
        "what": f"train, default preset ({args.epochs} epochs, {default_steps:,} steps), fast vs autograd",
        "baseline_s": medians["autograd"], "project_s": medians["fast"],
        "ratio": medians["autograd"] / medians["fast"],
        "per_step_us": 1e6 * medians["fast"] / default_steps,
        "full_run_s": medians["fast"] * config.preset("default").train.epochs / args.epochs,
    })

    # Sampling: the baseline's sampler (250 steps, autograd on) against each of ours.
    print("training the default and seed models for the sampling comparison ...", flush=True)
    model = sd.fit(TARGET, progress=False)
    seed_model = sd.fit(TARGET, preset="seed", progress=False)
    reference = data.reference()
    floor = metrics.distance(data.train, reference)
    baseline_net = seed_reference.SeedNet()
    baseline_s = statistics.median(
        timed(lambda: seed_reference.sample(baseline_net, args.samples)) for _ in range(args.repeats)
    )
    seed_x = seed_model.sample(args.samples, seed=1).numpy()
    seed_ratio = metrics.distance(seed_x, reference) / floor
    seed_s = statistics.median(
        timed(lambda: seed_model.sample(args.samples, seed=1)) for _ in range(args.repeats)
    )
    rows.append({
        "what": "sample, seed preset (ancestral, 250 steps)", "baseline_s": baseline_s,
        "project_s": seed_s, "ratio": baseline_s / seed_s, "quality_ratio": seed_ratio,
    })
    default = (model.config.sample.sampler, model.config.sample.num_steps)
    for name, num_steps in SAMPLER_SETTINGS:
        def draw(name=name, num_steps=num_steps):
            return model.sample(args.samples, sampler=name, num_steps=num_steps, seed=1)

        # Every-timestep ancestral sampling is the slow reference: timed once, with its result kept.
        times = []
        for _ in range(1 if num_steps == 0 else args.repeats):
            start = time.perf_counter()
            x = draw().numpy()
            times.append(time.perf_counter() - start)
        seconds = statistics.median(times)
        steps = len(model.noise_levels(sampler=name, num_steps=num_steps)) - 1
        evaluations = samplers.network_evaluations(name, steps)
        rows.append({
            "what": f"sample, default model, {name} ({evaluations} network evaluations)"
                    + (" (the default)" if (name, num_steps) == default else ""),
            "baseline_s": baseline_s, "project_s": seconds, "ratio": baseline_s / seconds,
            "quality_ratio": metrics.distance(x, reference) / floor,
        })
        print(rows[-1], flush=True)

    results = ROOT / "benchmarks" / "results"
    results.mkdir(parents=True, exist_ok=True)
    (results / "speed.json").write_text(json.dumps(rows, indent=2) + "\n")
    lines = [
        f"### Speed against the seed's loop (torch {torch.__version__}, 1 thread, medians of "
        f"{args.repeats}; baseline {baseline_step_us:.0f} us per training step)",
        "",
        "Regenerate: `.venv/bin/python benchmarks/speed.py`. Ratio = baseline time / project time. "
        f"Quality ratio = W1 to the target / W1 of the training data ({TARGET}, "
        f"{args.samples:,} samples).",
        "",
        "| what | baseline (s) | project (s) | speed ratio | project per step (us) | "
        "full run (s) | quality ratio |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in rows:
        per_step = f"{r['per_step_us']:.0f}" if "per_step_us" in r else ""
        full = f"{r['full_run_s']:.1f}" if "full_run_s" in r else ""
        quality = f"{r['quality_ratio']:.2f}" if "quality_ratio" in r else ""
        lines.append(f"| {r['what']} | {r['baseline_s']:.2f} | {r['project_s']:.2f} | "
                     f"{r['ratio']:.1f}x | {per_step} | {full} | {quality} |")
    table = "\n".join(lines)
    write_section("speed", table)
    print(table)


if __name__ == "__main__":
    main()
