"""Figures from arrays: loss curves and generated-versus-target distributions, saved as PNG."""

from __future__ import annotations

import io as _bytes_io
import math
from collections.abc import Callable, Sequence
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from ..data.columns import days_since_1970, format_value
from .tabular import associations, frequencies

GENERATED, DATA, TRUTH = "tab:blue", "tab:orange", "black"


def _png(fig) -> bytes:
    buffer = _bytes_io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def loss_plot(history: Sequence[dict[str, float]], title: str = "", kept: int | None = None,
              planned: int | None = None) -> bytes:
    """Train and validation loss per epoch on a log axis, as PNG bytes; ``kept`` marks the epoch
    whose weights the model kept (``train.keep_best``), and a run that ended before its
    ``planned`` epochs (``train.patience``) says so in the title."""
    epochs = [h["epoch"] for h in history]
    fig, ax = plt.subplots(figsize=(6, 3.6))
    ax.plot(epochs, [h["train_loss"] for h in history], label="train", color=GENERATED)
    measured = [(h["epoch"], h["val_loss"]) for h in history if not math.isnan(h["val_loss"])]
    ax.plot(*zip(*measured), label="validation", color=DATA, alpha=0.8,
            marker="." if len(measured) < len(history) / 2 else None)
    if kept is not None:
        ax.axvline(kept, color=TRUTH, lw=1, ls="--", label=f"weights kept (epoch {kept})")
    ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss (MSE of the prediction)")
    title = title or "training loss"
    if planned is not None and epochs and epochs[-1] < planned:
        title += f"\nstopped at epoch {epochs[-1]:,} of {planned:,}: no lower validation loss since {kept:,}"
    ax.set_title(title)
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    return _png(fig)


def _limits(*arrays: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    stacked = np.concatenate([a for a in arrays if a is not None])
    low, high = np.nanquantile(stacked, [0.001, 0.999], axis=0)  # a missing cell is NaN
    pad = 0.08 * (high - low) + 1e-9
    return low - pad, high + pad


def _density_histogram(ax, values: np.ndarray, bins: np.ndarray, **style: Any) -> None:
    """A histogram scaled to unit area of the values inside the bins (the plot's range: a few rows
    outside it, or none inside, as one held-out row of a tiny table, would divide by zero)."""
    inside = values[(values >= bins[0]) & (values <= bins[-1])]  # NaN (a missing cell) is neither
    if inside.size:
        ax.hist(inside, bins=bins, density=True, **style)


def distribution_plot(
    samples: np.ndarray,
    data: np.ndarray,
    columns: Sequence[str],
    density: Callable[[np.ndarray], np.ndarray] | None = None,
    reference: np.ndarray | None = None,
    title: str = "",
) -> bytes:
    """Generated samples against the target, as PNG bytes.

    1-D: histogram of the samples over the true ``density`` (or a histogram of ``reference``)
    with the training data beside it. 2-D: target, training data and samples side by side at one
    scale. More: a corner plot of samples against ``reference`` (or the data).
    """
    d = samples.shape[1]
    if d == 1:
        return _one_dimensional(samples[:, 0], data[:, 0], columns[0], density, reference, title)
    if d == 2:
        return _two_dimensional(samples, data, columns, reference, title)
    return corner_plot(samples, reference if reference is not None else data, columns, title)


def _one_dimensional(samples, data, column, density, reference, title) -> bytes:
    low, high = _limits(samples[:, None], data[:, None])
    bins = np.linspace(low[0], high[0], 120)
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), sharex=True, sharey=True)
    grid = np.linspace(low[0], high[0], 600)
    for ax, values, label, color in (
        (axes[0], samples, f"generated ({len(samples):,})", GENERATED),
        (axes[1], data, f"training data ({len(data):,})", DATA),
    ):
        _density_histogram(ax, values, bins, color=color, alpha=0.55, label=label)
        if density is not None:
            ax.plot(grid, density(grid[:, None]), color=TRUTH, lw=1.6, label="true density")
        elif reference is not None:
            _density_histogram(ax, reference[:, 0], bins, histtype="step", color=TRUTH,
                    lw=1.4, label="held-out data")
        ax.set_xlabel(column)
        ax.legend(loc="upper left", fontsize=8)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("density")
    fig.suptitle(title or "generated vs target")
    return _png(fig)


def _two_dimensional(samples, data, columns, reference, title) -> bytes:
    panels = [(reference, "target" if reference is not None else None, "black"),
              (data, "training data", DATA), (samples, "generated", GENERATED)]
    panels = [p for p in panels if p[1] is not None]
    low, high = _limits(*(p[0] for p in panels))
    fig, axes = plt.subplots(1, len(panels), figsize=(4.2 * len(panels), 4.2), sharex=True,
                             sharey=True)
    for ax, (values, label, color) in zip(np.atleast_1d(axes), panels):
        shown = values[:20_000]
        ax.scatter(shown[:, 0], shown[:, 1], s=1.5, alpha=0.35, color=color, linewidths=0)
        ax.set_title(f"{label} ({len(values):,})")
        ax.set_xlim(low[0], high[0])
        ax.set_ylim(low[1], high[1])
        ax.set_aspect("equal", adjustable="box")
        ax.set_xlabel(columns[0])
    np.atleast_1d(axes)[0].set_ylabel(columns[1])
    fig.suptitle(title or "generated vs target")
    return _png(fig)


CORNER_COLUMNS = 8
"""The most columns a corner plot shows (a wider table is drawn column by column and by its most
associated pairs: ``table_plot``, ``pairs_plot``)."""


def corner_plot(samples: np.ndarray, reference: np.ndarray, columns: Sequence[str],
                title: str = "") -> bytes:
    """Pairwise scatter below the diagonal and marginal histograms on it (the first
    ``CORNER_COLUMNS`` columns)."""
    d = min(samples.shape[1], CORNER_COLUMNS)
    low, high = _limits(samples[:, :d], reference[:, :d])
    fig, axes = plt.subplots(d, d, figsize=(1.9 * d + 1, 1.9 * d + 1), squeeze=False)
    shown_s, shown_r = samples[:4000], reference[:4000]
    for i in range(d):
        for j in range(d):
            ax = axes[i, j]
            if j > i:
                ax.axis("off")
                continue
            if i == j:
                bins = np.linspace(low[i], high[i], 50)
                _density_histogram(ax, reference[:, i], bins, color=DATA, alpha=0.5)
                _density_histogram(ax, samples[:, i], bins, histtype="step", color=GENERATED)
                ax.set_yticks([])
            else:
                ax.scatter(shown_r[:, j], shown_r[:, i], s=1, alpha=0.3, color=DATA, linewidths=0)
                ax.scatter(shown_s[:, j], shown_s[:, i], s=1, alpha=0.3, color=GENERATED,
                           linewidths=0)
                ax.set_ylim(low[i], high[i])
            ax.set_xlim(low[j], high[j])
            if i == d - 1:
                ax.set_xlabel(columns[j], fontsize=8)
            if j == 0 and i > 0:
                ax.set_ylabel(columns[i], fontsize=8)
            ax.tick_params(labelsize=6)
    fig.suptitle(title or "generated (blue) vs reference (orange)")
    return _png(fig)


MANY_CATEGORIES = 20
"""Categories above which a column's panel is one dot per category (generated share against
training share) instead of bars, whose labels would overlap."""


def _category_panel(ax, labels: Sequence[str], shares: Sequence[np.ndarray]) -> None:
    """Bars of the generated and training share of each category that either has, or for many
    categories a dot per category against the diagonal where the two shares agree."""
    keep = [k for k in range(len(labels)) if shares[0][k] > 0 or shares[1][k] > 0]
    if len(keep) > MANY_CATEGORIES:
        top = 1.05 * max(shares[0][keep].max(), shares[1][keep].max())
        ax.plot([0, top], [0, top], color=TRUTH, lw=1, ls="--")
        ax.scatter(shares[1][keep], shares[0][keep], s=8, alpha=0.6, color=GENERATED)
        ax.text(0.03, 0.95, f"each dot one of {len(keep)} categories", transform=ax.transAxes,
                va="top", fontsize=7)
        ax.set_xlim(0, top)
        ax.set_ylim(0, top)
        ax.set_xlabel("training share", fontsize=8)
        ax.set_ylabel("generated share", fontsize=8)
        return
    position = np.arange(len(keep))
    ax.bar(position - 0.2, shares[0][keep], 0.4, color=GENERATED, label="generated")
    ax.bar(position + 0.2, shares[1][keep], 0.4, color=DATA, label="training")
    ax.set_xticks(position, [labels[k] for k in keep], rotation=30, ha="right", fontsize=7)
    ax.set_ylabel("share", fontsize=8)


def table_plot(samples: np.ndarray, data: np.ndarray, schema: Sequence, title: str = "",
               per_row: int = 4, point_masses: dict[int, list[float]] | None = None) -> bytes:
    """One panel per column of a table, generated over training rows, as PNG bytes: histograms
    for numbers, bars of category shares for categories; missing cells as their share (numbers)
    or a "(missing)" bar (categories); the share on each of a column's ``point_masses`` (up to
    three, by column index), which a histogram's bar heights do not show."""
    point_masses = point_masses or {}
    d = len(schema)
    rows = -(-d // per_row)
    fig, axes = plt.subplots(rows, min(d, per_row), figsize=(3.4 * min(d, per_row), 2.9 * rows),
                             squeeze=False)
    for ax in axes.flat[d:]:
        ax.axis("off")
    for j, (ax, column) in enumerate(zip(axes.flat, schema)):
        generated, training = samples[:, j], data[:, j]
        both = np.concatenate([generated, training])
        levels = np.unique(both[~np.isnan(both)])
        if column.kind == "categorical" or (column.kind == "integer" and len(levels) <= 20):
            # Categories, and whole numbers of few values, as bars of their shares.
            if column.kind == "categorical":
                labels = [str(label)[:12] for label in column.categories] + ["(missing)"]
                shares = [frequencies(v, len(column.categories)) for v in (generated, training)]
            else:
                labels = [format_value(column, level) for level in levels] + ["(missing)"]
                shares = [frequencies(np.where(np.isnan(v), np.nan, np.searchsorted(levels, v)), len(levels))
                          for v in (generated, training)]
            _category_panel(ax, labels, shares)
        else:
            present = [v[~np.isnan(v)] for v in (generated, training)]
            present = [_on_calendar(ax, "x", column, v) for v in present]
            low, high = _limits(present[0][:, None], present[1][:, None])
            bins = np.linspace(low[0], high[0], 40)
            for values, color, label in zip(present, (GENERATED, DATA), ("generated", "training")):
                _density_histogram(ax, values, bins, color=color, alpha=0.5, label=label)
            notes = [f"missing {100 * np.isnan(generated).mean():.1f}% "
                     f"(training {100 * np.isnan(training).mean():.1f}%)"] if column.nullable else []
            notes += [f"at {mass:g}: {100 * np.mean(generated == mass):.1f}% "
                      f"(training {100 * np.mean(training == mass):.1f}%)"
                      for mass in point_masses.get(j, [])[:3]]
            if notes:
                ax.text(0.98, 0.95, "\n".join(notes), transform=ax.transAxes, ha="right", va="top",
                        fontsize=7)
        ax.set_title(f"{column.name} ({column.kind_name})", fontsize=9)
        if column.unit:
            ax.set_xlabel(column.axis_label, fontsize=8)
        ax.grid(alpha=0.3)
    legend = next((ax for ax in axes.flat if "generated" in ax.get_legend_handles_labels()[1]), None)
    if legend is not None:
        legend.legend(fontsize=7)
    fig.suptitle(title or "generated vs training, per column")
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.3 / fig.get_figheight()))  # room for the title: 0.3 inch
    return _png(fig)


PAIRS = 4
"""Column pairs drawn by ``pairs_plot``: the most associated in the training rows."""
PAIR_ROWS = 5000
"""Rows of each side that ``pairs_plot`` ranks and draws at most (a random subset of more): a
million training rows took 1.6 s against 0.35 s, and a denser scatter shows no more."""


def strongest_pairs(data: np.ndarray, schema: Sequence, count: int = PAIRS) -> list[tuple[int, int]]:
    """The ``count`` pairs of columns most associated in ``data`` (Pearson correlation, the
    correlation ratio or Cramer's V by their kinds, in absolute value; for two numbers also the
    correlation ratio of either's deciles, which sees a relation that is not a line: a season
    over the dates), strongest first."""
    strength = np.abs(associations(data, schema))
    numbers = [k for k, column in enumerate(schema) if column.kind != "categorical"]
    if len(numbers) > 1:
        ratios = _decile_ratios(data[:, numbers])
        block = np.ix_(numbers, numbers)
        strength[block] = np.fmax(strength[block], np.fmax(ratios, ratios.T))
    pairs = [(i, j) for i in range(len(schema)) for j in range(i + 1, len(schema))
             if np.isfinite(strength[i, j])]
    return sorted(pairs, key=lambda pair: -strength[pair])[:count]


def _decile_ratios(values: np.ndarray) -> np.ndarray:
    """[i, j]: how much of column j's spread the deciles of column i (over its present cells)
    explain, on the rows where both are present (a correlation ratio); a matrix product per
    column, not a loop over pairs (a table of 150 columns has 11,000 of them)."""
    present = ~np.isnan(values)
    filled = np.where(present, values, 0.0)
    out = np.full((values.shape[1],) * 2, np.nan)
    for i in range(values.shape[1]):
        rows = present[:, i]
        if rows.sum() < 20:
            continue
        by = values[rows, i]
        deciles = np.searchsorted(np.quantile(by, np.linspace(0.1, 0.9, 9)), by, side="right")
        groups = np.eye(10)[deciles].T  # (10, rows): which decile each row is in
        count = groups @ present[rows]  # per decile and column: rows present in both
        total = groups @ filled[rows]
        squares = groups @ filled[rows] ** 2
        n, mean = count.sum(0), total.sum(0) / np.maximum(count.sum(0), 1)
        between = (count * (total / np.maximum(count, 1) - mean) ** 2).sum(0)
        spread = squares.sum(0) - n * mean**2
        with np.errstate(invalid="ignore", divide="ignore"):
            out[i] = np.sqrt(np.clip(between / spread, 0, 1))
    np.fill_diagonal(out, np.nan)
    return out


def pairs_plot(samples: np.ndarray, data: np.ndarray, schema: Sequence, title: str = "") -> bytes | None:
    """The table's most associated column pairs (``strongest_pairs``), the training rows beside
    the generated ones, as PNG bytes (None for a table of one column): a scatter for two numbers,
    boxes per category for a number and a category, the joint shares for two categories; rows
    with a missing cell in the pair are left out."""
    rng = np.random.default_rng(0)
    data, samples = (rows[rng.permutation(len(rows))[:PAIR_ROWS]] if len(rows) > PAIR_ROWS else rows
                     for rows in (data, samples))
    pairs = strongest_pairs(data, schema)
    if not pairs:
        return None
    fig, axes = plt.subplots(len(pairs), 2, figsize=(7.4, 2.9 * len(pairs)), squeeze=False)
    for (i, j), row in zip(pairs, axes):
        if schema[i].kind != "categorical" and schema[j].kind == "categorical":
            i, j = j, i  # the category first: on the x axis of its boxes
        both = [rows[~np.isnan(rows[:, i]) & ~np.isnan(rows[:, j])] for rows in (data, samples)]
        both[1] = both[1][: len(both[0])]  # as many points as the training rows: scatters read alike
        for ax, rows, name, color in zip(row, both, ("training", "generated"), (DATA, GENERATED)):
            _pair_panel(ax, rows[:, i], rows[:, j], schema[i], schema[j], color)
            ax.set_title(f"{name}: {schema[i].name} and {schema[j].name}", fontsize=9)
        numbers = sum(schema[k].kind != "categorical" for k in (i, j))
        for axis in ("x", "y")[2 - numbers:]:  # the two sides on the same scale: the numbers' axes
            limits = [getattr(ax, f"get_{axis}lim")() for ax in row]
            for ax in row:
                getattr(ax, f"set_{axis}lim")(min(low for low, _ in limits), max(high for _, high in limits))
    fig.suptitle(title or "most associated column pairs, training vs generated")
    fig.tight_layout()
    return _png(fig)


def _pair_panel(ax, a: np.ndarray, b: np.ndarray, first, second, color: str) -> None:
    a, b = (_on_calendar(ax, axis, column, v) for axis, column, v in (("x", first, a), ("y", second, b)))
    if first.kind == "categorical" and second.kind == "categorical":
        shares = np.zeros((len(second.categories), len(first.categories)))
        np.add.at(shares, (b.astype(int), a.astype(int)), 1.0 / max(len(a), 1))
        ax.imshow(shares, cmap="Blues" if color == GENERATED else "Oranges", origin="lower", aspect="auto")
        ax.set_xticks(range(len(first.categories)), [str(c)[:10] for c in first.categories], rotation=30,
                      ha="right", fontsize=7)
        ax.set_yticks(range(len(second.categories)), [str(c)[:10] for c in second.categories], fontsize=7)
    elif first.kind == "categorical":
        groups = [b[a == k] for k in range(len(first.categories))]
        ax.boxplot([g if len(g) else [np.nan] for g in groups], patch_artist=True, showfliers=False,
                   boxprops={"facecolor": color, "alpha": 0.5}, medianprops={"color": TRUTH})
        ax.set_xticks(range(1, len(groups) + 1), [str(c)[:10] for c in first.categories], rotation=30,
                      ha="right", fontsize=7)
    else:
        ax.scatter(a, b, s=4, alpha=0.4, color=color)
        ax.grid(alpha=0.3)
    ax.set_xlabel(first.axis_label if not _dated(first) else first.name, fontsize=8)
    ax.set_ylabel(second.axis_label if not _dated(second) else second.name, fontsize=8)


def _dated(column) -> bool:
    return bool(column.time_unit and column.time_origin)


def _on_calendar(ax, axis: str, column, values: np.ndarray) -> np.ndarray:
    """A date column's values as matplotlib's dates, its axis made a calendar; others as they are."""
    if not _dated(column):
        return values
    getattr(ax, f"{axis}axis_date")()
    ax.tick_params(axis=axis, labelrotation=30 if axis == "x" else 0, labelsize=7)
    return days_since_1970(column, values)


def animate_reverse_process(frames: Sequence[np.ndarray], levels: Sequence[float], columns: Sequence[str],
                            path: str, fps: int = 8, progress: bool = False) -> None:
    """A GIF of the reverse process: a histogram evolving (1-D) or points moving (2-D and the first
    two columns of more); ``progress`` shows a bar of the frames drawn (the slow part)."""
    from matplotlib.animation import FuncAnimation, PillowWriter

    from ..progress import bar

    final = frames[-1]
    low, high = _limits(final[:, :2])
    span = high - low
    low, high = low - 0.5 * span, high + 0.5 * span
    fig, ax = plt.subplots(figsize=(5, 4.2))
    one_d = final.shape[1] == 1
    if one_d:
        bins = np.linspace(low[0], high[0], 100)
        peak = np.histogram(final[~np.isnan(final[:, 0]), 0], bins=bins, density=True)[0].max()
    else:
        points = ax.scatter(frames[0][:, 0], frames[0][:, 1], s=2, alpha=0.4, color=GENERATED,
                            linewidths=0)
        ax.set_xlim(low[0], high[0])
        ax.set_ylim(low[1], high[1])
        ax.set_ylabel(columns[1])
    ax.set_xlabel(columns[0])

    def draw(k: int):
        frame = frames[k]
        title = f"noise level {levels[k]:.3g}" if levels[k] > 0 else "samples"
        if one_d:
            ax.clear()
            ax.hist(frame[~np.isnan(frame[:, 0]), 0], bins=bins, density=True, color=GENERATED, alpha=0.7)
            ax.set_ylim(0, 1.15 * peak)
            ax.set_xlabel(columns[0])
            ax.set_title(title)
            return ()
        points.set_offsets(frame[:, :2])
        ax.set_title(title)
        return (points,)

    order = list(range(len(frames))) + [len(frames) - 1] * fps  # linger on the result
    animation = FuncAnimation(fig, draw, frames=order, blit=False)
    with bar(len(order), desc="frames", unit="frame", enabled=progress) as frames_drawn:
        animation.save(path, writer=PillowWriter(fps=fps), progress_callback=lambda *_: frames_drawn.update())
    plt.close(fig)


def density_plot(
    log_density: Callable[[np.ndarray], np.ndarray],
    data: np.ndarray,
    columns: Sequence[str],
    true_log_density: Callable[[np.ndarray], np.ndarray] | None = None,
    title: str = "",
) -> bytes | None:
    """The model's density over the truth's, as PNG bytes (None above two columns).

    1-D: both curves over a histogram of the training data (and the log densities below, where
    tails show). 2-D: heat maps of the model's density beside the truth's (or the data's).
    """
    d = data.shape[1]
    if d > 2:
        return None
    low, high = _limits(data)
    if d == 1:
        grid = np.linspace(low[0], high[0], 300)[:, None]
        model = log_density(grid)
        fig, (top, bottom) = plt.subplots(2, 1, figsize=(7, 5.5), sharex=True,
                                          gridspec_kw={"height_ratios": [3, 2]})
        top.hist(data[:, 0], bins=80, density=True, color=DATA, alpha=0.35, label="training data")
        top.plot(grid[:, 0], np.exp(model), color=GENERATED, lw=2, label="model density")
        bottom.plot(grid[:, 0], model, color=GENERATED, lw=2)
        if true_log_density is not None:
            truth = true_log_density(grid)
            top.plot(grid[:, 0], np.exp(truth), color=TRUTH, lw=1.2, ls="--", label="true density")
            bottom.plot(grid[:, 0], truth, color=TRUTH, lw=1.2, ls="--")
        top.set_ylabel("density")
        top.legend()
        bottom.set_ylabel("log density")
        bottom.set_xlabel(columns[0])
        bottom.set_ylim(max(float(np.nanmin(model[np.isfinite(model)])), float(np.nanmax(model)) - 25),
                        float(np.nanmax(model)) + 1)
        top.set_title(title or "density")
        return _png(fig)
    axes = [np.linspace(low[j], high[j], 60) for j in range(2)]
    mesh = np.stack(np.meshgrid(*axes), -1).reshape(-1, 2)
    panels = [("model density", np.exp(log_density(mesh)))]
    if true_log_density is not None:
        panels.append(("true density", np.exp(true_log_density(mesh))))
    fig, ax = plt.subplots(1, len(panels) + 1, figsize=(4.2 * (len(panels) + 1), 4), squeeze=False)
    top = max(float(np.nanmax(values)) for _, values in panels)
    for axis, (label, values) in zip(ax[0], panels):
        axis.pcolormesh(axes[0], axes[1], values.reshape(60, 60), shading="auto", cmap="magma",
                        vmin=0, vmax=top)
        axis.set_title(label)
    ax[0][-1].scatter(data[:4000, 0], data[:4000, 1], s=1, color=DATA, alpha=0.5)
    ax[0][-1].set_title("training data")
    for axis in ax[0]:
        axis.set_xlim(low[0], high[0])
        axis.set_ylim(low[1], high[1])
        axis.set_xlabel(columns[0])
    ax[0][0].set_ylabel(columns[1])
    fig.suptitle(title or "density")
    return _png(fig)


def score_plot(log_density: np.ndarray, lowest: int, title: str = "") -> bytes:
    """Histogram of per-row log-densities with the ``lowest`` rows marked: where anomalies sit."""
    finite = log_density[np.isfinite(log_density)]
    fig, ax = plt.subplots(figsize=(6.5, 3.8))
    ax.hist(finite, bins=80, color=GENERATED, alpha=0.8)
    marked = np.sort(finite)[:lowest]
    for value in marked:
        ax.axvline(value, color="tab:red", lw=0.8, alpha=0.7)
    ax.set_xlabel("log density of each row (nats)")
    ax.set_ylabel("rows")
    outside = int(np.isneginf(log_density).sum())
    note = f"; {outside} rows outside the model's support" if outside else ""
    ax.set_title(title or f"scores: the {len(marked)} lowest marked in red{note}")
    return _png(fig)


def calibration_plot(result: dict, title: str = "") -> bytes:
    """A conditional model's calibration (``evaluation/calibration.py``): the coverage of its
    intervals against their level, and the rank histogram of each column (flat when calibrated,
    with the band a uniform histogram stays in 95% of the time)."""
    columns = result["columns"][:6]
    ranks = np.asarray(result["ranks"])
    fig, axes = plt.subplots(1, len(columns) + 1, figsize=(3.2 * (len(columns) + 1), 3.2),
                             squeeze=False)
    ax = axes[0, 0]
    curve = result["curve"]
    ax.plot([0, 1], [0, 1], color=TRUTH, lw=1, ls="--", label="calibrated")
    ax.plot(curve["levels"], curve["central"], color=GENERATED, marker=".", label="central intervals")
    ax.plot(curve["levels"], curve["tarp"], color=DATA, marker=".", label="TARP (joint)")
    ax.set_xlabel("credible level")
    ax.set_ylabel("coverage of the true values")
    ax.set_title("coverage")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    bins = 10
    expected = len(ranks) / bins
    spread = 1.96 * np.sqrt(expected * (1 - 1 / bins))
    for k, name in enumerate(columns):
        ax = axes[0, k + 1]
        ax.hist(ranks[:, k], bins=np.linspace(0, result["draws"] + 1, bins + 1), color=GENERATED,
                alpha=0.8)
        ax.axhspan(expected - spread, expected + spread, color=TRUTH, alpha=0.12)
        ax.axhline(expected, color=TRUTH, lw=1)
        ax.set_title(f"{name}: rank of the truth", fontsize=9)
        ax.set_xlabel(f"rank among {result['draws']} draws")
    fig.suptitle(title or "calibration on held-out rows")
    fig.tight_layout()
    return _png(fig)
