"""The Gaussian part of the denoiser (``model.gaussian_part``): exact for a Gaussian, subtracted
from the training targets, added back when denoising, and kept by the run folder."""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import torch

import simple_diffusion as sd
from simple_diffusion.diffusion import gaussian, prediction, schedules
from simple_diffusion.diffusion.gaussian import GaussianPart
from simple_diffusion.diffusion.objective import ColumnCondition, Objective
from simple_diffusion.errors import UserError

MEAN = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
COVARIANCE = torch.tensor([[2.0, 0.8, 0.0], [0.8, 1.0, -0.3], [0.0, -0.3, 0.5]], dtype=torch.float64)


def posterior_mean(x_t: torch.Tensor, alpha: float, sigma_vp: float) -> torch.Tensor:
    """E[x_0 | x_t] of N(MEAN, COVARIANCE) by the textbook formula (a linear solve)."""
    gain = torch.linalg.solve(alpha**2 * COVARIANCE + sigma_vp**2 * torch.eye(3), alpha * COVARIANCE)
    return MEAN + (x_t - alpha * MEAN) @ gain


@pytest.mark.parametrize("prediction_type", ["epsilon", "sample", "v"])
@pytest.mark.parametrize("sigma", [0.01, 1.0, 50.0])
def test_the_whole_part_is_the_exact_denoiser_of_a_gaussian(prediction_type, sigma):
    part = GaussianPart(MEAN, COVARIANCE, share=1.0)
    alpha, sigma_vp = 1 / math.sqrt(1 + sigma**2), sigma / math.sqrt(1 + sigma**2)
    x_t = torch.randn(50, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0)) * 2
    output = part.prediction(prediction_type, x_t, alpha, sigma_vp)
    denoised = prediction.to_sample(prediction_type, output, x_t, alpha, sigma_vp)
    torch.testing.assert_close(denoised, posterior_mean(x_t, alpha, sigma_vp), rtol=1e-7, atol=1e-7)
    # A share of it is that share of the prediction.
    torch.testing.assert_close(GaussianPart(MEAN, COVARIANCE, 0.9).prediction(prediction_type, x_t, alpha,
                                                                              sigma_vp), 0.9 * output)



def conditioned_posterior_mean(x_t, alpha, sigma_vp, shown, values) -> torch.Tensor:
    """E[x_0 | x_t, x_0 = values where shown] for one row, by the textbook formulas: the
    Gaussian conditioned on the shown coordinates (Schur complement), then denoised."""
    h, k = (~shown).nonzero().flatten(), shown.nonzero().flatten()
    gain = COVARIANCE[h][:, k] @ torch.linalg.inv(COVARIANCE[k][:, k])
    mean = MEAN[h] + gain @ (values[k] - MEAN[k])
    covariance = COVARIANCE[h][:, h] - gain @ COVARIANCE[k][:, h]
    solve = torch.linalg.solve(alpha**2 * covariance + sigma_vp**2 * torch.eye(len(h)), alpha * covariance)
    out = values.clone()
    out[h] = mean + (x_t[h] - alpha * mean) @ solve
    return out


@pytest.mark.parametrize("prediction_type", ["epsilon", "sample", "v"])
@pytest.mark.parametrize("sigma", [0.01, 1.0, 50.0])
@pytest.mark.parametrize("solves", ["one group", "groups", "one level"])
def test_the_part_of_a_conditional_network_is_conditioned_on_what_it_is_shown(prediction_type, sigma, solves,
                                                                              monkeypatch):
    # Solved row by row in one group, padded to the largest hidden count, or in groups of
    # similar counts; or, every row at one level (a sampler's step), one system per pattern.
    monkeypatch.setattr(gaussian, "SOLVE_GROUPS_FROM", 1 if solves == "groups" else 10**9)
    part = GaussianPart(MEAN, COVARIANCE, share=1.0)
    generator = torch.Generator().manual_seed(5)
    # Rows show nothing, one coordinate, two, all, each their own, then 34 random masks, so
    # that the solves' groups mix rows of different hidden counts; each row its own level.
    structured = torch.tensor([[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 0, 1], [0, 1, 1], [1, 1, 1]])
    shown = torch.cat([structured.bool(), torch.rand(34, 3, generator=generator) < 0.5])
    rows = len(shown)
    levels = sigma * (0.5 + 1.5 * torch.rand(rows, 1, dtype=torch.float64, generator=generator))
    if solves == "one level":
        levels = levels[0, 0]
    alpha, sigma_vp = 1 / (1 + levels**2).sqrt(), levels / (1 + levels**2).sqrt()
    alpha_of, sigma_of = (torch.broadcast_to(v, (rows, 1)) for v in (alpha, sigma_vp))
    x_t = torch.randn(rows, 3, dtype=torch.float64, generator=generator) * 2
    values = torch.randn(rows, 3, dtype=torch.float64, generator=generator) + MEAN
    output = part.prediction(prediction_type, x_t, alpha, sigma_vp, known=(shown, values))
    denoised = prediction.to_sample(prediction_type, output, x_t, alpha, sigma_vp)
    expected = torch.stack([conditioned_posterior_mean(x_t[i], float(alpha_of[i]), float(sigma_of[i]),
                                                       shown[i], values[i]) for i in range(rows)])
    torch.testing.assert_close(denoised, expected, rtol=1e-6, atol=1e-6)
    # Showing nothing is the unconditional part.
    alone = part.prediction(prediction_type, x_t[:1], alpha_of[:1], sigma_of[:1])
    torch.testing.assert_close(output[0], alone[0])


def test_the_training_target_is_what_the_gaussian_leaves():
    # On Gaussian rows the whole part predicts E[eps | x_t], so what is left to learn has no
    # linear dependence on x_t; without it the noise is well predicted by x_t.
    noise = torch.randn(40_000, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    rows = MEAN + noise @ torch.linalg.cholesky(COVARIANCE).T
    schedule = schedules.cosine(1000)

    def slope(gaussian):
        objective = Objective(schedule, "epsilon", gaussian=gaussian)
        x_t, _, target, _ = objective.draw(rows, torch.Generator().manual_seed(2))
        design = torch.cat([x_t, torch.ones(len(x_t), 1, dtype=x_t.dtype)], 1)
        return torch.linalg.lstsq(design, target).solution[:3].abs().max()

    # Each coefficient's standard error is about 1 / sqrt(40,000) = 0.005.
    assert slope(GaussianPart.fit(rows, 1.0)) < 0.03 < 0.3 < slope(None)


def test_a_conditional_target_is_what_the_conditioned_gaussian_leaves():
    # The network is shown x_3 clean: on the other coordinates the whole part predicts
    # E[eps | x_t, x_3], so what is left has no linear dependence on x_t or x_3 either.
    noise = torch.randn(40_000, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    rows = MEAN + noise @ torch.linalg.cholesky(COVARIANCE).T
    objective = Objective(schedules.cosine(1000), "epsilon", condition=ColumnCondition([2], dropout=0.0),
                          gaussian=GaussianPart.fit(rows, 1.0))
    x_t, _, target, shown = objective.draw(rows, torch.Generator().manual_seed(2))
    assert bool(shown.all())
    design = torch.cat([x_t, rows[:, 2:], torch.ones(len(x_t), 1, dtype=x_t.dtype)], 1)
    # Each coefficient's standard error is about 1 / sqrt(40,000) = 0.005; a part that ignored
    # x_3 leaves a slope of about 0.2 on it.
    assert torch.linalg.lstsq(design, target[:, :2]).solution[:4].abs().max() < 0.03


def test_a_model_whose_network_adds_nothing_has_the_gaussians_density():
    rng = np.random.default_rng(3)
    data = MEAN.numpy() + rng.normal(size=(2000, 3)) @ np.linalg.cholesky(COVARIANCE.numpy()).T
    model = sd.fit(data, config={"model": {"gaussian_part": 1.0}}, epochs=1, progress=False,
                   num_samples=0)
    last = model.net.layers[-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.zero_()
    # The part is N(mean, covariance) of the encoded training rows; in the data's units that is
    # the density below, which the probability-flow ODE must reproduce from the denoiser alone.
    rows = torch.as_tensor(data[:200])
    encoded, log_det = model.encoder.forward_and_log_det(rows)
    part = model.gaussian
    truth = torch.distributions.MultivariateNormal(part.mean, part.covariance).log_prob(encoded.double())
    torch.testing.assert_close(model.log_prob(rows), truth + log_det, atol=2e-3, rtol=0)


def _correlated_rows(n: int, rho: float, seed: int) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    covariance = torch.tensor([[1.0, rho, rho], [rho, 1.0, rho], [rho, rho, 1.0]], dtype=torch.float64)
    return torch.randn(n, 3, generator=generator, dtype=torch.float64) @ torch.linalg.cholesky(covariance).T


def test_cells_missing_at_random_leave_the_covariance_of_the_complete_rows():
    rows = _correlated_rows(4000, 0.8, seed=0)
    generator = torch.Generator().manual_seed(1)
    measured = torch.rand(rows.shape, generator=generator) > 0.3
    # The encoder's stand-ins: draws from the column's values, apart from the rest of the row.
    stand_ins = rows[torch.randperm(len(rows), generator=generator)]
    filled = torch.where(measured, rows, stand_ins)
    complete = GaussianPart.fit(rows, 0.5).covariance
    fitted = GaussianPart.fit(filled, 0.5, measured)
    # Sampling error of a covariance entry from the ~50% of rows that measure a pair: ~0.03;
    # EM from the same rows errs much less than that against the complete rows' estimate.
    assert (fitted.covariance - complete).abs().max() < 0.03
    assert (fitted.mean - rows.mean(0)).abs().max() < 0.03
    # The stand-ins as if measured shrink each correlation to about 0.8 x 0.7 x 0.7 = 0.39.
    assert (GaussianPart.fit(filled, 0.5).covariance - complete).abs().max() > 0.3
    assert torch.linalg.eigvalsh(fitted.covariance).min() > 0


WIDE_GAPS_SCRIPT = """
import torch
from simple_diffusion.diffusion.gaussian import GaussianPart
torch.set_num_threads(2)
generator = torch.Generator().manual_seed(0)
rows = torch.randn(400, 160, generator=generator, dtype=torch.float64).cumsum(1)
measured = torch.ones(rows.shape, dtype=torch.bool)
measured[:100, :40] = False
measured[100:150, 120:] = False
part = GaussianPart.fit(rows, 0.5, measured)
print(float(part.covariance.diagonal()[-1]))
"""


def test_the_part_of_a_wide_table_with_gaps_fits_with_two_threads():
    """160 columns, rows missing two different blocks: batched LU (``torch.linalg.inv``) of
    151 columns or more hangs in MKL under two threads (pytorch/pytorch#141358)."""
    done = subprocess.run([sys.executable, "-c", WIDE_GAPS_SCRIPT], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0 and "MKL ERROR" not in done.stderr, done.stderr[-500:]
    # a random walk's last step has the variance of its 160 steps, measured in 350 of 400 rows
    assert abs(float(done.stdout) / 160 - 1) < 0.3


def test_a_table_with_gaps_fits_its_part_to_the_cells_it_has():
    rows = _correlated_rows(1500, 0.9, seed=2).numpy()
    gaps = rows.copy()
    gaps[np.random.default_rng(3).random(rows.shape) < 0.25] = np.nan
    frame = pd.DataFrame(gaps, columns=["a", "b", "c"])
    model = sd.fit(frame, epochs=1, progress=False, num_samples=0)
    encoded = model.encoder.forward(torch.as_tensor(rows))
    numeric = model.encoder.numeric.transformed_dim
    covariance = model.gaussian.covariance[:numeric, :numeric]
    torch.testing.assert_close(covariance, torch.cov(encoded[:, :numeric].T), atol=0.06, rtol=0)


def test_the_run_folder_keeps_the_gaussian_part(tmp_path):
    config = {"model": {"gaussian_part": 0.9}}
    model = sd.fit("two_gaussians", config=config, epochs=2, out=tmp_path / "run", progress=False,
                   num_samples=0)
    loaded = sd.load(tmp_path / "run").to(model.device)  # where a GPU trained it, on the GPU
    assert loaded.gaussian is not None and loaded.gaussian.share == 0.9
    assert torch.equal(loaded.sample(500, seed=4), model.sample(500, seed=4))
    # Without its part the same network samples something else: the part is in use.
    loaded.gaussian = None
    assert not torch.equal(loaded.sample(500, seed=4), model.sample(500, seed=4))


def test_a_run_folder_from_before_the_gaussian_part_loads_without_one(tmp_path):
    model = sd.fit("two_gaussians", config={"model": {"gaussian_part": 0.0}}, epochs=2,
                   out=tmp_path / "run", progress=False, num_samples=0)
    config = tmp_path / "run" / "config.toml"
    config.write_text(config.read_text().replace("gaussian_part = 0.0\n", ""))
    assert "gaussian_part" not in config.read_text()
    loaded = sd.load(tmp_path / "run")  # not read as today's default share
    assert loaded.gaussian is None and loaded.config.model.gaussian_part == 0.0
    assert torch.equal(loaded.sample(200, seed=1), model.sample(200, seed=1))


def test_a_share_outside_zero_to_one_is_refused():
    with pytest.raises(UserError, match=r"model.gaussian_part must lie in \[0, 1\]"):
        sd.fit("two_gaussians", config={"model": {"gaussian_part": 1.5}}, epochs=1, progress=False)


def _conditioned_on_x3_with_nothing_but_the_part(data: np.ndarray, route: str):
    """A model of ``data`` given its third column (a condition, or learnt in-painting) whose
    network adds nothing to its whole Gaussian part: the exact conditional denoiser."""
    config = {"model": {"gaussian_part": 1.0}}
    if route == "condition":
        model = sd.fit(data[:, :2], condition=data[:, 2:], config=config, epochs=1, progress=False,
                       num_samples=0)
    else:
        model = sd.fit(data, config=config | {"train": {"inpainting": "learnt"}}, epochs=1,
                       progress=False, num_samples=0)
    last = model.net.layers[-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.zero_()
    return model


@pytest.mark.parametrize("route", ["condition", "learnt"])
def test_a_conditional_model_whose_network_adds_nothing_samples_the_gaussians_conditional(route):
    rng = np.random.default_rng(6)
    data = MEAN.numpy() + rng.normal(size=(20_000, 3)) @ np.linalg.cholesky(COVARIANCE.numpy()).T
    c, n = float(MEAN[2]) + 1.0, 4000
    model = _conditioned_on_x3_with_nothing_but_the_part(data, route)
    if route == "condition":
        draws = model.sample(n, given=[[c]], seed=0).numpy()[:, :2]
    else:
        draws = model.impute(np.array([[np.nan, np.nan, c]]), draws=n, seed=0).numpy()[:, 0, :2]
    # x1, x2 | x3 = c: mean (1, -2 - 0.6), covariance [[2, 0.8], [0.8, 0.82]] (the unconditional
    # x2 has mean -2: a part that ignores the shown x3 fails). Tolerance: the part's moments
    # from ~18,000 rows and the sampler's steps (0.03), and four standard errors of n draws.
    expected_mean, expected_variance = np.array([1.0, -2.6]), np.array([2.0, 0.82])
    assert np.all(np.abs(draws.mean(0) - expected_mean) < 0.03 + 4 * np.sqrt(expected_variance / n))
    assert np.all(np.abs(draws.var(0) / expected_variance - 1) < 0.1 + 4 * math.sqrt(2 / n))


@pytest.mark.parametrize("route", ["condition", "learnt"])
def test_a_conditional_density_of_a_model_whose_network_adds_nothing_is_the_gaussians(route):
    """``log_prob(x, given=...)`` of the exact conditional denoiser is the closed-form
    conditional density, in the data's units: the encoded part N(m, C) mapped back through the
    (affine) standardisation, conditioned on x3 = c."""
    rng = np.random.default_rng(7)
    data = MEAN.numpy() + rng.normal(size=(4000, 3)) @ np.linalg.cholesky(COVARIANCE.numpy()).T
    model = _conditioned_on_x3_with_nothing_but_the_part(data, route)
    part = model.gaussian

    def to_data(z: torch.Tensor) -> torch.Tensor:
        return model.encoder.numeric.inverse(z[None], written=False)[0]

    offset = to_data(part.mean)
    scales = torch.stack([to_data(part.mean + unit) - offset  # each encoded unit vector's image
                          for unit in torch.eye(3, dtype=torch.float64)])
    mean, covariance = offset, scales.T @ part.covariance @ scales
    c = float(MEAN[2]) + 0.7
    gain = covariance[:2, 2:] / covariance[2, 2]
    conditional = torch.distributions.MultivariateNormal(
        mean[:2] + gain[:, 0] * (c - mean[2]), covariance[:2, :2] - gain @ covariance[2:, :2])
    rows = torch.as_tensor(data[:100, :2])
    given = [[c]] if route == "condition" else {"x3": c}
    torch.testing.assert_close(model.log_prob(rows, given=given), conditional.log_prob(rows),
                               atol=2e-3, rtol=0)
