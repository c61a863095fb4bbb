"""Sweeps: a grid of settings times seeds as independent run folders, with a summary."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

import simple_diffusion as sd
from simple_diffusion.sweeps import by_setting, expand
from tests.helpers import cli


def test_the_grid_is_every_combination_with_every_seed_named_by_its_settings():
    combos = expand({"train.lr": [1e-3, 4e-3], "model.hidden": [[32, 32]]}, seeds=[0, 7])
    assert [name for name, _ in combos] == [
        "lr=0.001_hidden=32x32_seed=0", "lr=0.001_hidden=32x32_seed=7",
        "lr=0.004_hidden=32x32_seed=0", "lr=0.004_hidden=32x32_seed=7"]
    assert combos[3][1] == {"train.lr": 4e-3, "model.hidden": [32, 32], "train.seed": 7}
    names = expand({"data.condition": [[], ["kind"], ["kind", "x"]]}, seeds=[0])  # were "=_", "=kindxx"
    assert [name for name, _ in names] == ["condition=none_seed=0", "condition=kind_seed=0",
                                           "condition=kind+x_seed=0"]
    with pytest.raises(sd.UserError, match=r"section\.key"):
        expand({"lr": [1e-3]}, seeds=[0])


def weights(run) -> torch.Tensor:
    return torch.cat([p.detach().flatten() for p in sd.load(run).net.parameters()])


@pytest.mark.slow  # four runs evaluated in two worker processes; the next test runs workers too
def test_a_sweep_in_two_workers_trains_the_runs_train_would(tmp_path, capfd):
    """Each run is the run `train` makes with its settings (same weights, bit for bit), whatever
    the worker it ran in; the summary has one row per run and the mean over seeds."""
    config = tmp_path / "short.toml"
    config.write_text("[train]\nsteps = 40\n")
    out = tmp_path / "sweep"
    assert cli(["sweep", str(out), "--data", "two_gaussians", "--set", "train.lr=1e-3,4e-3",
                "--seeds", "0,1", "--jobs", "2", "--config", str(config), "-n", "500",
                "--likelihood-rows", "0", "--quiet"]) == 0
    captured = capfd.readouterr()
    assert "over seeds:" in captured.out and "wrote" in captured.err
    summary = pd.read_csv(out / "summary.csv")
    assert sorted(summary.run) == ["lr=0.001_seed=0", "lr=0.001_seed=1", "lr=0.004_seed=0",
                                   "lr=0.004_seed=1"]
    assert summary.ratio.notna().all() and (summary.ratio > 0).all()
    # The default learning rate is 4e-3: this lone run has the settings of the sweep's last run.
    assert cli(["train", str(tmp_path / "alone"), "--data", "two_gaussians", "--config", str(config),
                "--seed", "1", "-n", "0", "--quiet"]) == 0
    assert "lr = 0.004" in (out / "lr=0.004_seed=1" / "config.toml").read_text()
    assert torch.equal(weights(out / "lr=0.004_seed=1"), weights(tmp_path / "alone"))
    averaged = by_setting(summary)
    expected = summary[summary["train.lr"] == 1e-3].ratio.mean()
    assert np.isclose(averaged.loc["0.001", ("ratio", "mean")], expected)


def test_runs_that_exist_fail_alone_and_overwrite_replaces_them(tmp_path):
    out = tmp_path / "sweep"
    kwargs = {"grid": {"train.steps": [10, 20]}, "num_samples": 0, "progress": False}
    first = sd.sweep("two_gaussians", out, **kwargs)
    assert "error" not in first
    second = sd.sweep("two_gaussians", out, **kwargs)
    assert second.error.str.contains("pass overwrite=True").all()
    # From the command line, the advice names the sweep's option, also from worker processes.
    assert cli(["sweep", str(out), "--data", "two_gaussians", "--set", "train.steps=10,20", "-n", "0",
                "--jobs", "2", "--quiet"]) == 0
    assert pd.read_csv(out / "summary.csv").error.str.contains("pass --overwrite").all()
    third = sd.sweep("two_gaussians", out, overwrite=True, **kwargs)
    assert "error" not in third and len(third) == 2


def test_a_misspelt_setting_is_refused_before_any_run(tmp_path, capfd):
    assert cli(["sweep", str(tmp_path / "s"), "--data", "two_gaussians", "--set", "train.lrr=1e-3"]) == 1
    assert "error: unknown setting train.lrr" in capfd.readouterr().err
    assert not any((tmp_path / "s").glob("*/config.toml"))
