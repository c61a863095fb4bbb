"""Nothing lost, nothing let in: interruption, resumption, kills, divergence, locks, hostile files."""

from __future__ import annotations

import os
import pickle
import random
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
from simple_diffusion import training
from simple_diffusion.runs import RunFolder

SMALL = {"train": {"epochs": 6, "batch_size": 128}, "model": {"hidden": [32, 32]}}


def weights(folder: Path) -> dict[str, torch.Tensor]:
    return load_file(str(folder / "model.safetensors"))


def interrupt_at(monkeypatch, epoch_index: int) -> None:
    """Make the ``epoch_index``-th epoch (0-based) receive a Ctrl-C halfway through."""
    original = training.Trainer._train_epoch
    calls = {"n": 0}

    def flaky(self):
        calls["n"] += 1
        if calls["n"] == epoch_index + 1:
            raise KeyboardInterrupt
        return original(self)

    monkeypatch.setattr(training.Trainer, "_train_epoch", flaky)


@pytest.mark.parametrize("stop", [1, 4])
def test_interrupted_and_resumed_run_is_bit_for_bit_the_uninterrupted_one(tmp_path, monkeypatch, stop):
    whole = tmp_path / "whole"
    sd.fit("moons", config=SMALL, out=whole, progress=False)

    broken = tmp_path / "broken"
    with monkeypatch.context() as patch:
        interrupt_at(patch, stop)
        with pytest.raises(sd.UserError, match=rf"interrupted after epoch {stop} of 6.*--resume"):
            sd.fit("moons", config=SMALL, out=broken, progress=False)
    assert not (broken / "model.safetensors").exists()
    assert RunFolder(broken).load_checkpoint()["epoch"] == stop
    with pytest.raises(sd.UserError, match="no trained model yet"):
        sd.load(broken)

    sd.fit(None, out=broken, resume=True, progress=False)
    a, b = weights(whole), weights(broken)
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert (whole / "losses.csv").read_text().splitlines()[-1].split(",")[:3] == \
        (broken / "losses.csv").read_text().splitlines()[-1].split(",")[:3]


def test_resume_can_extend_a_finished_run(tmp_path):
    out = tmp_path / "run"
    sd.fit("two_gaussians", config=SMALL, out=out, progress=False)
    model = sd.fit(None, out=out, resume=True, epochs=8, progress=False)
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
        sd.fit("moons", config=config, out=out, progress=False)
    assert written == [2, 4, 5]


def test_same_seed_same_weights_and_samples(tmp_path):
    a = sd.fit("moons", config=SMALL, seed=3, progress=False)
    b = sd.fit("moons", config=SMALL, seed=3, progress=False)
    for p, q in zip(a.net.parameters(), b.net.parameters()):
        assert torch.equal(p, q)
    assert torch.equal(a.sample(3000, seed=1), b.sample(3000, seed=1))


def test_divergence_keeps_the_last_good_checkpoint(tmp_path, monkeypatch):
    out = tmp_path / "run"
    original = training.Trainer._train_epoch

    def explode(self):
        losses = original(self)
        return losses * float("nan") if self.epoch == 3 else losses

    monkeypatch.setattr(training.Trainer, "_train_epoch", explode)
    with pytest.raises(training.TrainingDiverged, match=r"epoch 4, step 1.*learning rate"):
        sd.fit("moons", config=SMALL, out=out, progress=False)
    assert RunFolder(out).load_checkpoint()["epoch"] == 3


def test_second_training_into_a_locked_folder_refuses(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    with FileLock(str(out / ".lock")), pytest.raises(sd.UserError, match="another training"):
        sd.fit("moons", config=SMALL, out=out, progress=False)


def test_a_pickle_named_like_a_model_is_never_executed(tmp_path):
    """A weights file holding a pickle payload: refused with a clear error, payload not run."""
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    good = tmp_path / "good"
    sd.fit("moons", config=SMALL, out=good, progress=False)
    for name in ("model.safetensors", "checkpoint.safetensors"):
        (good / name).write_bytes(pickle.dumps(Payload()))
    with pytest.raises(sd.UserError, match="corrupt or truncated"):
        sd.load(good)
    with pytest.raises(sd.UserError, match="corrupt or truncated"):
        sd.fit(None, out=good, resume=True, progress=False)
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
    sd.fit("moons", config=SMALL, out=out, progress=False)
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
                        "model": {"hidden": [32, 32]}}, out=sys.argv[1], progress=False)
"""


def _listen_to_ctrl_c() -> None:
    """A shell's background job starts with Ctrl-C ignored, and children inherit that; undo it."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def test_sigint_saves_a_checkpoint_and_says_how_to_resume(tmp_path):
    out = tmp_path / "run"
    process = subprocess.Popen(
        [sys.executable, "-m", "simple_diffusion", "train", "--data", "moons", "--out", str(out),
         "--epochs", "400", "--quiet", "--eval-samples", "0"],
        stderr=subprocess.PIPE, text=True, preexec_fn=_listen_to_ctrl_c,
    )
    deadline = time.time() + 60
    while not (out / "config.toml").exists() and time.time() < deadline:
        time.sleep(0.05)
    time.sleep(1.0)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=60)
    assert process.returncode == 1
    assert "interrupted after epoch" in err and "--resume" in err and "Traceback" not in err
    assert RunFolder(out).load_checkpoint()["epoch"] >= 1


def test_random_kills_leave_a_folder_that_loads_or_says_it_is_incomplete(tmp_path):
    """SIGKILL (no chance to clean up) at random moments: never a half-written file."""
    rng = random.Random(0)
    out = tmp_path / "run"
    for _ in range(4):
        process = subprocess.Popen([sys.executable, "-c", TRAIN_SCRIPT, str(out)],
                                   stderr=subprocess.DEVNULL)
        deadline = time.time() + 60
        while not (out / "config.toml").exists() and time.time() < deadline:
            time.sleep(0.02)
        time.sleep(rng.uniform(0.0, 1.5))
        process.kill()
        process.wait()
        try:
            sd.load(out)
        except sd.UserError as exc:
            assert "no trained model yet" in str(exc)
        try:
            RunFolder(out).load_checkpoint()
        except sd.UserError as exc:
            assert "not found" in str(exc)
        # A killed write leaves at most a hidden temporary file, never a damaged result.
        assert all(p.name.startswith(".") for p in out.iterdir() if p.name.endswith(".tmp"))
        for path in out.iterdir():
            if path.name != ".lock":
                path.unlink()
