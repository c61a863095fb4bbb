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
import functools
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import seed_reference
from quality import write_section

import simple_diffusion as sd
from simple_diffusion import build, config, precision
from simple_diffusion.data.targets import TARGETS
from simple_diffusion.diffusion import samplers
from simple_diffusion.evaluation import metrics
from simple_diffusion.training import distill
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


def engine_steps(preset: str, epochs: int, data: torch.Tensor) -> Callable[[], None]:
    """A callable running the steps of ``epochs`` epochs of the preset's trainer (forward,
    backward, Adam, EMA and learning rate, as in its loop) on one epoch's draws made beforehand:
    the loop without the epochs' draws and validations."""
    trainer = project_trainer(preset, epochs, True, data)
    rows = trainer.train_data[: trainer.steps_per_epoch * trainer.batch_size]
    x_t, t, target, _ = trainer.objective.draw(rows, trainer.generator)
    inputs = trainer.net.inputs(x_t, t, None, ones_column=True)

    def steps() -> None:
        for epoch in range(epochs):
            trainer._fast_steps(inputs, target, None, epoch * trainer.steps_per_epoch, False)
    return steps


PEAK_SIZE, PEAK_PRODUCTS = 2048, 5


def matmul_peak() -> Callable[[], None]:
    """A callable doing ``PEAK_PRODUCTS`` large float32 ``torch.mm`` products on the current threads,
    whose rate is the machine's limit for the training step's matrix products. Timed in turn
    with the training runs (the machine's speed drifts by 10-20% within minutes here, so a limit
    timed at another moment would misstate the share); ``peak_gflops`` turns its time into a rate."""
    a, b = torch.randn(PEAK_SIZE, PEAK_SIZE), torch.randn(PEAK_SIZE, PEAK_SIZE)
    torch.mm(a, b)

    def products() -> None:
        for _ in range(PEAK_PRODUCTS):
            torch.mm(a, b)
    return products


def peak_gflops(seconds: float) -> float:
    return PEAK_PRODUCTS * 2 * PEAK_SIZE**3 / seconds / 1e9


def training_flops(preset: str, data: torch.Tensor) -> float:
    """Multiply-add FLOPs of one training step: 2 per weight and row forward, 4 backward."""
    trainer = project_trainer(preset, 1, True, data)
    weights = sum(p.numel() for p in trainer.net.parameters())
    return 6 * trainer.batch_size * weights


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


STUDENT_SWEEP = [(1, 4000, "teacher's"), (1, 2000, "sample"), (1, 4000, "sample"), (1, 8000, "sample"),
                 (2, 4000, "sample"), (3, 4000, "sample")]
"""(student steps, training steps, what the student predicts) tried by ``--student-sweep``."""
SWEEP_TARGETS = ("two_gaussians", "three_gaussians", "eight_gaussians", "moons", "checkerboard")


@functools.cache
def _reference_and_floor(target: str) -> tuple[np.ndarray, float]:
    """A target's reference draws and its default training data's distance to them (computed
    once per target, not once per draw: on 100,000 2-D rows a sliced distance takes seconds)."""
    data = sd.training_data(target)
    reference = data.reference()
    return reference, metrics.distance(data.train, reference)


def ratio_to_floor(x: np.ndarray, data) -> float:
    """Distance of samples ``x`` to the target over the training data's own."""
    reference, floor = _reference_and_floor(data.target)
    return metrics.distance(x, reference) / floor


def mean_ratio(model, data, samples: int, draws: int = 3, **settings) -> float:
    """The mean ratio of ``draws`` sampling seeds (1, 2, ...): one draw's luck is large."""
    return statistics.mean(
        ratio_to_floor(model.sample(samples, seed=seed, **settings).numpy(), data)
        for seed in range(1, draws + 1))


def student_sweep(targets, samples: int) -> list[dict]:
    """Ratio and cost of students with 1-3 steps, 2,000-8,000 training steps, predicting x_0 or
    what the teacher predicts."""
    rows = []
    for target in targets:
        data = sd.training_data(target)
        model = sd.fit(target, progress=False)
        teacher = mean_ratio(model, data, samples)
        for num_steps, train_steps, predicts in STUDENT_SWEEP:
            start = time.perf_counter()
            model.student = distill.distill(
                model, num_steps=num_steps, train_steps=train_steps, progress=False,
                prediction_type=model.config.model.prediction_type if predicts == "teacher's" else predicts)
            seconds = time.perf_counter() - start
            rows.append({"target": target, "num_steps": num_steps, "train_steps": train_steps,
                         "predicts": predicts,
                         "distill_s": seconds, "teacher_train_s": model.info["train_seconds"],
                         "teacher_ratio": teacher,
                         "ratio": mean_ratio(model, data, samples, sampler="distilled")})
            print(rows[-1], flush=True)
    return rows


def time_to_quality(targets, repeats: int, samples: int) -> list[dict]:
    """Per target: the default model, its distilled sampler, zuko's NSF trained for the default's
    wall time and a BIC Gaussian mixture: fit seconds, sampling seconds (medians of ``repeats``,
    taken in turn) and ratio."""
    return [row for target in targets for row in _time_to_quality(target, repeats, samples)]


def _time_to_quality(target: str, repeats: int, samples: int) -> list[dict]:
    from likelihood import mixture_fit, nsf_fit

    rows = []
    data = sd.training_data(target)
    start = time.perf_counter()
    model = sd.fit(target, progress=False)
    fit_s = {"default": time.perf_counter() - start}
    start = time.perf_counter()
    sd.distill(model, progress=False)
    fit_s["distilled"] = fit_s["distilled, float32"] = fit_s["default"] + time.perf_counter() - start
    flow, mean, std = nsf_fit(data.train, fit_s["default"])
    fit_s["zuko NSF"] = fit_s["default"]
    start = time.perf_counter()
    mixture = mixture_fit(data.train)
    fit_s["BIC Gaussian mixture"] = time.perf_counter() - start

    def nsf_draw(seed: int) -> np.ndarray:
        torch.manual_seed(seed)
        with torch.no_grad():
            return flow().sample((samples,)).double().numpy() * std + mean

    draws = {
        "default": lambda seed: model.sample(samples, seed=seed).numpy(),
        "distilled": lambda seed: model.sample(samples, seed=seed, sampler="distilled").numpy(),
        "distilled, float32": lambda seed: model.sample(samples, seed=seed, sampler="distilled",
                                                        precision="float32").numpy(),
        "zuko NSF": nsf_draw,
        "BIC Gaussian mixture": lambda seed: mixture.set_params(random_state=seed).sample(samples)[0],
    }
    seconds: dict[str, list[float]] = {name: [] for name in draws}
    ratios: dict[str, list[float]] = {name: [] for name in draws}
    for repeat in range(repeats):  # a fresh draw each time: the ratio is their mean
        for name, draw in draws.items():
            start = time.perf_counter()
            x = draw(repeat + 1)
            seconds[name].append(time.perf_counter() - start)
            ratios[name].append(ratio_to_floor(x, data))
    evaluations = {"default": model.config.sample.num_steps,
                   "distilled": model.student.network_evaluations,
                   "distilled, float32": model.student.network_evaluations}
    for name in draws:
        rows.append({"target": target, "method": name, "fit_s": fit_s[name],
                     "sample_s": statistics.median(seconds[name]),
                     "ratio": statistics.mean(ratios[name]), "ratios": ratios[name],
                     "evaluations": evaluations.get(name)})
        print(rows[-1], flush=True)
    return rows


def section(title: str, note: str, header: list[str], cells: list[list[str]]) -> str:
    """A BENCHMARKS.md section: a heading, a note, and a table whose first columns are text
    (up to the first that is numeric, marked by a leading ``#`` in ``header``)."""
    align = ["---:" if name.startswith("#") else "---" for name in header]
    lines = [f"### {title}", "", note, "", "| " + " | ".join(h.lstrip("#") for h in header) + " |",
             "| " + " | ".join(align) + " |"]
    lines += ["| " + " | ".join(row) + " |" for row in cells]
    return "\n".join(lines)


def time_to_quality_table(rows: list[dict], repeats: int, samples: int) -> str:
    return section(
        f"Time to quality (torch {torch.__version__}, 1 thread, {samples:,} samples, sampling "
        f"medians of {repeats})",
        "Regenerate: `.venv/bin/python benchmarks/speed.py --time-to-quality`. Fit = training "
        "seconds (distilled: the default's training plus distillation; zuko NSF trained for the "
        "default's wall time). distilled: bfloat16 hidden layers where the CPU has them "
        f"(here: {'yes' if precision.fast_bfloat16() else 'no'}). Ratio = distance to the target / "
        f"the training data's, the mean of {repeats} draws (each shown).",
        ["target", "method", "#network evaluations", "#fit (s)", "#sample (s)", "#ratio"],
        [[row["target"], row["method"], str(row["evaluations"] or ""), f"{row['fit_s']:.1f}",
          f"{row['sample_s']:.3f}",
          f"{row['ratio']:.2f} ({', '.join(f'{r:.2f}' for r in row['ratios'])})"] for row in rows])


def student_sweep_table(rows: list[dict], samples: int) -> str:
    return section(
        f"Choosing the student (torch {torch.__version__}, 1 thread, {samples:,} samples, seed 0)",
        "Regenerate: `.venv/bin/python benchmarks/speed.py --student-sweep`. Ratios are means "
        "over 3 sampling seeds; the teacher's is its default sampler (50 evaluations); "
        "\"teacher's\" = the student predicts what the teacher does (the noise).",
        ["target", "#teacher ratio", "#teacher train (s)", "#student steps", "#training steps",
         "student predicts", "#distill (s)", "#student ratio"],
        [[row["target"], f"{row['teacher_ratio']:.2f}", f"{row['teacher_train_s']:.1f}",
          str(row["num_steps"]), f"{row['train_steps']:,}", row["predicts"], f"{row['distill_s']:.1f}",
          f"{row['ratio']:.2f}"] for row in rows])


def separate_steps(models: int, hidden: list[int], batch: int, dim: int):
    """One training step of ``models`` networks, each on the fast engine (as a sweep's workers
    or one process after another run them)."""
    import torch

    from simple_diffusion.diffusion.denoisers import MLP, FourierTime
    from simple_diffusion.training import engine

    nets = [MLP(dim, hidden, FourierTime(16, 1000), "silu") for _ in range(models)]
    parts = [(engine.FastMLP(net, flat, grad, batch), engine.FlatAdam(flat, grad, 1e-3))
             for net in nets for flat, grad in [engine.flatten_parameters(net)]]
    x, y = torch.randn(batch, dim + 33), torch.randn(batch, dim)

    def step() -> None:
        for fast, adam in parts:
            fast.backward(fast.forward(x) - y)
            adam.step()
    return step


THREAD_CASES = (([16, 16], 64, 1), ([128] * 4, 32, 2), ([128] * 4, 64, 2), ([128] * 4, 128, 2),
                ([128] * 4, 256, 2), ([128] * 4, 512, 2), ([256] * 4, 64, 20), ([256] * 4, 512, 20))
"""(hidden widths, batch, columns) of the steps timed by ``--threads``: the seed preset's, the
default's at the batch sizes the budget picks, and a 20-column table's."""


def threads_by_step(repeats: int = 3, steps: int = 300) -> list[dict]:
    """Seconds per fast-engine training step with one and two threads, by the step's size: where
    ``training.loop.TWO_THREADS_FROM`` comes from."""
    rows = []
    for hidden, batch, dim in THREAD_CASES:
        seconds = {}
        for threads in (1, 2):
            torch.set_num_threads(threads)
            step = separate_steps(1, hidden, batch, dim)
            for _ in range(50):
                step()
            run = lambda step=step: [step() for _ in range(steps)]  # noqa: E731
            seconds[threads] = min(timed(run) for _ in range(repeats)) / steps
        weights = sum(a * b for a, b in zip([dim + 33, *hidden], [*hidden, dim]))
        rows.append({"network": f"{len(hidden)} x {hidden[0]}, batch {batch}, {dim} column(s)",
                     "mflop": 6 * batch * weights / 1e6, "one_ms": 1e3 * seconds[1],
                     "two_ms": 1e3 * seconds[2]})
        print(rows[-1], flush=True)
    return rows


def threads_table(rows: list[dict]) -> str:
    return section(
        f"Threads: one or two per training step (torch {torch.__version__}, fast engine)",
        "Regenerate: `.venv/bin/python benchmarks/speed.py --threads`. Best of 3 x 300 steps. A "
        "second thread pays from about 40 million floating-point operations per step "
        "(`training.loop.TWO_THREADS_FROM`); the default's 4 x 128 at batch 256 is 83 million.",
        ["network", "#MFLOP per step", "#1 thread (ms)", "#2 threads (ms)", "#speed-up"],
        [[r["network"], f"{r['mflop']:.0f}", f"{r['one_ms']:.3f}", f"{r['two_ms']:.3f}",
          f"{r['one_ms'] / r['two_ms']:.2f}"] for r in rows])


NETWORK_TARGETS = ["two_gaussians", "three_gaussians", "moons", "checkerboard", "correlated_6d"]
NETWORK_WIDTHS = (32, 64, 128)
"""Widths of the default's four hidden layers compared by ``--network-sweep`` (128: the default)."""


def network_sweep(targets: list[str], seeds: list[int], samples: int) -> list[dict]:
    """The default preset with four hidden layers of each width in ``NETWORK_WIDTHS``: ratio and
    training seconds per target, over ``seeds`` (one ``sd.sweep`` per target, one job at a time
    so that the seconds compare)."""
    import tempfile

    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for target in targets:
            table = sd.sweep(target, Path(folder) / target, seeds=seeds, num_samples=samples,
                             likelihood_rows=0, progress=False,
                             grid={"model.hidden": [[width] * 4 for width in NETWORK_WIDTHS]})
            for width in NETWORK_WIDTHS:
                runs = table[table["model.hidden"].map(lambda h, w=width: h[0] == w)]
                rows.append({"target": target, "width": width, "ratios": list(runs.ratio),
                             "train_s": float(runs.train_seconds.median())})
                print(rows[-1], flush=True)
    return rows


def network_sweep_table(rows: list[dict], samples: int) -> str:
    seconds = {(r["target"], r["width"]): r["train_s"] for r in rows}
    return section(
        f"Network width by target (default preset, four hidden layers, {samples:,} samples)",
        "Regenerate: `.venv/bin/python benchmarks/speed.py --network-sweep` (it runs `sd.sweep` "
        "per target). Ratio: mean over the seeds (each shown); time: median training seconds, "
        "relative to the default's width 128 on the same target, one run at a time.",
        ["target", "#width", "#ratio", "#train (s)", "#time vs 128"],
        [[r["target"], str(r["width"]),
          f"{statistics.mean(r['ratios']):.2f} ({' / '.join(f'{x:.2f}' for x in r['ratios'])})",
          f"{r['train_s']:.1f}", f"{r['train_s'] / seconds[r['target'], 128]:.2f}"] for r in rows])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=20, help="epochs per training measurement")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--samples", type=int, default=100_000)
    parser.add_argument("--memory", action="store_true", help="measure peak memory of sampling to a file")
    parser.add_argument("--time-to-quality", action="store_true",
                        help="default, distilled, zuko NSF and a Gaussian mixture on every target")
    parser.add_argument("--student-sweep", action="store_true", help="student steps and training length")
    parser.add_argument("--network-sweep", action="store_true", help="hidden widths 32/64/128 by target")
    parser.add_argument("--threads", action="store_true", help="one or two threads by step size")
    parser.add_argument("--seeds", default="0,1", help="training seeds of --network-sweep")
    parser.add_argument("--targets", default=None, help="comma-separated targets (default: all, or "
                        "the sweep's four)")
    args = parser.parse_args()
    results = ROOT / "benchmarks" / "results"
    if args.threads:
        rows = threads_by_step()
        (results / "threads.json").write_text(json.dumps(rows, indent=2) + "\n")
        write_section("threads", threads_table(rows))
        return
    if args.network_sweep:
        targets = args.targets.split(",") if args.targets else NETWORK_TARGETS
        rows = network_sweep(targets, [int(s) for s in args.seeds.split(",")], args.samples)
        (results / "network_sweep.json").write_text(json.dumps(rows, indent=2) + "\n")
        write_section("network_sweep", network_sweep_table(rows, args.samples))
        return
    if args.time_to_quality or args.student_sweep:
        torch.set_num_threads(1)
        name = "time_to_quality" if args.time_to_quality else "student_sweep"
        targets = args.targets.split(",") if args.targets else (
            list(TARGETS) if args.time_to_quality else SWEEP_TARGETS)
        if args.time_to_quality:
            rows = time_to_quality(targets, args.repeats, args.samples)
            section = time_to_quality_table(rows, args.repeats, args.samples)
        else:
            rows = student_sweep(targets, args.samples)
            section = student_sweep_table(rows, args.samples)
        (results / f"{name}.json").write_text(json.dumps(rows, indent=2) + "\n")
        write_section(name, section)
        print(section)
        return
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
    # The default's batch size and full length follow the data (training/budget.py).
    default_steps = project_trainer("default", args.epochs, True, train_x).total_steps
    full_epochs = build.training_budget(config.preset("default"), len(train_x)).train.epochs
    medians = alternate({
        "autograd": lambda: project_trainer("default", args.epochs, False, train_x).run(progress=False),
        "fast": lambda: project_trainer("default", args.epochs, True, train_x).run(progress=False),
        "steps": engine_steps("default", args.epochs, train_x),
        "peak": matmul_peak(),
    }, args.repeats)
    peak = peak_gflops(medians["peak"])
    flops = training_flops("default", train_x)
    steps_alone = flops * default_steps / medians["steps"] / 1e9
    rows.append({
        "what": f"train, default preset ({args.epochs} epochs, {default_steps:,} steps), fast vs autograd",
        "baseline_s": medians["autograd"], "project_s": medians["fast"],
        "ratio": medians["autograd"] / medians["fast"],
        "per_step_us": 1e6 * medians["fast"] / default_steps,
        "full_run_s": medians["fast"] * full_epochs / args.epochs,
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
    achieved = flops / (rows[2]["per_step_us"] * 1e-6) / 1e9
    lines += ["", f"Default training achieves {achieved:.1f} GFLOP/s (6 x batch x weights per step) "
              f"against {peak:.0f} GFLOP/s for a {PEAK_SIZE} x {PEAK_SIZE} float32 `torch.mm` on the "
              "same thread, timed in turn with the training runs: "
              f"{100 * achieved / peak:.0f}% of the machine's matrix-multiply limit. Its steps alone "
              "(the same trainer's forward, backward, Adam, EMA and learning rate on one epoch's draws "
              f"made beforehand, without the epochs' draws and validations) reach {steps_alone:.1f} "
              f"GFLOP/s, {100 * steps_alone / peak:.0f}%."]
    table = "\n".join(lines)
    write_section("speed", table)
    print(table)


if __name__ == "__main__":
    main()
