"""bfloat16 matrix products for the distilled sampler, where the CPU has them natively.

``fast_bfloat16`` times one matrix product of a sampler's size in float32 and in bfloat16 on
this machine (once per process): CPUs with AMX or AVX-512 BF16 run it several times faster,
others emulate it and gain nothing. Which samplers may use it was measured, not assumed
(BENCHMARKS.md, "Few-step sampling"): the one-step student's ratios did not move in bfloat16,
while the 50-step stochastic solver's rose by about a tenth on two_gaussians, so ``auto``
keeps the solvers in float32. Densities always use float32.
"""

from __future__ import annotations

import functools
import time

import torch

SPEED_NEEDED = 1.5
"""bfloat16 must make the timed product at least this much faster to be used."""
AUTO_SAMPLERS = ("distilled",)
"""The samplers that ``precision="auto"`` runs in bfloat16 where it is fast."""


@functools.cache
def fast_bfloat16() -> bool:
    """Whether bfloat16 matrix products run at least ``SPEED_NEEDED`` times faster than float32
    here (measured: (8192 x 128) @ (128 x 128), the default network's layer at a sampling chunk)."""
    a, b = torch.randn(8192, 128), torch.randn(128, 128)

    def seconds(x: torch.Tensor, y: torch.Tensor) -> float:
        torch.mm(x, y)
        best = float("inf")
        for _ in range(5):
            start = time.perf_counter()
            torch.mm(x, y)
            best = min(best, time.perf_counter() - start)
        return best

    try:
        return seconds(a, b) >= SPEED_NEEDED * seconds(a.bfloat16(), b.bfloat16())
    except RuntimeError:  # no bfloat16 kernel at all
        return False


def uses_bfloat16(choice: str, sampler: str) -> bool:
    """Whether ``sampler`` runs its network in bfloat16 under the ``precision`` setting ``choice``."""
    if choice != "auto":
        return choice == "bfloat16"
    return sampler in AUTO_SAMPLERS and fast_bfloat16()


def autocast(enabled: bool, device_type: str = "cpu") -> torch.autocast:
    """The context in which a denoiser runs its matrix products in bfloat16 (when ``enabled``)."""
    return torch.autocast(device_type, dtype=torch.bfloat16, enabled=enabled)
