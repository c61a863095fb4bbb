"""The Gaussian part of the denoiser (``model.gaussian_part``): exact for a Gaussian, subtracted
from the training targets, added back when denoising, and kept by the run folder."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import simple_diffusion as sd
from simple_diffusion.diffusion import prediction, schedules
from simple_diffusion.diffusion.gaussian import GaussianPart
from simple_diffusion.diffusion.objective import Objective
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


def test_the_training_target_is_what_the_gaussian_leaves():
    # On Gaussian rows the whole part predicts E[eps | x_t], so what is left to learn has no
    # linear dependence on x_t; without it the noise is well predicted by x_t.
    noise = torch.randn(40_000, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    rows = MEAN + noise @ torch.linalg.cholesky(COVARIANCE).T
    schedule = schedules.cosine(1000)

    def slope(gaussian):
        objective = Objective(schedule, "epsilon", gaussian=gaussian)
        x_t, _, target = objective.draw(rows, torch.Generator().manual_seed(2))
        design = torch.cat([x_t, torch.ones(len(x_t), 1, dtype=x_t.dtype)], 1)
        return torch.linalg.lstsq(design, target).solution[:3].abs().max()

    # Each coefficient's standard error is about 1 / sqrt(40,000) = 0.005.
    assert slope(GaussianPart.fit(rows, 1.0)) < 0.03 < 0.3 < slope(None)


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


def test_the_run_folder_keeps_the_gaussian_part(tmp_path):
    config = {"model": {"gaussian_part": 0.9}}
    model = sd.fit("two_gaussians", config=config, epochs=2, out=tmp_path / "run", progress=False,
                   num_samples=0)
    loaded = sd.load(tmp_path / "run")
    assert loaded.gaussian is not None and loaded.gaussian.share == 0.9
    assert torch.equal(loaded.sample(500, seed=4), model.sample(500, seed=4))
    # Without its part the same network samples something else: the part is in use.
    loaded.gaussian = None
    assert not torch.equal(loaded.sample(500, seed=4), model.sample(500, seed=4))


def test_a_share_outside_zero_to_one_is_refused():
    with pytest.raises(UserError, match=r"model.gaussian_part must lie in \[0, 1\]"):
        sd.fit("two_gaussians", config={"model": {"gaussian_part": 1.5}}, epochs=1, progress=False)
