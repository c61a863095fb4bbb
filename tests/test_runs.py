"""Run folders: what is saved loads back to the same model; damaged files give clear errors."""

import json
import math
import re

import numpy as np
import pandas as pd
import pytest
import torch
from helpers import cli

import simple_diffusion as sd
from simple_diffusion.runs import RunFolder


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "two"
    model = sd.fit("two_gaussians", epochs=3, out=out, progress=False, num_samples=0)
    return out, model


def test_folder_holds_config_weights_losses_and_plot(run):
    out, _ = run
    for name in ("config.toml", "model.safetensors", "losses.csv", "loss.png", "checkpoint.safetensors"):
        assert (out / name).is_file(), name
    assert (out / "losses.csv").read_text().splitlines()[0] == "epoch,train_loss,val_loss,seconds"
    lines = (out / "losses.csv").read_text().splitlines()
    # Validated at the first and last epochs (every 4th of 10,000 rows): the one between is empty.
    assert len(lines) == 4 and [line.split(",")[2] == "" for line in lines[1:]] == [False, True, False]


def test_round_trip_gives_the_same_samples(run):
    out, model = run
    loaded = sd.load(out)
    assert torch.equal(loaded.sample(5000, seed=7), model.sample(5000, seed=7))
    assert loaded.columns == model.columns
    assert loaded.config == model.config


def test_samples_do_not_depend_on_chunk_size(run):
    _, model = run
    whole = model.sample(10_000, seed=3, chunk_size=10_000, num_steps=10)  # the default sampler, few steps
    assert torch.equal(whole, model.sample(10_000, seed=3, chunk_size=4096, num_steps=10))
    assert not torch.equal(whole, model.sample(10_000, seed=4, num_steps=10))


def test_refuses_a_non_empty_folder(run):
    out, _ = run
    with pytest.raises(sd.UserError, match=r"holds a run; pass overwrite=True to replace it, or continue its "
                                           r"training with `sd.fit\(None, out='.*', resume=True\)`$"):
        sd.fit("two_gaussians", epochs=1, out=out, progress=False, num_samples=0)


def copy_run(run, tmp_path):
    import shutil

    target = tmp_path / "copy"
    shutil.copytree(run[0], target)
    return target


def test_truncated_weights(run, tmp_path):
    folder = copy_run(run, tmp_path)
    data = (folder / "model.safetensors").read_bytes()
    (folder / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(sd.UserError, match="corrupt or truncated"):
        sd.load(folder)


def test_newer_format_version(run, tmp_path):
    from safetensors.torch import load_file, save_file

    folder = copy_run(run, tmp_path)
    path = str(folder / "model.safetensors")
    tensors = load_file(path)
    save_file(tensors, path, metadata={"format_version": "99", "columns": "[]", "preprocess": "{}"})
    with pytest.raises(sd.UserError, match="format 99, newer"):
        sd.load(folder)


def test_config_that_does_not_match_the_weights(run, tmp_path):
    folder = copy_run(run, tmp_path)
    text = (folder / "config.toml").read_text().replace("time_features = 16", "time_features = 8")
    (folder / "config.toml").write_text(text)
    with pytest.raises(sd.UserError, match="shape"):
        sd.load(folder)


def test_missing_model_says_how_to_resume(run, tmp_path):
    folder = copy_run(run, tmp_path)
    (folder / "model.safetensors").unlink()
    resume = re.escape(f"resume with `sd.fit(None, out={str(folder)!r}, resume=True)`")
    with pytest.raises(sd.UserError, match=resume):
        sd.load(folder)


def test_not_a_run_folder(tmp_path):
    with pytest.raises(sd.UserError, match="not a run folder"):
        sd.load(tmp_path)
    with pytest.raises(sd.UserError, match="run folder not found"):
        sd.load(tmp_path / "absent")


def test_checkpoint_round_trip(run):
    state = RunFolder(run[0]).load_checkpoint()
    assert state["epoch"] == 3 and len(state["history"]) == 3
    assert math.isnan(state["history"][1]["val_loss"])  # an epoch without a validation
    assert isinstance(state["generator"], torch.Tensor)


def test_metrics_json_after_evaluation(run, tmp_path):
    folder = copy_run(run, tmp_path)
    result = sd.evaluate_run(folder, n=3000, likelihood_rows=0)
    saved = json.loads((folder / "metrics.json").read_text())
    assert saved["ratio"] == pytest.approx(result["ratio"])
    assert np.isfinite(saved["floor"]) and (folder / "samples.png").stat().st_size > 1000


def test_overwrite_refuses_a_folder_that_is_not_a_run_and_touches_nothing(tmp_path, monkeypatch):
    """`train . --overwrite` in a folder of the user's used to delete everything in it."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data.csv").write_text("x\n1\n2\n3\n")
    (tmp_path / "notes").mkdir()
    with pytest.raises(sd.UserError, match=r"not a simple-diffusion run folder.*data.csv"):
        sd.fit("two_gaussians", epochs=1, out=".", overwrite=True, progress=False, num_samples=0)
    assert (tmp_path / "data.csv").read_text() == "x\n1\n2\n3\n" and (tmp_path / "notes").is_dir()


def test_overwrite_replaces_only_the_files_a_run_writes(tmp_path):
    out = tmp_path / "run"
    sd.fit("two_gaussians", epochs=2, out=out, progress=False, num_samples=0)
    (out / "my-notes.txt").write_text("keep me")
    sd.fit("two_gaussians", epochs=1, out=out, overwrite=True, progress=False, num_samples=0)
    assert (out / "my-notes.txt").read_text() == "keep me"
    assert len((out / "losses.csv").read_text().splitlines()) == 2  # the new run's one epoch


def test_a_run_trained_from_an_array_evaluates_and_resumes_from_another_folder(tmp_path, monkeypatch):
    x = np.random.default_rng(0).normal(size=(600, 2))
    out = tmp_path / "array-run"
    sd.fit(x, epochs=2, out=out, progress=False, num_samples=0)
    monkeypatch.chdir(tmp_path.parent)
    result = sd.evaluate_run(out, n=2000, likelihood_rows=0)
    held_out = sd.training_data(x).val  # the split is recorded, not recomputed from the data
    assert result["reference"] == len(held_out) == 60
    sd.fit(None, out=out, resume=True, epochs=3, progress=False, num_samples=0)
    assert sd.load(out).info["epochs"] == 3
    # A resumed run goes on as it began: a setting of a new run was ignored, silently.
    for ignored in ({"seed": 5}, {"preset": "seed"}, {"config": {"train": {"lr": 1e-3}}},
                    {"columns": ["x1"]}):
        with pytest.raises(sd.UserError, match=rf"^resuming continues with the run's own settings \(.*"
                                               rf"config.toml\); {next(iter(ignored))} sets a new run's$"):
            sd.fit(None, out=out, resume=True, epochs=4, progress=False, num_samples=0, **ignored)
    assert sd.load(out).info["epochs"] == 3


def test_a_relative_data_path_works_from_another_folder_and_a_changed_file_is_named(tmp_path, monkeypatch):
    work = tmp_path / "work"
    work.mkdir()
    rng = np.random.default_rng(1)
    np.savetxt(work / "table.csv", rng.normal(size=(300, 2)), delimiter=",", header="a,b", comments="")
    monkeypatch.chdir(work)
    sd.fit("table.csv", epochs=1, out="run", progress=False, num_samples=0)
    monkeypatch.chdir(tmp_path)
    assert sd.evaluate_run(work / "run", n=1000, likelihood_rows=0)["reference"] == 30
    np.savetxt(work / "table.csv", rng.normal(size=(300, 2)), delimiter=",", header="a,b", comments="")
    with pytest.raises(sd.UserError, match=r"table.csv changed since training"):
        sd.evaluate_run(work / "run", n=1000)
    with pytest.raises(sd.UserError, match=r"table.csv changed since training"):
        sd.fit(None, out=work / "run", resume=True, progress=False, num_samples=0)


def test_a_run_on_a_folder_of_parquet_parts_evaluates_and_names_a_changed_part(tmp_path, monkeypatch):
    """A model's own `sample -o parts/` output trains a run and is evaluated; a part written
    again with other rows changes the data, as an edited file does."""
    monkeypatch.setattr(sd.api, "PART_ROWS", 256)
    source = sd.fit("moons", epochs=1, progress=False)
    sd.write_samples(source, f"{tmp_path}/parts/", 5000, seed=0, chunk_size=4096)  # parts: 4,096 + 904
    assert len(list((tmp_path / "parts").glob("part-*.parquet"))) > 1
    sd.fit(str(tmp_path / "parts"), epochs=1, out=tmp_path / "run", progress=False, num_samples=0)
    assert sd.evaluate_run(tmp_path / "run", n=500, likelihood_rows=0)["reference"] == 500
    assert cli(["evaluate", str(tmp_path / "run"), "--samples-file", f"{tmp_path}/parts/",
                "--likelihood-rows", "0", "--quiet"]) == 0  # --samples-file took files only
    sd.write_samples(source, str(tmp_path / "other.parquet"), 904, seed=1)
    (tmp_path / "other.parquet").replace(tmp_path / "parts" / "part-00001.parquet")
    with pytest.raises(sd.UserError, match=r"parts changed since training"):
        sd.evaluate_run(tmp_path / "run", n=500, likelihood_rows=0)


def test_fit_with_a_folder_writes_what_the_command_line_writes(tmp_path):
    out = tmp_path / "run"
    sd.fit("two_gaussians", epochs=1, out=out, progress=False, num_samples=2000, likelihood_rows=0)
    for name in ("metrics.json", "samples.png", "report.html", "split.safetensors", "config.toml"):
        assert (out / name).is_file(), name
    assert json.loads((out / "metrics.json").read_text())["samples"] == 2000


def test_fit_takes_a_step_budget_as_train_does(tmp_path):
    """``sd.fit(..., steps=N)`` is the command line's ``--steps N``: whole epochs, about N steps."""
    model = sd.fit(np.random.default_rng(0).normal(size=(1000, 1)), steps=100, progress=False)
    steps_per_epoch = model.config.train.steps // model.info["epochs"]
    assert abs(model.config.train.steps - 100) < steps_per_epoch
    with pytest.raises(sd.UserError, match="steps sets a new run's budget"):
        sd.fit(None, out=tmp_path / "run", resume=True, steps=100)


def test_training_into_a_folder_reads_its_data_once_and_evaluates_as_evaluate_does(tmp_path, monkeypatch):
    """The evaluation after training read the file again (a million-row CSV: 20 s more) and
    hashed it; it now evaluates the rows it trained on, the same numbers as a later evaluate."""
    from simple_diffusion.data import io

    path = tmp_path / "table.csv"
    np.savetxt(path, np.random.default_rng(2).normal(size=(300, 2)), delimiter=",", header="a,b",
               comments="")
    reads = []
    read_table = io.read_table
    monkeypatch.setattr(io, "read_table", lambda *a, **k: reads.append(a) or read_table(*a, **k))
    sd.fit(str(path), epochs=1, out=tmp_path / "run", progress=False, num_samples=1000, likelihood_rows=0)
    assert len(reads) == 1
    after_training = json.loads((tmp_path / "run" / "metrics.json").read_text())
    again = sd.evaluate_run(tmp_path / "run", n=1000, likelihood_rows=0)
    assert len(reads) == 2  # evaluate alone reads it
    assert again["ratio"] == after_training["ratio"]
    assert again["memorisation"] == after_training["memorisation"]


def test_an_evaluation_draws_ten_samples_per_row_of_the_smaller_of_its_sets(tmp_path):
    """A 20,000-row table holds out 2,000 rows: 20,000 samples judge it as well as 100,000 would
    (the distances' noise is set by the 2,000), in a fifth of the time."""
    assert sd.api.evaluation_size(300) == 10_000  # the floor
    assert sd.api.evaluation_size(10_000) == 100_000  # a built-in target's 100,000 fresh draws
    assert sd.api.evaluation_size(900_000, 100_000) == 100_000
    x = np.random.default_rng(3).normal(size=(20_000, 2))
    sd.fit(x, epochs=1, out=tmp_path / "run", progress=False, likelihood_rows=0,
           config={"sample": {"num_steps": 10}})  # how many samples, not how good
    assert json.loads((tmp_path / "run" / "metrics.json").read_text())["samples"] == 20_000


def _table(n: int = 300) -> pd.DataFrame:
    rng = np.random.default_rng(0)
    kind = rng.choice(["a", "b"], n)
    return pd.DataFrame({"kind": kind, "mass": rng.normal(size=n) + 3 * (kind == "b")})


def test_a_model_fitted_in_python_saves_as_a_run_folder_every_command_reads(tmp_path, capsys):
    """model.save writes the folder fit(out=...) would (a DataFrame's rows included, so that
    evaluate finds its held-out rows): it loads to the same model, the commands sample and
    evaluate it, a distilled student goes with it, and the losses are those of its training."""
    model = sd.fit(_table(), epochs=3, progress=False)
    sd.distill(model, pairs=8192, train_steps=4, progress=False)
    folder = tmp_path / "saved"
    model.save(folder)
    loaded = sd.load(folder)
    pd.testing.assert_frame_equal(loaded.sample(200, seed=1), model.sample(200, seed=1))
    pd.testing.assert_frame_equal(loaded.sample(50, seed=1, sampler="distilled"),
                                  model.sample(50, seed=1, sampler="distilled"))
    assert len(pd.read_csv(folder / "losses.csv")) == 3 and (folder / "loss.png").stat().st_size > 1000
    assert 'saved_by = "DiffusionModel.save"' in (folder / "config.toml").read_text()
    assert cli(["evaluate", str(folder), "-n", "300", "--likelihood-rows", "0", "--quiet"]) == 0
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["reference"] == 30  # the held-out tenth of 300 rows
    assert cli(["sample", str(folder), "-n", "5", "-o", str(tmp_path / "s.csv"), "--quiet"]) == 0
    assert list(pd.read_csv(tmp_path / "s.csv").columns) == ["kind", "mass"]
    capsys.readouterr()


def test_distilling_a_model_of_a_run_folder_gives_the_folder_its_student(tmp_path, capsys):
    """fit(out=...) then distill: the folder's commands sample with the student, as after the
    `distill` command; a loaded model whose weights were changed since leaves the folder's
    student as it was (its teacher is no longer the folder's model)."""
    model = sd.fit(_table(), epochs=2, out=tmp_path / "run", progress=False, likelihood_rows=0,
                   num_samples=100)
    sd.distill(model, pairs=8192, train_steps=4, progress=False)
    student = tmp_path / "run" / "student.safetensors"
    assert cli(["sample", str(tmp_path / "run"), "-n", "5", "-o", str(tmp_path / "s.csv"),
                "--sampler", "distilled", "--quiet"]) == 0
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "s.csv"),
                                  model.sample(5, sampler="distilled", seed=0).reset_index(drop=True),
                                  check_exact=False, atol=1e-6)
    written = student.read_bytes()
    changed = sd.load(tmp_path / "run")
    with torch.no_grad():
        next(changed.net.parameters()).add_(0.1)
    sd.distill(changed, pairs=8192, train_steps=4, seed=1, progress=False)
    assert student.read_bytes() == written
    capsys.readouterr()


def test_save_replaces_only_a_run_and_a_loaded_model_keeps_its_folders_rows(tmp_path, capsys):
    """A user's folder is refused, a run replaced only with overwrite (no advice to resume what
    was not trained there); a loaded model saved over its own folder or elsewhere keeps the
    rows it trained on, so the copy still evaluates."""
    model = sd.fit(_table(), epochs=2, progress=False)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep")
    with pytest.raises(sd.UserError, match="is not empty and is not a simple-diffusion run folder"):
        model.save(mine)
    assert (mine / "notes.txt").read_text() == "keep"
    run = tmp_path / "run"
    model.save(run)
    with pytest.raises(sd.UserError, match=r"holds a run; pass overwrite=True to replace it$"):
        model.save(run)
    split = (run / "split.safetensors").read_bytes()
    loaded = sd.load(run)
    loaded.save(run, overwrite=True)
    loaded.save(tmp_path / "copy")
    fitted = sd.fit(_table(), epochs=2, progress=False, out=tmp_path / "fitted", num_samples=0)
    assert fitted.split is None  # its folder holds its rows, and save takes them from there
    fitted.save(tmp_path / "fitted copy")
    fitted_split = (tmp_path / "fitted" / "split.safetensors").read_bytes()
    for folder, rows in ((run, split), (tmp_path / "copy", split), (tmp_path / "fitted copy", fitted_split)):
        assert (folder / "split.safetensors").read_bytes() == rows and (folder / "losses.csv").exists()
    assert cli(["evaluate", str(tmp_path / "copy"), "-n", "100", "--likelihood-rows", "0", "--quiet"]) == 0
    capsys.readouterr()


def test_in_a_torchrun_job_rank_0_alone_saves(tmp_path, monkeypatch):
    """Every process of a job holds the model; the others writing too would race for the folder."""
    model = sd.fit(_table(), epochs=1, progress=False)
    monkeypatch.setenv("RANK", "1")
    monkeypatch.setenv("WORLD_SIZE", "2")
    model.save(tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_an_unpickled_model_saves_without_rows_and_evaluate_and_resume_say_why(tmp_path, capsys):
    """A pickle carries no training rows: its saved folder samples, and evaluate (no held-out
    rows) and --resume (no training state) each refuse in one line that says what to do."""
    import pickle

    model = pickle.loads(pickle.dumps(sd.fit(_table(), epochs=2, progress=False)))
    assert model.split is None
    model.save(tmp_path / "run")
    assert sd.load(tmp_path / "run").sample(3, seed=0).shape == (3, 2)
    assert cli(["evaluate", str(tmp_path / "run"), "--quiet"]) == 1
    assert "no longer held the rows it trained on (an unpickled one)" in capsys.readouterr().err
    assert cli(["train", "--resume", str(tmp_path / "run")]) == 1
    assert capsys.readouterr().err.strip() == (f"error: {tmp_path / 'run'} was saved by DiffusionModel.save, "
                                               "which keeps the model, not its training's state: train a "
                                               "new run to train longer")
