import math

import pytest
import torch

from simple_diffusion import build, choices, config
from simple_diffusion.diffusion import schedules

ALL = {
    "constant": schedules.constant(0.02, 250),
    "linear": schedules.linear(1e-4, 0.02, 1000),
    "cosine": schedules.cosine(1000),
}


@pytest.mark.parametrize("name", ALL)
def test_closed_form_matches_step_by_step_noising(name):
    """Iterating x_t = sqrt(1 - beta_t) x_{t-1} + sqrt(beta_t) z gives the closed form's mean and variance."""
    s = ALL[name]
    mean, var = torch.tensor(1.0, dtype=torch.float64), torch.tensor(0.0, dtype=torch.float64)
    for t in range(1, s.num_timesteps + 1):
        beta = s.betas[t - 1]
        mean, var = (1 - beta).sqrt() * mean, (1 - beta) * var + beta
        assert math.isclose(mean, s.alphas_cumprod[t].sqrt(), rel_tol=1e-9)
        assert math.isclose(var, 1 - s.alphas_cumprod[t], rel_tol=1e-9, abs_tol=1e-12)


@pytest.mark.parametrize("name", ALL)
def test_add_noise_has_the_closed_form_moments(name):
    s = ALL[name]
    t = torch.full((200_000,), s.num_timesteps // 3)
    x0 = torch.full((200_000, 1), 2.0, dtype=torch.float64)
    noise = torch.randn(200_000, 1, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    x_t = s.add_noise(x0, noise, t)
    alpha_bar = s.alphas_cumprod[t[0]]
    assert abs(x_t.mean() - 2 * alpha_bar.sqrt()) < 0.01
    assert abs(x_t.var() - (1 - alpha_bar)) < 0.01


@pytest.mark.parametrize("t", [1, 2, 10, 500, 999, 1000])
def test_linear_schedule_is_ho_et_al_2020(t):
    """beta_t = 1e-4 + (0.02 - 1e-4) (t - 1) / 999 and alpha_bar_t = prod_{s <= t} (1 - beta_s),
    computed here in plain Python, independently of the module."""
    betas = [1e-4 + (0.02 - 1e-4) * (s - 1) / 999 for s in range(1, 1001)]
    assert math.isclose(float(ALL["linear"].betas[t - 1]), betas[t - 1], rel_tol=1e-12)
    assert math.isclose(float(ALL["linear"].alphas_cumprod[t]), math.prod(1 - b for b in betas[:t]),
                        rel_tol=1e-10)


@pytest.mark.parametrize("t", [1, 10, 250, 500, 900, 990])
def test_cosine_schedule_is_nichol_and_dhariwal_2021(t):
    """alpha_bar_t = f(t) / f(0) with f(t) = cos^2((t / T + s) / (1 + s) * pi / 2), s = 0.008
    (below the last steps, where their beta cap of 0.999 takes over)."""
    def f(step):
        return math.cos((step / 1000 + 0.008) / 1.008 * math.pi / 2) ** 2

    assert math.isclose(float(ALL["cosine"].alphas_cumprod[t]), f(t) / f(0), rel_tol=1e-9)
    assert math.isclose(float(ALL["cosine"].betas[t - 1]), 1 - f(t) / f(t - 1), rel_tol=1e-9)


def test_every_timestep_walk_keeps_to_the_noise_range():
    """``num_steps = 0`` used to drop the sigma range and start from the schedule's top."""
    s = ALL["cosine"]
    levels = s.sampling_sigmas(0, sigma_max=10.0, sigma_min=0.02)
    assert levels[-1] == 0 and float(levels[0]) <= 10.0 and float(levels[-2]) >= 0.02
    expected = int(((s.sigmas[1:] <= 10.0) & (s.sigmas[1:] >= 0.02)).sum())
    assert len(levels) == expected + 1 and expected < s.num_timesteps


def test_seed_schedule_is_the_assignments():
    s = ALL["constant"]
    assert torch.allclose(s.alphas_cumprod, 0.98 ** torch.arange(251, dtype=torch.float64))
    assert torch.allclose(s.betas, torch.full((250,), 0.02, dtype=torch.float64))


@pytest.mark.parametrize("name", ALL)
def test_sigma_and_timestep_interpolation_are_inverse(name):
    s = ALL[name]
    t = torch.linspace(1, s.num_timesteps, 997, dtype=torch.float64)
    assert torch.allclose(s.sigma_to_t(s.t_to_sigma(t)), t, atol=1e-6)
    whole = torch.arange(1, s.num_timesteps + 1)
    assert torch.allclose(s.sigma_to_t(s.sigmas[whole]), whole.double(), atol=1e-9)


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("spacing", choices.SPACINGS)
def test_sampling_sigmas_decrease_to_zero(name, spacing):
    s = ALL[name]
    sigmas = s.sampling_sigmas(20, spacing)
    assert len(sigmas) == 21 and sigmas[-1] == 0
    assert bool((sigmas[1:] < sigmas[:-1]).all())
    assert math.isclose(sigmas[-2], s.sigma_min, rel_tol=1e-6)
    full = s.sampling_sigmas(0)
    assert len(full) == s.num_timesteps + 1 and torch.allclose(full[:-1], s.sigmas[1:].flip(0))


def test_invalid_tables_are_refused():
    with pytest.raises(ValueError):
        schedules.Schedule(torch.tensor([1.0, 0.5, 0.7]))


def test_every_schedule_kind_is_built_and_declared_once():
    assert set(build.SCHEDULES) == set(choices.SCHEDULES) == set(config.CHOICES[("schedule", "kind")])
