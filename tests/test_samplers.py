"""Every sampler, driven by the exact denoiser of a Gaussian, must return that Gaussian."""

import pytest
import torch

from simple_diffusion import choices
from simple_diffusion.diffusion import samplers, schedules

# Near-standardised data, as the models see it; one narrow and one wide column.
MEAN = torch.tensor([0.3, -0.5], dtype=torch.float64)
STD = torch.tensor([0.3, 1.5], dtype=torch.float64)


def exact_denoiser(x, sigma):
    """E[x_0 | x_0 + sigma * eps = x] for x_0 ~ N(MEAN, diag(STD^2))."""
    return MEAN + STD**2 / (STD**2 + sigma**2) * (x - MEAN)


def run(name, sigmas, n=40_000, **options):
    generator = torch.Generator().manual_seed(0)
    noise = lambda like: torch.randn(like.shape, generator=generator, dtype=like.dtype)  # noqa: E731
    x = noise(torch.empty(n, 2, dtype=torch.float64)) * torch.sqrt(1 + sigmas[0] ** 2)
    return samplers.SAMPLERS[name](exact_denoiser, x, sigmas, noise_sampler=noise, **options)


CASES = [
    # Ancestral steps plug in E[x_0 | x_t] and so miss Var[x_0 | x_t]: exact only as steps shrink.
    ("ancestral", {"variance": "posterior"}, 0, "logsnr"),
    ("ancestral", {"variance": "beta"}, 0, "logsnr"),
    ("ddim", {}, 150, "logsnr"),
    ("dpmpp_2m", {}, 40, "logsnr"),
    ("dpmpp_3m", {}, 24, "logsnr"),
    ("dpmpp_2m_sde", {}, 40, "logsnr"),
    ("heun", {}, 40, "karras"),
]


@pytest.mark.parametrize(("name", "options", "steps", "spacing"), CASES)
def test_sampler_recovers_a_gaussian(name, options, steps, spacing):
    x = run(name, schedules.cosine(1000).sampling_sigmas(steps, spacing), **options)
    assert torch.allclose(x.mean(0), MEAN, atol=0.03)
    assert torch.allclose(x.std(0), STD, rtol=0.025)


def test_every_sampler_is_covered_and_declared_once():
    assert {case[0] for case in CASES} == set(samplers.SAMPLERS) == set(choices.SAMPLERS) - {"distilled"}


def from_start(name: str, noise_seed: int, n: int = 100) -> torch.Tensor:
    """The same starting point every time; the noise drawn along the way from ``noise_seed``."""
    sigmas = schedules.cosine(1000).sampling_sigmas(10)
    start = torch.randn(n, 2, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    generator = torch.Generator().manual_seed(noise_seed)
    noise = lambda like: torch.randn(like.shape, generator=generator, dtype=like.dtype)  # noqa: E731
    return samplers.SAMPLERS[name](exact_denoiser, start * sigmas[0], sigmas, noise_sampler=noise)


@pytest.mark.parametrize("name", ["ddim", "dpmpp_2m", "dpmpp_3m", "heun"])
def test_deterministic_samplers_ignore_the_noise_source(name):
    """Different noise along the way must not move the result: a sampler that wrongly adds
    noise fails (with the same noise both times, it would not)."""
    assert torch.equal(from_start(name, noise_seed=1), from_start(name, noise_seed=2))


@pytest.mark.parametrize("name", ["ancestral", "dpmpp_2m_sde"])
def test_stochastic_samplers_use_the_noise_source(name):
    assert not torch.allclose(from_start(name, noise_seed=1), from_start(name, noise_seed=2))
    assert torch.equal(from_start(name, noise_seed=1), from_start(name, noise_seed=1))


@pytest.mark.parametrize(("name", "order"), [("ddim", 1), ("dpmpp_2m", 2), ("dpmpp_3m", 3), ("heun", 2)])
def test_error_shrinks_with_the_solvers_order(name, order):
    """Against the exact probability-flow map of a Gaussian:
    x_0 = MEAN + STD / sqrt(STD^2 + s^2) (x - MEAN)."""
    schedule = schedules.cosine(1000)
    x = torch.randn(1000, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(1)) * 5

    def error(steps):
        sigmas = schedule.sampling_sigmas(steps)
        exact = MEAN + STD / (STD**2 + sigmas[0] ** 2).sqrt() * (x - MEAN)
        return float((samplers.SAMPLERS[name](exact_denoiser, x, sigmas) - exact).abs().max())

    # Doubling the steps divides the error by about 2**order.
    assert error(64) < error(32) / (2**order * 0.8)


def test_ancestral_step_is_the_seeds_formula():
    """One step in the VE form equals the seed's
    x_{t-1} = (x_t - beta / sqrt(1 - abar_t) eps) / sqrt(1 - beta) + sqrt(beta) z."""
    schedule = schedules.constant(0.02, 250)
    t, beta = 120, 0.02
    abar = schedule.alphas_cumprod[t]
    x_vp = torch.linspace(-3, 3, 7, dtype=torch.float64).unsqueeze(1)
    eps_hat = torch.sin(x_vp)  # any noise prediction
    z = torch.cos(x_vp)
    seed = (x_vp - beta / (1 - abar).sqrt() * eps_hat) / (1 - beta) ** 0.5 + beta**0.5 * z

    sigma, sigma_next = schedule.sigmas[t], schedule.sigmas[t - 1]
    x_ve = x_vp / abar.sqrt()

    def denoise(x, s):  # the epsilon-model's x_0 in VE form
        return x - s * eps_hat

    out = samplers.ancestral(denoise, x_ve, torch.stack([sigma, sigma_next]), noise_sampler=lambda _: z)
    out_vp = out * schedule.alphas_cumprod[t - 1].sqrt()
    assert torch.allclose(out_vp, seed, atol=1e-12)


def test_sde_solver_without_noise_is_the_ode_solver():
    sigmas = schedules.cosine(1000).sampling_sigmas(12)
    assert torch.allclose(run("dpmpp_2m_sde", sigmas, n=100, eta=0.0), run("dpmpp_2m", sigmas, n=100))


def test_sde_solver_first_step_is_the_posterior_ancestral_step():
    """Before it has a history to extrapolate from, the SDE solver takes DDPM's posterior step."""
    sigmas = torch.tensor([3.0, 1.0], dtype=torch.float64)  # one step, to a level above 0
    sde = run("dpmpp_2m_sde", sigmas)
    ancestral = run("ancestral", sigmas, variance="posterior")
    assert torch.allclose(sde, ancestral, atol=1e-12)


def test_a_runaway_network_is_kept_within_the_datas_box():
    import simple_diffusion as sd

    # (A 2-epoch model still meets the box at high noise; 10 epochs do not.)
    model = sd.fit("two_gaussians", epochs=10, progress=False, num_samples=0)
    low, high = model.denoised_bounds
    # The training rows' encoded range (about -2.9 to 2.8 standard deviations), widened by its
    # width each side.
    assert float(low) < -5 and float(high) > 5 and float(high - low) < 20
    unguarded = sd.DiffusionModel(model.net, model.schedule, model.encoder, model.config, model.columns,
                                  {k: v for k, v in model.info.items() if k != "encoded_min"},
                                  gaussian=model.gaussian)
    assert unguarded.denoised_bounds is None
    # A healthy model's samples never meet the box: the guard changes nothing there.
    assert torch.equal(unguarded.sample(2000, seed=1), model.sample(2000, seed=1))

    def encoded(m):
        return torch.cat([chunk for _, chunk in m.sample_chunks(2000, seed=1, preprocessed=True)])

    with torch.no_grad():  # a network that answers with steps a thousand times too large
        model.net.layers[-1].weight.mul_(1e3)
        model.net.layers[-1].bias.mul_(1e3)
    assert float(encoded(model).abs().max()) <= max(-float(low), float(high)) * (1 + 1e-6)  # float32
    assert not bool(encoded(unguarded).abs().le(1e3).all())  # runs away (or overflows to nan)
