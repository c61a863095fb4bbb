"""Beyond one process: training throughput with 1 and 2 processes (torchrun, gloo) on a
1,000,000-row table, the cost of the gradient sum, sampling throughput and peak memory up to
10^8 rows, quality with 1 and 2 processes, sweeps in worker processes, and the paper estimate
for 10^9 rows that the README quotes.

Every command is the CLI a user types, run as a child process; peak memory is the largest
resident set of the processes it started (``getrusage(RUSAGE_CHILDREN)`` in a fresh wrapper).

    .venv/bin/python benchmarks/scale.py                      # about 20 minutes on 2 cores
    .venv/bin/python benchmarks/scale.py --sample-rows 1e6,1e7 --skip quality

Results go to BENCHMARKS.md (between this script's markers) and benchmarks/results/scale.json.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from quality import write_section
from speed import section, separate_steps

ROOT = Path(__file__).resolve().parent.parent
CLI = [sys.executable, "-m", "simple_diffusion"]
TABLE_COLUMNS = 20
PROBE_STEPS = 200


def measured(command: list[str], env: dict | None = None) -> dict:
    """Run ``command``; its wall seconds, the peak resident memory (MiB) of its largest process,
    and its stderr. A fresh wrapper process, so that earlier children do not count."""
    wrapper = ("import resource, subprocess, sys, time; start = time.perf_counter(); "
               "done = subprocess.run(sys.argv[1:], stderr=subprocess.PIPE, text=True); "
               "print(time.perf_counter() - start, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss); "
               "sys.stderr.write(done.stderr); sys.exit(done.returncode)")
    done = subprocess.run([sys.executable, "-c", wrapper, *command], capture_output=True, text=True,
                          env={**os.environ, **(env or {})})
    if done.returncode:
        raise RuntimeError(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    seconds, rss_kib = done.stdout.split()[-2:]
    return {"seconds": float(seconds), "peak_mib": int(rss_kib) / 1024, "stderr": done.stderr}


def cpu_description() -> str:
    """"16 cores, Intel(R) Xeon(R) ...": this machine's core count and processor name."""
    name = next((line.split(":", 1)[1] for line in Path("/proc/cpuinfo").read_text().splitlines()
                 if line.startswith("model name")), "CPU")
    return f"{os.cpu_count()} cores, " + re.sub(r"\s+", " ", name).strip()


def write_table(path: Path, rows: int, seed: int = 0) -> None:
    """A ``rows`` x 20 numeric table: four correlated Gaussian clusters, written in row groups."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    means = rng.normal(0, 3, (4, TABLE_COLUMNS))
    factors = rng.normal(0, 1, (4, TABLE_COLUMNS, TABLE_COLUMNS)) / np.sqrt(TABLE_COLUMNS)
    names = [f"c{i + 1}" for i in range(TABLE_COLUMNS)]
    writer = None
    for start in range(0, rows, 1 << 17):
        n = min(1 << 17, rows - start)
        cluster = rng.integers(0, 4, n)
        noise = rng.normal(0, 1, (n, TABLE_COLUMNS))
        values = means[cluster] + np.einsum("nij,nj->ni", factors[cluster], noise)
        table = pa.table({name: values[:, j] for j, name in enumerate(names)})
        writer = writer or pq.ParquetWriter(path, table.schema)
        writer.write_table(table)
    writer.close()


def run_info(run: Path) -> dict:
    import simple_diffusion as sd

    model = sd.load(run)
    train = model.config.train
    return {"steps": train.steps, "batch_size": train.batch_size, "epochs": train.epochs,
            "train_seconds": model.info["train_seconds"], "threads": model.info.get("threads"),
            "parameters": sum(p.numel() for p in model.net.parameters())}


def training_throughput(work: Path, rows: int, epochs: int) -> list[dict]:
    """Rows per second of one model trained on the table by 1 and 2 processes (same global batch)."""
    table = work / "table.parquet"
    write_table(table, rows)
    results = []
    for nproc in (1, 2):
        run = work / f"train-{nproc}"
        result = measured([*CLI, "train", str(run), "--data", str(table), "--epochs", str(epochs),
                           "-n", "0", "--quiet", "--nproc", str(nproc)])
        info = run_info(run)
        seen = info["steps"] * info["batch_size"]
        results.append({"processes": nproc, **info, "wall_seconds": result["seconds"],
                        "peak_mib": result["peak_mib"], "rows_per_second": seen / info["train_seconds"]})
        print(results[-1], flush=True)
    return results


def large_table(work: Path, rows: int) -> dict:
    """One process, the default budget, on a ``rows`` x 20 table: seconds and peak memory."""
    table = work / "large.parquet"
    write_table(table, rows, seed=1)
    run = work / "large"
    result = measured([*CLI, "train", str(run), "--data", str(table), "-n", "0", "--quiet"])
    info = run_info(run)
    shutil.rmtree(run)
    table.unlink()
    return {"rows": rows, **info, "wall_seconds": result["seconds"], "peak_mib": result["peak_mib"]}


def allreduce_probe(parameters: int) -> None:
    """In each of the ranks torchrun starts: seconds per gloo all_reduce of the gradient buffer."""
    import torch
    import torch.distributed as dist

    dist.init_process_group("gloo")
    buffer = torch.randn(parameters)
    for _ in range(20):
        dist.all_reduce(buffer)
    dist.barrier()
    start = time.perf_counter()
    for _ in range(PROBE_STEPS):
        dist.all_reduce(buffer)
    seconds = (time.perf_counter() - start) / PROBE_STEPS
    if dist.get_rank() == 0:
        print(json.dumps({"parameters": parameters, "seconds": seconds}))
    dist.destroy_process_group()


def allreduce_seconds(parameters: int) -> float:
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone",
                           "--nproc_per_node=2", __file__, "--allreduce-probe", str(parameters)],
                          capture_output=True, text=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
    return json.loads(done.stdout.strip().splitlines()[-1])["seconds"]


def sampling(work: Path, row_counts: list[int]) -> list[dict]:
    """A distilled moons model writing Parquet parts: seconds and peak memory by rows and processes."""
    run = work / "moons"
    subprocess.run([*CLI, "train", str(run), "--data", "moons", "-n", "0", "--quiet"], check=True)
    subprocess.run([*CLI, "distill", str(run), "--quiet"], check=True)
    results = []
    for rows in row_counts:
        for nproc in ((1, 2) if rows <= 10**7 else (2,)):
            out = work / f"parts-{rows}-{nproc}"
            result = measured([*CLI, "sample", str(run), "-n", str(rows), "-o", f"{out}/", "--sampler",
                               "distilled", "--quiet", "--nproc", str(nproc)])
            size = sum(p.stat().st_size for p in out.iterdir())
            results.append({"rows": rows, "processes": nproc, "seconds": result["seconds"],
                            "peak_mib": result["peak_mib"], "rows_per_second": rows / result["seconds"],
                            "parts": len(list(out.iterdir())), "bytes": size})
            print(results[-1], flush=True)
            shutil.rmtree(out)
    return results


def quality(work: Path) -> list[dict]:
    """Ratio of moons models: one process with seeds 0 and 1, two processes with seed 0."""
    results = []
    for nproc, seed in ((1, 0), (1, 1), (2, 0)):
        run = work / f"quality-{nproc}-{seed}"
        measured([*CLI, "train", str(run), "--data", "moons", "--seed", str(seed), "--quiet",
                  "--likelihood-rows", "0", "--nproc", str(nproc)])
        metrics = json.loads((run / "metrics.json").read_text())
        results.append({"processes": nproc, "seed": seed, "ratio": metrics["ratio"]})
        print(results[-1], flush=True)
    return results


def sweeps(work: Path) -> list[dict]:
    """Four default-preset runs on two_gaussians (seeds 0-3) with 1 and 2 worker processes."""
    results = []
    for jobs in (1, 2):
        result = measured([*CLI, "sweep", str(work / f"sweep-{jobs}"), "--data", "two_gaussians",
                           "--seeds", "0,1,2,3", "--jobs", str(jobs), "--likelihood-rows", "0",
                           "--quiet"])
        results.append({"jobs": jobs, "runs": 4, "seconds": result["seconds"]})
        print(results[-1], flush=True)
    return results


def _batched_step(models: int, hidden: list[int], batch: int, dim: int):
    """The same step for ``models`` networks stacked, every product one batched ``bmm``, and
    one fused Adam call over all the weights: what one batched process would run."""
    import torch

    widths = [dim + 32, *hidden, dim]
    weights = [torch.randn(models, out, inp + 1) * 0.1 for inp, out in itertools.pairwise(widths)]
    grads, first, second = ([torch.zeros_like(w) for w in weights] for _ in range(3))
    counts = [torch.zeros(()) for _ in weights]
    x, y = torch.randn(models, batch, dim + 33), torch.randn(models, batch, dim)
    ones = [torch.ones(models, batch, 1) for _ in hidden]

    def step() -> None:
        pre, post, h = [], [], x
        for i, w in enumerate(weights):
            pre.append(torch.bmm(h, w.transpose(1, 2)))
            if i < len(hidden):
                h = torch.cat([torch.nn.functional.silu(pre[-1]), ones[i]], dim=2)
                post.append(h)
        g = pre[-1] - y
        for i in range(len(weights) - 1, -1, -1):
            torch.bmm(g.transpose(1, 2), x if i == 0 else post[i - 1], out=grads[i])
            if i > 0:
                g = torch.ops.aten.silu_backward(torch.bmm(g, weights[i][:, :, :-1]), pre[i - 1])
        torch._fused_adam_(weights, grads, first, second, [], counts, lr=1e-3, beta1=0.9,
                           beta2=0.999, weight_decay=0.0, eps=1e-8, amsgrad=False, maximize=False)
    return step


def batched_models(repeats: int = 300) -> list[dict]:
    """Seconds per step of four models, separately and stacked in one process, against one model
    (one thread): where training several small models in one batched process would win."""
    import torch

    torch.set_num_threads(1)

    def seconds(step) -> float:
        for _ in range(20):
            step()
        start = time.perf_counter()
        for _ in range(repeats):
            step()
        return (time.perf_counter() - start) / repeats

    results = []
    for name, hidden, batch, dim in (("seed preset: 2 x 16, batch 64, 1 column", [16, 16], 64, 1),
                                     ("default: 4 x 128, batch 256, 2 columns", [128] * 4, 256, 2),
                                     ("default: 4 x 256, batch 512, 20 columns", [256] * 4, 512, 20)):
        one = seconds(separate_steps(1, hidden, batch, dim))
        results.append({"network": name, "one_ms": 1e3 * one,
                        "four_separate": seconds(separate_steps(4, hidden, batch, dim)) / one,
                        "four_batched": seconds(_batched_step(4, hidden, batch, dim)) / one})
        print(results[-1], flush=True)
    return results


def estimate(training: list[dict], allreduce: float) -> dict:
    """One pass over 10^9 rows at 512 rows per rank per step: compute from the measured rows per
    second of one process, plus one all-reduce of the gradients per step (measured gloo on this
    machine; ring all-reduce moves 2 (K-1)/K of the buffer per rank over the network)."""
    one = next(r for r in training if r["processes"] == 1)
    compute = one["batch_size"] / one["rows_per_second"]  # seconds per step of one process
    gradient_bytes = 4 * one["parameters"]
    rows = 10**9
    cases = {}
    links = ((8, "10 GbE", 1.25e9), (32, "10 GbE", 1.25e9), (32, "100 Gb/s", 12.5e9))
    for machines, link, bandwidth in links:
        communication = 2 * (machines - 1) / machines * gradient_bytes / bandwidth + 1e-4  # + latency
        steps = rows / (one["batch_size"] * machines)
        cases[f"{machines} machines, {link}"] = {
            "hours": steps * (compute + communication) / 3600, "steps": steps,
            "compute_ms": 1e3 * compute, "communication_ms": 1e3 * communication}
    return {"gradient_bytes": gradient_bytes, "allreduce_seconds_loopback": allreduce,
            "step_seconds": compute, "one_process_hours": rows / one["rows_per_second"] / 3600,
            "cases": cases}


def report(results: dict) -> str:
    parts = []
    cpu = results["machine"]
    if "training" in results:
        rows = results["training"]
        parts.append(section(
            f"Training throughput: {results['rows']:,} rows x {TABLE_COLUMNS} columns ({cpu})",
            f"Regenerate: `.venv/bin/python benchmarks/scale.py`. One model trained for {rows[0]['epochs']} "
            "epoch(s) by `train --nproc K` (torchrun, gloo; the same global batch, each process "
            "half of it), rows per second of the training loop; peak memory of the largest "
            "process.",
            ["processes", "#threads each", "#batch", "#steps", "#train (s)", "#rows / s", "#peak MiB"],
            [[str(r["processes"]), str(r["threads"]), str(r["batch_size"]), f"{r['steps']:,}",
              f"{r['train_seconds']:.1f}", f"{r['rows_per_second']:,.0f}", f"{r['peak_mib']:,.0f}"]
             for r in rows]))
    if "large" in results:
        r = results["large"]
        parts.append(section(
            f"A larger table in one process: {r['rows']:,} rows x {TABLE_COLUMNS} columns",
            "`train RUN --data large.parquet -n 0` with the default budget; the file (row groups "
            "of 131,072 rows) is read a row group at a time into one float64 matrix, and the "
            "epoch is drawn in segments of 2^20 rows.",
            ["#rows", "#batch", "#steps", "#train (s)", "#wall (s)", "#peak GiB"],
            [[f"{r['rows']:,}", str(r["batch_size"]), f"{r['steps']:,}", f"{r['train_seconds']:.0f}",
              f"{r['wall_seconds']:.0f}", f"{r['peak_mib'] / 1024:.1f}"]]))
    if "estimate" in results:
        e = results["estimate"]
        parts.append(section(
            "Paper estimate: one pass over 10^9 rows",
            f"From the measured one-process (two-thread) step ({1e3 * e['step_seconds']:.1f} ms for "
            f"512 rows) and a ring all-reduce of the {e['gradient_bytes'] / 1e6:.1f} MB gradient per "
            "step (measured here between two processes over loopback gloo: "
            f"{1e3 * e['allreduce_seconds_loopback']:.2f} ms); "
            f"one process alone: {e['one_process_hours']:.1f} hours. CPU machines of this kind, one "
            "process each, 512 rows per process and step (`train.batch_size` = 512 x processes); "
            "a GPU's step is not measured here. (The default budget stops at 20,000 steps; a "
            "pass over 10^9 rows is `--epochs 1`.)",
            ["machines, link", "#steps", "#compute ms", "#all-reduce ms", "#hours"],
            [[name, f"{c['steps']:,.0f}", f"{c['compute_ms']:.1f}", f"{c['communication_ms']:.2f}",
              f"{c['hours']:.2f}"] for name, c in e["cases"].items()]))
    if "sampling" in results:
        parts.append(section(
            f"Sharded sampling into Parquet parts ({cpu})",
            "`sample RUN -n N -o parts/ --sampler distilled --nproc K` on a moons model (one "
            "network evaluation per row); peak memory of the largest process.",
            ["#rows", "#processes", "#seconds", "#rows / s", "#peak MiB", "#parts", "#GB written"],
            [[f"{r['rows']:,}", str(r["processes"]), f"{r['seconds']:.1f}", f"{r['rows_per_second']:,.0f}",
              f"{r['peak_mib']:,.0f}", str(r["parts"]), f"{r['bytes'] / 1e9:.2f}"]
             for r in results["sampling"]]))
    if "quality" in results:
        parts.append(section(
            "Same quality with two processes (moons, default preset)",
            "Ratio to the data's floor (100,000 samples) of one model per row.",
            ["processes", "#seed", "#ratio"],
            [[str(r["processes"]), str(r["seed"]), f"{r['ratio']:.3f}"] for r in results["quality"]]))
    if "batched" in results:
        parts.append(section(
            "Several small models in one process?",
            "Seconds per training step of four models, one after another on the fast engine or "
            "stacked in batched products (`torch.bmm`, one fused Adam call), relative to one "
            "model's step; one thread.",
            ["network", "#one step (ms)", "#four separately", "#four batched"],
            [[r["network"], f"{r['one_ms']:.3f}", f"{r['four_separate']:.2f}x",
              f"{r['four_batched']:.2f}x"] for r in results["batched"]]))
    if "sweeps" in results:
        rows = results["sweeps"]
        parts.append(section(
            "Sweeps in worker processes",
            "`sweep --seeds 0,1,2,3 --jobs J` on two_gaussians (default preset, evaluation "
            "included): four independent runs.",
            ["#jobs", "#runs", "#seconds", "#speed-up"],
            [[str(r["jobs"]), str(r["runs"]), f"{r['seconds']:.1f}",
              f"{rows[0]['seconds'] / r['seconds']:.2f}"] for r in rows]))
    return "## Scale\n\n" + "\n\n".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=float, default=1e6, help="rows of the training table")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--large-rows", type=float, default=1e7, help="rows of the one-process table")
    parser.add_argument("--sample-rows", default="1e6,1e7,1e8")
    parser.add_argument("--skip", default="", help="comma-separated parts to skip: training, "
                        "large, sampling, quality, sweeps, batched")
    parser.add_argument("--allreduce-probe", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.allreduce_probe:
        allreduce_probe(args.allreduce_probe)
        return
    skip = set(filter(None, args.skip.split(",")))
    path = ROOT / "benchmarks" / "results" / "scale.json"
    results = json.loads(path.read_text()) if path.exists() else {}
    results["machine"] = cpu_description()
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        if "training" not in skip:
            results["rows"] = int(args.rows)
            results["training"] = training_throughput(work, int(args.rows), args.epochs)
            parameters = results["training"][0]["parameters"]
            results["estimate"] = estimate(results["training"], allreduce_seconds(parameters))
        if "large" not in skip:
            results["large"] = large_table(work, int(args.large_rows))
        if "sampling" not in skip:
            results["sampling"] = sampling(work, [int(float(r)) for r in args.sample_rows.split(",")])
        if "quality" not in skip:
            results["quality"] = quality(work)
        if "sweeps" not in skip:
            results["sweeps"] = sweeps(work)
        if "batched" not in skip:
            results["batched"] = batched_models()
    path.write_text(json.dumps(results, indent=2) + "\n")
    write_section("scale", report(results))


if __name__ == "__main__":
    main()
