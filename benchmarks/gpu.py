"""On a machine with a CUDA GPU: the commands a user types, on the GPU and on that machine's CPU,
side by side in one run. The same seed trained on both devices (ratio, how far the weights
drift apart), sampling the same run on both (how far the rows differ), training throughput on a
1,000,000 x 20 table, sampling throughput with the default sampler and the distilled student,
and what `--nproc 2` says on a machine with one GPU.

Every command is the CLI as a child process (``scale.py``'s ``measured``). The development
machine has no GPU, so the script runs where one is lent and its JSON is brought back:

    python benchmarks/gpu.py --out gpu.json             # on the GPU machine, about 4 minutes
    .venv/bin/python benchmarks/gpu.py --report gpu.json  # here: results/gpu.json, BENCHMARKS.md
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from quality import write_section
from scale import CLI, ROOT, TABLE_COLUMNS, cpu_description, measured, run_info, write_table
from speed import section

DEVICES = ("cpu", "cuda")


def machine() -> dict:
    import torch

    return {"torch": torch.__version__, "gpu": torch.cuda.get_device_name(0), "cpu": cpu_description()}


def weights(run: Path) -> dict:
    import simple_diffusion as sd

    return {k: v.double() for k, v in sd.load(run).net.state_dict().items()}


def same_seed(work: Path) -> dict:
    """moons, default preset, seed 0, trained and evaluated on each device; the largest weight
    difference between the two; the CPU run sampled on both devices with the same seed."""
    trained = {}
    for device in DEVICES:
        run = work / f"moons-{device}"
        result = measured([*CLI, "train", str(run), "--data", "moons", "--device", device, "--quiet",
                           "--likelihood-rows", "0"])
        metrics = json.loads((run / "metrics.json").read_text())
        trained[device] = {"ratio": metrics["ratio"], "train_seconds": run_info(run)["train_seconds"],
                           "wall_seconds": result["seconds"]}
        print(device, trained[device], flush=True)
    cpu, cuda = (weights(work / f"moons-{device}") for device in DEVICES)
    drift = max(float((cpu[k] - cuda[k]).abs().max()) for k in cpu)
    rows = {}
    for device in DEVICES:
        out = work / f"rows-{device}.npy"
        subprocess.run([*CLI, "sample", str(work / "moons-cpu"), "-n", "10000", "-o", str(out),
                        "--device", device, "--quiet"], check=True)
        rows[device] = np.load(out)
    return {"runs": trained, "weight_drift": drift,
            "row_difference": float(np.abs(rows["cpu"] - rows["cuda"]).max()),
            "row_scale": float(np.abs(rows["cpu"]).max())}


def commands(work: Path) -> list[dict]:
    """The other commands that run the network, on the GPU-trained moons run, on each device:
    evaluate, score 10,000 rows, fill a column missing in 2,000 rows, distill."""
    run = work / "moons-cuda"
    rows = np.load(work / "rows-cpu.npy")
    np.save(work / "score.npy", rows)
    gaps = rows[:2000].copy()
    gaps[::2, 1] = np.nan
    np.save(work / "gaps.npy", gaps)
    arguments = {"evaluate": ["--likelihood-rows", "1000", "--quiet"],
                 "score": ["--data", str(work / "score.npy"), "-o", str(work / "scored.csv")],
                 "impute": ["--data", str(work / "gaps.npy"), "-o", str(work / "filled.npy"), "--quiet"],
                 "distill": ["--quiet"]}
    results = []
    for command, options in arguments.items():
        for device in DEVICES:
            result = measured([*CLI, command, str(run), *options, "--device", device])
            results.append({"command": command, "device": device, "seconds": result["seconds"]})
            print(results[-1], flush=True)
    return results


def training(work: Path, rows: int) -> list[dict]:
    """One epoch of the 1,000,000 x 20 table on each device (default network and batch)."""
    table = work / "table.parquet"
    write_table(table, rows)
    results = []
    for device in DEVICES:
        run = work / f"table-{device}"
        result = measured([*CLI, "train", str(run), "--data", str(table), "--epochs", "1", "-n", "0",
                           "--quiet", "--device", device])
        info = run_info(run)
        results.append({"device": device, **info, "wall_seconds": result["seconds"],
                        "rows_per_second": info["steps"] * info["batch_size"] / info["train_seconds"]})
        print(results[-1], flush=True)
        shutil.rmtree(run)
    return results


def sampling(work: Path) -> list[dict]:
    """The moons run (trained on the GPU) sampled into Parquet parts on each device: the default
    sampler and the distilled student (``commands``' last, on the GPU)."""
    run = work / "moons-cuda"
    results = []
    for sampler, rows in (("default", 10**6), ("distilled", 10**7)):
        for device in DEVICES:
            out = work / f"parts-{sampler}-{device}"
            chosen = ["--sampler", "distilled"] if sampler == "distilled" else []
            result = measured([*CLI, "sample", str(run), "-n", str(rows), "-o", f"{out}/", *chosen,
                               "--quiet", "--device", device])
            results.append({"sampler": sampler, "device": device, "rows": rows, "seconds": result["seconds"],
                            "rows_per_second": rows / result["seconds"]})
            print(results[-1], flush=True)
            shutil.rmtree(out)
    return results


def two_processes_one_gpu(work: Path) -> dict:
    """What `train --nproc 2 --device cuda` says where torch sees one GPU."""
    done = subprocess.run([*CLI, "train", str(work / "two"), "--data", "moons", "--nproc", "2",
                           "--device", "cuda", "--steps", "50", "-n", "0", "--quiet"],
                          capture_output=True, text=True)
    return {"returncode": done.returncode, "stderr_tail": done.stderr[-1500:]}


def report(results: dict) -> str:
    m, same = results["machine"], results["same_seed"]
    runs = same["runs"]
    parts = [section(
        f"The same seed on the GPU and the CPU ({m['gpu']}; its machine's {m['cpu']}; torch {m['torch']})",
        "Regenerate on a machine with a CUDA GPU: `python benchmarks/gpu.py --out gpu.json`, then "
        "here `.venv/bin/python benchmarks/gpu.py --report gpu.json`. moons, default preset, seed 0, "
        "`train --device D` with its evaluation (100,000 samples). The noise is drawn on the CPU on "
        "both, so the runs differ only by the order of float sums, which grows over the run's "
        f"steps into other weights of like quality (largest weight difference {same['weight_drift']:.2g}); "
        "the same weights sampled on each device with the same seed (the CPU run's, 10,000 rows) "
        f"differ by at most {same['row_difference']:.2g} (rows reach {same['row_scale']:.2f}).",
        ["device", "#train (s)", "#train + evaluate (s)", "#ratio"],
        [[d, f"{runs[d]['train_seconds']:.1f}", f"{runs[d]['wall_seconds']:.1f}", f"{runs[d]['ratio']:.3f}"]
         for d in DEVICES])]
    seconds = {(r["command"], r["device"]): r["seconds"] for r in results["commands"]}
    parts.append(section(
        "The other commands on the GPU",
        "On the GPU-trained moons run, `COMMAND RUN ... --device D`, wall seconds of the command "
        "(start-up included): `evaluate` (100,000 samples, 1,000 rows scored), `score` of 10,000 "
        "rows, `impute` of 2,000 rows with every other row's second column missing, `distill` "
        "(its defaults). The GPU saves little here: `score`'s time is SciPy's ODE solver stepping on "
        "the CPU side, and these networks are too small for the GPU's arithmetic to matter.",
        ["command", *(f"#{d} (s)" for d in DEVICES)],
        [[c, *(f"{seconds[c, d]:.1f}" for d in DEVICES)] for c in dict.fromkeys(c for c, _ in seconds)]))
    parts.append(section(
        f"Training throughput on the GPU: {results['rows']:,} rows x {TABLE_COLUMNS} columns",
        "`train RUN --data table.parquet --epochs 1 -n 0 --device D`: the default network and "
        "batch, rows per second of the training loop.",
        ["device", "#batch", "#steps", "#train (s)", "#rows / s"],
        [[r["device"], str(r["batch_size"]), f"{r['steps']:,}", f"{r['train_seconds']:.1f}",
          f"{r['rows_per_second']:,.0f}"] for r in results["training"]]))
    parts.append(section(
        "Sampling on the GPU",
        "`sample RUN -n N -o parts/ --device D` on the moons run, Parquet parts; wall seconds of the "
        "command (start-up and writing included). The student's rows take about as long on either "
        "device: the network is not what sets the rate there.",
        ["sampler", "device", "#rows", "#seconds", "#rows / s"],
        [[r["sampler"], r["device"], f"{r['rows']:,}", f"{r['seconds']:.1f}", f"{r['rows_per_second']:,.0f}"]
         for r in results["sampling"]]))
    return "## GPU\n\n" + "\n\n".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, help="measure here (a CUDA GPU needed) and write JSON")
    parser.add_argument("--report", type=Path, help="write BENCHMARKS.md from a JSON brought back")
    parser.add_argument("--rows", type=float, default=1e6, help="rows of the training table")
    args = parser.parse_args()
    if args.report:
        results = json.loads(args.report.read_text())
        (ROOT / "benchmarks" / "results" / "gpu.json").write_text(json.dumps(results, indent=2) + "\n")
        write_section("gpu", report(results))
        return
    if args.out is None:
        parser.error("give --out (on a GPU machine) or --report")
    results = {"machine": machine(), "rows": int(args.rows)}
    parts = (("same_seed", same_seed), ("commands", commands), ("sampling", sampling),
             ("training", lambda w: training(w, int(args.rows))), ("two_processes", two_processes_one_gpu))
    with tempfile.TemporaryDirectory() as folder:
        for name, part in parts:
            try:
                results[name] = part(Path(folder))
            except Exception as exc:  # a GPU lease is short: the other parts still run
                results[name] = {"failed": f"{type(exc).__name__}: {exc}"[-3000:]}
                print(name, results[name], flush=True)
            args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
