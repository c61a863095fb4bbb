"""Many fits at once: a grid of settings times seeds, each a normal run folder, run as independent
jobs by joblib, with a table of their metrics.

Why joblib: it comes with scikit-learn (already a dependency), runs jobs in worker processes
(loky) with nothing to start or configure, and each job here is a whole ``fit`` that shares
nothing with the others. Ray or Dask would add a scheduler and a server for no gain on one
machine; across machines a cluster's own job array (one ``simple-diffusion train`` per task)
does the same with the same run folders (README, "Scaling up").

>>> [name for name, _ in expand({"train.lr": [1e-3, 4e-3]}, seeds=[0, 1])]
['lr=0.001_seed=0', 'lr=0.001_seed=1', 'lr=0.004_seed=0', 'lr=0.004_seed=1']
"""

from __future__ import annotations

import itertools
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import UserError, command_line, on_command_line

if TYPE_CHECKING:
    import pandas as pd

SUMMARY = "summary.csv"
METRICS = ("ratio", "distance", "floor", "kl_estimate", "nll_per_row", "train_seconds", "sample_seconds")
"""The columns of the summary taken from each run's metrics.json (those it has)."""


def expand(grid: dict[str, list[Any]], seeds: list[int]) -> list[tuple[str, dict[str, Any]]]:
    """Every combination of ``grid``'s values (keys ``section.key`` of config.toml) with every
    seed: (a folder name, the settings as ``{"section.key": value}``)."""
    for key in grid:
        if key.count(".") != 1:
            raise UserError(f"--set {key}: name a setting as section.key, e.g. train.lr")
    keys = list(grid)
    combinations = []
    for values in itertools.product(*(grid[k] for k in keys), seeds):
        settings = dict(zip([*keys, "train.seed"], values))
        name = "_".join(f"{k.split('.')[1]}={_text(v)}" for k, v in settings.items())
        combinations.append((name.replace("train.seed", "seed"), settings))
    return combinations


def _text(value: Any) -> str:
    """A value as it reads in a folder name."""
    if isinstance(value, (list, tuple)):  # widths 32x32, names kind+sex; an empty list: none
        joiner = "+" if any(isinstance(v, str) for v in value) else "x"
        return joiner.join(map(_text, value)) or "none"
    return f"{value:g}" if isinstance(value, float) else str(value)


def _nested(settings: dict[str, Any]) -> dict[str, dict[str, Any]]:
    nested: dict[str, dict[str, Any]] = {}
    for key, value in settings.items():
        section, name = key.split(".")
        nested.setdefault(section, {})[name] = value
    return nested


def _fit_one(data: Any, folder: str, settings: dict[str, Any], preset: str,
             config: dict[str, Any], options: dict[str, Any], to_command_line: bool) -> dict[str, Any]:
    """One job: a run folder trained and evaluated; its row of the summary (an error advising as
    the sweep's caller would act: a worker process starts without the caller's context)."""
    from . import api
    from . import config as cfg

    merged = cfg.merge(config, _nested(settings))
    start = time.perf_counter()
    try:
        with command_line(to_command_line):
            api.fit(data, preset=preset, config=merged, out=folder, progress=False, verbose=False,
                    **options)
    except UserError as exc:
        return {"run": Path(folder).name, **settings, "error": str(exc)}
    row: dict[str, Any] = {"run": Path(folder).name, **settings}
    if options.get("num_samples") != 0:
        metrics = api.RunFolder(folder).read_metrics()
        flat = {**metrics, **metrics.get("likelihood", {})}
        row.update({k: flat[k] for k in METRICS if flat.get(k) is not None})
    row["wall_seconds"] = time.perf_counter() - start
    return row


def sweep(data: Any, out: str | os.PathLike, *, grid: dict[str, list[Any]] | None = None,
          seeds: list[int] | tuple[int, ...] = (0,), preset: str = "default",
          config: dict[str, Any] | str | None = None, jobs: int = 1, overwrite: bool = False,
          num_samples: int | None = None, likelihood_rows: int = 1000, progress: bool = True) -> pd.DataFrame:
    """Fit ``data`` once per combination of ``grid`` (``{"train.lr": [1e-3, 4e-3], ...}``) and
    ``seeds``, each into its own run folder under ``out`` (named by its settings), ``jobs`` at a
    time in worker processes; return the summary (a DataFrame, also written to
    ``out/summary.csv``): each run's settings, ratio, distance, floor, KL estimate or NLL,
    seconds, and the error of a run that failed on its data or settings.

    >>> import simple_diffusion as sd, tempfile
    >>> table = sd.sweep("two_gaussians", tempfile.mkdtemp(), grid={"train.lr": [1e-3, 4e-3]},
    ...                  config={"train": {"steps": 20}}, num_samples=0, progress=False)
    >>> list(table.run)
    ['lr=0.001_seed=0', 'lr=0.004_seed=0']
    """
    import joblib
    import pandas as pd

    from . import config as cfg
    from .data.io import write_text
    from .progress import bar

    if jobs < 1:
        raise UserError(f"jobs must be at least 1, got {jobs}")
    base = cfg.load_toml(str(config)) if isinstance(config, (str, os.PathLike)) else dict(config or {})
    combinations = expand(dict(grid or {}), list(seeds))
    for _, settings in combinations:  # a misspelt setting fails here, not in every job
        cfg.override(cfg.preset(preset), cfg.merge(base, _nested(settings)))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    options = {"overwrite": overwrite, "num_samples": num_samples, "likelihood_rows": likelihood_rows}
    speaking = on_command_line()
    calls = (joblib.delayed(_fit_one)(data, str(out / name), settings, preset, base, options, speaking)
             for name, settings in combinations)
    rows = []
    with bar(len(combinations), desc="sweep", unit="run", enabled=progress) as progress_bar:
        for row in joblib.Parallel(n_jobs=jobs, return_as="generator")(calls):
            rows.append(row)
            progress_bar.update()
    table = pd.DataFrame(rows)
    write_text(out / SUMMARY, table.to_csv(index=False))
    return table


def by_setting(table: pd.DataFrame) -> pd.DataFrame | None:
    """The summary averaged over seeds: mean and standard deviation of each metric per setting
    (None when the sweep has one seed per setting)."""
    settings = [c for c in table.columns if "." in c and c != "train.seed"]
    metrics = [c for c in METRICS if c in table.columns]
    if "train.seed" not in table or table["train.seed"].nunique() < 2 or not metrics:
        return None
    if not settings:
        return table[metrics].agg(["mean", "std"])
    keyed = table.assign(**{c: table[c].map(_text) for c in settings})
    return keyed.groupby(settings)[metrics].agg(["mean", "std"])
