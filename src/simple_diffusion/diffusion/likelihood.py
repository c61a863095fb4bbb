"""Exact log-likelihood through the probability-flow ODE (Song et al. 2021, section D.2).

In the VE view x = x_0 + sigma eps the probability-flow ODE is dx/dsigma = (x - D(x, sigma)) / sigma
with D the denoiser; in s = log sigma, dx/ds = x - D(x, e^s). Along a path,
d log p_sigma(x(s)) / ds = -div(x - D), so the density at the bottom level is

    log p_{sigma_min}(x) = log p_{sigma_max}(x(s_max)) + integral of div(x - D) ds,

with p_{sigma_max} the Gaussian N(m, v + sigma_max^2) that data of mean m and variance v reaches
at sigma_max (up to O(1 / sigma_max^2): its higher moments fade like the mean's does not).
The ODE and the running divergence are integrated together by SciPy's RK45 (as ``solve_ivp``
runs it; on a trained model DOP853 needed 2.4 times its network calls for the same error) on a
batch of rows at once. The default tolerance, 1e-5, keeps the error of an exact denoiser under
1e-3 nats per row (1e-4 allows about 4e-3). The divergence is exact (one backward pass per
dimension) up to ``EXACT_DIVERGENCE_MAX_DIM`` dimensions and Hutchinson's estimate (one pass,
Rademacher noise) above. The result is the density of the data blurred by N(0, sigma_min^2),
which for the small ``sigma_min`` of a schedule is the data's density to within that blur.

>>> import math, torch
>>> exact = lambda x, sigma: x / (1 + sigma**2)  # the denoiser of N(0, 1) data
>>> x = torch.tensor([[0.0], [1.5]], dtype=torch.float64)
>>> log_p = log_likelihood(exact, x, 1e-3, 80.0, rtol=1e-6, atol=1e-6)
>>> truth = -0.5 * x[:, 0] ** 2 / (1 + 1e-6) - 0.5 * math.log(2 * math.pi * (1 + 1e-6))
>>> bool((log_p - truth).abs().max() < 1e-4)
True
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from threadpoolctl import threadpool_limits

Denoise = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]

EXACT_DIVERGENCE_MAX_DIM = 16
"""Up to this many dimensions the divergence is computed exactly (see BENCHMARKS.md)."""
CHUNK_ROWS = 4096
"""Rows integrated together: the solver's steps follow the chunk's error as a whole (SciPy's
root-mean-square over every row's state), so a row's result moves a little with its companions,
within the tolerance's error (BENCHMARKS.md, "Densities"). Measured on a trained 1-D model:
4,096-row chunks need a quarter of the network calls of 1,024-row ones, at the same or smaller
error per row."""


def log_likelihood(
    denoise: Denoise,
    x: torch.Tensor,
    sigma_min: float,
    sigma_max: float,
    *,
    rtol: float = 1e-5,
    atol: float = 1e-5,
    exact: bool | None = None,
    seed: int = 0,
    dtype: torch.dtype = torch.float64,
    data_mean: torch.Tensor | float = 0.0,
    data_variance: torch.Tensor | float = 1.0,
    bar: Any = None,
) -> torch.Tensor:
    """log p(x) per row (float64) of the model whose denoiser is ``denoise(x, sigma)``.

    ``x`` is in the space the denoiser works in; ``rtol`` and ``atol`` are the ODE solver's
    tolerances; ``exact`` chooses the divergence (default: exact up to
    ``EXACT_DIVERGENCE_MAX_DIM`` dimensions); ``seed`` fixes Hutchinson's noise; the denoiser is
    called in ``dtype``; ``data_mean`` and ``data_variance`` (per column, or per row and column:
    a conditional density's, whose data's mean follows each row's condition) place the Gaussian
    the data becomes at ``sigma_max``. ``bar``: a progress bar (tqdm) counting rows, advanced
    as each chunk's solve climbs from ``sigma_min`` to ``sigma_max``.
    """
    exact = x.shape[1] <= EXACT_DIVERGENCE_MAX_DIM if exact is None else exact
    generator = torch.Generator().manual_seed(seed)
    x = torch.as_tensor(x, dtype=torch.float64)
    mean, variance = (torch.as_tensor(v, dtype=torch.float64).expand(x.shape)
                      for v in (data_mean, data_variance))
    return torch.cat([
        _chunk(denoise, rows, sigma_min, sigma_max, rtol, atol, exact, generator, dtype, m, v + sigma_max**2,
               bar)
        for rows, m, v in zip(x.split(CHUNK_ROWS), mean.split(CHUNK_ROWS), variance.split(CHUNK_ROWS))
    ])


def _chunk(denoise, x, sigma_min, sigma_max, rtol, atol, exact, generator, dtype, mean,
           variance, bar) -> torch.Tensor:
    from scipy.integrate import RK45

    n, d = x.shape
    probe = None if exact else (torch.randint(0, 2, (n, d), generator=generator) * 2 - 1).to(dtype)

    def flow(s: float, state: np.ndarray) -> np.ndarray:
        sigma = torch.tensor(math.exp(s), dtype=dtype)
        with torch.enable_grad():
            y = torch.from_numpy(state[: n * d]).view(n, d).to(dtype).requires_grad_(True)
            drift = y - denoise(y, sigma)
            divergence = _divergence(drift, y, probe)
        return np.concatenate([drift.detach().double().numpy().ravel(),
                               divergence.detach().double().numpy()])

    start = np.concatenate([x.numpy().ravel(), np.zeros(n)])
    bottom, top = math.log(sigma_min), math.log(sigma_max)
    # The steps of what SciPy's solve_ivp(method="RK45") runs, taken one at a time so that the
    # bar follows the accepted steps (the solver also tries levels it does not keep).
    solver, counted = RK45(flow, bottom, start, top, rtol=rtol, atol=atol), 0
    # The solver's NumPy steps between network calls would leave OpenBLAS's threads spinning
    # against torch's: one BLAS thread made the whole solve 2.4x quicker on 2 cores.
    with threadpool_limits(limits=1, user_api="blas"):
        while solver.status == "running":
            failure = solver.step()
            if bar is not None:
                reached = round(n * (solver.t - bottom) / (top - bottom))
                bar.update(reached - counted)
                counted = reached
    if solver.status == "failed":
        raise RuntimeError(f"the probability-flow ODE failed: {failure}")
    end = torch.from_numpy(solver.y)
    latent, change = end[: n * d].view(n, d), end[n * d :]
    prior = (-0.5 * (latent - mean) ** 2 / variance - 0.5 * torch.log(2 * math.pi * variance)).sum(1)
    return prior + change


def _divergence(drift: torch.Tensor, y: torch.Tensor, probe: torch.Tensor | None) -> torch.Tensor:
    """Trace of d drift / d y per row: exactly (a pass per column) or by Hutchinson's estimate."""
    if probe is not None:
        (gradient,) = torch.autograd.grad((drift * probe).sum(), y)
        return (gradient * probe).sum(1)
    columns = drift.shape[1]
    total = torch.zeros(len(y), dtype=y.dtype)
    for j in range(columns):
        (gradient,) = torch.autograd.grad(drift[:, j].sum(), y, retain_graph=j < columns - 1)
        total += gradient[:, j]
    return total
