"""Metrics for tables with categorical columns and missing cells.

Distances between mixed rows need one numeric encoding; this is the one of ForestDiffusion's
benchmark (Jolicoeur-Martineau et al. 2024): numeric columns min-max scaled by the training
rows' range, categorical columns one-hot divided by 2 (so two different categories are 1 apart
in L1, as two numbers at the ends of their range). A missing cell is one more category of its
column (and a missing number sits at the middle of its range beside a missing indicator).
Per column: the total variation distance between category frequencies and the difference of
missing rates; per pair of columns: how far their association (Pearson correlation for two
numbers, the correlation ratio for a number and a category, Cramér's V for two categories) is
from the reference's.

>>> import numpy as np
>>> from simple_diffusion.data.columns import Column
>>> schema = [Column("x", "numeric"), Column("c", "categorical", "object", ["a", "b"])]
>>> rows = np.array([[0.0, 0.0], [2.0, 1.0], [1.0, np.nan]])
>>> matrix, names = encode(rows, schema, rows)
>>> names
['x', 'c=a', 'c=b', 'c=(missing)']
>>> matrix[2].tolist()
[0.5, 0.0, 0.0, 0.5]
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..data.columns import Column, read_dates, strptime_format, strptime_reads

if TYPE_CHECKING:
    import pandas as pd

MISSING = "(missing)"
EXACT_W1_ROWS = 2000
"""Rows per side of the exact (linear program) Wasserstein distance; larger sets are subsampled."""


def encode(values: np.ndarray, schema: Sequence[Column], train: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """The metric encoding of rows (values and codes, NaN missing) with names per column."""
    blocks, names = [], []
    for j, column in enumerate(schema):
        v = values[:, j]
        missing = np.isnan(v)
        has_missing = column.nullable or bool(np.isnan(train[:, j]).any())
        if column.kind == "categorical":
            size = len(column.categories)
            one_hot = np.zeros((len(v), size + has_missing))
            one_hot[np.flatnonzero(~missing), v[~missing].astype(int)] = 0.5
            if has_missing:
                one_hot[missing, size] = 0.5
            blocks.append(one_hot)
            names += [f"{column.name}={label}" for label in column.categories]
            names += [f"{column.name}={MISSING}"] * has_missing
            continue
        low, high = np.nanmin(train[:, j]), np.nanmax(train[:, j])
        scaled = (v - low) / (high - low if high > low else 1.0)
        blocks.append(np.where(missing, 0.5, scaled)[:, None])
        names.append(column.name)
        if has_missing:
            blocks.append((0.5 * missing)[:, None])
            names.append(f"{column.name}={MISSING}")
    return np.concatenate(blocks, 1), names


def wasserstein_l1(a: np.ndarray, b: np.ndarray, seed: int = 0) -> float:
    """The exact Wasserstein-1 distance with L1 cost between two sets of rows (POT's ``emd2``),
    on at most ``EXACT_W1_ROWS`` rows of each."""
    import ot

    rng = np.random.default_rng(seed)
    a = a[rng.permutation(len(a))[:EXACT_W1_ROWS]]
    b = b[rng.permutation(len(b))[:EXACT_W1_ROWS]]
    cost = ot.dist(a, b, metric="cityblock")
    return float(ot.emd2(np.full(len(a), 1 / len(a)), np.full(len(b), 1 / len(b)), cost,
                         numItermax=10_000_000))


def frequencies(codes: np.ndarray, size: int) -> np.ndarray:
    """Share of each category (codes 0..size-1) and, last, of missing cells."""
    missing = np.isnan(codes)
    counts = np.bincount(codes[~missing].astype(int), minlength=size).astype(float)
    return np.append(counts, missing.sum()) / max(len(codes), 1)


def total_variation(p: np.ndarray, q: np.ndarray) -> float:
    return float(0.5 * np.abs(p - q).sum())


def associations(values: np.ndarray, schema: Sequence[Column]) -> np.ndarray:
    """The association of each pair of columns on rows where both are present (NaN where
    undefined): Pearson correlation, correlation ratio or Cramér's V by the pair's kinds."""
    d = len(schema)
    out = np.full((d, d), np.nan)
    for i in range(d):
        for j in range(i + 1, d):
            both = ~np.isnan(values[:, i]) & ~np.isnan(values[:, j])
            a, b = values[both, i], values[both, j]
            kinds = (schema[i].kind == "categorical", schema[j].kind == "categorical")
            if len(a) < 3:
                continue
            if kinds == (False, False):
                value = _pearson(a, b)
            elif kinds == (True, True):
                value = _cramers_v(a, b)
            else:
                codes, numbers = (a, b) if kinds[0] else (b, a)
                value = correlation_ratio(codes, numbers)
            out[i, j] = out[j, i] = value
    return out


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    if a.std() == 0 or b.std() == 0:
        return np.nan
    return float(np.corrcoef(a, b)[0, 1])


def correlation_ratio(codes: np.ndarray, numbers: np.ndarray) -> float:
    """eta: the share of the numbers' spread explained by the category means (its square root)."""
    total = ((numbers - numbers.mean()) ** 2).sum()
    if total == 0:
        return np.nan
    between = sum(
        (codes == c).sum() * (numbers[codes == c].mean() - numbers.mean()) ** 2 for c in np.unique(codes)
    )
    return float(np.sqrt(between / total))


def _cramers_v(a: np.ndarray, b: np.ndarray) -> float:
    from scipy.stats.contingency import association, crosstab

    table = crosstab(a, b).count
    if min(table.shape) < 2:
        return np.nan
    return float(association(table, method="cramer"))


def table_metrics(samples: np.ndarray, reference: np.ndarray, train: np.ndarray | None,
                  schema: Sequence[Column]) -> dict[str, Any]:
    """Per-column and pairwise comparisons of ``samples`` and of the training rows (the oracle;
    the ``_floor`` entries, left out without ``train``) with the ``reference`` rows, plus the
    exact W1 of the metric encoding (scaled by the training rows, else the reference)."""
    scale = reference if train is None else train
    model_x, _ = encode(samples, schema, scale)
    reference_x, _ = encode(reference, schema, scale)
    w1 = wasserstein_l1(model_x, reference_x)
    result: dict[str, Any] = {"wasserstein_l1": w1, "categories": [], "missing": []}
    if train is not None:
        floor = wasserstein_l1(encode(train, schema, train)[0], reference_x)
        result |= {"wasserstein_l1_floor": floor, "wasserstein_l1_ratio": w1 / floor if floor > 0 else None}
    for j, column in enumerate(schema):
        if column.kind == "categorical":
            size = len(column.categories)
            truth = frequencies(reference[:, j], size)
            row = {"column": column.name, "tvd": total_variation(frequencies(samples[:, j], size), truth)}
            if train is not None:
                row["tvd_floor"] = total_variation(frequencies(train[:, j], size), truth)
                row["unseen"] = int(np.setdiff1d(np.unique(samples[~np.isnan(samples[:, j]), j]),
                                                 np.unique(train[~np.isnan(train[:, j]), j])).size)
            result["categories"].append(row)
        if column.nullable:
            row = {"column": column.name, "rate": float(np.isnan(samples[:, j]).mean()),
                   "reference_rate": float(np.isnan(reference[:, j]).mean())}
            if train is not None:
                row["train_rate"] = float(np.isnan(train[:, j]).mean())
            result["missing"].append(row)
    pairs = np.triu_indices(len(schema), 1)
    if len(pairs[0]):
        truth = associations(reference, schema)[pairs]
        model_error = np.abs(associations(samples, schema)[pairs] - truth)
        train_error = model_error if train is None else np.abs(associations(train, schema)[pairs] - truth)
        keep = ~np.isnan(model_error) & ~np.isnan(train_error)
        if keep.any():
            result["pair_trend_error"] = float(model_error[keep].mean())
            if train is not None:
                result["pair_trend_error_floor"] = float(train_error[keep].mean())
    return result


def lines(result: dict[str, Any]) -> list[str]:
    """Plain-text lines of ``table_metrics``."""
    out = [f"exact W1 (L1 cost, min-max and one-hot/2 encoding): {result['wasserstein_l1']:.4f}   "
           f"floor: {result['wasserstein_l1_floor']:.4f}   ratio: "
           + ("-" if result["wasserstein_l1_ratio"] is None else f"{result['wasserstein_l1_ratio']:.2f}")]
    for row in result["categories"]:
        out.append(f"{row['column']}: category TVD {row['tvd']:.4f} (training rows: {row['tvd_floor']:.4f})")
    for row in result["missing"]:
        out.append(f"{row['column']}: missing {100 * row['rate']:.1f}% "
                   f"(training rows: {100 * row['train_rate']:.1f}%)")
    if "pair_trend_error" in result:
        out.append(f"column pair associations: mean error {result['pair_trend_error']:.4f} "
                   f"(training rows: {result['pair_trend_error_floor']:.4f})")
    if "sdmetrics_quality" in result:
        out.append(f"SDMetrics quality score: {result['sdmetrics_quality']:.3f} "
                   f"(training rows: {result['sdmetrics_quality_floor']:.3f}; 1 is best)")
    return out


def _sdtype(column: Column) -> dict[str, str]:
    """SDMetrics' description of a column: its kind, and the format of dates written as text."""
    if column.kind == "categorical":
        return {"sdtype": "categorical"}
    if column.time_unit and column.time_origin:
        # Quarters and weeks are handed over as dates: SDMetrics reads text with strptime alone.
        text = column.time_format and strptime_reads(column.time_format)
        written = {"datetime_format": strptime_format(column.time_format)} if text else {}
        return {"sdtype": "datetime"} | written
    return {"sdtype": "numerical"}


def sdmetrics_quality(samples: pd.DataFrame, reference: pd.DataFrame,
                      schema: Sequence[Column]) -> float | None:
    """SDMetrics' Quality Report score (column shapes and pair trends, 0-1) of two DataFrames,
    if the optional ``sdmetrics`` package is installed (``pip install simple-diffusion[tables]``)."""
    try:
        from sdmetrics.reports import QualityReport
    except ImportError:
        return None
    columns = {c.name: _sdtype(c) for c in schema}
    own = {c.name: c.time_format for c in schema if c.time_format and not strptime_reads(c.time_format)}
    if own:
        samples, reference = (frame.assign(**{name: read_dates(frame[name], written)
                                              for name, written in own.items()})
                              for frame in (samples, reference))
    report = QualityReport()
    with warnings.catch_warnings():  # its pandas deprecation notices are not the user's concern
        warnings.simplefilter("ignore")
        report.generate({"table": reference}, {"table": samples},
                        {"tables": {"table": {"columns": columns}}}, verbose=False)
    return float(report.get_score())
