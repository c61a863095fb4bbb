"""The encoder of a whole table: numeric columns through a ``Pipeline``, categorical columns,
missing cells and point masses as ±1 patterns the Gaussian diffusion models jointly with the
numbers.

Forward, a row of the matrix from ``columns.to_values`` (values, category codes, NaN) becomes:
its numeric columns, with a missing cell filled by a draw from the column's observed values,
through the numeric pipeline; then one pattern block per categorical column (a missing label is
one more category), per numeric column that has missing cells (present or missing), and per
numeric column with point masses (which of its repeated values the cell holds, or none).
Backward, each block goes to the category whose pattern is nearest (the largest inner product,
among the categories seen in training), a cell whose block names a point mass takes that value
exactly, and a numeric cell whose indicator says missing becomes NaN.

Point masses are values a continuous column takes far more often than any value near them: a
spike at 0 in an amount, readings mostly recorded whole (``point_masses``). Without them a
Gaussian diffusion spreads each spike into a bump (mode-specific encodings of tabular GANs, e.g.
CTAB-GAN's mixed columns, Zhao et al. 2021, keep them apart for the same reason). The block
names the point mass: a two-entry on/between block that left the value to say which one put
the wrong share on each (BENCHMARKS.md, "Tables").

Two pattern codes (Chen et al. 2023, "Analog Bits", for ``bits``): ``onehot`` gives a column with
k categories k entries, +1 for its own category and -1 for the others; ``bits`` gives it
ceil(log2 k) entries, the category's binary digits as ±1.

>>> import torch
>>> from simple_diffusion.data.columns import Column
>>> schema = [Column("mass", "numeric", nullable=True),
...           Column("kind", "categorical", "object", ["a", "b", "c"])]
>>> x = torch.tensor([[1.0, 0.0], [float("nan"), 2.0], [3.0, 1.0], [2.0, 0.0]], dtype=torch.float64)
>>> encoder = fit(x, schema, scaling="standardize")
>>> encoder.transformed_dim  # 1 numeric + 3 one-hot + 2 for mass present/missing
6
>>> torch.equal(encoder.inverse(encoder.forward(x)).isnan(), x.isnan())
True
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from ..errors import UserError, advice, no_such_column, said
from . import encoders
from .columns import Column, from_states
from .encoders import NoDensity

FILL_QUANTILES = 257
"""Quantiles of each numeric column kept to fill its missing cells with plausible values."""


MEASURED_CHUNK_ROWS = 1 << 16
"""Rows taken through the numeric pipeline at once when finding the missing cells of a table."""

POINT_MASS_SHARE, POINT_MASS_ROWS = 0.01, 5
"""A point mass holds at least this share of a column's observed cells, and this many cells."""
POINT_MASS_CONTRAST, POINT_MASS_WINDOW, POINT_MASS_NEIGHBOURS = 2.0, 0.25, 3
"""...and at least ``POINT_MASS_CONTRAST`` times as many cells as all other values within
``POINT_MASS_WINDOW`` standard deviations of it together, or within its ``POINT_MASS_NEIGHBOURS``
nearest distinct values on either side where those are nearer (a heavy tail inflates the
standard deviation: a town-population column in thousands, 24% of it 0 and the rest 1 to 7,300,
has the values 1 to 270 within a quarter of it): a column of whole-number readings (every value
repeated, its neighbours as often) has none, a spike at 0 or a column mostly recorded as 2, 3,
4 ... has them."""
POINT_MASS_GRID = 2
"""...and, whatever the window, as many cells as its ``POINT_MASS_GRID`` nearest distinct
values on either side together: on a measurement grid (iris' petal widths, 0.1 cm apart) the
most frequent reading, 0.2 with 29 of 150 cells, has 0.1 and 0.3 at 5 and 7 but 0.4 at 7 too:
a peak of the grid's density, not a spike above it."""
POINT_MASSES_MOST = 32
"""At most this many point masses per column (the most frequent)."""
CODED_ROWS_PER_VALUE = 20
"""A column of at most ``POINT_MASSES_MOST`` distinct values, not all whole, with this many
cells per distinct value or more, is a set of codes (RAND's health-insurance table scores
chronic disease as one of 31 values such as 9.967326 and 10.3 over 20,190 rows): every value
of it with ``POINT_MASS_ROWS`` cells is a point mass, however close to the next. Whole-number
columns are left to the rule above: rounding serves them."""
POINT_MASS_SAMPLE_ROWS = 1 << 20
"""Point masses (and whole codes) of a longer column are found on this many of its cells, drawn
at random."""


def _observed_sample(values: np.ndarray) -> np.ndarray:
    """A column's observed cells, at most ``POINT_MASS_SAMPLE_ROWS`` of them (drawn at random)."""
    values = values[~np.isnan(values)]
    if len(values) > POINT_MASS_SAMPLE_ROWS:
        values = np.random.default_rng(0).choice(values, POINT_MASS_SAMPLE_ROWS, replace=False)
    return values


def whole_codes(values: np.ndarray) -> bool:
    """Whether the observed cells ``values`` of a continuous column are codes or counts written
    as decimals (a 0/1 flag as 0.0 and 1.0, a quarter as 1.0-4.0): at most ``POINT_MASSES_MOST``
    distinct whole values, each in ``POINT_MASS_ROWS`` cells or more. Rounding writes their
    samples as the data was, but their values carry probability mass, not density.

    >>> whole_codes(np.array([0.0, 1.0] * 20)), whole_codes(np.arange(60.0).repeat(8))
    (True, False)
    >>> whole_codes(np.array([0.0, 1.0] * 20 + [0.5])), whole_codes(np.array([0.0] * 9 + [1.0] * 4))
    (False, False)
    """
    head = values[:1000]  # a continuous column says so in its first cells, cheaply
    head = head[~np.isnan(head)]
    if len(np.unique(head)) > POINT_MASSES_MOST or not np.array_equal(head, np.round(head)):
        return False
    unique, counts = np.unique(_observed_sample(values), return_counts=True)
    return (1 < len(unique) <= POINT_MASSES_MOST and bool(np.all(counts >= POINT_MASS_ROWS))
            and np.array_equal(unique, np.round(unique)))


def point_masses(values: np.ndarray) -> list[float]:
    """The values that the observed cells ``values`` of a continuous column take far more often
    than the values around them, in increasing order.

    >>> point_masses(np.array([0.0] * 30 + [0.3, 1.2, 2.5, 3.1, 4.7, 5.2, 6.8, 7.7, 8.1, 9.4]))
    [0.0]
    >>> point_masses(np.arange(100.0).repeat(3))  # whole-number readings: no spikes
    []
    >>> point_masses(np.r_[[0.0] * 24, np.arange(1.0, 21.0).repeat(2), 300.0, 7300.0])  # heavy tail
    [0.0]
    >>> point_masses(np.repeat([0.1, 0.2, 0.3, 0.4, 0.5, 1.3, 1.4, 1.5], [5, 29, 7, 7, 1, 13, 8, 12]))
    []
    >>> point_masses(np.array([9.967326, 10.3, 10.57626, 11.84267] * 30 + [3.4] * 2))  # codes
    [9.967326, 10.3, 10.57626, 11.84267]
    """
    values = _observed_sample(values)
    spread = values.std() if len(values) else 0.0
    if not spread > 0:
        return []
    unique, counts = np.unique(values, return_counts=True)
    if (len(unique) <= POINT_MASSES_MOST and len(values) >= CODED_ROWS_PER_VALUE * len(unique)
            and not np.array_equal(unique, np.round(unique))):  # codes: each value its own mass
        return unique[counts >= POINT_MASS_ROWS].tolist()
    below = np.concatenate([[0], np.cumsum(counts)])  # cells below each distinct value, and all
    last = len(unique) - 1
    index = np.arange(len(unique))
    neighbours = np.maximum(unique - unique[np.maximum(index - POINT_MASS_NEIGHBOURS, 0)],
                            unique[np.minimum(index + POINT_MASS_NEIGHBOURS, last)] - unique)
    reach = np.minimum(POINT_MASS_WINDOW * spread, neighbours)
    around = (below[np.searchsorted(unique, unique + reach, "right")]
              - below[np.searchsorted(unique, unique - reach, "left")] - counts)
    on_grid = (below[np.minimum(index + POINT_MASS_GRID + 1, last + 1)]
               - below[np.maximum(index - POINT_MASS_GRID, 0)] - counts)
    around = np.maximum(around, on_grid)
    spikes = ((counts >= max(POINT_MASS_ROWS, POINT_MASS_SHARE * len(values)))
              & (counts >= POINT_MASS_CONTRAST * around))
    most = np.argsort(-counts[spikes], kind="stable")[:POINT_MASSES_MOST]
    return sorted(unique[spikes][most].tolist())


ONEHOT_MOST = 10
"""``auto`` encodes a categorical column of at most this many categories one-hot, a larger one
and every point-mass block as analog bits (BENCHMARKS.md, "Tables": one-hot is better on
penguins' columns of 2-4 categories and digits' label of 10; bits on the point masses of RAND's
health-insurance table, blocks of 6-30 entries, and as good on diabetes' `s4`)."""
ONEHOT_MOST_ENTRIES = 64
"""...while the categorical columns' one-hot blocks come to at most this many entries in all;
beyond, ``auto`` encodes every categorical column as analog bits. On synthetic surveys
(BENCHMARKS.md, "Tables", many categorical columns) one-hot's answer frequencies drift from the
data's as the blocks multiply: per-column total variation 0.240 against bits' 0.079 at 20
questions of 8 answers (160 entries; held-out floor 0.055), 0.163 against 0.106 at 320 entries,
0.061 against 0.047 at 120 (40 questions of 3); at 80 entries bits halve the excess (0.067
against 0.081, floor 0.053; pair trends 0.070 against 0.080) for a ratio 0.02 higher; at 40 the
two are equal."""


def onehot_entries(sizes: Sequence[int], categorical: int) -> int:
    """The one-hot entries of the first ``categorical`` blocks (the categorical columns') that
    have at most ``ONEHOT_MOST`` categories."""
    return sum(size for size in sizes[:categorical] if size <= ONEHOT_MOST)


def patterns(size: int, encoding: str) -> torch.Tensor:
    """The ±1 pattern of each of ``size`` categories, shape (size, width).

    >>> patterns(3, "bits").tolist()
    [[-1.0, -1.0], [-1.0, 1.0], [1.0, -1.0]]
    >>> patterns(3, "auto").shape, patterns(30, "auto").shape
    (torch.Size([3, 3]), torch.Size([30, 5]))
    """
    if encoding == "auto":
        encoding = "onehot" if size <= ONEHOT_MOST else "bits"
    if encoding == "onehot":
        return 2 * torch.eye(size, dtype=torch.float64) - 1
    width = max(1, math.ceil(math.log2(size)))
    digits = (torch.arange(size)[:, None] >> torch.arange(width - 1, -1, -1)) & 1
    return 2 * digits.to(torch.float64) - 1


class TableEncoder:
    """A table's numeric pipeline, category patterns, missing-cell indicators and point masses,
    fitted. ``sizes`` and ``seen`` list the blocks in order: categorical columns, numeric columns
    with missing cells, numeric columns with point masses (``masses``: each one's values, in
    increasing order). ``whole_code_columns``: numeric columns that hold a few whole values
    (``whole_codes``), learnt as numbers but without a density."""

    def __init__(self, schema: Sequence[Column], numeric: encoders.Pipeline, encoding: str,
                 sizes: list[int], seen: list[list[int]], fill: list[list[float]],
                 missing_numeric: list[int], missing_category: list[int],
                 point_mass_columns: Sequence[int] = (), masses: Sequence[list[float]] = (),
                 categories_as_bits: bool = False, whole_code_columns: Sequence[int] = ()):
        self.schema = list(schema)
        self.numeric, self.encoding = numeric, encoding
        self.sizes, self.seen, self.fill = list(sizes), [list(s) for s in seen], [list(f) for f in fill]
        self.missing_numeric, self.missing_category = list(missing_numeric), list(missing_category)
        self.point_mass_columns, self.masses = list(point_mass_columns), [list(m) for m in masses]
        self.numeric_columns = [j for j, c in enumerate(self.schema) if c.kind != "categorical"]
        self.categorical_columns = [j for j, c in enumerate(self.schema) if c.kind == "categorical"]
        self.whole_code_columns = list(whole_code_columns)
        self.categories_as_bits = categories_as_bits
        """``auto`` with more one-hot entries than ``ONEHOT_MOST_ENTRIES``: categories as bits."""
        self.patterns = [patterns(size, self._encoding(block)) for block, size in enumerate(self.sizes)]

    @property
    def onehot_entries(self) -> int:
        return onehot_entries(self.sizes, len(self.categorical_columns))

    def _encoding(self, block: int) -> str:
        """The pattern code of one block: under ``auto``, bits for point masses (and for
        categories, ``categories_as_bits``), else by its size."""
        if self.encoding != "auto":
            return self.encoding
        category = block < len(self.categorical_columns)
        as_bits = block >= self._first_mass or (self.categories_as_bits and category)
        return "bits" if as_bits else "auto"

    @property
    def width(self) -> int:
        return len(self.schema)

    @property
    def transformed_dim(self) -> int:
        """Columns the network sees."""
        return self.numeric.transformed_dim + sum(p.shape[1] for p in self.patterns)

    # -- codes: one per block (categorical columns, missing cells, point masses) --------------
    def _codes(self, x: torch.Tensor, numbers: torch.Tensor) -> torch.Tensor:
        """The category of each block for rows ``x`` whose numeric columns, gaps filled, are
        ``numbers``."""
        codes = [x[:, j] for j in self.categorical_columns]
        for k, j in enumerate(self.categorical_columns):
            if j in self.missing_category:  # a missing label is the category after the last
                codes[k] = torch.where(codes[k].isnan(), float(len(self.schema[j].categories)), codes[k])
        codes += [x[:, j].isnan().to(x.dtype) for j in self.missing_numeric]
        codes += [_mass_codes(numbers[:, self.numeric_columns.index(j)], masses).to(x.dtype)
                  for j, masses in zip(self.point_mass_columns, self.masses)]
        return torch.stack(codes, 1) if codes else x.new_zeros(len(x), 0)

    @property
    def _first_mass(self) -> int:
        """The index of the first point-mass block (they come after the other blocks)."""
        return len(self.categorical_columns) + len(self.missing_numeric)

    def _blocks(self) -> list[tuple[int, range]]:
        """(column, encoded coordinates) of each pattern block, in the order of ``sizes``."""
        owners = self.categorical_columns + self.missing_numeric + self.point_mass_columns
        blocks, start = [], self.numeric.transformed_dim
        for j, p in zip(owners, self.patterns):
            blocks.append((j, range(start, start + p.shape[1])))
            start += p.shape[1]
        return blocks

    def _filled(self, x: torch.Tensor) -> torch.Tensor:
        """The numeric columns, each missing cell replaced by a draw from its column's values."""
        numbers = x[:, self.numeric_columns].clone()
        generator = torch.Generator().manual_seed(0)  # the same rows always encode alike
        for j, quantiles in zip(self.missing_numeric, self.fill):
            k = self.numeric_columns.index(j)
            gaps = numbers[:, k].isnan()
            u = torch.rand(int(gaps.sum()), generator=generator, dtype=torch.float64)
            levels = torch.linspace(0, 1, len(quantiles), dtype=torch.float64)
            numbers[gaps, k] = torch.as_tensor(np.interp(u, levels, quantiles), dtype=x.dtype)
        return numbers

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        numbers = self._filled(x)
        codes = self._codes(x, numbers)
        if codes.isnan().any():
            raise UserError("a categorical cell is missing where the training data had none")
        blocks = [self.numeric.forward(numbers)]
        blocks += [p[codes[:, k].long()].to(x.dtype) for k, p in enumerate(self.patterns)]
        return torch.cat(blocks, 1)

    def inverse(self, y: torch.Tensor, complete: bool = False, written: bool = True) -> torch.Tensor:
        """Rows in the data's units from encoded rows; ``complete`` never decodes a missing
        label (for filled gaps); ``written=False`` leaves the numbers unrounded and unclipped
        (``Pipeline.inverse``)."""
        x = y.new_empty(len(y), self.width)
        split = self.numeric.transformed_dim
        x[:, self.numeric_columns] = self.numeric.inverse(y[:, :split], written=written)
        codes = []
        for k, (p, seen) in enumerate(zip(self.patterns, self.seen)):
            width = p.shape[1]
            scores = y[:, split : split + width] @ p.T.to(y.dtype)
            allowed = torch.full((p.shape[0],), -math.inf, dtype=y.dtype)
            allowed[seen] = 0
            if complete and k < len(self.categorical_columns):
                column = self.schema[self.categorical_columns[k]]
                allowed[len(column.categories):] = -math.inf
            codes.append((scores + allowed).argmax(1).to(y.dtype))
            split += width
        for k, j in enumerate(self.categorical_columns):
            missing = codes[k] == len(self.schema[j].categories)
            x[:, j] = torch.where(missing, math.nan, codes[k])
        for code, j, masses in zip(codes[self._first_mass:], self.point_mass_columns, self.masses):
            spike = code < len(masses)  # the last category: a value between the point masses
            values = torch.tensor(masses, dtype=y.dtype)[code.long().clamp(max=len(masses) - 1)]
            x[:, j] = torch.where(spike, values, x[:, j])
        for k, j in enumerate(self.missing_numeric):
            if not complete:
                x[:, j] = torch.where(codes[len(self.categorical_columns) + k] == 1, math.nan, x[:, j])
        return x

    def values_of(self, j: int, z: torch.Tensor) -> torch.Tensor:
        """Numeric column ``j``'s values in the data's units from its encoded value coordinate
        ``z`` (one per row), the other columns left aside; neither rounded nor kept within the
        training range (a date given beyond it keeps its place in the year)."""
        full = z.new_zeros(len(z), self.numeric.transformed_dim, dtype=torch.float64)
        full[:, self.coordinates()[j][0]] = z
        return self.numeric.inverse(full, written=False)[:, self.numeric_columns.index(j)]

    def coordinates(self) -> list[list[int]]:
        """The encoded coordinates of each column: a numeric column's value (none if constant),
        its present/missing block and its point-mass block, a categorical column's pattern block."""
        drops = [s for s in self.numeric.steps if isinstance(s, encoders.DropConstant)]
        kept = drops[0].kept if drops else list(range(len(self.numeric_columns)))
        where: list[list[int]] = [[] for _ in self.schema]
        for position, k in enumerate(kept):
            where[self.numeric_columns[k]].append(position)
        for j, block in self._blocks():
            where[j].extend(block)
        return where

    def cell_groups(self) -> list[list[int]]:
        """Coordinates that are known or unknown together: a numeric column's value with its
        point-mass block, a categorical column's pattern, a numeric column's present/missing
        block (a cell to fill has its block known, present, and its value unknown)."""
        gaps = self._blocks()[len(self.categorical_columns):][: len(self.missing_numeric)]
        indicators = {k for _, block in gaps for k in block}
        parts = ([[k for k in where if k not in indicators], [k for k in where if k in indicators]]
                 for where in self.coordinates())
        return [group for pair in parts for group in pair if group]

    def measured(self, x: torch.Tensor) -> torch.Tensor | None:
        """Where ``forward(x)`` holds the rows' own values: every coordinate but a missing
        numeric cell's, which ``forward`` fills with a draw from its column; None where that is
        every coordinate (no numeric column may miss a cell)."""
        if not self.missing_numeric:
            return None
        mask = torch.ones(len(x), self.transformed_dim, dtype=torch.bool)
        for rows in torch.arange(len(x)).split(MEASURED_CHUNK_ROWS):  # bounded memory
            numbers = self.numeric.forward(x[rows][:, self.numeric_columns])  # NaN stays NaN
            mask[rows, : numbers.shape[1]] = ~numbers.isnan()
        for j, block in self._blocks()[self._first_mass:]:  # a filled cell's spike is the draw's
            mask[:, block.start : block.stop] &= ~x[:, j].isnan()[:, None]
        return mask

    def known(self, x: torch.Tensor, fill: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
        """The encoded rows of ``x`` with where they are known: each observed cell's
        coordinates are known, a missing cell's are not (zero). A numeric column's
        present/missing block is known to say present where its cell is observed and, with
        ``fill`` (the cell is to be filled), where it is missing too."""
        z = x.new_zeros(len(x), self.transformed_dim)
        mask = torch.zeros(len(x), self.transformed_dim, dtype=torch.bool)
        numbers = self.numeric.forward(x[:, self.numeric_columns])  # NaN stays NaN, per column
        observed = ~numbers.isnan()
        z[:, : numbers.shape[1]] = numbers.nan_to_num(0.0)
        mask[:, : numbers.shape[1]] = observed
        first_mass = self._first_mass
        for k, ((j, block), p) in enumerate(zip(self._blocks(), self.patterns)):
            observed_cell = ~x[:, j].isnan()
            if k < len(self.categorical_columns):  # the label
                rows, codes = observed_cell, x[observed_cell, j].long()
            elif k < first_mass:  # present, also where the cell is to be filled
                rows = torch.ones_like(observed_cell) if fill else observed_cell
                codes = torch.zeros(int(rows.sum()), dtype=torch.long)
            else:  # which point mass the value is on, if any
                rows = observed_cell
                codes = _mass_codes(x[observed_cell, j], self.masses[k - first_mass])
            z[rows, block.start : block.stop] = p[codes].to(x.dtype)
            mask[rows, block.start : block.stop] = True
        return z, mask

    def forward_and_log_det(self, x: torch.Tensor, columns: Sequence[int] | None = None
                            ) -> tuple[torch.Tensor, torch.Tensor]:
        """``forward(x)`` with the log-Jacobian of the numeric columns' maps (of ``columns``
        alone where given: the columns whose conditional density is asked for); raises
        ``NoDensity`` where a categorical column, a missing cell, a point mass or whole values
        among them put probability mass, not density, on the rows."""
        selected = set(range(len(self.schema)) if columns is None else columns)
        mass = "a probability mass, not a density"
        discrete = [(self.categorical_columns, f"is categorical ({mass})"),
                    (self.missing_numeric, f"has missing cells ({mass})"),
                    (self.point_mass_columns, f"has point masses (values it takes repeatedly: {mass})"),
                    (self.whole_code_columns,
                     f"takes a few whole values, each in many rows (codes or counts: {mass})"),
                    ([j for j, c in enumerate(self.schema) if c.kind == "integer"],
                     f"takes whole values ({mass})")]
        for owners, reason in discrete:
            among = [j for j in owners if j in selected]
            if among:
                hint = "" if columns is not None else self._density_advice()
                raise NoDensity(f"column {self.schema[among[0]].name!r} {reason}", hint)
        numbers = [k for k, j in enumerate(self.numeric_columns) if j in selected]
        _, log_det = self.numeric.forward_and_log_det(x[:, self.numeric_columns], numbers)
        return self.forward(x), log_det

    def _density_advice(self) -> str:
        """Which training options give a model of this table's continuous columns a density:
        counts and point masses declared numeric, dates and categories left out, rows with
        gaps dropped; or, keeping the categories and dates as conditions, a density given them."""
        counts = [c.name for c in self.schema if c.kind == "integer" and not c.time_unit]
        kept = [c.name for c in self.schema if c.kind == "numeric" or c.name in counts]
        if not kept:
            return "; only numeric columns have one"
        options: dict[str, Any] = {}
        if self.missing_numeric:
            options["data.drop_missing"] = True
        continuous = [self.schema[j].name for j in self.point_mass_columns + self.whole_code_columns] + counts
        if continuous:
            options["data.numeric"] = [name for name in kept if name in continuous]
        alone = f"; a model trained with {advice(self._columns(kept) | options)} has one"
        given = [c.name for c in self.schema if c.kind == "categorical" or (c.time_unit and c.time_origin)]
        if not given:
            return alone
        conditional = self._columns([c.name for c in self.schema if c.name in kept + given])
        return (f"{alone}, and one trained with {advice(conditional | {'condition': given} | options)} the "
                f"density of the rest given {'them' if len(given) > 1 else 'it'} "
                f"({said('score --conditional', 'log_prob(x, given=...)')})")

    def _columns(self, names: list[str]) -> dict[str, Any]:
        """The ``columns`` option that keeps ``names`` (none where they are all the columns)."""
        return {"columns": names} if len(names) < len(self.schema) else {}

    def state(self) -> dict[str, Any]:
        return {"schema": [c.state() for c in self.schema], "numeric": self.numeric.state(),
                "encoding": self.encoding, "sizes": self.sizes, "seen": self.seen,
                "fill": self.fill, "missing_numeric": self.missing_numeric,
                "missing_category": self.missing_category,
                "point_mass_columns": self.point_mass_columns, "masses": self.masses,
                "categories_as_bits": self.categories_as_bits, "whole_code_columns": self.whole_code_columns}


def fit(
    x: torch.Tensor,
    schema: Sequence[Column],
    scaling: str = "auto",
    encoding: str = "auto",
    bounds: dict[str, tuple[float | None, float | None]] | None = None,
    integer: Sequence[str] = (),
    keep_constant: bool = False,
    continuous: Sequence[str] = (),
    round_to_data: bool = False,
    clip_to_range: bool = False,
) -> TableEncoder:
    """Fit the encoder of the table whose training rows ``x`` (from ``columns.to_values``) have
    columns ``schema``; ``integer`` adds integer columns to those the schema has, and the
    ``continuous`` ones (declared numeric) are not searched for point masses; ``round_to_data``
    writes samples of numeric columns with the decimal places (or else the significant digits) of
    their training values and ``clip_to_range`` within their range."""
    names = [c.name for c in schema]
    for name in integer:
        if name not in names:
            raise no_such_column("data.integer", name, names)
    for name in bounds or {}:  # bounds hold numbers: a categorical column is not among the encoder's
        if name in names and schema[names.index(name)].kind == "categorical":
            raise no_such_column("data.bounds", name, [c.name for c in schema if c.kind != "categorical"],
                                 "categorical")
    schema = [Column(c.name, "integer", c.dtype, nullable=c.nullable)
              if c.name in integer and c.kind == "numeric" else c for c in schema]
    for j in (j for j, c in enumerate(schema) if c.kind == "integer" and not c.time_unit):
        values = x[:, j][~x[:, j].isnan()]
        between = values != values.round()
        if bool(between.any()):  # declared integer (detection takes whole numbers only)
            warnings.warn(f"column {schema[j].name!r} is learnt as whole numbers, but "
                          f"{float(between.double().mean()):.0%} of its values are not (such as "
                          f"{float(values[between][0]):g}): samples are rounded", stacklevel=3)
    numeric = [j for j, c in enumerate(schema) if c.kind != "categorical"]
    # Which columns may be missing is the table's (its schema), which categories the model may
    # produce is the training rows': a category or a gap seen only in held-out rows is never made.
    missing_numeric = [j for j in numeric if schema[j].nullable]
    fill = []
    for j in missing_numeric:
        observed = x[:, j][~x[:, j].isnan()].numpy()
        if not len(observed):
            raise UserError(f"column {schema[j].name!r} has no values in the training rows")
        fill.append(np.quantile(observed, np.linspace(0, 1, FILL_QUANTILES)).tolist())
    sizes, seen, missing_category = [], [], []
    for j, column in enumerate(schema):
        if column.kind != "categorical":
            continue
        codes = x[:, j]
        size = len(column.categories)
        present = sorted({int(c) for c in codes[~codes.isnan()].tolist()})
        if column.nullable:
            missing_category.append(j)
            if bool(codes.isnan().any()):
                present.append(size)
            size += 1
        sizes.append(size)
        seen.append(present)
    sizes += [2] * len(missing_numeric)
    seen += [[0, 1] if bool(x[:, j].isnan().any()) else [0] for j in missing_numeric]
    point_mass_columns, masses = [], []
    for j in numeric:
        if schema[j].kind == "numeric" and schema[j].name not in continuous:
            found = point_masses(x[:, j].numpy())
            if found:
                point_mass_columns.append(j)
                masses.append(found)
                codes = _mass_codes(x[:, j][~x[:, j].isnan()], found)
                sizes.append(len(found) + 1)
                seen.append(torch.unique(codes).tolist())
    whole_code_columns = [j for j in numeric if schema[j].kind == "numeric" and j not in point_mass_columns
                          and schema[j].name not in continuous and whole_codes(x[:, j].numpy())]
    entries = onehot_entries(sizes, sum(c.kind == "categorical" for c in schema))
    encoder = TableEncoder(schema, encoders.Pipeline([], 0), encoding, sizes, seen, fill,
                           missing_numeric, missing_category, point_mass_columns, masses,
                           categories_as_bits=encoding == "auto" and entries > ONEHOT_MOST_ENTRIES,
                           whole_code_columns=whole_code_columns)
    numeric_names = [names[j] for j in numeric]
    # Places from the observed cells: a gap is filled for training with values between them.
    observed = {j: x[:, j][~x[:, j].isnan()] for j in numeric
                if round_to_data and schema[j].kind == "numeric"}
    places = {names[j]: encoders.decimal_places(values, _storage(schema[j]))
              for j, values in observed.items()}
    digits = {names[j]: encoders.significant_digits(values, _storage(schema[j]))
              for j, values in observed.items() if places[names[j]] is None}
    encoder.numeric = encoders.fit(
        encoder._filled(x), numeric_names, scaling=scaling, bounds=bounds,
        integer=[c.name for c in schema if c.kind == "integer"],
        # A column of one value and gaps ("1" or empty: a ticked box) says what it says by its gaps,
        # which the missing block learns: its values are passed through, never refused.
        keep_constant=keep_constant or [names[j] for j in missing_numeric],
        decimals={name: p for name, p in places.items() if p is not None},
        digits={name: d for name, d in digits.items() if d is not None}, clip=clip_to_range,
    ) if numeric else encoders.Pipeline([], 0)
    return encoder


def _storage(column: Column) -> torch.dtype:
    """The float type a column's values were stored in (a float32 column's are float32 numbers)."""
    return torch.float32 if column.dtype == "float32" else torch.float64


def _mass_codes(values: torch.Tensor, masses: list[float]) -> torch.Tensor:
    """The index of each value among ``masses``, ``len(masses)`` for a value between them."""
    codes = torch.full(values.shape, len(masses), dtype=torch.long)
    for k, mass in enumerate(masses):
        codes[values == mass] = k
    return codes


def from_state(state: dict[str, Any]) -> TableEncoder:
    """Rebuild a fitted encoder from ``TableEncoder.state()``."""
    try:
        return TableEncoder(
            from_states(state["schema"]), encoders.from_state(state["numeric"]), state["encoding"],
            state["sizes"], state["seen"], state["fill"], state["missing_numeric"],
            state["missing_category"], state.get("point_mass_columns", []), state.get("masses", []),
            state.get("categories_as_bits", False), state.get("whole_code_columns", []),
        )
    except (KeyError, TypeError) as exc:
        raise UserError(f"the model file's preprocessing is unreadable ({exc})") from None
