"""What a denoiser's output means (``prediction_type``), as diffusers names it.

With x_t = alpha x_0 + sigma_vp eps (alpha^2 + sigma_vp^2 = 1, the VP scales of
``schedules.vp_scales``): ``epsilon`` predicts eps, ``sample`` predicts x_0, and ``v`` predicts
alpha eps - sigma_vp x_0
(Salimans & Ho 2022), which on unit-variance data is EDM's preconditioning with sigma_data = 1.

>>> import torch
>>> x0, eps = torch.ones(3, 1), torch.zeros(3, 1)
>>> alpha, sigma_vp = torch.full((3, 1), 0.6), torch.full((3, 1), 0.8)
>>> x_t = alpha * x0 + sigma_vp * eps
>>> to_sample("v", target("v", x0, eps, alpha, sigma_vp), x_t, alpha, sigma_vp).flatten().tolist()
[1.0, 1.0, 1.0]
"""

from __future__ import annotations

import torch


def target(
    prediction_type: str, x0: torch.Tensor, noise: torch.Tensor, alpha: torch.Tensor, sigma_vp: torch.Tensor
) -> torch.Tensor:
    """The regression target of the training loss."""
    if prediction_type == "epsilon":
        return noise
    if prediction_type == "sample":
        return x0
    return alpha * noise - sigma_vp * x0


def to_sample(prediction_type: str, output: torch.Tensor, x_t: torch.Tensor, alpha: torch.Tensor,
              sigma_vp: torch.Tensor) -> torch.Tensor:
    """The network's estimate of x_0 from its output at x_t."""
    if prediction_type == "epsilon":
        return (x_t - sigma_vp * output) / alpha
    if prediction_type == "sample":
        return output
    return alpha * x_t - sigma_vp * output
