"""Distillation: the few-step student follows its teacher's deterministic paths, samples
deterministically, travels with the run folder, and is refused where it does not apply."""

from __future__ import annotations

import functools
import json

import numpy as np
import pytest
import torch
from helpers import cli

import simple_diffusion as sd
from simple_diffusion import UserError, precision
from simple_diffusion.diffusion import samplers
from simple_diffusion.diffusion.schedules import ve_scale
from simple_diffusion.runs import RunFolder
from simple_diffusion.training import distill
from simple_diffusion.training.distributed import resolve_device

MEAN, STD = 3.0, 2.0
QUICK = {"train": {"steps": 3000, "batch_size": 128}}


@pytest.fixture(scope="module")
def gaussian_model():
    """A teacher of N(3, 2^2) and its 3-step student."""
    rows = np.random.default_rng(0).normal(MEAN, STD, size=(4000, 1))
    model = sd.fit(rows, config=QUICK, progress=False)
    return sd.distill(model, num_steps=3, pairs=16_384, train_steps=1500, progress=False)


def _paths(model, start, sigmas, net, prediction_type):
    return samplers.ddim(functools.partial(model._denoise_with, net, prediction_type), start, sigmas)


def test_student_follows_the_teachers_paths(gaussian_model):
    model, student = gaussian_model, gaussian_model.student
    generator = torch.Generator().manual_seed(7)
    start = torch.randn(8192, 1, generator=generator) * ve_scale(student.sigmas[0])
    teacher_sigmas = model.schedule.sampling_sigmas(distill.TEACHER_STEPS, "logsnr", 10.0,
                                                    model.config.sample.sigma_min)
    with torch.inference_mode():
        teacher = samplers.dpmpp_3m(model.denoise, start, teacher_sigmas.float())
        # The teacher in 3 DDIM steps, then the student.
        before = _paths(model, start, student.sigmas, model.net, model.config.model.prediction_type)
        after = _paths(model, start, student.sigmas, student.net, student.prediction_type)
    error_before = float((before - teacher).square().mean().sqrt())
    error_after = float((after - teacher).square().mean().sqrt())
    # The teacher's own 3 DDIM steps miss its 20-step paths; the student learnt them.
    assert error_after < 0.02 < 0.3 * error_before


def test_student_samples_the_gaussian(gaussian_model):
    n = 20_000
    x = gaussian_model.sample(n, sampler="distilled", seed=0).numpy()[:, 0]
    # Standard errors of the mean and of the standard deviation at n draws, plus the teacher's
    # own error of a few hundredths after 3,000 steps.
    assert abs(x.mean() - MEAN) < 5 * STD / np.sqrt(n) + 0.05
    assert abs(x.std() - STD) < 5 * STD / np.sqrt(2 * n) + 0.05


def test_distilled_sampling_is_deterministic_and_takes_its_steps(gaussian_model):
    model = gaussian_model
    calls = []
    hook = model.student.net.register_forward_hook(lambda *args: calls.append(1))
    try:
        first = model.sample(5000, sampler="distilled", seed=3)
    finally:
        hook.remove()
    assert len(calls) == model.student.network_evaluations == 3  # one chunk, three evaluations
    again = model.sample(5000, sampler="distilled", seed=3, chunk_size=1000)
    if model.device.type == "cpu":  # chunks draw the same noise: the same rows
        assert torch.equal(first, again)
    else:  # a GPU's product kernels follow the batch's size: the same rows to float rounding
        torch.testing.assert_close(first, again, rtol=0, atol=1e-4)
    assert not torch.equal(first, model.sample(5000, sampler="distilled", seed=4))
    assert model.noise_levels(sampler="distilled").tolist() == pytest.approx([10.0, 1.0, 0.1, 0.0])


def test_distilled_sampler_refuses_given_cells_and_a_joint_student_of_an_inpainting_model(gaussian_model):
    with pytest.raises(UserError, match="draws the whole distribution only; for other given cells"):
        gaussian_model.sample(10, sampler="distilled", given={"x1": 1.0})
    theta = np.random.default_rng(0).normal(size=(500, 2))
    inpainting = sd.fit(theta, config={"train": {"inpainting": "learnt"}}, epochs=1, progress=False)
    sd.distill(inpainting, pairs=8192, train_steps=5, progress=False)
    assert not inpainting.student.conditional  # learnt from the joint alone
    assert inpainting.sample(10, sampler="distilled").shape == (10, 2)
    with pytest.raises(UserError, match="draws the whole distribution only"):
        inpainting.sample(10, sampler="distilled", given={"x1": 1.0})


@pytest.fixture(scope="module")
def distilled_run(tmp_path_factory):
    run = tmp_path_factory.mktemp("distill") / "run"
    assert cli(["train", str(run), "--data", "moons", "--epochs", "3", "-n", "0", "--quiet"]) == 0
    return run


def test_cli_distills_samples_and_evaluates(distilled_run, tmp_path, capsys):
    run = distilled_run
    assert cli(["sample", str(run), "-n", "10", "-o", str(tmp_path / "x.npy"),
                "--sampler", "distilled"]) == 1
    assert "simple-diffusion distill RUN" in capsys.readouterr().err
    assert cli(["distill", str(run), "--pairs", "8192", "--train-steps", "50", "--quiet"]) == 0
    suggested = capsys.readouterr().err
    assert f"simple-diffusion sample {run} -n 100000 -o samples.npy --sampler distilled" in suggested
    assert (run / "student.safetensors").exists()
    assert cli(["sample", str(run), "-n", "3000", "-o", str(tmp_path / "x.npy"),
                "--sampler", "distilled", "--seed", "5", "--quiet"]) == 0
    assert "(distilled, 1 step)" in capsys.readouterr().err
    written = np.load(tmp_path / "x.npy")
    loaded = sd.load(run).to(resolve_device("auto"))  # where `sample` ran
    assert torch.equal(torch.from_numpy(written), loaded.sample(3000, sampler="distilled", seed=5))
    reference = tmp_path / "reference.npy"  # held-out moons: the report is tested, not the metric
    np.save(reference, sd.training_data("moons").val)
    assert cli(["evaluate", str(run), "-n", "1000", "--likelihood-rows", "0",
                "--against", str(reference)]) == 0
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["distilled"]["network_evaluations"] == 1 and metrics["distilled"]["ratio"] > 0
    assert "distilled sampler (1 network evaluation)" in capsys.readouterr().out
    assert 'id="distilled"' in (run / "report.html").read_text()


def test_a_student_of_older_weights_is_refused(distilled_run, tmp_path, capsys):
    if not (distilled_run / "student.safetensors").exists():
        assert cli(["distill", str(distilled_run), "--pairs", "8192", "--train-steps", "5", "--quiet"]) == 0
    folder = RunFolder(distilled_run)
    model = folder.load_model()
    with torch.no_grad():
        next(model.net.parameters()).add_(0.01)
    folder.save_model(model)  # as a resumed training would
    assert cli(["sample", str(distilled_run), "-n", "10", "-o", str(tmp_path / "x.npy"),
                "--sampler", "distilled"]) == 1
    assert "have since changed" in capsys.readouterr().err


def test_precision_choice_follows_sampler_and_capability():
    assert precision.uses_bfloat16("bfloat16", "dpmpp_2m_sde")
    assert not precision.uses_bfloat16("float32", "distilled")
    assert not precision.uses_bfloat16("auto", "dpmpp_2m_sde")  # measured: the solvers' ratios move
    assert precision.uses_bfloat16("auto", "distilled") == precision.fast_bfloat16()
    assert isinstance(precision.fast_bfloat16(), bool)


def test_bfloat16_student_keeps_its_samples(gaussian_model):
    model = gaussian_model
    exact = model.sample(4096, sampler="distilled", seed=2, precision="float32", preprocessed=True)
    rounded = model.sample(4096, sampler="distilled", seed=2, precision="bfloat16", preprocessed=True)
    assert not torch.equal(exact, rounded)  # the hidden layers ran in bfloat16
    # ... but the output layer did not: the samples are not rounded to bfloat16's 8 bits, and
    # they stay within a few bfloat16 roundings (0.4%) of float32's on unit-scale data.
    assert (rounded.float() == rounded.bfloat16().float()).double().mean() < 0.2
    assert float((rounded - exact).abs().mean()) < 0.01
    auto = model.sample(4096, sampler="distilled", seed=2, preprocessed=True)
    assert torch.equal(auto, rounded if precision.fast_bfloat16() else exact)
    solver = model.sample(512, seed=2, num_steps=5)
    assert torch.equal(solver, model.sample(512, seed=2, num_steps=5, precision="float32"))


def test_the_suggested_sample_command_works_as_printed_for_a_table_with_labels(tmp_path, capsys, monkeypatch):
    import re
    import shlex

    import pandas as pd

    rng = np.random.default_rng(0)
    kind = rng.choice(["a", "b"], 400)
    pd.DataFrame({"kind": kind, "value": (kind == "a") + rng.normal(size=400)}).to_csv(
        tmp_path / "t.csv", index=False)
    run = tmp_path / "run"
    assert cli(["train", str(run), "--data", str(tmp_path / "t.csv"), "--steps", "200", "-n", "0",
                "--quiet"]) == 0
    assert cli(["distill", str(run), "--pairs", "8192", "--train-steps", "20", "--quiet"]) == 0
    suggested = re.search(r"`simple-diffusion (sample [^`]*)`", capsys.readouterr().err).group(1)
    monkeypatch.chdir(tmp_path)
    assert "samples.parquet" in suggested and cli([*shlex.split(suggested), "--quiet"]) == 0
    assert set(pd.read_parquet(tmp_path / "samples.parquet")["kind"]) <= {"a", "b"}
