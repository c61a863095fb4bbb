"""Invertible column transforms fitted on the training data and stored as plain numbers.

>>> import torch
>>> x = torch.tensor([[1.0, 10.0], [3.0, 30.0]], dtype=torch.float64)
>>> scaler = Standardize.fit(x, ["a", "b"])
>>> torch.allclose(scaler.inverse(scaler.forward(x)), x)
True
"""

from __future__ import annotations

from typing import Any

import torch

from .errors import UserError


class Identity:
    """The seed's choice: the network sees the raw values."""

    kind = "none"

    @classmethod
    def fit(cls, x: torch.Tensor, columns: list[str]) -> Identity:
        return cls()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        return y

    def state(self) -> dict[str, Any]:
        return {"kind": self.kind}


class Standardize:
    """Per column, subtract the mean and divide by the standard deviation."""

    kind = "standardize"

    def __init__(self, mean: list[float], std: list[float]):
        self.mean = torch.tensor(mean, dtype=torch.float64)
        self.std = torch.tensor(std, dtype=torch.float64)

    @classmethod
    def fit(cls, x: torch.Tensor, columns: list[str]) -> Standardize:
        std = x.std(0)
        for name, value in zip(columns, std.tolist()):
            if not value > 0:
                raise UserError(f"column {name!r} is constant: it cannot be standardised")
        return cls(x.mean(0).tolist(), std.tolist())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        return y * self.std.to(y.dtype) + self.mean.to(y.dtype)

    def state(self) -> dict[str, Any]:
        return {"kind": self.kind, "mean": self.mean.tolist(), "std": self.std.tolist()}


TRANSFORMS = {cls.kind: cls for cls in (Identity, Standardize)}


def fit(kind: str, x: torch.Tensor, columns: list[str]):
    """Fit the transform ``kind`` on the training data ``x``."""
    return TRANSFORMS[kind].fit(x, columns)


def from_state(state: dict[str, Any]):
    """Rebuild a fitted transform from ``state()``."""
    state = dict(state)
    kind = state.pop("kind", None)
    if kind not in TRANSFORMS:
        raise UserError(f"unknown preprocessing {kind!r} in the model file")
    return TRANSFORMS[kind](**state)
