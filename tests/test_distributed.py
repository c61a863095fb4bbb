"""Several processes (torchrun, gloo on the CPU) and devices: one model trained by two processes
is the one-process run, a signal to one rank stops all with a checkpoint that resumes with
another process count, and samples are the same whatever the number of processes."""

from __future__ import annotations

import gzip
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import simple_diffusion as sd
from simple_diffusion.data import io
from simple_diffusion.training.distributed import Ranks, resolve_device
from tests.helpers import cli

pytestmark = pytest.mark.skipif(not torch.distributed.is_available(), reason="no torch.distributed")


def losses(run: Path) -> pd.DataFrame:
    return pd.read_csv(run / "losses.csv")


def weights(run: Path) -> torch.Tensor:
    model = sd.load(run)
    return torch.cat([p.detach().flatten() for p in model.net.parameters()])


# The autograd path's run is slow: the same launch and split as the fast path's, DDP's own gradient sum.
@pytest.mark.parametrize("fast", [True, pytest.param(False, marks=pytest.mark.slow)],
                         ids=["fast-path", "autograd-ddp"])
def test_two_processes_train_the_one_process_run(tmp_path, fast):
    """Same seed, same global batch: each rank computes half of every batch and the gradients are
    summed, so two processes take the one-process run's steps up to the order of float sums.
    A rank training on the other's rows, or a missing gradient sum, moves the losses by ~1e-2."""
    config = tmp_path / "fast.toml"
    config.write_text(f"[train]\nfast = {str(fast).lower()}\n")
    common = ["--data", "moons", "--steps", "200", "-n", "0", "--quiet", "--config", str(config)]
    assert cli(["train", str(tmp_path / "one"), *common]) == 0
    assert cli(["train", str(tmp_path / "two"), *common, "--nproc", "2"]) == 0
    one, two = losses(tmp_path / "one"), losses(tmp_path / "two")
    assert len(one) == len(two) > 3
    np.testing.assert_allclose(two.train_loss, one.train_loss, rtol=1e-4)
    np.testing.assert_allclose(two.val_loss, one.val_loss, rtol=1e-4)
    torch.testing.assert_close(weights(tmp_path / "two"), weights(tmp_path / "one"), rtol=0, atol=1e-4)
    assert 'processes = 2' in (tmp_path / "two" / "config.toml").read_text()


@pytest.mark.slow  # three processes start (seconds each) to refuse
def test_a_batch_that_does_not_split_over_the_processes_is_refused_in_one_line(tmp_path, capfd):
    status = cli(["train", str(tmp_path / "r"), "--data", "moons", "--steps", "10", "-n", "0",
                  "--quiet", "--nproc", "3"])
    err = capfd.readouterr().err
    assert status == 1
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert errors == ["error: a batch of 256 rows does not split evenly over 3 processes: choose a "
                      "process count that divides it (or set train.batch_size)"]
    assert "Traceback" not in err


def _rank_pid(marker: str, rank: int) -> int | None:
    """The process of ``rank`` among those started with ``marker`` in their environment."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if f"TEST_MARKER={marker}".encode() in environ and f"RANK={rank}".encode() in environ:
            return int(entry.name)
    return None


def _interrupted(tmp_path: Path, signal_number: int) -> tuple[Path, list[str], str, int]:
    """A 2-process training of moons (a checkpoint every epoch) given ``signal_number`` on rank 1
    once its first checkpoint is written. It must end with status 1 and one error line, after a
    complete epoch short of the last: (the run, its options, that line, the epochs in all)."""
    run, marker = tmp_path / "run", uuid.uuid4().hex
    config = tmp_path / "every.toml"
    config.write_text("[train]\ncheckpoint_every = 1\n")
    common = ["--data", "moons", "--steps", "800", "-n", "0", "--quiet", "--config", str(config)]
    job = subprocess.Popen([sys.executable, "-m", "simple_diffusion", "train", str(run), *common,
                            "--nproc", "2"], env={**os.environ, "TEST_MARKER": marker},
                           stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not (run / "checkpoint.safetensors").exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    pid = _rank_pid(marker, 1)
    assert pid is not None and job.poll() is None, "the run ended before it could be interrupted"
    os.kill(pid, signal_number)
    _, err = job.communicate(timeout=120)
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert job.returncode == 1 and len(errors) == 1, err
    assert f"resume with `simple-diffusion train --resume {run}`" in errors[0]
    stopped, total = map(int, re.search(r"after epoch (\d+) of (\d+);", errors[0]).groups())
    assert 1 <= stopped < total
    return run, common, errors[0], total


needs_proc = pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="finds ranks through /proc")


@needs_proc
@pytest.mark.slow  # a 2-process run and two 1-process ones; test_reliability stops one process alike
def test_a_signal_to_one_rank_checkpoints_all_and_the_run_resumes_with_one_process(tmp_path):
    """SIGTERM to rank 1 only: all ranks stop after the same epoch, rank 0 saves the checkpoint
    and prints the resume command once; resuming it in one process continues the very run (its
    later losses are those of an uninterrupted run: the draws' state does not depend on the
    process count)."""
    run, common, error, total = _interrupted(tmp_path, signal.SIGTERM)
    assert "interrupted after epoch" in error
    assert cli(["train", "--resume", str(run), "-n", "0", "--quiet"]) == 0
    assert cli(["train", str(tmp_path / "whole"), *common]) == 0
    resumed, whole = losses(run), losses(tmp_path / "whole")
    assert list(resumed.epoch) == list(range(1, total + 1))
    np.testing.assert_allclose(resumed.train_loss, whole.train_loss, rtol=1e-3)
    assert "processes = 1" in (run / "config.toml").read_text()


@needs_proc
@pytest.mark.slow  # a second interrupted 2-process run; test_reliability interrupts one process by default
def test_a_rank_killed_outright_leaves_rank_0_saving_the_last_epoch(tmp_path):
    """SIGKILL to rank 1: rank 0's next gradient sum fails; it saves the last complete epoch and
    says so in one line, and the run resumes (in one process: a second start of torchrun would
    add seconds and test nothing the checkpoint does not)."""
    run, _, error, total = _interrupted(tmp_path, signal.SIGKILL)
    assert "another process of the run stopped" in error
    assert cli(["train", "--resume", str(run), "-n", "0", "--quiet"]) == 0
    assert len(losses(run)) == total


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("sharded") / "run"
    assert cli(["train", str(run), "--data", "moons", "--steps", "60", "-n", "0", "--quiet"]) == 0
    return run


def test_row_ranges_of_a_sample_are_the_rows_of_the_whole_sample(trained):
    """What each process draws: the rows of a range, chunk for chunk, equal the same rows of one
    whole draw, bit for bit."""
    model = sd.load(trained)
    n, chunk = 20_000, 4096
    few = {"seed": 3, "chunk_size": chunk, "num_steps": 10}  # the default sampler, in few steps
    whole = torch.cat([c for _, c in model.sample_chunks(n, **few)])
    ranges = [range(0, 8192), range(8192, 16384), range(16384, n)]
    pieces = [torch.cat([c for _, c in model.sample_chunks(n, rows=r, **few)]) for r in ranges]
    assert torch.equal(torch.cat(pieces), whole)
    with pytest.raises(ValueError, match="multiple"):
        next(model.sample_chunks(n, seed=3, rows=range(100, 200)))


OUTPUTS = ["samples.csv", "samples.npy", "samples.parquet", "parts/", "samples.xlsx", "samples.csv.gz",
           "samples.feather", "samples.json", "samples.jsonl"]
WRITE_IN_TWO_PROCESSES = """
import sys
import simple_diffusion as sd
model = sd.load(sys.argv[1])
for output in sys.argv[3:]:
    sd.write_samples(model, f"{sys.argv[2]}/{output}", 5_000, seed=5, chunk_size=1024, num_steps=10)
"""


@pytest.mark.slow  # a torchrun start; its parts run in one process here: row ranges above, joins below
def test_samples_are_the_same_file_whatever_the_number_of_processes(trained, tmp_path):
    """1 process against 2 (torchrun), 5,000 rows in chunks of 1,024 (rank 0 draws two chunks,
    rank 1 three): the same bytes, one file (the parts joined and removed) or the same parts (an
    Excel workbook: the same cells, it records when it was written; a compressed CSV: the same
    text, compressed as it was fed). Every format in one torchrun job of ``sd.write_samples``
    (what `sample` calls in each process; its --nproc starts them as `train --nproc` does), one
    start for all of them."""
    args = ["sample", str(trained), "-n", "5000", "--chunk-size", "1024", "--seed", "5", "--num-steps", "10",
            "--quiet"]  # the default sampler (its noise at every step), in few steps
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir()
    two.mkdir()
    for output in OUTPUTS:
        assert cli([*args, "-o", f"{one}/{output}"]) == 0
    script = tmp_path / "write.py"
    script.write_text(WRITE_IN_TWO_PROCESSES)
    subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                    str(script), str(trained), str(two), *OUTPUTS], check=True, capture_output=True,
                   env={**os.environ, "OMP_NUM_THREADS": "1"})
    names = sorted(p.relative_to(one) for p in one.rglob("*"))
    assert names == sorted(p.relative_to(two) for p in two.rglob("*"))  # no part files left
    for name in names:
        if name.suffix == ".xlsx":
            pd.testing.assert_frame_equal(pd.read_excel(one / name), pd.read_excel(two / name))
        elif name.suffix == ".gz":
            assert gzip.decompress((one / name).read_bytes()) == gzip.decompress((two / name).read_bytes())
        elif (one / name).is_file():
            assert (one / name).read_bytes() == (two / name).read_bytes(), name
    for output in OUTPUTS:
        rows = pd.read_parquet(two / output) if output.endswith("/") else io.read_frame(str(two / output))
        assert len(rows) == 5_000, output


def test_two_processes_fill_the_gaps_one_process_fills(trained, tmp_path, capfd):
    """impute --nproc 2: each process fills a share of the gap rows' draws (9,000 rows of 3
    draws: three blocks of 4,096 rows and part of a fourth, two per process), rank 0 writes them
    all, the same bytes as one process (a row's observed -0.0 too); the printout comes once."""
    rows = sd.targets.draw("moons", 3_000, seed=1).numpy()
    rows[::2, 0] = np.nan
    rows[1::3, 1] = np.nan
    rows[0, 1] = -0.0
    pd.DataFrame(rows, columns=["x1", "x2"]).to_csv(tmp_path / "gaps.csv", index=False)
    common = [str(trained), "--data", str(tmp_path / "gaps.csv"), "--draws", "3", "--resample", "1",
              "--quiet"]
    assert cli(["impute", *common, "-o", str(tmp_path / "one.csv")]) == 0
    capfd.readouterr()
    assert cli(["impute", *common, "-o", str(tmp_path / "two.csv"), "--nproc", "2"]) == 0
    assert capfd.readouterr().err.count("filled ") == 1
    one, two = (tmp_path / "one.csv").read_bytes(), (tmp_path / "two.csv").read_bytes()
    assert one == two and len(pd.read_csv(tmp_path / "two.csv")) == 9_000 and b",-0.0\n" in two
    assert pd.read_csv(tmp_path / "two.csv")[["x1", "x2"]].notna().all().all()


def test_a_folder_of_parts_is_refused_when_it_holds_anything(trained, tmp_path, capfd):
    (tmp_path / "parts").mkdir()
    (tmp_path / "parts" / "mine.txt").write_text("keep me")
    assert cli(["sample", str(trained), "-n", "10", "-o", f"{tmp_path}/parts/", "--quiet"]) == 1
    assert "is not empty" in capfd.readouterr().err
    assert (tmp_path / "parts" / "mine.txt").read_text() == "keep me"


def test_concatenate_joins_parts_of_each_format_skipping_empty_ones(tmp_path):
    blocks = [np.arange(6.0).reshape(3, 2), np.empty((0, 2)), np.arange(6.0, 10.0).reshape(2, 2)]
    for suffix in (".csv", ".npy", ".parquet", ".xlsx", ".csv.gz", ".feather", ".json", ".jsonl",
                   ".jsonl.gz"):
        parts = []
        for i, block in enumerate(blocks):
            part = tmp_path / f"part{i}{suffix}"
            chunks = [] if not len(block) else [
                block if suffix == ".npy" else pd.DataFrame(block, columns=["a", "b"])]
            io.write_chunks(str(part), chunks, len(block))
            parts.append(part)
        out = tmp_path / f"all{suffix}"
        io.concatenate(parts[1:] + parts[:1] if suffix == ".csv" else parts, str(out))
        expected = np.concatenate([blocks[2], blocks[0]]) if suffix == ".csv" else np.concatenate(blocks)
        assert np.array_equal(io.read_frame(str(out)).to_numpy(np.float64), expected), suffix


def test_one_process_is_rank_0_of_1_and_a_missing_device_is_a_clear_error():
    assert Ranks.from_environment() == Ranks(0, 1)
    assert resolve_device("cpu") == torch.device("cpu")
    expected = "cuda" if torch.cuda.is_available() else "mps" if torch.backends.mps.is_available() else "cpu"
    assert resolve_device("auto").type == expected
    if not torch.cuda.is_available():  # said to a Python caller in its words
        with pytest.raises(sd.UserError, match=r"^device 'cuda': this torch sees no CUDA GPU .* use device "
                                               r"'cpu' or auto$"):
            resolve_device("cuda")


def test_each_process_on_a_gpu_of_its_own_and_more_processes_than_gpus_refused(monkeypatch):
    """NCCL serves one process per GPU: rank 1 of two takes the second GPU; two processes on a
    machine with one GPU train on the CPU under auto, and --device cuda is a one-line error, not
    NCCL's "duplicate GPU" abort (on an H200 machine, every --nproc test had put both processes
    on the one GPU)."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "1")
    assert resolve_device("cuda") == resolve_device("auto") == torch.device("cuda", 1)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert resolve_device("auto") == torch.device("cpu")  # gloo between CPU processes
    assert resolve_device("auto", processes=1) == torch.device("cuda", 1)
    with pytest.raises(sd.UserError, match=r"2 processes on this machine need a GPU each, and torch "
                       r"sees 1; use one process per GPU \(1\) or device 'cpu'"):
        resolve_device("cuda")


@pytest.mark.parametrize("where", ["option", "config file"])
def test_more_processes_than_gpus_are_refused_before_any_starts(tmp_path, capfd, monkeypatch, where):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    (tmp_path / "gpu.toml").write_text('[train]\ndevice = "cuda"\n')
    device = ["--device", "cuda"] if where == "option" else ["--config", str(tmp_path / "gpu.toml")]
    assert cli(["train", str(tmp_path / "run"), "--data", "two_gaussians", "--nproc", "2", *device]) == 1
    err = capfd.readouterr().err
    assert err.strip() == ("error: --device cuda: 2 processes on this machine need a GPU each, and torch "
                           "sees 1; use --nproc 1 (one process per GPU) or --device cpu")
    assert not (tmp_path / "run").exists()


def test_the_training_device_is_recorded_and_a_missing_one_refused(tmp_path, capfd):
    run = tmp_path / "run"
    assert cli(["train", str(run), "--data", "two_gaussians", "--steps", "20", "-n", "0", "--quiet",
                "--device", "cpu"]) == 0
    text = (run / "config.toml").read_text()
    assert 'device = "cpu"' in text.split("[run]")[0] and 'device = "cpu"' in text.split("[run]")[1]
    if not torch.cuda.is_available():
        assert cli(["train", str(tmp_path / "gpu"), "--data", "two_gaussians", "--steps", "20",
                    "--device", "cuda"]) == 1
        assert "error: --device cuda: this torch sees no CUDA GPU" in capfd.readouterr().err


@pytest.fixture(scope="module")
def small_run(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("device") / "run"
    assert cli(["train", str(run), "--data", "two_gaussians", "--steps", "20", "-n", "0", "--quiet"]) == 0
    return run


@pytest.mark.parametrize("command", ["distill", "evaluate", "impute", "score"])
def test_every_command_that_runs_the_network_takes_a_device(small_run, tmp_path, capfd, command):
    """A GPU user's run is distilled, evaluated, scored and filled on the GPU too: each command
    takes --device, and one that is absent is refused before any work."""
    run = tmp_path / "run"
    shutil.copytree(small_run, run)  # distill and evaluate write into the run
    rows = tmp_path / "rows.npy"
    np.save(rows, np.array([[0.5], [np.nan], [-1.0]]))
    arguments = {"distill": ["--pairs", "8192", "--train-steps", "2", "--quiet"],
                 "evaluate": ["-n", "200", "--likelihood-rows", "20", "--quiet"],
                 "impute": ["--data", str(rows), "-o", str(tmp_path / "filled.npy"), "--quiet"],
                 "score": ["--data", str(rows), "-o", str(tmp_path / "scored.csv")]}[command]
    capfd.readouterr()
    assert cli([command, str(run), *arguments, "--device", "cpu"]) == 0, capfd.readouterr().err
    if not torch.cuda.is_available():
        assert cli([command, str(run), *arguments, "--device", "cuda"]) == 1
        assert capfd.readouterr().err.strip().endswith("this torch sees no CUDA GPU (torch "
                                                       f"{torch.__version__}); use --device cpu or auto")


@pytest.mark.slow
def test_two_processes_reach_the_quality_of_one(tmp_path):
    """The default preset on moons (100,000 samples judged): two processes with the same global
    batch score the ratio of one process with the same seed, within the spread between seeds."""
    ratios = {}
    for nproc, seed in ((1, 0), (1, 1), (2, 0)):
        run = tmp_path / f"{nproc}-{seed}"
        assert cli(["train", str(run), "--data", "moons", "--seed", str(seed), "--quiet",
                    "--likelihood-rows", "0", "--nproc", str(nproc)]) == 0
        ratios[nproc, seed] = json.loads((run / "metrics.json").read_text())["ratio"]
    spread = abs(ratios[1, 0] - ratios[1, 1])
    assert abs(ratios[2, 0] - ratios[1, 0]) <= max(spread, 0.05), ratios


@pytest.mark.slow  # a third 2-process training
def test_two_processes_speak_once(tmp_path, capfd):
    """Rank 0 reports for both: the columns line, the summary and `trained:` appear once."""
    rng = np.random.default_rng(0)
    data = tmp_path / "table.csv"
    pd.DataFrame({"a": rng.normal(size=400), "kind": rng.choice(["x", "y"], 400)}).to_csv(data, index=False)
    assert cli(["train", str(tmp_path / "run"), "--data", str(data), "--steps", "20", "-n", "500",
                "--likelihood-rows", "0", "--quiet", "--nproc", "2"]) == 0
    captured = capfd.readouterr()
    assert captured.err.count("columns: a numeric, kind categorical (2)") == 1
    assert captured.err.count("trained: ") == 1
    assert captured.out.count("memorisation") == 1
