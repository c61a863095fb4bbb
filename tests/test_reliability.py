"""Nothing lost, nothing let in: interruption, resumption, kills, divergence, locks, hostile files."""

from __future__ import annotations

import os
import pickle
import re
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from filelock import FileLock
from safetensors.torch import load_file

import simple_diffusion as sd
from simple_diffusion.runs import RunFolder
from simple_diffusion.training import loop

SMALL = {"train": {"epochs": 6, "batch_size": 128}, "model": {"hidden": [32, 32]}}


def weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(str(folder / "model.safetensors"))


def interrupt_at(monkeypatch, epoch_index: int) -> None:
    """Make the ``epoch_index``-th epoch (0-based) receive a Ctrl-C halfway through."""
    original = loop.Trainer._train_epoch
    calls = {"n": 0}

    def flaky(self):
        calls["n"] += 1
        if calls["n"] == epoch_index + 1:
            raise KeyboardInterrupt
        return original(self)

    monkeypatch.setattr(loop.Trainer, "_train_epoch", flaky)


@pytest.mark.parametrize("stop", [1, 4])
def test_interrupted_and_resumed_run_is_bit_for_bit_the_uninterrupted_one(tmp_path, monkeypatch, stop):
    whole = tmp_path / "whole"
    sd.fit("moons", config=SMALL, out=whole, progress=False, num_samples=0)

    broken = tmp_path / "broken"
    with monkeypatch.context() as patch:
        interrupt_at(patch, stop)
        resume = re.escape(f"resume with `sd.fit(None, out={str(broken)!r}, resume=True)`")
        with pytest.raises(sd.UserError, match=rf"interrupted after epoch {stop} of 6.*{resume}$"):
            sd.fit("moons", config=SMALL, out=broken, progress=False, num_samples=0)
    assert not (broken / "model.safetensors").exists()
    assert RunFolder(broken).load_checkpoint()["epoch"] == stop
    with pytest.raises(sd.UserError, match="no trained model yet"):
        sd.load(broken)

    sd.fit(None, out=broken, resume=True, progress=False, num_samples=0)
    a, b = weights(whole), weights(broken)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert (whole / "losses.csv").read_text().splitlines()[-1].split(",")[:3] == \
        (broken / "losses.csv").read_text().splitlines()[-1].split(",")[:3]


def test_resume_can_extend_a_finished_run(tmp_path):
    out = tmp_path / "run"
    sd.fit("two_gaussians", config=SMALL, out=out, progress=False, num_samples=0)
    model = sd.fit(None, out=out, resume=True, epochs=8, progress=False, num_samples=0)
    assert model.info["epochs"] == 8
    assert len((out / "losses.csv").read_text().splitlines()) == 9


def test_periodic_checkpoints(tmp_path, monkeypatch):
    out = tmp_path / "run"
    config = {**SMALL, "train": {**SMALL["train"], "checkpoint_every": 2}}
    interrupt_at(monkeypatch, 5)
    written = []
    original = RunFolder.save_checkpoint
    monkeypatch.setattr(RunFolder, "save_checkpoint",
                        lambda self, state: (written.append(state["epoch"]), original(self, state)))
    with pytest.raises(sd.UserError):
        sd.fit("moons", config=config, out=out, progress=False, num_samples=0)
    assert written == [2, 4, 5]


def test_same_seed_same_weights_and_samples(tmp_path):
    a = sd.fit("moons", config=SMALL, seed=3, progress=False)
    b = sd.fit("moons", config=SMALL, seed=3, progress=False)
    for p, q in zip(a.net.parameters(), b.net.parameters()):
        assert torch.equal(p, q)
    assert torch.equal(a.sample(3000, seed=1), b.sample(3000, seed=1))


def test_divergence_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    out = tmp_path / "run"
    original = loop.Trainer._train_epoch

    def explode(self):
        losses = original(self)
        return losses * float("nan") if self.epoch == 3 else losses

    monkeypatch.setattr(loop.Trainer, "_train_epoch", explode)
    with pytest.raises(loop.TrainingDiverged, match=r"epoch 4, step 1.*learning rate"):
        sd.fit("moons", config=SMALL, out=out, progress=False, num_samples=0)
    assert RunFolder(out).load_checkpoint()["epoch"] == 3


def test_second_training_into_a_locked_folder_refuses(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    with FileLock(str(out / ".lock")), pytest.raises(sd.UserError, match="another training"):
        sd.fit("moons", config=SMALL, out=out, progress=False, num_samples=0)


def test_a_pickle_named_like_a_model_is_never_executed(tmp_path):
    """A weights file holding a pickle payload: refused with a clear error, payload not run."""
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    good = tmp_path / "good"
    sd.fit("moons", config=SMALL, out=good, progress=False, num_samples=0)
    for name in ("model.safetensors", "checkpoint.safetensors"):
        (good / name).write_bytes(pickle.dumps(Payload()))
    with pytest.raises(sd.UserError, match="corrupt or truncated"):
        sd.load(good)
    with pytest.raises(sd.UserError, match="corrupt or truncated"):
        sd.fit(None, out=good, resume=True, progress=False, num_samples=0)
    assert not marker.exists()


def test_no_pickle_anywhere_in_the_package():
    source = Path(sd.__file__).parent
    for path in source.rglob("*.py"):
        text = path.read_text()
        assert "import pickle" not in text and "torch.load(" not in text, path
        assert "allow_pickle=True" not in text, path


def test_edited_weights_with_nan_are_refused(tmp_path):
    from safetensors import safe_open
    from safetensors.torch import save_file

    out = tmp_path / "run"
    sd.fit("moons", config=SMALL, out=out, progress=False, num_samples=0)
    path = str(out / "model.safetensors")
    with safe_open(path, "pt") as handle:
        metadata = handle.metadata()
    tensors = load_file(path)
    tensors["net.layers.0.weight"][0, 0] = float("nan")
    save_file(tensors, path, metadata=metadata)
    with pytest.raises(sd.UserError, match="NaN"):
        sd.load(out)


TRAIN_SCRIPT = """
import sys
import simple_diffusion as sd
sd.fit("moons", config={"train": {"epochs": 400, "batch_size": 64, "checkpoint_every": 1},
                        "model": {"hidden": [32, 32]}}, out=sys.argv[1], progress=False,
       num_samples=0)
"""


def _listen_to_ctrl_c() -> None:
    """A shell's background job starts with Ctrl-C ignored, and children inherit that; undo it."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def wait_for(path: Path, process: subprocess.Popen, timeout: float = 120) -> None:
    """Until ``path`` exists (no fixed sleeps: a busy machine only makes this slower)."""
    deadline = time.time() + timeout
    while not path.exists():
        assert process.poll() is None, "the process ended before writing " + path.name
        assert time.time() < deadline, f"{path} never appeared"
        time.sleep(0.02)


def train_command(out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "simple_diffusion", "train", str(out), "--data", "moons",
            "--epochs", "400", "--quiet", "-n", "0", *extra]


# SIGTERM's run is slow: the same handler, and test_distributed sends SIGTERM to a rank.
@pytest.mark.parametrize("stop", [signal.SIGINT, pytest.param(signal.SIGTERM, marks=pytest.mark.slow)])
def test_a_signal_saves_a_checkpoint_and_the_printed_command_resumes(tmp_path, stop):
    out = tmp_path / "my run"  # a space: the printed command must quote it
    overrides = tmp_path / "every.toml"
    overrides.write_text("[train]\ncheckpoint_every = 1\n[model]\nhidden = [32, 32]\n")
    process = subprocess.Popen(train_command(out, "--config", str(overrides)), stderr=subprocess.PIPE,
                               text=True, preexec_fn=_listen_to_ctrl_c)
    wait_for(out / "checkpoint.safetensors", process)
    process.send_signal(stop)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 1, err
    assert "interrupted after epoch" in err and "Traceback" not in err
    saved = RunFolder(out).load_checkpoint()["epoch"]
    assert saved >= 1
    command = err.split("resume with `")[1].split("`")[0]
    assert command.startswith("simple-diffusion train --resume ")
    # Run the printed command literally (through the module, as the installed script would).
    arguments = [*shlex.split(command)[1:], "--epochs", str(saved + 1), "--quiet", "-n", "0"]
    result = subprocess.run([sys.executable, "-m", "simple_diffusion", *arguments],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert sd.load(out).info["epochs"] == saved + 1
    assert "epochs = " + str(saved + 1) in (out / "config.toml").read_text()


def test_ctrl_c_during_start_up_prints_one_line(tmp_path):
    """While torch is being imported (seen through -X importtime's report of its submodules)."""
    process = subprocess.Popen(
        [sys.executable, "-X", "importtime", "-m", "simple_diffusion", "train", str(tmp_path / "r"),
         "--data", "moons", "--quiet"],
        stderr=subprocess.PIPE, text=True, preexec_fn=_listen_to_ctrl_c,
    )
    report = []
    for line in process.stderr:
        report.append(line)
        if re.search(r"\|\s+torch\.", line):
            process.send_signal(signal.SIGINT)
            break
    rest = process.stderr.read()
    process.wait(timeout=60)
    assert process.returncode == 130, rest[-2000:]
    messages = [line for line in rest.splitlines() if line.strip() and not line.startswith("import time:")]
    assert messages == ["interrupted"], messages[-20:]


def _kill_while_writing(prefix: str) -> str:
    """A script that trains and SIGKILLs itself halfway through writing the file ``prefix``."""
    return f"""
import os, signal, sys
from pathlib import Path
real_write = Path.write_bytes

def write_half_then_die(self, data):
    if self.name.startswith(".{prefix}") and len(data) > 100:
        with open(self, "wb") as handle:
            handle.write(data[: len(data) // 2])
        os.kill(os.getpid(), signal.SIGKILL)
    return real_write(self, data)

Path.write_bytes = write_half_then_die
""" + TRAIN_SCRIPT.replace('"epochs": 400', '"epochs": 3')


# The checkpoint's case is slow: the same atomic write (data.io.write_bytes) as the model's.
@pytest.mark.parametrize("victim", [pytest.param("checkpoint.safetensors", marks=pytest.mark.slow),
                                    "model.safetensors"])
def test_a_kill_during_a_weights_write_never_leaves_a_half_written_file(tmp_path, victim):
    """SIGKILL (no chance to clean up) in the middle of writing weights: the folder still holds
    only complete files, and says what is missing."""
    out = tmp_path / "run"
    result = subprocess.run([sys.executable, "-c", _kill_while_writing(victim), str(out)],
                            stderr=subprocess.PIPE, text=True)
    assert result.returncode == -signal.SIGKILL, result.stderr
    half = [p for p in out.iterdir() if p.name.startswith(f".{victim}.") and p.name.endswith(".tmp")]
    assert len(half) == 1, "the kill did not land during the write"
    assert not (out / "model.safetensors").exists()
    with pytest.raises(sd.UserError, match="no trained model yet"):
        sd.load(out)
    visible = {p.name for p in out.iterdir() if not p.name.startswith(".")}
    assert visible <= {"config.toml", "split.safetensors", "checkpoint.safetensors"}
    if victim == "checkpoint.safetensors":
        assert not (out / victim).exists()  # the first checkpoint never landed
        with pytest.raises(sd.UserError, match=r"before its first checkpoint.*with overwrite=True$"):
            sd.fit(None, out=out, resume=True, progress=False, num_samples=0)
        sd.fit("moons", config=SMALL, out=out, overwrite=True, progress=False, num_samples=0)
    else:
        assert RunFolder(out).load_checkpoint()["epoch"] == 3  # the last complete one
        sd.fit(None, out=out, resume=True, progress=False, num_samples=0)
        assert sd.load(out).info["epochs"] == 3
