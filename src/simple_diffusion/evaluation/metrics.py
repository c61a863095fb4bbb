"""How far samples are from a reference, and how far the training data itself is (the floor).

``ratio = distance(samples, reference) / distance(training data, reference)``: 1 means the model
is as close to the truth as the data it learned from. The distance is the 1-D Wasserstein distance
for one column and the sliced Wasserstein distance (POT) on standardised columns for more.

The ratio's best value is not 1: empirical distances shrink like sqrt(1/n + 1/m), so exact samples
scored at other sizes than the training rows land at ``perfect_ratio`` (about 0.43 for 100,000
samples, 10,000 training rows and 100,000 reference draws). A model that copies its training rows
scores about 1, so the ratio is shown beside ``memorisation``: the share of generated rows nearer
a training row than a held-out row (0.5 when nothing is copied, 1 when everything is).

>>> import numpy as np
>>> rng = np.random.default_rng(0)
>>> a, b = rng.normal(size=(4000, 1)), rng.normal(size=(4000, 1))
>>> distance(a, b) < 0.1 < distance(a + 1, b)
True
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import ot
import torch
from scipy import stats
from scipy.spatial.distance import cdist, pdist
from threadpoolctl import threadpool_limits

from ..data import targets
from ..errors import counted

PROJECTIONS = 256
DIRECTIONS_PER_SEED = 32
"""Directions drawn per seed (bounds memory: directions x rows values at once)."""
SUBSAMPLE = 4000
MEMORISATION_ROWS = 10_000
"""Generated rows checked for copies (a subsample: each needs two nearest-neighbour searches)."""
MEMORISATION_WARNING = 0.6
"""Share above which evaluation warns that rows look copied (0.5 is the no-copy value)."""
TWO_SAMPLE_ROWS = 10
"""Reference rows below which the energy distance and C2ST are not computed: the C2ST's five
folds of a few rows say nothing (scikit-learn cannot split fewer rows than folds), and the energy
distance of one row is undefined."""
JACKKNIFE_GROUPS = 20
"""Groups of held-out rows left out in turn for the share's standard error."""
LIKELIHOODS = ("likelihood", "conditional_likelihood")
"""The held-out likelihoods an evaluation may hold: the joint, and a conditional model's given
its condition columns."""


def wasserstein_1d(a: np.ndarray, b: np.ndarray) -> float:
    return float(stats.wasserstein_distance(a, b))


def ks_statistic(a: np.ndarray, b: np.ndarray) -> float:
    # The statistic alone: SciPy's exact p-value, which is not used, fails on columns of few values
    # (a category's share, 139 against 141 of 300 rows) and said so on the user's screen.
    return float(stats.ks_2samp(a, b, method="asymp").statistic)


def sliced_wasserstein(a: np.ndarray, b: np.ndarray, seed: int = 0) -> float:
    """Mean 1-D Wasserstein distance over ``PROJECTIONS`` random directions.

    What ``ot.sliced_wasserstein_distance(a, b, p=1)`` computes, with POT's own directions (32
    per seed, seeds ``seed``, ``seed + 1``, ...) and quantile grid, but with each direction's
    values sorted as one contiguous row: POT sorts and searches the columns of an (n, directions)
    array, which took 8 s per call on 100,000 2-D rows here, 5x this (``tests/test_quality.py``
    checks that the two agree).
    """
    grid, rank_a, rank_b = _quantile_grid(len(a), len(b))
    width = np.diff(grid, prepend=0.0)
    values = []
    for k in range(PROJECTIONS // DIRECTIONS_PER_SEED):
        directions = ot.sliced.get_random_projections(a.shape[1], DIRECTIONS_PER_SEED, seed=seed + k)
        sorted_a = np.sort((a @ directions).T, axis=1)
        sorted_b = np.sort((b @ directions).T, axis=1)
        values.append(np.abs(sorted_a[:, rank_a] - sorted_b[:, rank_b]) @ width)
    return float(np.mean(np.concatenate(values)))


def _quantile_grid(n: int, m: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The levels where either empirical quantile function of n and m equal-weight points steps
    (as POT builds them from cumulative weights), and the rank each function takes there."""
    cumulative_a, cumulative_b = np.cumsum(np.full(n, 1 / n)), np.cumsum(np.full(m, 1 / m))
    grid = np.sort(np.concatenate([cumulative_a, cumulative_b]))
    rank_a = np.clip(np.searchsorted(cumulative_a, grid), 0, n - 1)
    rank_b = np.clip(np.searchsorted(cumulative_b, grid), 0, m - 1)
    return grid, rank_a, rank_b


def distance(samples: np.ndarray, reference: np.ndarray, scale: np.ndarray | None = None) -> float:
    """W1 for one column; sliced W1 on columns divided by ``scale`` (the reference's std) for more."""
    if samples.shape[1] == 1:
        return wasserstein_1d(samples[:, 0], reference[:, 0])
    scale = _scale(reference) if scale is None else scale
    return sliced_wasserstein(samples / scale, reference / scale)


def ratio(distance_value: float, floor: float) -> float | None:
    """distance / floor; 1 where both are 0 (a constant column reproduced exactly), None where
    only the floor is 0 (no scale to compare against)."""
    if floor > 0:
        return distance_value / floor
    return 1.0 if distance_value == 0 else None


def _fmt(value: float | None, spec: str = ".2f") -> str:
    return "-" if value is None else format(value, spec)


def _scale(reference: np.ndarray) -> np.ndarray:
    """Column scales for the sliced distance; a constant column keeps unit scale."""
    std = reference.std(0)
    return np.where(std > 0, std, 1.0)


def perfect_ratio(samples: int, train: int, reference: int) -> float:
    """The ratio that exact samples score on average: sqrt((1/samples + 1/ref) / (1/train + 1/ref)).

    The distance between two independent empirical distributions of sizes n and m scales as
    sqrt(1/n + 1/m) (in one dimension exactly, in the limit; for each slice of the sliced distance).
    """
    return float(np.sqrt((1 / samples + 1 / reference) / (1 / train + 1 / reference)))


def energy_distance(a: np.ndarray, b: np.ndarray, seed: int = 0) -> float:
    """Székely's energy distance 2E|X-Y| - E|X-X'| - E|Y-Y'| on subsamples of ``SUBSAMPLE`` rows.

    The within-sample means run over distinct pairs (the unbiased U-statistic): averaging over all
    pairs would count each row's zero distance to itself and add about E|X-X'|/n per sample.
    """
    rng = np.random.default_rng(seed)
    a = a[rng.permutation(len(a))[:SUBSAMPLE]]
    b = b[rng.permutation(len(b))[:SUBSAMPLE]]
    return float(2 * cdist(a, b).mean() - pdist(a).mean() - pdist(b).mean())


def memorisation(samples: np.ndarray, train: np.ndarray, holdout: np.ndarray) -> dict:
    """Share of generated rows nearer a training row than a held-out row, for equal-sized sets.

    0.5 when the model copies nothing (a fresh row is as likely to fall nearer either set) and
    1 when it reproduces its training rows. All rows of both sets are used: subsampling the larger
    set to the smaller would hide most copies. A fresh row and the n + m rows of both sets are
    exchangeable, so its nearest row, ties broken at random among all the rows at that distance,
    is a training row with probability n / (n + m): a row as near both sets (discrete data: exact
    matches in each) counts the training rows' part of the matches, k_train / (k_train +
    k_held_out), and the raw share's odds are divided by n / m to give the equal-size share.
    Counting a tie as half, or each set once, left fresh rows of a table of many repeated rows
    above 0.5 (statsmodels' randhie: 0.59-0.61, one split called copying). Columns are scaled by
    the training rows' spread.

    ``standard_error`` is the grouped jackknife's over the held-out rows (``JACKKNIFE_GROUPS``),
    which set most of the share's noise: with 18 of them (a 178-row table's tenth) fresh rows
    score 0.5 +- 0.05, so a share of 0.6 there is not yet evidence of copying. ``copied`` asks
    for all of: above ``MEMORISATION_WARNING``; beyond 0.5 by ``noise_margin`` standard errors,
    Student's t at 97.5% with the groups' degrees of freedom (2.09 for 20 groups; 4.30 for the 3
    held-out rows of a 32-row table, where two standard errors had called rows copied on a spread
    known from three values); and a share of the generated rows that chance gives less than one
    time in 40 (``chance``, a binomial test at 0.5: 4 fresh rows of `evaluate --samples-file`, all
    nearer a training row one time in 16, were called copies).
    """
    rng = np.random.default_rng(0)
    scale = _scale(train)
    samples = samples[rng.permutation(len(samples))[:MEMORISATION_ROWS]]
    nearest = _NearestRows(samples / scale, train / scale, holdout / scale)
    raw, share = nearest.shares()
    error = margin = np.nan
    groups = np.array_split(rng.permutation(len(holdout)), min(JACKKNIFE_GROUPS, len(holdout)))
    if len(groups) > 1:
        left_out = np.array([nearest.shares(group)[1] for group in groups])
        error = float(np.sqrt((len(groups) - 1) / len(groups) * np.sum((left_out - left_out.mean()) ** 2)))
        margin = float(stats.t.ppf(0.975, len(groups) - 1))
    beyond_noise = share - margin * error > 0.5  # one held-out row (no error): never beyond
    by_chance = float(stats.binom.sf(round(share * len(samples)) - 1, len(samples), 0.5))
    return {"share": share, "standard_error": error, "noise_margin": margin, "raw_share": raw,
            "rows": len(samples), "train_rows": len(train), "holdout_rows": len(holdout),
            "chance": by_chance,
            "copied": bool(share > MEMORISATION_WARNING and beyond_noise and by_chance < 0.025)}


class _NearestRows:
    """Generated rows' nearest training and held-out rows (all rows scaled alike), searched once:
    the jackknife's shares without a group of held-out rows take each row's nearest kept one
    from its ``LISTED`` nearest, searching again only where all of those were left out."""

    LISTED = 3

    def __init__(self, samples: np.ndarray, train: np.ndarray, holdout: np.ndarray):
        from sklearn.neighbors import KDTree, NearestNeighbors

        self.samples, self.train, self.holdout = samples, train, holdout
        self.to_train = NearestNeighbors(n_neighbors=1).fit(train).kneighbors(samples)[0][:, 0]
        self.near, self.nearest = NearestNeighbors(n_neighbors=min(self.LISTED, len(holdout))).fit(
            holdout).kneighbors(samples)
        self.train_tree = functools.cache(lambda: KDTree(train))  # counting ties: discrete data only

    def shares(self, left_out: np.ndarray | None = None) -> tuple[float, float]:
        """The raw share of generated rows nearer a training row than a held-out one (those of
        ``left_out`` left out), ties shared by the rows' counts, and its equal-size share."""
        from sklearn.neighbors import KDTree, NearestNeighbors

        kept = np.ones(len(self.holdout), dtype=bool)
        if left_out is not None:
            kept[left_out] = False
        listed = kept[self.nearest]
        to_holdout = self.near[np.arange(len(self.near)), listed.argmax(1)]
        unlisted = ~listed.any(1)
        if unlisted.any():
            to_holdout[unlisted] = NearestNeighbors(n_neighbors=1).fit(self.holdout[kept]).kneighbors(
                self.samples[unlisted])[0][:, 0]
        nearer = (self.to_train < to_holdout).astype(np.float64)
        tied = self.to_train == to_holdout
        if tied.any():
            # Every row at the tied distance (a hair wider than it, for rounding; at least the one found).
            radius = to_holdout[tied] * (1 + 1e-9) + 1e-12
            k_train, k_holdout = (
                np.maximum(tree.query_radius(self.samples[tied], radius, count_only=True), 1)
                for tree in (self.train_tree(), KDTree(self.holdout[kept])))
            nearer[tied] = k_train / (k_train + k_holdout)
        raw, n, m = float(nearer.mean()), len(self.train), int(kept.sum())
        if raw == 1:
            return raw, 1.0
        odds = raw / (1 - raw) * m / n
        return raw, float(odds / (1 + odds))


def c2st(a: np.ndarray, b: np.ndarray, seed: int = 0, folds: int = 5) -> float:
    """Classifier two-sample test: cross-validated accuracy of telling ``a`` from ``b``.

    0.5 means a classifier cannot tell them apart; 1.0 that it always can (as in sbi). The
    classifier's smallest leaf follows the rows (a tenth of them, 2 to 20): with scikit-learn's
    fixed 20, 15 rows a side could not be split at all and every pair scored exactly 0.5.
    """
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.model_selection import cross_val_score

    rng = np.random.default_rng(seed)
    n = min(len(a), len(b), SUBSAMPLE)
    a = a[rng.permutation(len(a))[:n]]
    b = b[rng.permutation(len(b))[:n]]
    features = np.concatenate([a, b])
    labels = np.concatenate([np.zeros(n), np.ones(n)])
    leaf = max(2, min(20, len(features) // 10))
    classifier = HistGradientBoostingClassifier(max_iter=100, min_samples_leaf=leaf, random_state=seed)
    # Its OpenMP threads cost more than they give on these few rows: one thread is 1.2x (300
    # rows a side) to 1.4x (2,000) quicker on the 2-core machine, as quick at the 4,000-row
    # cap, and gives the same accuracy to the last digit.
    with threadpool_limits(limits=1, user_api="openmp"):
        return float(cross_val_score(classifier, features, labels, cv=folds).mean())


def mode_masses(target_name: str, x: np.ndarray) -> list[float] | None:
    """Mean posterior responsibility of each mixture component: its share of the mass."""
    weights = targets.responsibilities(targets.get(target_name), torch.tensor(x, dtype=torch.float64))
    return None if weights is None else weights.mean(0).tolist()


def evaluate(
    samples: np.ndarray,
    reference: np.ndarray,
    columns: list[str],
    train: np.ndarray | None = None,
    target: str | None = None,
    two_sample_tests: bool = True,
    holdout: np.ndarray | None = None,
) -> dict[str, Any]:
    """All metrics of ``samples`` against ``reference`` (fresh target draws or held-out data).

    With ``train`` the same distances of the training data give the floor and the ratio; with
    ``holdout`` too (rows the model never saw), the memorisation share; with a mixture
    ``target``, the mass per mode is compared with the true weights.
    """
    samples, reference = np.asarray(samples, np.float64), np.asarray(reference, np.float64)
    scale = _scale(reference)
    result: dict[str, Any] = {
        "samples": len(samples),
        "reference": len(reference),
        "distance_name": "wasserstein" if samples.shape[1] == 1 else "sliced_wasserstein",
        "distance": distance(samples, reference, scale),
        "columns": [],
    }
    if train is not None:
        result["floor"] = distance(np.asarray(train, np.float64), reference, scale)
        result["ratio"] = ratio(result["distance"], result["floor"])
        result["perfect_ratio"] = perfect_ratio(len(samples), len(train), len(reference))
        if holdout is not None:
            result["memorisation"] = memorisation(samples, np.asarray(train, np.float64),
                                                  np.asarray(holdout, np.float64))
    for j, name in enumerate(columns):
        row = {
            "column": name,
            "wasserstein": wasserstein_1d(samples[:, j], reference[:, j]),
            "ks": ks_statistic(samples[:, j], reference[:, j]),
        }
        if train is not None:
            row["wasserstein_floor"] = wasserstein_1d(train[:, j], reference[:, j])
            row["ks_floor"] = ks_statistic(train[:, j], reference[:, j])
            row["wasserstein_ratio"] = ratio(row["wasserstein"], row["wasserstein_floor"])
        result["columns"].append(row)
    if samples.shape[1] > 1 and two_sample_tests:
        if min(len(samples), len(reference)) < TWO_SAMPLE_ROWS:
            fewest = (f"{counted(len(reference), 'reference row')} to compare with"
                      if len(reference) <= len(samples) else f"{counted(len(samples), 'sample')} to compare")
            result["two_sample_skipped"] = f"{fewest}; they need {TWO_SAMPLE_ROWS}"
        else:
            result["energy"] = energy_distance(samples / scale, reference / scale)
            result["c2st"] = c2st(samples, reference)
            if train is not None:
                result["energy_floor"] = energy_distance(train / scale, reference / scale)
                result["c2st_floor"] = c2st(np.asarray(train, np.float64), reference)
    if target is not None:
        masses = mode_masses(target, samples)
        if masses is not None:
            truth = targets.get(target).mixture_distribution.probs.tolist()
            result["mode_masses"] = {
                "model": masses,
                "truth": truth,
                "max_error": float(np.max(np.abs(np.subtract(masses, truth)))),
            }
    return result


CATEGORY_ROWS_SHOWN = 8
"""Rows of one categorical column that the printed table shows (those furthest from the
reference); the rest are summed up in a line, and metrics.json keeps every one."""


def rows_shown(rows: list[dict[str, Any]]) -> list[dict[str, Any] | str]:
    """The per-column rows to print: a column with many categories (``name=label`` rows) by
    its ``CATEGORY_ROWS_SHOWN`` furthest, then a line saying how many are left out."""
    groups: dict[str, list[int]] = {}
    for k, row in enumerate(rows):
        if "=" in row["column"]:
            groups.setdefault(row["column"].split("=", 1)[0], []).append(k)
    hidden, notes = set(), {}
    for name, members in groups.items():
        if len(members) > CATEGORY_ROWS_SHOWN:
            furthest = sorted(members, key=lambda k: -rows[k]["wasserstein"])[:CATEGORY_ROWS_SHOWN]
            left = [k for k in members if k not in furthest]
            hidden.update(left)
            notes[max(furthest)] = (f"  ... {len(left)} more categories of {name} "
                                    "(the furthest shown; metrics.json has every one)")
    shown: list[dict[str, Any] | str] = []
    for k, row in enumerate(rows):
        if k not in hidden:
            shown.append(row)
        if k in notes:
            shown.append(notes[k])
    return shown


def format_table(result: dict[str, Any]) -> str:
    """A plain-text table of ``evaluate``'s result."""
    lines = []
    name = result["distance_name"].replace("_", " ")
    head = f"{name} to {counted(result['reference'], 'reference row')}: {result['distance']:.4f}"
    if "ratio" in result:
        head += (f"   floor (training data): {result['floor']:.4f}   ratio: {_fmt(result['ratio'])}"
                 f" (exact samples: about {result['perfect_ratio']:.2f} at these sizes)")
    lines.append(head)
    has_floor = "wasserstein_floor" in result["columns"][0]
    header = ["column", "W1", "KS"] + (["W1 floor", "KS floor", "W1 ratio"] if has_floor else [])
    shown = [row if isinstance(row, str) else
             [row["column"], f"{row['wasserstein']:.4f}", f"{row['ks']:.4f}"]
             + ([f"{row['wasserstein_floor']:.4f}", f"{row['ks_floor']:.4f}", _fmt(row["wasserstein_ratio"])]
                if has_floor else [])
             for row in rows_shown(result["columns"])]
    cells = [header] + [row for row in shown if not isinstance(row, str)]
    # a space between columns at least, whatever a value's size (a GNP of 89,640.3207 in one column)
    widths = [max(16, *(len(row[0]) + 2 for row in cells))] + [
        max(10, *(len(row[i]) + 1 for row in cells)) for i in range(1, len(header))]
    for row in [header, *shown]:
        lines.append(row if isinstance(row, str) else
                     row[0].ljust(widths[0]) + "".join(cell.rjust(w) for cell, w in zip(row[1:], widths[1:])))
    for key, label in (("energy", "energy distance"), ("c2st", "C2ST accuracy")):
        if key in result:
            extra = f" (training data: {result[key + '_floor']:.4f})" if key + "_floor" in result else ""
            lines.append(f"{label}: {result[key]:.4f}{extra}")
    if "two_sample_skipped" in result:
        lines.append(f"energy distance and C2ST: not computed ({result['two_sample_skipped']})")
    if "memorisation" in result:
        lines.append(memorisation_line(result["memorisation"]))
    if "table" in result:
        from .tabular import lines as table_lines

        lines += table_lines(result["table"])
    lines += [likelihood_line(result[key]) for key in LIKELIHOODS if key in result]
    if "distilled" in result:
        lines.append(distilled_line(result))
    if "calibration" in result:
        from .calibration import lines as calibration_lines

        lines += calibration_lines(result["calibration"])
    if "mode_masses" in result:
        masses = result["mode_masses"]
        model = ", ".join(f"{m:.3f}" for m in masses["model"])
        truth = ", ".join(f"{m:.3f}" for m in masses["truth"])
        lines.append(f"mass per mode: {model} (truth {truth}; max error {masses['max_error']:.3f})")
    return "\n".join(lines)


def likelihood_summary(log_p: np.ndarray, dim: int, true_log_p: np.ndarray | None = None) -> dict:
    """Held-out negative log-likelihood in nats (per row and per dimension) with its standard
    error; with the truth's log-density of the same rows, the KL estimate E[log p - log q] and its
    standard error (the rows' spread of the difference, over sqrt(n)). Rows of zero model density
    (outside a quantile encoder's range) are counted, not averaged."""
    log_p = np.asarray(log_p, np.float64)
    finite = np.isfinite(log_p)
    n = int(finite.sum())
    result: dict[str, Any] = {"rows": n, "rows_without_density": int((~finite).sum())}
    if n == 0:
        return result
    nll = -log_p[finite]
    result.update(nll_per_row=float(nll.mean()), nll_per_dim=float(nll.mean() / dim),
                  nll_standard_error=float(nll.std(ddof=1) / np.sqrt(n)) if n > 1 else None)
    if true_log_p is not None:
        difference = np.asarray(true_log_p, np.float64)[finite] + nll
        result.update(true_nll_per_row=float(-np.asarray(true_log_p)[finite].mean()),
                      kl_estimate=float(difference.mean()),
                      kl_standard_error=float(difference.std(ddof=1) / np.sqrt(n)) if n > 1 else None)
    return result


def distilled_line(result: dict[str, Any]) -> str:
    """One sentence comparing the distilled sampler with the run's default sampler."""
    student = result["distilled"]

    def seconds(value: float | None) -> str:
        return "" if value is None else f" in {value:.2f} s"

    ratio = "" if student.get("ratio") is None else f"ratio {student['ratio']:.2f}, "
    own = ("" if result.get("ratio") is None else
           f" (the default sampler: ratio {result['ratio']:.2f}{seconds(result.get('sample_seconds'))})")
    evaluations = student["network_evaluations"]
    coverage = student.get("calibration", {}).get("coverage")
    calibrated = "" if coverage is None else "; held-out coverage " + ", ".join(
        f"{value:.3f} at {float(level):.0%}" for level, value in coverage.items())
    return (f"distilled sampler ({counted(evaluations, 'network evaluation')}): {ratio}"
            f"distance {student['distance']:.4f}{seconds(student['sample_seconds'])}{own}{calibrated}")


def likelihood_line(summary: dict[str, Any]) -> str:
    """One sentence on the held-out likelihood (given the condition columns in ``given``, if any)."""
    given = f" given {', '.join(summary['given'])}" if summary.get("given") else ""
    if "skipped" in summary:
        return f"log-likelihood{given}: not computed ({summary['skipped']})"
    if summary.get("rows", 0) == 0:
        return f"log-likelihood{given}: no held-out row has density under the model"
    line = (f"held-out NLL{given}: {summary['nll_per_row']:.4f} nats per row "
            f"({summary['nll_per_dim']:.4f} per dimension, {counted(summary['rows'], 'row')})")
    if "kl_estimate" in summary:
        line += (f"; true NLL {summary['true_nll_per_row']:.4f}, so KL to the truth "
                 f"{summary['kl_estimate']:.4f} +- {summary['kl_standard_error']:.4f}")
    if summary["rows_without_density"]:
        line += f"; {counted(summary['rows_without_density'], 'row')} outside the model's support"
    return line


def memorisation_line(check: dict[str, Any]) -> str:
    """One sentence on the memorisation share and its noise, with a warning when rows look copied."""
    error = check.get("standard_error", np.nan)
    spread = f" +- {error:.3f}" if np.isfinite(error) else ""
    line = (f"memorisation (distance to closest record): {check['share']:.3f}{spread} of generated rows are "
            f"nearer a training row than a held-out row (0.5: nothing copied; 1: all copied)")
    if check["copied"]:
        line += f"; WARNING: above {MEMORISATION_WARNING}, the model reproduces its training rows"
    elif check["share"] > MEMORISATION_WARNING and not np.isfinite(error):
        line += f"; above {MEMORISATION_WARNING}, but one held-out row cannot tell copying from chance"
    elif check["share"] > MEMORISATION_WARNING and check.get("chance", 0.0) >= 0.025:
        line += (f"; above {MEMORISATION_WARNING}, but {check['rows']:,} generated rows cannot tell copying "
                 f"from chance (which gives as many one time in {1 / check['chance']:.0f})")
    elif check["share"] > MEMORISATION_WARNING:
        margin = check.get("noise_margin", 2.0)  # metrics.json of runs before stop 32: two errors
        distance = (check["share"] - 0.5) / error
        line += (f"; above {MEMORISATION_WARNING} but {distance:.1f} standard errors from 0.5, within the "
                 f"noise of {check['holdout_rows']} held-out rows (chance reaches {margin:.2f}): not "
                 "evidence of copying")
    return line
