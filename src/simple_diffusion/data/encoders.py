"""Invertible column transforms fitted on the training data and stored as plain numbers.

A ``Pipeline`` applies, in order: rounding of integer columns, keeping the others within their
training range, and rounding of columns written with so many decimal places or significant
digits (all four on the way back only), a bounded transform of columns that must stay in a range
(log for one bound, logit for two), a Yeo-Johnson transform of skewed columns, removal of
constant columns (put back on the way out), and standardisation or a quantile transform to a
standard normal.
``inverse(forward(x))`` returns ``x``.

>>> import torch
>>> x = torch.tensor([[1.0, 10.0], [3.0, 30.0], [2.0, 25.0]], dtype=torch.float64)
>>> pipeline = fit(x, ["a", "b"], scaling="standardize", bounds={"b": (0.0, None)})
>>> torch.allclose(pipeline.inverse(pipeline.forward(x)), x)
True
"""

from __future__ import annotations

import functools
import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from ..errors import UserError, advice, no_such_column


class NoDensity(UserError):
    """The encoded columns include a discrete part, which has probability mass, not density:
    ``what`` says which, and ``advice`` (appended to the message) which model has one."""

    def __init__(self, what: str, advice: str = ""):
        super().__init__(what + advice)
        self.what = what


class Round:
    """Integer columns: nothing on the way in; on the way out, rounding into the training range
    (``low``/``high`` per column; absent in models of version 0.2, which only rounded)."""

    kind = "round"

    def __init__(self, columns: list[int], low: list[float] | None = None,
                 high: list[float] | None = None):
        self.columns = list(columns)
        self.low, self.high = low, high

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        y = y.clone()
        rounded = torch.round(y[:, self.columns])
        if self.low is not None and self.high is not None:
            low, high = (torch.tensor(v, dtype=y.dtype) for v in (self.low, self.high))
            rounded = torch.minimum(torch.maximum(rounded, low), high)
        y[:, self.columns] = rounded
        return y

    no_density = "its integer columns take whole values with probability mass, not density"

    def state(self) -> dict[str, Any]:
        return {"kind": self.kind, "columns": self.columns, "low": self.low, "high": self.high}


MAX_DECIMALS = 6
"""Most decimal places a column's values may be written with for samples to be rounded to them:
a column with more (a simulation's floats) is written with ``SIGNIFICANT_DIGITS``."""


def decimal_places(values: torch.Tensor, stored: torch.dtype = torch.float64) -> int | None:
    """The fewest decimal places, at most ``MAX_DECIMALS``, that write every value as it is
    (5.1 and 3.25: 2), or None: rounded to them, each value is the number it was stored as
    (``stored``: its column's dtype; a float32 5.1 is 5.0999999 as a float64)."""
    values = values.double()
    kept = values.to(stored)
    for places in range(MAX_DECIMALS + 1):
        if torch.equal(torch.round(values, decimals=places).to(stored), kept):
            return places
    return None


class Decimals:
    """Numeric columns recorded to so many decimal places (iris' 5.1, a price's 3.25): nothing on
    the way in; on the way out, rounding to those places, so that samples are written as the data
    was (SDV's ``enforce_rounding``). The density is the continuous model's: rounding is how a
    sample is written, not part of what is learnt, so it adds nothing to the log-determinant."""

    kind = "decimals"
    unit = "places"

    def __init__(self, columns: list[int], places: list[int]):
        self.columns, self.precision = list(columns), list(places)

    @staticmethod
    def rounded(values: torch.Tensor, places: int) -> torch.Tensor:
        return torch.round(values, decimals=places)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        y = y.clone()
        for j, precision in zip(self.columns, self.precision):
            y[:, j] = self.rounded(y[:, j], precision) + 0.0  # -0.0004 to 3 places is 0.0, not -0.0
        return y

    def log_slopes(self, x: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(x)

    def state(self) -> dict[str, Any]:
        return {"kind": self.kind, "columns": self.columns, self.unit: self.precision}


class SignificantDigits(Decimals):
    """Numeric columns recorded to so many significant digits at every size (a physicist's
    3.469e-07, written ``%.3e``), whose decimal places ``Decimals`` cannot hold: on the way out,
    rounding to those digits; like ``Decimals``, how a sample is written, not what is learnt."""

    kind = "digits"
    unit = "digits"

    def __init__(self, columns: list[int], digits: list[int]):
        super().__init__(columns, digits)

    @staticmethod
    def rounded(values: torch.Tensor, digits: int) -> torch.Tensor:
        return significant(values, digits)


class Clip:
    """Numeric columns kept within their training range on the way out (SDV's
    ``enforce_min_max_values``): a model may put a sliver of mass beyond the data's extremes (a
    population below 0, an age above the oldest), which a table never shows. Like ``Decimals``
    it is how a sample is written, not part of what is learnt: it adds nothing to the
    log-determinant."""

    kind = "clip"

    def __init__(self, columns: list[int], low: list[float], high: list[float]):
        self.columns, self.low, self.high = list(columns), list(low), list(high)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        y = y.clone()
        low, high = (torch.tensor(v, dtype=y.dtype) for v in (self.low, self.high))
        y[:, self.columns] = torch.minimum(torch.maximum(y[:, self.columns], low), high)
        return y

    def log_slopes(self, x: torch.Tensor) -> torch.Tensor:
        return torch.zeros_like(x)

    def state(self) -> dict[str, Any]:
        return {"kind": self.kind, "columns": self.columns, "low": self.low, "high": self.high}


def skewness(values: np.ndarray) -> float:
    """The sample skewness m3 / m2^1.5, NaN for values constant up to rounding: what
    ``scipy.stats.skew`` gives by default, without importing ``scipy.stats`` (0.7 s of every
    command's start, for this one number).

    >>> round(skewness(np.array([2.0, 8, 0, 4, 1, 9, 9, 0])), 6)  # scipy's own example
    0.265055
    >>> skewness(np.full(5, 0.1))
    nan
    """
    with np.errstate(all="ignore"):  # values near the float limits: NaN or inf, no skew measured, quietly
        mean = values.mean()
        deviation = values - mean
        second, third = np.mean(deviation**2), np.mean(deviation**3)
        if second <= (np.finfo(np.float64).eps * mean) ** 2:
            return float("nan")
        return float(third / second**1.5)


SKEWED = 2.0
"""Columns whose sample skewness exceeds this in size (an exponential's is 2) go through a
Yeo-Johnson transform before standardisation: standardised, a population in thousands (skewness
5.5, a quarter of it below 1 and the rest up to 7,300) leaves most rows within a tenth of a
standard deviation of each other, and the model blurs them across 0 into negative values."""
POWER_EXPONENTS = (0.0, 2.0)
"""The Yeo-Johnson exponents allowed: at most a logarithm either way. Beyond it the transform is
bounded (a right tail's exponent below 0 maps every value below a ceiling), the model's samples
pile up against that ceiling, and come back as values far beyond the data's (exploration on
breast-cancer measurement errors: exponents down to -280, 1.5% of samples at the maximum)."""
POWER_FIT_ROWS = 1 << 16
"""Rows on which a long column's Yeo-Johnson exponent is fitted (drawn at random)."""


class YeoJohnson:
    """Skewed columns through the Yeo-Johnson power transform (Yeo & Johnson 2000; scikit-learn's
    ``PowerTransformer``), its exponent ``lambdas`` fitted by maximum likelihood (SciPy's
    ``yeojohnson_normmax``): log-like for a heavy right tail, the identity at exponent 1.

    On the way out a value is first kept within the image of ``low``/``high`` (the training range
    widened by its width), so that a far sample (the exponential of a large one, at exponent 0)
    cannot become infinite.
    """

    kind = "yeo_johnson"

    def __init__(self, columns: list[int], lambdas: list[float], low: list[float], high: list[float]):
        self.columns, self.lambdas = list(columns), list(lambdas)
        self.low, self.high = list(low), list(high)

    @classmethod
    def fit(cls, x: torch.Tensor, columns: list[int]) -> YeoJohnson:
        from scipy import stats

        rng = np.random.default_rng(0)
        lambdas, low, high = [], [], []
        for j in columns:
            v = x[:, j].double().numpy()
            sample = rng.choice(v, POWER_FIT_ROWS, replace=False) if len(v) > POWER_FIT_ROWS else v
            with np.errstate(all="ignore"), warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # overflow of far exponents tried
                fitted = stats.yeojohnson_normmax(sample)
            lambdas.append(float(np.clip(fitted, *POWER_EXPONENTS)))
            width = float(v.max() - v.min())
            low.append(float(v.min()) - width)
            high.append(float(v.max()) + width)
        return cls(columns, lambdas, low, high)

    @staticmethod
    def _transform(v: torch.Tensor, lam: float) -> torch.Tensor:
        positive = v >= 0
        up = torch.log1p(v.clamp(min=0)) if lam == 0 else (torch.pow(v.clamp(min=0) + 1, lam) - 1) / lam
        down = (-torch.log1p(-v.clamp(max=0)) if lam == 2
                else -(torch.pow(1 - v.clamp(max=0), 2 - lam) - 1) / (2 - lam))
        return torch.where(positive, up, down)

    @staticmethod
    def _untransform(y: torch.Tensor, lam: float) -> torch.Tensor:
        positive = y >= 0
        up = torch.expm1(y.clamp(min=0)) if lam == 0 else torch.pow(lam * y.clamp(min=0) + 1, 1 / lam) - 1
        down = (-torch.expm1(-y.clamp(max=0)) if lam == 2
                else 1 - torch.pow(1 - (2 - lam) * y.clamp(max=0), 1 / (2 - lam)))
        return torch.where(positive, up, down)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x.clone()
        for j, lam in zip(self.columns, self.lambdas):
            y[:, j] = self._transform(x[:, j], lam)
        return y

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        x = y.clone()
        for j, lam, low, high in zip(self.columns, self.lambdas, self.low, self.high):
            ends = self._transform(torch.tensor([low, high], dtype=torch.float64), lam).to(y.dtype)
            x[:, j] = self._untransform(y[:, j].clamp(float(ends[0]), float(ends[1])), lam)
        return x

    def log_slopes(self, x: torch.Tensor) -> torch.Tensor:
        slopes = torch.zeros_like(x)
        for j, lam in zip(self.columns, self.lambdas):
            v = x[:, j]  # d/dv: (1 + v)^(lam - 1) above 0, (1 - v)^(1 - lam) below
            slopes[:, j] = torch.where(v >= 0, (lam - 1) * torch.log1p(v.clamp(min=0)),
                                       (1 - lam) * torch.log1p(-v.clamp(max=0)))
        return slopes

    def state(self) -> dict[str, Any]:
        return {"kind": self.kind, "columns": self.columns, "lambdas": self.lambdas,
                "low": self.low, "high": self.high}


class Bounded:
    """Columns with bounds: log(x - low) or log(high - x) for one, logit for two.

    A column whose training values sit exactly on a bound gets a ``margin`` there: half the gap
    between the bound and the nearest value inside, so that the values on the bound land next to
    their neighbours after the transform (not as far-out outliers), and samples can land on the
    bound as the data does. A bound the data never touches has no margin and is never reached:
    samples stay strictly inside it.
    """

    kind = "bounded"

    def __init__(self, columns: list[int], low: list[float | None], high: list[float | None],
                 margin: list[float]):
        self.columns, self.low, self.high, self.margin = list(columns), list(low), list(high), list(margin)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = x.clone()
        for j, low, high, margin in zip(self.columns, self.low, self.high, self.margin):
            v = x[:, j]
            if low is not None and high is not None:
                p = (v - low + margin) / (high - low + 2 * margin)
                y[:, j] = torch.logit(p)
            elif low is not None:
                y[:, j] = torch.log(v - low + margin)
            else:
                y[:, j] = -torch.log(high - v + margin)
        return y

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        x = y.clone()
        for j, low, high, margin in zip(self.columns, self.low, self.high, self.margin):
            v = y[:, j]
            if low is not None and high is not None:
                value = torch.sigmoid(v) * (high - low + 2 * margin) + low - margin
            elif low is not None:
                value = torch.exp(v) + low - margin
            else:
                value = high + margin - torch.exp(-v)
            x[:, j] = value.clamp(*_reachable(low, high, margin, value))
        return x

    def log_slopes(self, x: torch.Tensor) -> torch.Tensor:
        slopes = torch.zeros_like(x)
        for j, low, high, margin in zip(self.columns, self.low, self.high, self.margin):
            v = x[:, j]
            if low is not None and high is not None:
                p = (v - low + margin) / (high - low + 2 * margin)  # d logit(p) = dp / (p (1 - p))
                slopes[:, j] = -torch.log(p * (1 - p) * (high - low + 2 * margin))
            elif low is not None:
                slopes[:, j] = -torch.log(v - low + margin)
            else:
                slopes[:, j] = -torch.log(high - v + margin)
        return slopes

    def state(self) -> dict[str, Any]:
        return {"kind": self.kind, "columns": self.columns, "low": self.low, "high": self.high,
                "margin": self.margin}


def _reachable(low: float | None, high: float | None, margin: float, like: torch.Tensor):
    """The closed range samples may take: the bounds themselves only where the data touched them."""

    def inside(bound: float | None, direction: float) -> torch.Tensor | None:
        if bound is None:
            return None
        bound_tensor = torch.tensor(bound, dtype=like.dtype)
        if margin > 0:
            return bound_tensor
        return torch.nextafter(bound_tensor, torch.tensor(direction, dtype=like.dtype))

    return inside(low, float("inf")), inside(high, float("-inf"))


class DropConstant:
    """Constant columns leave the model and come back with their value on the way out."""

    kind = "drop_constant"

    def __init__(self, columns: list[int], values: list[float], width: int):
        self.columns, self.values, self.width = list(columns), list(values), width
        self.kept = [j for j in range(width) if j not in set(self.columns)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, self.kept]

    no_density = "its constant columns are a point mass, which has no density"

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        x = y.new_empty(len(y), self.width)
        x[:, self.kept] = y
        x[:, self.columns] = torch.tensor(self.values, dtype=y.dtype)
        return x

    def state(self) -> dict[str, Any]:
        return {"kind": self.kind, "columns": self.columns, "values": self.values, "width": self.width}


class Standardize:
    """Per column, subtract the mean and divide by the standard deviation."""

    kind = "standardize"

    def __init__(self, mean: list[float], std: list[float]):
        self.mean = torch.tensor(mean, dtype=torch.float64)
        self.std = torch.tensor(std, dtype=torch.float64)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean.to(x.dtype)) / self.std.to(x.dtype)

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        return y * self.std.to(y.dtype) + self.mean.to(y.dtype)

    def log_slopes(self, x: torch.Tensor) -> torch.Tensor:
        return -self.std.log().to(x.dtype).expand_as(x)

    def state(self) -> dict[str, Any]:
        return {"kind": self.kind, "mean": self.mean.tolist(), "std": self.std.tolist()}


class Quantile:
    """Each column through its empirical CDF to a standard normal (for skewed, heavy tails).

    Piecewise linear between ``levels`` quantiles, the first and last being the data's minimum
    and maximum: samples stay within the observed range (as scikit-learn's QuantileTransformer).
    """

    kind = "quantile"

    def __init__(self, quantiles: list[list[float]], references: list[float]):
        self.quantiles = np.asarray(quantiles, dtype=np.float64)  # (levels, columns)
        self.references = np.asarray(references, dtype=np.float64)

    @classmethod
    def fit(cls, x: np.ndarray, levels: int = 1000) -> Quantile:
        from scipy import stats

        levels = int(min(levels, len(x)))
        probabilities = np.linspace(0, 1, levels)
        quantiles = np.maximum.accumulate(np.quantile(x, probabilities, axis=0))
        # The end knots (minimum, maximum) go to the normal quantiles of 1/2n and 1 - 1/2n.
        probabilities = probabilities.clip(0.5 / len(x), 1 - 0.5 / len(x))
        return cls(quantiles.tolist(), stats.norm.ppf(probabilities).tolist())

    @functools.cached_property
    def _forward_knots(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """Each column's tie-aware knots, built once on first use."""
        return [_tie_aware_knots(self.quantiles[:, j], self.references)
                for j in range(self.quantiles.shape[1])]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        columns = []
        for j in range(x.shape[1]):
            knots, references = self._forward_knots[j]
            columns.append(np.interp(x[:, j].numpy(), knots, references))
        return torch.as_tensor(np.stack(columns, 1), dtype=x.dtype)

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        columns = [np.interp(y[:, j].numpy(), self.references, self.quantiles[:, j])
                   for j in range(y.shape[1])]
        return torch.as_tensor(np.stack(columns, 1), dtype=y.dtype)

    def log_slopes(self, x: torch.Tensor) -> torch.Tensor:
        """The log slope of each column's piecewise-linear map: -inf outside the training range
        (the model puts no mass there)."""
        columns = []
        with np.errstate(divide="ignore"):
            for j in range(x.shape[1]):
                knots, references = self._forward_knots[j]
                slopes = np.diff(references) / np.diff(knots)
                v = x[:, j].numpy()
                segment = (np.searchsorted(knots, v, side="right") - 1).clip(0, len(slopes) - 1)
                inside = (v >= knots[0]) & (v <= knots[-1])
                columns.append(np.where(inside, np.log(slopes[segment]), -np.inf))
        return torch.as_tensor(np.stack(columns, 1), dtype=x.dtype)

    def state(self) -> dict[str, Any]:
        return {"kind": self.kind, "quantiles": self.quantiles.tolist(),
                "references": self.references.tolist()}


def _tie_aware_knots(quantiles: np.ndarray, references: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Increasing knots for the forward map of ``Quantile``, where the data may repeat a value.

    A repeated value fills several knots, spanning a range of normal scores that the inverse map
    sends back to it. Forward, the value itself goes to the normal quantile of the middle of that
    range's probability (its mid-rank), and the nearest floats either side of it to the range's
    ends, so values near a tie map where the inverse expects them.
    """
    from scipy import stats

    values, first, counts = np.unique(quantiles, return_index=True, return_counts=True)
    knots, scores = [], []
    for value, start, count in zip(values, first, counts):
        if count == 1:
            knots.append(value)
            scores.append(references[start])
            continue
        low, high = references[start], references[start + count - 1]
        middle = stats.norm.ppf(stats.norm.cdf(references[start : start + count]).mean())
        knots += [np.nextafter(value, -np.inf), value, np.nextafter(value, np.inf)]
        scores += [low, middle, high]
    return np.asarray(knots), np.asarray(scores)


STEPS = {cls.kind: cls for cls in (Round, Clip, Decimals, SignificantDigits, Bounded, YeoJohnson,
                                   DropConstant, Standardize, Quantile)}


WRITING_STEPS = ("round", "decimals", "digits", "clip")
"""Steps that only shape how a sample is written (``Pipeline.inverse``)."""

SIGNIFICANT_DIGITS = 9
"""Significant digits of a model's numbers as written: float32's seven and two more, so that a
file of samples reads as numbers, not as float64 noise, while the data's own cells (given cells,
observed ones in ``impute``) are written to their last digit."""


def significant(x: torch.Tensor, digits: int = SIGNIFICANT_DIGITS) -> torch.Tensor:
    """``x`` rounded to ``digits`` significant digits, each to the float64 nearest that decimal
    (so that Python writes it with at most ``digits``: 0.123456789, not 0.12345678912345678);
    zeros, infinities, NaN and numbers too small to scale (below about 1e-290) as they are.

    >>> x = torch.tensor([1234.56789012, -0.000123456789012, 98765432109.8, 0.0], dtype=torch.float64)
    >>> [str(v) for v in significant(x).tolist()]
    ['1234.56789', '-0.000123456789', '98765432100.0', '0.0']
    """
    size = x.abs()
    scalable = x.isfinite() & (size > 1e-290)
    places = (digits - 1 - torch.floor(torch.log10(torch.where(scalable, size, 1.0)))).clamp(max=300)
    # Dividing by an exact power of ten (10**22 at most) rounds to the nearest float64 of the
    # decimal; multiplying by 10**-places (inexact below 1) would not.
    up, down = 10.0 ** places.clamp(min=0), 10.0 ** (-places).clamp(min=0)
    rounded = torch.where(places >= 0, torch.round(x * up) / up, torch.round(x / down) * down)
    rounded = torch.where(scalable, rounded, x)
    tiny = scalable & (places > 22)  # below 1e-14: rare, rounded through text
    rounded[tiny] = torch.tensor([float(f"{v:.{digits}g}") for v in x[tiny].tolist()], dtype=x.dtype)
    return rounded


def significant_digits(values: torch.Tensor, stored: torch.dtype = torch.float64) -> int | None:
    """The fewest significant digits, fewer than ``SIGNIFICANT_DIGITS``, that write every value
    as it is stored (a physicist's 3.469e-07 and 1.2e-05: 4), or None.

    >>> significant_digits(torch.tensor([3.469e-07, 1.2e-05, -2.0e-08], dtype=torch.float64))
    4
    """
    values = values.double()
    for digits in range(1, SIGNIFICANT_DIGITS):
        # the first thousand values rule most digits out before the whole column is rounded
        if all(torch.equal(significant(v, digits).to(stored), v.to(stored)) for v in (values[:1000], values)):
            return digits
    return None


class Pipeline:
    """The fitted steps; ``forward`` runs them in order, ``inverse`` backwards."""

    def __init__(self, steps: Sequence[Any], width: int):
        self.steps = list(steps)
        self.width = width

    @property
    def transformed_dim(self) -> int:
        """Columns the network sees (constant columns removed)."""
        drop = [s for s in self.steps if isinstance(s, DropConstant)]
        return len(drop[0].kept) if drop else self.width

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for step in self.steps:
            x = step.forward(x)
        return x

    def inverse(self, y: torch.Tensor, written: bool = True) -> torch.Tensor:
        """The data's values of encoded rows ``y``; ``written=False`` leaves out the steps that
        shape how a sample is written (rounding, decimals, the training range): the value itself,
        which may lie beyond the training range. Written, the numbers of columns that no step
        rounds and that are not constant keep ``SIGNIFICANT_DIGITS`` (before the training range:
        its ends are the data's own numbers)."""
        exact = {j for step in self.steps if step.kind in ("round", "decimals", "digits", "drop_constant")
                 for j in step.columns}
        free = [j for j in range(self.width) if j not in exact] if written else []
        for step in reversed(self.steps):
            if free and step.kind in WRITING_STEPS:
                y, free = self._significant(y, free), []
            if written or step.kind not in WRITING_STEPS:
                y = step.inverse(y)
        return self._significant(y, free) if free else y

    def _significant(self, y: torch.Tensor, columns: list[int]) -> torch.Tensor:
        """``y`` with ``columns`` cut to ``SIGNIFICANT_DIGITS``, except where that would reach a
        bound (0.9999999999 is not 1)."""
        y = y.clone()
        rounded = significant(y[:, columns])
        for step in self.steps:
            for j, low, high in zip(step.columns, step.low, step.high) if step.kind == "bounded" else ():
                if j in columns:
                    k = columns.index(j)
                    beyond = (rounded[:, k] <= (-math.inf if low is None else low)) | (
                        rounded[:, k] >= (math.inf if high is None else high))
                    rounded[:, k] = torch.where(beyond, y[:, j], rounded[:, k])
        y[:, columns] = rounded
        return y

    def forward_and_log_det(self, x: torch.Tensor, columns: Sequence[int] | None = None
                            ) -> tuple[torch.Tensor, torch.Tensor]:
        """``forward(x)`` and log |det d forward / dx| per row: densities in the encoded space
        plus this are densities in the data's units. Every step maps each column on its own, so
        the Jacobian is diagonal: with ``columns`` (indices into ``x``'s), the log-determinant
        of those columns' maps alone, which turns a conditional density of their encoded values
        into one in their units. Raises ``NoDensity`` where an integer or constant column is
        among them."""
        selected = list(range(x.shape[1])) if columns is None else list(columns)
        total = x.new_zeros(len(x))
        for step in self.steps:
            if hasattr(step, "no_density"):  # a discrete step: no slope, and no density where it acts
                if set(step.columns) & set(selected):
                    raise NoDensity(step.no_density)
                if isinstance(step, DropConstant):  # the later steps see the kept columns only
                    selected = [step.kept.index(j) for j in selected]
            else:
                total = total + step.log_slopes(x)[:, selected].sum(1)
            x = step.forward(x)
        return x, total

    def state(self) -> dict[str, Any]:
        return {"width": self.width, "steps": [s.state() for s in self.steps]}


def fit(
    x: torch.Tensor,
    columns: list[str],
    scaling: str = "auto",
    bounds: dict[str, tuple[float | None, float | None]] | None = None,
    integer: Sequence[str] = (),
    keep_constant: bool | Sequence[str] = False,
    decimals: dict[str, int] | None = None,
    digits: dict[str, int] | None = None,
    clip: bool = False,
) -> Pipeline:
    """Fit a pipeline on training data ``x`` (n, d) whose columns are named ``columns``; the
    columns named in ``decimals`` are rounded to so many decimal places on the way out, those in
    ``digits`` to so many significant digits, and, with
    ``clip``, the columns that are not integer (which always are) kept within their training
    range. ``scaling``: ``auto`` standardises, after a Yeo-Johnson transform of the columns skewed
    beyond ``SKEWED``; ``standardize``, ``quantile`` or ``none``. A constant column is refused
    unless ``keep_constant`` is True or names it: it is then passed through unchanged."""
    index = {name: j for j, name in enumerate(columns)}

    def position(name: str, option: str) -> int:
        if name not in index:
            raise no_such_column(option, name, columns)
        return index[name]

    steps: list[Any] = []
    rounded = [position(name, "data.integer") for name in integer]
    if rounded:
        steps.append(Round(rounded, x[:, rounded].amin(0).tolist(), x[:, rounded].amax(0).tolist()))
    clipped = [j for j in range(x.shape[1]) if j not in rounded] if clip and len(x) else []
    if clipped:
        steps.append(Clip(clipped, x[:, clipped].amin(0).tolist(), x[:, clipped].amax(0).tolist()))
    if decimals:
        written = {position(name, "decimals"): places for name, places in decimals.items()}
        steps.append(Decimals(list(written), list(written.values())))
    if digits:
        written = {position(name, "digits"): kept for name, kept in digits.items()}
        steps.append(SignificantDigits(list(written), list(written.values())))
    bounded_columns: list[int] = []
    if bounds:
        bounded = _bounded(x, {position(n, "data.bounds"): b for n, b in bounds.items()}, columns)
        steps.append(bounded)
        x = bounded.forward(x)
        bounded_columns = bounded.columns
    std = x.std(0) if len(x) > 1 else torch.zeros(x.shape[1], dtype=x.dtype)
    constant = [j for j in range(x.shape[1]) if not std[j] > 0]
    if scaling == "auto" and len(x) > 2:
        candidates = [j for j in range(x.shape[1]) if j not in bounded_columns and j not in constant]
        skewed = [j for j in candidates if abs(skewness(x[:, j].double().numpy())) > SKEWED]  # no table copy
        if skewed:
            power = YeoJohnson.fit(x, skewed)
            steps.append(power)
            x = power.forward(x)
    kept = constant if keep_constant is True else [j for j in constant if columns[j] in (keep_constant or ())]
    refused = [j for j in constant if j not in kept]
    if refused and scaling != "none":
        raise UserError(
            f"column {columns[refused[0]]!r} is constant: it cannot be standardised "
            f"(pass {advice({'data.keep_constant': True})} to pass it through unchanged)"
        )
    if kept:
        drop = DropConstant(kept, x[0, kept].tolist(), x.shape[1])
        steps.append(drop)
        x = drop.forward(x)
    if not x.shape[1]:  # every column constant: nothing left to scale
        return Pipeline(steps, len(columns))
    if scaling in ("standardize", "auto"):
        steps.append(Standardize(x.mean(0).tolist(), x.std(0).tolist()))
    elif scaling == "quantile":
        steps.append(Quantile.fit(x.numpy()))
    return Pipeline(steps, len(columns))


def _bounded(x: torch.Tensor, bounds: dict[int, tuple], columns: list[str]) -> Bounded:
    indices, lows, highs, margins = [], [], [], []
    for j, (low, high) in sorted(bounds.items()):
        if low is None and high is None:
            continue
        if low is not None and high is not None and not low < high:
            raise UserError(f"bounds of column {columns[j]!r}: the lower must be below the upper")
        v = x[:, j]
        if (low is not None and bool((v < low).any())) or (high is not None and bool((v > high).any())):
            raise UserError(
                f"column {columns[j]!r} has values outside its bounds [{low}, {high}] "
                f"(min {float(v.min()):g}, max {float(v.max()):g})"
            )
        indices.append(j)
        lows.append(low)
        highs.append(high)
        margins.append(_margin(v, low, high))
    return Bounded(indices, lows, highs, margins)


def _margin(v: torch.Tensor, low: float | None, high: float | None) -> float:
    """Half the gap between a touched bound and the nearest value inside it; 0 if none is touched."""
    gaps = []
    for bound in (low, high):
        if bound is None or not bool((v == bound).any()):
            continue
        inside = (v - bound).abs()
        inside = inside[inside > 0]
        spread = float(v.std()) if len(v) > 1 and float(v.std()) > 0 else 1.0
        gaps.append(float(inside.min()) / 2 if len(inside) else 1e-3 * spread)
    return min(gaps) if gaps else 0.0


def from_state(state: dict[str, Any]) -> Pipeline:
    """Rebuild a fitted pipeline from ``Pipeline.state()``."""
    try:
        steps = []
        for item in state["steps"]:
            item = dict(item)
            steps.append(STEPS[item.pop("kind")](**item))
        return Pipeline(steps, int(state["width"]))
    except (KeyError, TypeError) as exc:
        raise UserError(f"the model file's preprocessing is unreadable ({exc})") from None


def parse_bounds(text: str) -> dict[str, tuple[float | None, float | None]]:
    """``"mass=0:,fraction=0:1,depth=:100"`` to ``{"mass": (0, None), ...}`` (a name with a
    comma in it quoted as a CSV cell: ``'"weight, kg"=0:'``)."""
    import csv

    bounds: dict[str, tuple[float | None, float | None]] = {}
    for item in filter(None, (part.strip() for part in next(csv.reader([text]), []))):
        name, _, spec = item.rpartition("=")
        low, sep, high = spec.partition(":")
        if not name or not sep:
            raise UserError(f"bounds {item!r}: write COLUMN=LOW:HIGH, leaving a side empty if open")
        try:
            bounds[name.strip()] = (float(low) if low.strip() else None,
                                    float(high) if high.strip() else None)
        except ValueError:
            raise UserError(f"bounds {item!r}: LOW and HIGH must be numbers") from None
    return bounds
