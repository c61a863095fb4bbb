"""Built-in target distributions, each a ``torch.distributions.Distribution``.

Mixtures are ``MixtureSameFamily`` objects with an exact ``log_prob``; the 2-D shapes users know
from diffusion tutorials (moons, swiss roll, pinwheel) have a sampler only.

>>> import torch
>>> target = get("two_gaussians")
>>> x = draw("two_gaussians", 1000, seed=0)
>>> x.shape, target.log_prob(torch.zeros(1, 1)).shape
(torch.Size([1000, 1]), torch.Size([1]))
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np
import torch
from torch import distributions as D

from ..errors import UserError


def gaussian_mixture(weights: Sequence[float], means: Sequence[Sequence[float]],
                     stds: Sequence[Sequence[float]]) -> D.MixtureSameFamily:
    """A mixture of axis-aligned Gaussians; ``means`` and ``stds`` have shape (k, d)."""
    weights = torch.as_tensor(weights, dtype=torch.float64)
    means = torch.as_tensor(means, dtype=torch.float64)
    stds = torch.as_tensor(stds, dtype=torch.float64)
    return D.MixtureSameFamily(
        D.Categorical(probs=weights / weights.sum()),
        D.Independent(D.Normal(means, stds), 1),
    )


class SampleOnly(D.Distribution):
    """A distribution known through a sampler; ``log_prob`` is not available in closed form."""

    arg_constraints: dict = {}

    def __init__(self, sampler: Callable[[int, torch.Generator | None], torch.Tensor], dim: int):
        self._sampler = sampler
        super().__init__(event_shape=torch.Size([dim]), validate_args=False)

    def sample(self, sample_shape=torch.Size()) -> torch.Tensor:
        n = int(np.prod(sample_shape)) if len(sample_shape) else 1
        x = self._sampler(n, None)
        return x.reshape(*sample_shape, *self.event_shape)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError("this target has no closed-form density")


def _moons(n: int, generator=None) -> torch.Tensor:
    outer = torch.rand(n, generator=generator, dtype=torch.float64) < 0.5
    angle = torch.rand(n, generator=generator, dtype=torch.float64) * math.pi
    x = torch.where(outer, torch.cos(angle), 1 - torch.cos(angle))
    y = torch.where(outer, torch.sin(angle), 0.5 - torch.sin(angle))
    points = torch.stack([x, y], 1) + 0.05 * torch.randn(n, 2, generator=generator, dtype=torch.float64)
    return points


def _swiss_roll(n: int, generator=None) -> torch.Tensor:
    turn = 1.5 * math.pi * (1 + 2 * torch.rand(n, generator=generator, dtype=torch.float64))
    points = torch.stack([turn * torch.cos(turn), turn * torch.sin(turn)], 1) / 5
    return points + 0.1 * torch.randn(n, 2, generator=generator, dtype=torch.float64)


def _pinwheel(n: int, generator=None, arms: int = 5) -> torch.Tensor:
    # Johnson et al. (2016): Gaussian blobs bent by an angle that grows with the radius.
    arm = torch.randint(arms, (n,), generator=generator)
    radial = 0.3 * torch.randn(n, generator=generator, dtype=torch.float64) + 1.0
    tangential = 0.05 * torch.randn(n, generator=generator, dtype=torch.float64)
    angle = 2 * math.pi * arm / arms + 0.25 * torch.exp(radial)
    c, s = torch.cos(angle), torch.sin(angle)
    return 2 * torch.stack([c * radial - s * tangential, s * radial + c * tangential], 1)


class Checkerboard(D.Distribution):
    """Uniform on the dark squares of a 4x4 board spanning [-2, 2]^2 (exact density 1/8)."""

    arg_constraints: dict = {}

    def __init__(self):
        super().__init__(event_shape=torch.Size([2]), validate_args=False)

    def sample(self, sample_shape=torch.Size()) -> torch.Tensor:
        n = int(np.prod(sample_shape)) if len(sample_shape) else 1
        x = 4 * torch.rand(n, dtype=torch.float64) - 2
        column = torch.floor(x) + 2
        # A dark square's row has the parity of its column.
        row = 2 * torch.randint(0, 2, (n,)).double() + column % 2
        y = row - 2 + torch.rand(n, dtype=torch.float64)
        return torch.stack([x, y], 1).reshape(*sample_shape, 2)

    def log_prob(self, value: torch.Tensor) -> torch.Tensor:
        inside = (value.abs() <= 2).all(-1)
        dark = (torch.floor(value[..., 0]) + torch.floor(value[..., 1])) % 2 == 0
        return torch.where(inside & dark, math.log(1 / 8), -math.inf)


def _correlated_gaussian(dim: int = 6) -> D.MultivariateNormal:
    # A fixed, well-conditioned covariance with strong correlations between neighbours.
    index = torch.arange(dim, dtype=torch.float64)
    correlation = 0.8 ** (index[:, None] - index[None, :]).abs()
    scales = torch.linspace(0.5, 3.0, dim, dtype=torch.float64)
    covariance = correlation * scales[:, None] * scales[None, :]
    return D.MultivariateNormal(torch.linspace(-2.0, 3.0, dim, dtype=torch.float64), covariance)


def _correlated_mixture() -> D.MixtureSameFamily:
    """Two correlated 5-D Gaussian clusters: structure a product of marginals cannot show."""
    base = _correlated_gaussian(5)
    covariance = torch.stack([base.covariance_matrix, 0.5 * base.covariance_matrix.flip(0, 1)])
    means = torch.stack([torch.full((5,), -2.0, dtype=torch.float64), torch.full((5,), 2.0,
                                                                                  dtype=torch.float64)])
    return D.MixtureSameFamily(
        D.Categorical(probs=torch.tensor([0.4, 0.6], dtype=torch.float64)),
        D.MultivariateNormal(means, covariance),
    )


_RING = [(math.cos(k * math.pi / 4), math.sin(k * math.pi / 4)) for k in range(8)]

TARGETS: dict[str, Callable[[], D.Distribution]] = {
    "two_gaussians": lambda: gaussian_mixture([1, 2], [[-4.0], [4.0]], [[1.0], [1.0]]),
    "three_gaussians": lambda: gaussian_mixture([1, 1, 2], [[-4.0], [0.0], [4.0]],
                                                [[1.0], [2.0], [1.0]]),
    "eight_gaussians": lambda: gaussian_mixture([1] * 8, [[2 * a, 2 * b] for a, b in _RING],
                                                [[0.1, 0.1]] * 8),
    "moons": lambda: SampleOnly(_moons, 2),
    "swiss_roll": lambda: SampleOnly(_swiss_roll, 2),
    "checkerboard": Checkerboard,
    "pinwheel": lambda: SampleOnly(_pinwheel, 2),
    "correlated_6d": lambda: _correlated_gaussian(6),
    "clusters_5d": _correlated_mixture,
}
"""Each built-in target's constructor; ``choices.TARGETS`` describes them."""


def get(name: str) -> D.Distribution:
    """The built-in target ``name`` as a distribution."""
    if name not in TARGETS:
        raise UserError(f"unknown target {name!r}; built-in targets: {', '.join(TARGETS)}")
    return TARGETS[name]()


def draw(name: str, n: int, seed: int) -> torch.Tensor:
    """``n`` draws of shape (n, d), float64, reproducible from ``seed``."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return get(name).sample((n,)).to(torch.float64)


def responsibilities(target: D.Distribution, x: torch.Tensor) -> torch.Tensor | None:
    """Posterior probability of each mixture component for each point, or None if no mixture.

    Its mean over draws from ``target`` is exactly the mixture weights, so the mean over generated
    samples is an unbiased "mass per mode" to compare with them.
    """
    if not isinstance(target, D.MixtureSameFamily):
        return None
    x = torch.as_tensor(x, dtype=torch.float64)
    joint = target.component_distribution.log_prob(x.unsqueeze(-2)) + torch.log(
        target.mixture_distribution.probs
    )
    return torch.softmax(joint, dim=-1)
