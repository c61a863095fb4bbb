"""Samplers: flat, stateless functions with one signature.

``sampler(denoise, x, sigmas, *, noise_sampler, progress) -> x_0``

* ``denoise(x, sigma)`` returns the model's estimate of the clean data at noise level ``sigma``;
* ``x`` is the starting noise at ``sigmas[0]``, in the variance-exploding scaling
  x = x_0 + sigma * eps (a VP model's x_t divided by sqrt(alpha_bar_t));
* ``sigmas`` decrease to a final 0 (``Schedule.sampling_sigmas``);
* ``noise_sampler(x)`` returns fresh standard normal noise shaped like ``x``;
* ``callback({"i", "x", "sigma", "denoised"})``, if given, sees every step (for animations).

The number of network evaluations is ``len(sigmas) - 1`` for every sampler except ``heun``
(``2 * (len(sigmas) - 1) - 1``) and ``repaint`` (each step but the last ``resample`` times).

>>> import torch
>>> sigmas = torch.tensor([10.0, 1.0, 0.1, 0.0])
>>> x = ddim(lambda x, s: torch.zeros_like(x), torch.full((4, 1), 10.0), sigmas)
>>> x.abs().max().item()  # a denoiser that always says 0 leads every path to 0
0.0
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from ..progress import bar

Denoise = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
NoiseSampler = Callable[[torch.Tensor], torch.Tensor]
Callback = Callable[[dict], None]


def _steps(sigmas: torch.Tensor, progress: bool, name: str):
    steps = len(sigmas) - 1
    return bar(steps, iterable=range(steps), desc=name, unit="step", enabled=progress, leave=False)


def _observed(denoise: Denoise, x: torch.Tensor, sigma: torch.Tensor, i: int,
              callback: Callback | None) -> torch.Tensor:
    """The denoiser's output at step ``i``, shown to ``callback`` first."""
    denoised = denoise(x, sigma)
    if callback is not None:
        callback({"i": i, "x": x, "sigma": sigma, "denoised": denoised})
    return denoised


def ancestral(
    denoise: Denoise,
    x: torch.Tensor,
    sigmas: torch.Tensor,
    *,
    noise_sampler: NoiseSampler | None = None,
    progress: bool = False,
    callback: Callback | None = None,
    variance: str = "beta",
) -> torch.Tensor:
    """DDPM's Algorithm 2 (Ho et al. 2020): draw x_s from the Gaussian step p(x_s | x_t).

    The mean is the posterior mean of q(x_s | x_t, x_0) at the denoised x_0; the variance is
    beta_t ("beta", the seed's sigma_t^2 = beta_t, generalised to skipped steps as
    1 - alpha_bar_t / alpha_bar_s) or the posterior's ("posterior"). The last step adds no noise.
    """
    noise_sampler = noise_sampler or torch.randn_like
    for i in _steps(sigmas, progress, "ancestral"):
        denoised = _observed(denoise, x, sigmas[i], i, callback)
        x = _ancestral_step(x, denoised, sigmas[i], sigmas[i + 1], variance, noise_sampler)
    return x


def _ancestral_step(x: torch.Tensor, denoised: torch.Tensor, sigma: torch.Tensor,
                    sigma_next: torch.Tensor, variance: str, noise_sampler: NoiseSampler) -> torch.Tensor:
    if sigma_next == 0:
        return denoised
    ratio = (sigma_next / sigma) ** 2
    x = denoised + ratio * (x - denoised)
    if variance == "beta":
        # beta_t / alpha_bar_s, written with VE noise levels.
        var = (sigma**2 - sigma_next**2) * (1 + sigma_next**2) / (1 + sigma**2)
    else:
        var = sigma_next**2 * (1 - ratio)
    return x + var.sqrt() * noise_sampler(x)


def repaint(
    denoise: Denoise,
    x: torch.Tensor,
    sigmas: torch.Tensor,
    *,
    noise_sampler: NoiseSampler | None = None,
    progress: bool = False,
    callback: Callback | None = None,
    resample: int = 5,
    variance: str = "beta",
) -> torch.Tensor:
    """RePaint's resampling (Lugmayr et al. 2022, Algorithm 1) around ancestral steps.

    For in-painting, ``denoise`` puts the known coordinates' values in its output, so each step
    pulls them to their noisy version at the next level; the generated coordinates only see the
    known ones through the network, one step late. Redoing each step ``resample`` times, noising
    x back to the step's level in between (x + sqrt(sigma^2 - sigma_next^2) eps in the VE
    scaling), lets the two agree. ``resample = 1`` is plain replacement.
    """
    noise_sampler = noise_sampler or torch.randn_like
    for i in _steps(sigmas, progress, "repaint"):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        rounds = resample if sigma_next > 0 else 1
        for r in range(rounds):
            denoised = _observed(denoise, x, sigma, i, callback)
            x = _ancestral_step(x, denoised, sigma, sigma_next, variance, noise_sampler)
            if r < rounds - 1:
                x = x + (sigma**2 - sigma_next**2).sqrt() * noise_sampler(x)
    return x


def ddim(
    denoise: Denoise,
    x: torch.Tensor,
    sigmas: torch.Tensor,
    *,
    noise_sampler: NoiseSampler | None = None,
    progress: bool = False,
    callback: Callback | None = None,
) -> torch.Tensor:
    """Deterministic DDIM (Song et al. 2021, eta = 0): keep the predicted noise, move x_0's level.

    In the VE scaling this is an Euler step of the probability-flow ODE dx/dsigma = (x - D(x)) / sigma.
    """
    for i in _steps(sigmas, progress, "ddim"):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        denoised = _observed(denoise, x, sigma, i, callback)
        x = denoised + (sigma_next / sigma) * (x - denoised)
    return x


def dpmpp_2m(
    denoise: Denoise,
    x: torch.Tensor,
    sigmas: torch.Tensor,
    *,
    noise_sampler: NoiseSampler | None = None,
    progress: bool = False,
    callback: Callback | None = None,
) -> torch.Tensor:
    """DPM-Solver++(2M) (Lu et al. 2022, Algorithm 2): a second-order multistep solver of the
    probability-flow ODE in lambda = -log(sigma), using the data prediction of the previous step.
    """
    previous = None
    lam_previous = None
    for i in _steps(sigmas, progress, "dpmpp_2m"):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        denoised = _observed(denoise, x, sigma, i, callback)
        if sigma_next == 0:
            x = denoised
            continue
        lam, lam_next = -sigma.log(), -sigma_next.log()
        h = lam_next - lam
        if previous is None:
            estimate = denoised
        else:
            r = (lam - lam_previous) / h
            estimate = (1 + 1 / (2 * r)) * denoised - (1 / (2 * r)) * previous
        # Exact integration of the linear part: x_next = (s'/s) x + (1 - e^{-h}) D.
        x = (sigma_next / sigma) * x - torch.expm1(-h) * estimate
        previous, lam_previous = denoised, lam
    return x


def dpmpp_3m(
    denoise: Denoise,
    x: torch.Tensor,
    sigmas: torch.Tensor,
    *,
    noise_sampler: NoiseSampler | None = None,
    progress: bool = False,
    callback: Callback | None = None,
) -> torch.Tensor:
    """DPM-Solver++(3M) (Lu et al. 2022): the multistep solver one order higher, fitting a
    quadratic in lambda through the last three data predictions (lower orders while warming up).
    """
    history: list[tuple[torch.Tensor, torch.Tensor]] = []  # (lambda, denoised), newest first
    for i in _steps(sigmas, progress, "dpmpp_3m"):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        denoised = _observed(denoise, x, sigma, i, callback)
        if sigma_next == 0:
            x = denoised
            continue
        lam, lam_next = -sigma.log(), -sigma_next.log()
        h = lam_next - lam
        # Integrals of e^{u - h} (1, u / h, u^2 / h^2) over u in [0, h]: the weights of x_0 and of
        # its first and second derivatives in lambda (scaled by h and h^2) in the step.
        phi_1 = -torch.expm1(-h)
        phi_2 = 1 - phi_1 / h
        phi_3 = 1 - 2 * phi_2 / h
        x = (sigma_next / sigma) * x + phi_1 * denoised
        if history:
            lam_1, denoised_1 = history[0]
            r0 = (lam - lam_1) / h
            slope_0 = (denoised - denoised_1) / r0
            if len(history) > 1:
                lam_2, denoised_2 = history[1]
                r1 = (lam_1 - lam_2) / h
                slope_1 = (denoised_1 - denoised_2) / r1
                first = slope_0 + (slope_0 - slope_1) * r0 / (r0 + r1)
                second = (slope_0 - slope_1) / (r0 + r1)
                x = x + phi_2 * first + phi_3 * second
            else:
                x = x + phi_2 * slope_0
        history = [(lam, denoised), *history[:1]]
    return x


def dpmpp_2m_sde(
    denoise: Denoise,
    x: torch.Tensor,
    sigmas: torch.Tensor,
    *,
    noise_sampler: NoiseSampler | None = None,
    progress: bool = False,
    callback: Callback | None = None,
    eta: float = 1.0,
) -> torch.Tensor:
    """SDE-DPM-Solver++(2M) (Lu et al. 2022): the multistep solver of the reverse SDE.

    Each step fades a share of the old noise and draws it afresh, so errors of the denoiser are
    partly forgiven instead of carried to the end, as in ancestral sampling, while the data
    prediction is extrapolated to second order as in DPM-Solver++(2M). With ``eta = 1`` the
    first-order step is exactly DDPM's posterior step q(x_s | x_t, x_0); ``eta = 0`` is the ODE.
    """
    noise_sampler = noise_sampler or torch.randn_like
    previous = None
    h_previous = None
    for i in _steps(sigmas, progress, "dpmpp_2m_sde"):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        denoised = _observed(denoise, x, sigma, i, callback)
        if sigma_next == 0:
            x = denoised
            continue
        h = sigma.log() - sigma_next.log()  # the step in lambda = -log(sigma)
        kept = -torch.expm1(-(1 + eta) * h)  # the share of the step taken by the data prediction
        x = (sigma_next / sigma) * torch.exp(-eta * h) * x + kept * denoised
        if previous is not None:
            x = x + (kept / 2) * (h / h_previous) * (denoised - previous)
        if eta:
            x = x + sigma_next * (-torch.expm1(-2 * eta * h)).sqrt() * noise_sampler(x)
        previous, h_previous = denoised, h
    return x


def heun(
    denoise: Denoise,
    x: torch.Tensor,
    sigmas: torch.Tensor,
    *,
    noise_sampler: NoiseSampler | None = None,
    progress: bool = False,
    callback: Callback | None = None,
) -> torch.Tensor:
    """EDM's deterministic sampler (Karras et al. 2022, Algorithm 1): Euler steps of the
    probability-flow ODE corrected by the trapezoidal rule, except for the step to sigma = 0.
    """
    for i in _steps(sigmas, progress, "heun"):
        sigma, sigma_next = sigmas[i], sigmas[i + 1]
        denoised = _observed(denoise, x, sigma, i, callback)
        slope = (x - denoised) / sigma
        x_next = x + (sigma_next - sigma) * slope
        if sigma_next != 0:
            slope_next = (x_next - denoise(x_next, sigma_next)) / sigma_next
            x_next = x + (sigma_next - sigma) * (slope + slope_next) / 2
        x = x_next
    return x


SAMPLERS: dict[str, Callable[..., torch.Tensor]] = {
    "ancestral": ancestral,
    "ddim": ddim,
    "dpmpp_2m": dpmpp_2m,
    "dpmpp_3m": dpmpp_3m,
    "dpmpp_2m_sde": dpmpp_2m_sde,
    "heun": heun,
}
"""The samplers a run may name; ``repaint`` is chosen by the model when it in-paints."""

def network_evaluations(sampler: str, num_steps: int) -> int:
    """How many times ``sampler`` calls the network for ``num_steps`` steps."""
    return 2 * num_steps - 1 if sampler == "heun" else num_steps
