"""Denoiser networks: ``net(x_t, t, condition=None) -> prediction`` with x_t of shape (B, d).

Any ``torch.nn.Module`` with that call fits the rest of the package (it trains through autograd);
the built-in ``MLP`` below also has a fast explicit path in ``training/engine.py``. A conditional
network takes one more input per row, ``condition`` (B, condition_size): what is known about
the row (``objective.ColumnCondition`` builds it); None means nothing is.

>>> import torch
>>> net = MLP(dim=2, hidden=[32, 32], time_features=RawTime())
>>> net(torch.zeros(5, 2), torch.ones(5)).shape
torch.Size([5, 2])
"""

from __future__ import annotations

import itertools
import math

import torch
from torch import nn

ACTIVATIONS = {"relu": nn.functional.relu, "silu": nn.functional.silu}


class RawTime(nn.Module):
    """The timestep itself as one input feature (the seed's choice: raw integers up to T)."""

    size = 1

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return t.unsqueeze(-1)

    def write(self, t: torch.Tensor, out: torch.Tensor) -> None:
        """Write the features of ``t`` into the last dimension of ``out``."""
        out[..., 0] = t


class FourierTime(nn.Module):
    """Sines and cosines of t / T at geometrically spaced frequencies (fixed, not learned)."""

    def __init__(self, pairs: int, num_timesteps: int):
        super().__init__()
        self.size = 2 * pairs
        # From one period over the whole schedule up to a period of about four timesteps.
        top = max(num_timesteps / 4, 2.0)
        frequencies = torch.logspace(0, math.log10(top), pairs) * 2 * math.pi / num_timesteps
        self.register_buffer("frequencies", frequencies)

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        out = t.new_empty(*t.shape, self.size)
        self.write(t, out)
        return out

    def write(self, t: torch.Tensor, out: torch.Tensor) -> None:
        """Write the features of ``t`` into the last dimension of ``out``: the training inputs
        are built in place, without a concatenation's extra copies."""
        angles = t.unsqueeze(-1) * self.frequencies.to(t.dtype)
        pairs = self.size // 2
        out[..., :pairs] = angles.sin()
        out[..., pairs:] = angles.cos()


class MLP(nn.Module):
    """A multilayer perceptron on the concatenation (x_t, time features, condition), output of
    size d."""

    def __init__(
        self, dim: int, hidden: list[int], time_features: nn.Module, activation: str = "relu",
        condition_size: int = 0,
    ):
        super().__init__()
        self.dim = dim
        self.activation = activation
        self.time_features = time_features
        self.condition_size = condition_size
        widths = [dim + time_features.size + condition_size, *hidden, dim]
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in itertools.pairwise(widths))

    def inputs(self, x: torch.Tensor, t: torch.Tensor, condition: torch.Tensor | None = None,
               ones_column: bool = False) -> torch.Tensor:
        """The first layer's input for one timestep per row (x_t, time features, condition),
        with a last column of ones if ``ones_column`` (for layers stored as [W | b])."""
        end = self.dim + self.time_features.size
        out = x.new_empty(len(x), end + self.condition_size + ones_column)
        out[:, : self.dim] = x
        self.time_features.write(t.to(x.dtype), out[:, self.dim : end])
        if self.condition_size:
            out[:, end : end + self.condition_size] = 0 if condition is None else condition
        if ones_column:
            out[:, -1] = 1
        return out

    def forward(self, x: torch.Tensor, t: torch.Tensor | float,
                condition: torch.Tensor | None = None, activations: dict | None = None) -> torch.Tensor:
        """The prediction for ``x`` at timesteps ``t``. ``activations``: a dict in which, without
        autograd (and outside autocast, which the caller leaves it out of), the hidden layers
        write their outputs, kept there for the next call of as many rows (a sampler's loop
        passes one): a fresh tensor per layer and step made the memory allocator hand the pages
        back to the system and take them again, which cost a third of the default sampler's
        time (BENCHMARKS.md, "Speed"); the numbers are the same."""
        t = torch.as_tensor(t, dtype=x.dtype, device=x.device)
        act = ACTIVATIONS[self.activation]
        # Under bfloat16 autocast only the hidden-to-hidden products (nearly all the arithmetic)
        # run in bfloat16: the input and output layers keep the data's precision, so that x_t
        # is not blurred by bfloat16's 0.4% rounding and a student predicting x_0 does not
        # round its samples to 8 significant bits.
        with torch.autocast(x.device.type, enabled=False):
            h = self._first_layer(x, t, condition)
        if activations is not None and not torch.is_grad_enabled():
            h = self._hidden_into(act(h, inplace=True), activations)
        else:
            for layer in self.layers[1:-1]:
                h = layer(act(h))
            h = act(h)
        with torch.autocast(x.device.type, enabled=False):
            return self.layers[-1](h.to(x.dtype))

    def _hidden_into(self, h: torch.Tensor, activations: dict) -> torch.Tensor:
        """The last hidden layer's activated output for the activated first layer's ``h``, each
        layer's written into one of two tensors per width kept in ``activations``."""
        act = ACTIVATIONS[self.activation]
        for i, layer in enumerate(self.layers[1:-1]):
            key = (i % 2, len(h), layer.out_features, h.dtype, h.device)
            out = activations.get(key)
            if out is None:
                out = activations[key] = h.new_empty(len(h), layer.out_features)
            h = act(torch.addmm(layer.bias, h, layer.weight.T, out=out), inplace=True)
        return h

    def _first_layer(self, x: torch.Tensor, t: torch.Tensor,
                     condition: torch.Tensor | None) -> torch.Tensor:
        first = self.layers[0]
        if t.ndim == 0:
            # One timestep for the whole batch (as in sampling): its contribution is a bias.
            end = self.dim + self.time_features.size
            bias = torch.addmv(first.bias, first.weight[:, self.dim : end], self.time_features(t))
            h = torch.addmm(bias, x, first.weight[:, : self.dim].T)
            if condition is not None:  # no condition is zeros: nothing to add
                h = h.addmm_(condition, first.weight[:, end:].T)
            return h
        return first(self.inputs(x, t, condition))
