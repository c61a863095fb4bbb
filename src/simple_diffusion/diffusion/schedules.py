"""Noise schedules and the one home of noise-level conversions.

The forward process is q(x_t | x_0) = N(alpha_t x_0, sigma_VP,t^2 I) with alpha_t^2 = alpha_bar_t
and alpha_t^2 + sigma_VP,t^2 = 1 (variance preserving, VP). A schedule is a table
``alphas_cumprod`` over timesteps t = 0..T (alpha_bar_0 = 1, no noise).

Samplers work with the equivalent variance-exploding (VE) noise level
sigma = sigma_VP / alpha = sqrt((1 - alpha_bar) / alpha_bar), the noise-to-signal ratio, on the
state x = x_t / alpha = x_0 + sigma eps, as k-diffusion does. Throughout the package a bare
``sigma`` is this VE level; ``sigma_vp`` is the VP noise scale. ``vp_scales`` and ``ve_scale``
convert between them, and ``Schedule.sigma_to_t`` / ``t_to_sigma`` between levels and timesteps.

>>> s = constant(0.02, 250)
>>> round(float(s.alphas_cumprod[10]), 6) == round(0.98 ** 10, 6)
True
>>> s.sampling_sigmas(0).shape  # every timestep, then sigma = 0
torch.Size([251])
"""

from __future__ import annotations

import math

import torch

SAMPLING_SIGMA_CAP = 80.0
"""The highest VE level sampling starts from unless told otherwise (EDM's sigma_max)."""


def vp_scales(sigma: torch.Tensor, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
    """(alpha, sigma_vp) in ``dtype`` for VE noise level ``sigma``: x_t = alpha x_0 + sigma_vp eps.

    alpha = 1 / sqrt(1 + sigma^2) is rounded to ``dtype`` before sigma_vp = sigma * alpha, so the
    two scales are consistent in the precision the network runs in.
    """
    alpha = (1 / torch.sqrt(1 + sigma**2)).to(dtype)
    return alpha, (sigma * alpha).to(dtype)


def ve_scale(sigma: torch.Tensor) -> torch.Tensor:
    """sqrt(1 + sigma^2) = 1 / alpha: the VE state is x = x_t * ve_scale(sigma)."""
    return torch.sqrt(1 + sigma**2)


class Schedule:
    """A discrete diffusion schedule with continuous interpolation between its timesteps."""

    def __init__(self, alphas_cumprod: torch.Tensor):
        alphas_cumprod = torch.as_tensor(alphas_cumprod, dtype=torch.float64)
        if alphas_cumprod.ndim != 1 or len(alphas_cumprod) < 3:
            raise ValueError("alphas_cumprod must be a 1-D table over t = 0..T with T >= 2")
        if alphas_cumprod[0] != 1 or not bool((alphas_cumprod[1:] < alphas_cumprod[:-1]).all()):
            raise ValueError("alphas_cumprod must start at 1 and decrease strictly")
        self.alphas_cumprod = alphas_cumprod
        self.num_timesteps = len(alphas_cumprod) - 1
        self.betas = 1 - alphas_cumprod[1:] / alphas_cumprod[:-1]
        self.sigmas = ((1 - alphas_cumprod) / alphas_cumprod).sqrt()
        self._log_sigmas = self.sigmas[1:].log()

    @property
    def sigma_min(self) -> float:
        return float(self.sigmas[1])

    @property
    def sigma_max(self) -> float:
        return float(self.sigmas[-1])

    def sampling_top(self, sigma_max: float = 0.0) -> float:
        """The level sampling starts from: ``sigma_max`` (0: ``SAMPLING_SIGMA_CAP``), at most the
        schedule's own top."""
        return min(sigma_max or SAMPLING_SIGMA_CAP, self.sigma_max)

    def add_noise(
        self, original_samples: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor
    ) -> torch.Tensor:
        """x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) noise, one timestep per row."""
        alpha_bar = self.alphas_cumprod.to(original_samples.dtype)[timesteps].unsqueeze(-1)
        return alpha_bar.sqrt() * original_samples + (1 - alpha_bar).sqrt() * noise

    def sigma_to_t(self, sigma: torch.Tensor) -> torch.Tensor:
        """The (fractional) timestep whose noise level is ``sigma``, linear in log sigma."""
        log_sigma = torch.as_tensor(sigma, dtype=torch.float64).clamp_min(1e-30).log()
        log_sigma = log_sigma.clamp(self._log_sigmas[0], self._log_sigmas[-1])
        high = torch.searchsorted(self._log_sigmas, log_sigma).clamp(1, self.num_timesteps - 1)
        low_value, high_value = self._log_sigmas[high - 1], self._log_sigmas[high]
        weight = (log_sigma - low_value) / (high_value - low_value)
        return high + weight  # index high - 1 in _log_sigmas is timestep high

    def sampling_sigmas(
        self, num_steps: int, spacing: str = "logsnr", sigma_max: float = 0.0, sigma_min: float = 0.0
    ) -> torch.Tensor:
        """Decreasing noise levels from the top to the bottom, then 0: ``num_steps`` + 1 values.

        ``num_steps = 0`` (or T) walks every timestep T, T-1, ..., 1 as DDPM does, keeping those
        whose level lies within [``sigma_min``, ``sigma_max``] (0: no limit). Otherwise the
        levels run from ``sigma_max`` to ``sigma_min`` (0: the schedule's own, the top capped at
        ``SAMPLING_SIGMA_CAP``; both kept inside the schedule's range): ``logsnr`` spaces them
        evenly in log sigma (half the log-SNR), ``uniform`` evenly in t, and ``karras`` with
        EDM's rho = 7.
        """
        if num_steps == 0 or num_steps == self.num_timesteps:
            levels = self.sigmas[1:].flip(0)
            inside = (levels <= (sigma_max or math.inf)) & (levels >= sigma_min)
            if not bool(inside.any()):
                raise ValueError(f"no timestep has a noise level in [{sigma_min}, {sigma_max}]")
            return torch.cat([levels[inside], levels.new_zeros(1)])
        top = self.sampling_top(sigma_max)
        bottom = min(max(sigma_min, self.sigma_min), top)
        if spacing == "logsnr":
            levels = torch.linspace(
                math.log(top), math.log(bottom), num_steps, dtype=torch.float64
            ).exp()
        elif spacing == "uniform":
            steps = torch.linspace(
                float(self.sigma_to_t(torch.tensor(top))),
                float(self.sigma_to_t(torch.tensor(bottom))),
                num_steps,
                dtype=torch.float64,
            )
            levels = self.t_to_sigma(steps)
        elif spacing == "karras":
            rho = 7.0
            ramp = torch.linspace(0, 1, num_steps, dtype=torch.float64)
            high, low = top ** (1 / rho), bottom ** (1 / rho)
            levels = (high + ramp * (low - high)) ** rho
        else:
            raise ValueError(f"unknown spacing {spacing!r}")
        return torch.cat([levels, levels.new_zeros(1)])

    def t_to_sigma(self, t: torch.Tensor) -> torch.Tensor:
        """Noise level at a (fractional) timestep, interpolating log sigma linearly."""
        t = torch.as_tensor(t, dtype=torch.float64).clamp(1, self.num_timesteps)
        low = t.floor().long().clamp(1, self.num_timesteps - 1)
        weight = t - low
        log_sigma = (1 - weight) * self._log_sigmas[low - 1] + weight * self._log_sigmas[low]
        return log_sigma.exp()


def constant(beta: float, num_timesteps: int) -> Schedule:
    """The seed's schedule: the same beta at every step, alpha_bar_t = (1 - beta)^t."""
    steps = torch.arange(num_timesteps + 1, dtype=torch.float64)
    return Schedule((1 - beta) ** steps)


def linear(beta_start: float, beta_end: float, num_timesteps: int) -> Schedule:
    """DDPM's schedule: beta rising linearly from ``beta_start`` to ``beta_end``."""
    betas = torch.linspace(beta_start, beta_end, num_timesteps, dtype=torch.float64)
    return Schedule(torch.cat([torch.ones(1, dtype=torch.float64), torch.cumprod(1 - betas, 0)]))


def cosine(num_timesteps: int, offset: float = 0.008, max_beta: float = 0.999) -> Schedule:
    """Nichol & Dhariwal's schedule: alpha_bar follows cos^2, betas capped at ``max_beta``."""
    steps = torch.arange(num_timesteps + 1, dtype=torch.float64) / num_timesteps
    f = torch.cos((steps + offset) / (1 + offset) * math.pi / 2) ** 2
    betas = (1 - f[1:] / f[:-1]).clamp(max=max_beta)
    return Schedule(torch.cat([torch.ones(1, dtype=torch.float64), torch.cumprod(1 - betas, 0)]))
