"""The few functions users call: ``fit``, ``load``, ``evaluate``; the CLI is a thin layer over them.

>>> import simple_diffusion as sd
>>> model = sd.fit("two_gaussians", epochs=3, progress=False)
>>> x = model.sample(20_000, seed=0)
>>> result = sd.evaluate(x, against="two_gaussians", train=sd.training_data("two_gaussians").train)
>>> sorted(k for k in result if k in ("distance", "floor", "ratio"))
['distance', 'floor', 'ratio']
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import platform
import sys
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from . import __version__, build
from . import config as cfg
from .data import io
from .data import targets as builtin
from .data.columns import Column, from_states, to_frame
from .errors import UserError, advice, counted, is_follower, said
from .model import BLOCK, DiffusionModel, beside_conditions
from .runs import CONFIG, SAVED_BY, RunFolder, file_digest, split_record
from .training.distill import Student
from .training.distributed import Ranks, resolve_device

if TYPE_CHECKING:
    import pandas as pd

    from .data.tables import TableEncoder

REFERENCE_SIZE = 100_000
"""Fresh draws of a built-in target that samples are judged against, and the most samples an
evaluation draws by default."""


def evaluation_size(train_rows: int, reference_rows: int = REFERENCE_SIZE) -> int:
    """Samples an evaluation draws by default: 10 per row of the smaller of the training rows and
    the reference, within 10,000-100,000. The distances' noise goes as sqrt(1/samples + 1/rows)
    for each set they are compared with: past ten times its rows, more samples barely move it (a
    300-row table needs no 100,000, nor does a 50,000-row table held out 5,000 rows)."""
    return min(REFERENCE_SIZE, max(10_000, 10 * min(train_rows, reference_rows)))


LIKELIHOOD_ROWS = 1000
"""Held-out rows whose log-likelihood evaluation reports (each needs an ODE solve)."""
REFERENCE_SEED = 1_000_003
"""Seed of the fresh target draws that evaluation compares against (never used for training)."""
TRAINING_ROWS_WARNING = 0.2
"""Share of the reference's rows that may repeat a training row beyond what the held-out rows
repeat, before evaluate warns that the reference holds the training rows."""


@dataclass
class TrainingData:
    """Training and validation rows in the data's own units, and where they came from."""

    train: np.ndarray
    val: np.ndarray
    columns: list[str]
    source: str
    target: str | None = None
    order: np.ndarray | None = None
    """Row indices of the table: the first ``len(val)`` held out, the rest trained on in order."""
    sha256: str | None = None
    """The data file's digest, to notice a file changed since training."""
    schema: list[Column] | None = None
    """Each column's kind (numeric, integer, categorical) and labels; None: all numeric."""
    dropped: int = 0
    """Rows left out for a missing cell (``data.drop_missing``)."""
    frame: bool = False
    """Whether the data came as a table (a DataFrame or a file): samples are then DataFrames."""
    labels: list[Any] | None = None
    """A DataFrame's own column labels where some are numbers (``pd.DataFrame(array)``'s 0, 1,
    ...; ``columns`` holds them as text): samples carry them again."""

    def __post_init__(self) -> None:
        if self.schema is None:
            self.schema = [Column(name, "numeric") for name in self.columns]

    def reference(self, n: int = REFERENCE_SIZE) -> np.ndarray:
        """What samples are judged against: fresh target draws, or the held-out rows."""
        if self.target is not None:
            return builtin.draw(self.target, n, seed=REFERENCE_SEED).numpy()
        return self.val


def training_data(
    data: str | os.PathLike | np.ndarray | pd.DataFrame,
    data_config: cfg.DataConfig | None = None,
    columns: list[str] | None = None,
    validation: str | os.PathLike | np.ndarray | pd.DataFrame | None = None,
) -> TrainingData:
    """Resolve a built-in target name, a file path, a DataFrame or an array into training and
    validation rows: a random ``data.val_fraction`` of the rows held out, or all of ``data``
    trained on and ``validation`` held out."""
    data_config = data_config or cfg.DataConfig()
    data, validation = _as_table(data), _as_table(validation)
    if isinstance(data, str) and data in builtin.TARGETS:
        train = builtin.draw(data, data_config.train_size, seed=data_config.data_seed).numpy()
        val = builtin.draw(data, data_config.val_size, seed=data_config.data_seed + 1).numpy()
        names = ["x"] if train.shape[1] == 1 else [f"x{i + 1}" for i in range(train.shape[1])]
        return TrainingData(train, val, names, data, target=data)
    if validation is not None:
        prepared = _given_split(data, validation, data_config, columns)
    else:
        table, sha256 = _read(data, data_config, columns)
        rng = np.random.default_rng(data_config.data_seed)
        order = rng.permutation(len(table.values))
        held_out = max(1, round(data_config.val_fraction * len(order)))
        if len(order) - held_out < 2:  # one training row would be refused as "constant" in every column
            raise UserError(f"{table.source}: {counted(len(order), 'row')} are too few to learn from: "
                            f"{held_out:,} held out for validation would leave "
                            f"{counted(len(order) - held_out, 'training row')} (at least 3 rows are needed)")
        prepared = _split(table, order, held_out, sha256)
    prepared.labels = _number_labels(data, prepared.columns)
    return prepared


def _number_labels(table: Any, columns: list[str]) -> list[Any] | None:
    """``table``'s own labels of ``columns`` (their text) where it is a DataFrame with number
    labels, else None."""
    import pandas as pd

    if not isinstance(table, pd.DataFrame):
        return None
    numbers = [c for c in table.columns if isinstance(c, (int, np.integer)) and not isinstance(c, bool)]
    own = {str(c): int(c) for c in numbers}
    return [own.get(name, name) for name in columns] if own else None


def _read(data, config: cfg.DataConfig, columns: list[str] | None) -> tuple[io.Table, str | None]:
    """The table of a file, DataFrame or array, with the kinds and missing-row policy of
    ``config``, and a file's SHA-256."""
    import pandas as pd

    kinds = {"categorical": config.categorical, "integer": config.integer, "numeric": config.numeric}
    if isinstance(data, pd.DataFrame):
        frame = io.select_columns(data.rename(columns=str), [str(c) for c in columns], "DataFrame") \
            if columns else data
        index = frame.index
        if index.names != [None] or not pd.api.types.is_integer_dtype(index.dtype):
            # A time series' dates, or the IDs of rows, kept in the index: data a user expects learnt.
            what = ", ".join(map(str, index.names)) if index.names != [None] else str(index.dtype)
            warnings.warn(f"DataFrame: its index ({what}) is not learnt, only its columns; reset_index() "
                          "makes it a column", stacklevel=4)
        return io.from_frame(frame, "DataFrame", kinds, config.drop_missing), None
    if isinstance(data, (str, os.PathLike)):
        path = os.path.abspath(data)  # evaluation and resumption may run from another folder
        if not os.path.splitext(path)[1] and not os.path.isdir(path):
            raise UserError(
                f"{data!s:.200} is neither a built-in target ({', '.join(builtin.TARGETS)}) "
                f"nor a {', '.join(io.FORMATS)} file (nor a folder of Parquet parts)"
            )
        table = io.read_table(str(data), columns=columns, header=_header(config), kinds=kinds,
                              drop_missing=config.drop_missing)
        table.source = path
        return table, file_digest(io.workbook_sheet(path)[0])
    names = getattr(data, "names", None)
    return io.from_array(np.asarray(data), names, kinds=kinds, drop_missing=config.drop_missing), None


def _given_split(data, validation, config: cfg.DataConfig, columns: list[str] | None) -> TrainingData:
    """Training rows and held-out rows given apart: read as one table (so that both share the
    columns' kinds and labels), then cut where the first ends."""
    import pandas as pd

    def frame(part):
        if isinstance(part, pd.DataFrame):
            return part
        if isinstance(part, (str, os.PathLike)):
            table = io.read_table(str(part), header=_header(config))
            return to_frame(table.values, table.schema)
        array = _as_rows(part)
        return pd.DataFrame(array, columns=[f"x{i + 1}" for i in range(array.shape[1])])

    if config.drop_missing:
        raise UserError("drop rows with missing cells before passing validation rows")
    first, second = frame(data), frame(validation)
    if list(first.columns) != list(second.columns):
        raise UserError("the validation rows must have the training rows' columns")
    both = pd.concat([first, second], ignore_index=True)
    table, _ = _read(both, config, columns)
    n = len(first)
    order = np.concatenate([np.arange(n, len(both)), np.arange(n)])
    return _split(table, order, len(both) - n, None, frame=isinstance(data, pd.DataFrame))


def _header(config: cfg.DataConfig) -> bool | None:
    """``data.header`` as ``io.read_table`` takes it: None detects."""
    return {"auto": None, "yes": True, "no": False}[config.header]


def _split(table: io.Table, order: np.ndarray, held_out: int, sha256: str | None,
           frame: bool | None = None) -> TrainingData:
    values = table.values
    is_frame = frame if frame is not None else table.source != "array"
    return TrainingData(values[order[held_out:]], values[order[:held_out]], list(table.columns),
                        table.source, order=order, sha256=sha256, schema=table.schema,
                        dropped=table.dropped, frame=is_frame)


def run_training_data(folder: RunFolder, config: cfg.Config, run_info: dict[str, Any]) -> TrainingData:
    """The rows a run trained on and held out, as recorded in its folder, from any working folder.

    A data file that changed since training is refused: its held-out rows are gone.
    """
    if run_info.get("target"):
        return training_data(run_info["target"], config.data)
    tensors, metadata = folder.load_split()
    columns = json.loads(metadata["columns"])
    schema = from_states(json.loads(metadata["schema"])) if "schema" in metadata else None
    frame = metadata.get("frame") == "true"
    held_out = int(metadata["held_out"])
    if "train" in tensors:
        return TrainingData(tensors["train"].numpy(), tensors["val"].numpy(), columns,
                            metadata["source"], schema=schema, frame=frame,
                            labels=json.loads(metadata["labels"]) if "labels" in metadata else None)
    path = metadata["source"]
    file = io.workbook_sheet(path)[0]
    if not os.path.exists(file):
        raise UserError(f"the run's data file {file} is gone: evaluation and resumption need it")
    if file_digest(file) != metadata["sha256"]:
        raise UserError(
            f"the run's data file {path} changed since training (its SHA-256 differs): its "
            "held-out rows are no longer known; restore the file or train a new run"
        )
    table, _ = _read(path, config.data, columns)
    return _split(table, tensors["order"].numpy(), held_out, metadata["sha256"])


def resolve_config(
    preset: str = "default",
    config: cfg.Config | dict[str, Any] | str | None = None,
    seed: int | None = None,
    epochs: int | None = None,
    steps: int | None = None,
) -> cfg.Config:
    """A preset with overrides from a ``Config``, a nested dict or a TOML file, then
    seed/epochs/steps."""
    if isinstance(config, cfg.Config):
        resolved = cfg.validate(config)
    else:
        resolved = cfg.preset(preset)
        if isinstance(config, (str, os.PathLike)):
            config = cfg.load_toml(str(config))
        if config:
            resolved = cfg.override(resolved, config)
    changes: dict[str, Any] = {}
    if seed is not None:
        changes["seed"] = seed
    if epochs is not None:
        changes["epochs"] = epochs
    if steps is not None:
        changes["steps"] = steps
    return cfg.override(resolved, {"train": changes}) if changes else resolved


def fit(
    data: str | os.PathLike | np.ndarray | pd.DataFrame | None,
    *,
    preset: str = "default",
    config: cfg.Config | dict[str, Any] | str | None = None,
    seed: int | None = None,
    epochs: int | None = None,
    steps: int | None = None,
    columns: list[str] | None = None,
    out: str | os.PathLike | None = None,
    overwrite: bool = False,
    resume: bool = False,
    progress: bool = True,
    num_samples: int | None = None,
    likelihood_rows: int = LIKELIHOOD_ROWS,
    validation: str | os.PathLike | np.ndarray | pd.DataFrame | None = None,
    verbose: bool | None = None,
    condition: list[str] | np.ndarray | torch.Tensor | pd.DataFrame | None = None,
) -> DiffusionModel:
    """Train a diffusion model on ``data``: a built-in target name, a file path, a pandas
    DataFrame (or Series: one column) or an array.

    Column kinds come from the data (text, booleans and pandas categories are categorical,
    whole-number columns integer; ``config={"data": {"categorical": [...]}}`` and its siblings
    ``integer``/``numeric`` override), missing cells are learnt, and a model fitted on a table
    (a DataFrame or a file) samples DataFrames with the same columns and dtypes. A random
    ``data.val_fraction`` of the rows is held out, or ``validation`` rows are. ``verbose``
    (default: as ``progress``) says on stderr what kind each column was taken to be. ``steps``
    (optimiser steps) or ``epochs`` (passes) replace the budget that follows the data's size.

    With ``out`` the run folder receives the config and the data split at once, checkpoints
    while training (and on Ctrl-C or SIGTERM, after which ``resume=True`` continues bit for bit;
    with ``epochs`` it trains up to that many in all), then the model, the losses and, from
    ``num_samples`` samples (default ``evaluation_size``; 0 skips), the metrics, plots and
    report (with the log-likelihood of ``likelihood_rows`` held-out rows): the same folder as
    ``simple-diffusion train`` writes.

    On ``train.device`` (auto: a GPU when torch sees one). Started by torchrun (``WORLD_SIZE``
    in the environment), every process calls ``fit`` alike and trains its share of each batch
    of the one model (``training/distributed.py``); rank 0 writes the run folder and evaluates.

    ``condition`` makes a conditional model: names of columns of ``data``, or conditions row
    by row beside it: an array beside an array (then named x1.. and c1..), or a DataFrame (or
    Series) beside a DataFrame or an array, whose columns keep their names and kinds (labels
    too), and the model samples DataFrames. It learns the
    other columns given these (``model.sample(n, given=...)``) and, on a share
    ``train.condition_dropout`` of the rows, without them, so that it also samples the joint.
    """
    if isinstance(config, (str, os.PathLike)):
        config = cfg.load_toml(str(config))
    if condition is not None:
        data, names = _with_condition(data, condition)
        if isinstance(config, cfg.Config):
            config = cfg.override(config, {"data": {"condition": names}})
        else:
            config = cfg.merge(config or {}, {"data": {"condition": names}})
    folder = RunFolder(out) if out is not None else None
    if folder is not None and not resume:  # before the data are read, so that a refusal comes alone
        folder.check_claimable(overwrite)
    if resume:
        if folder is None:
            raise UserError("resuming needs the run folder (out=...)")
        if steps is not None:
            raise UserError("resuming trains on to a number of epochs; steps sets a new run's budget")
        ignored = next((name for name, given in (
            ("condition", condition is not None), ("data", data is not None),
            ("preset", preset != "default"), ("seed", seed is not None),
            ("config", any(config.values()) if isinstance(config, dict) else config is not None),
            ("columns", bool(columns)), ("validation", validation is not None)) if given), None)
        if ignored is not None:  # each would be silently ignored: the run goes on as it began
            given = said(f"--{ignored}", ignored)
            raise UserError(f"{said('--resume', 'resuming')} continues with the run's own settings "
                            f"({folder.file(CONFIG)}); {given} sets a new run's")
        resolved, saved_info = folder.read_config()
        if SAVED_BY in saved_info:
            raise UserError(f"{folder.path} was saved by DiffusionModel.save, which keeps the model, not "
                            "its training's state: train a new run to train longer")
        prepared = run_training_data(folder, resolved, saved_info)
    else:
        resolved = resolve_config(preset, config, seed, epochs, steps)
        prepared = training_data(data, resolved.data, columns, validation)
    parts = build.build_parts(resolved, prepared.schema, rows=torch.as_tensor(prepared.train))
    if not resume:
        # Said once the columns are known to fit, so that a refusal is the only line printed;
        # by rank 0 alone among torchrun's processes.
        if (progress if verbose is None else verbose) and prepared.target is None and not is_follower():
            _describe(prepared, parts.encoder, resolved)
        steps_set = isinstance(config, cfg.Config) or "num_steps" in (config or {}).get("sample", {})
        resolved = build.follow_data(resolved, len(prepared.train), parts.encoder, steps_set)
    train_rows = torch.as_tensor(prepared.train)
    train = parts.encoder.forward(train_rows).float()
    val = parts.encoder.forward(torch.as_tensor(prepared.val)).float()
    device = resolve_device(resolved.train.device)
    ranks = Ranks.from_environment(device)
    # Which cells are the rows' own matters only to a Gaussian part (a pass over the table).
    measured = parts.encoder.measured(train_rows) if resolved.model.gaussian_part else None
    trainer = build.trainer(resolved, parts.net, parts.schedule, train, val, parts.condition,
                            device=device, ranks=ranks, measured=measured)
    progress = progress and ranks.is_main
    run_info = {
        "data": prepared.source,
        "target": prepared.target,
        "columns_selected": list(columns) if columns else None,
        "train_rows": len(prepared.train),
        "val_rows": len(prepared.val),
        "rows_dropped": prepared.dropped or None,
        "device": str(device),
        "processes": ranks.world_size,
        "threads": trainer.threads,
        "fast_path": trainer.fast is not None,
        "simple_diffusion": __version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
    }
    said_early_stop = (progress if verbose is None else verbose) and ranks.is_main
    if folder is None:
        trainer.run(progress=progress)
        _say_early_stop(trainer, said_early_stop)
        model = _trained_model(trainer, parts, resolved, prepared)
        model.split = split_record(prepared)  # no folder holds its rows: save writes them from here
        return model
    # Rank 0 alone claims and writes the folder; the others train beside it.
    ranks.on_main(folder.open_for_training, overwrite=overwrite, resume=resume)
    try:
        if resume:
            trainer.load_state_dict(folder.load_checkpoint())
            if epochs is not None:
                trainer.extend(epochs)
                resolved = cfg.override(resolved, {"train": {"epochs": epochs,
                                                             "steps": trainer.total_steps}})
            run_info["columns_selected"] = saved_info.get("columns_selected")
        elif ranks.is_main:
            folder.save_split(split_record(prepared))
        if ranks.is_main:
            folder.save_config(resolved, run_info)
        folder.train(trainer, resolved.train.checkpoint_every, progress, ranks)
        _say_early_stop(trainer, said_early_stop)
        model = _trained_model(trainer, parts, resolved, prepared)
        if ranks.is_main:
            folder.finish(model, trainer.history)
        model.source_folder = folder.path  # which holds its split: save copies it from there
    finally:
        folder.close()
    if num_samples != 0 and ranks.is_main:
        evaluate_run(folder.path, n=num_samples, progress=progress, likelihood_rows=likelihood_rows,
                     data=prepared, device=resolved.train.device)
    return model


def _with_condition(data: Any, condition: Any) -> tuple[Any, list[str]]:
    """``data`` and the names of its condition columns: ``condition`` names them, or holds the
    conditions row by row, joined beside ``data``: as columns c1.. beside x1.. of arrays, or
    as a DataFrame when either is one (its columns keep their names and kinds, labels too)."""
    if isinstance(condition, str):
        return data, [condition]
    if isinstance(condition, (list, tuple)) and all(isinstance(c, str) for c in condition):
        return data, list(condition)
    if _is_frame(data) or _is_frame(condition) or _is_series(data) or _is_series(condition):
        return _joined_frames(data, condition)
    values, conditions = _as_rows(data), _as_rows(condition)
    if values.ndim != 2 or conditions.ndim != 2 or len(values) != len(conditions):
        raise UserError(f"condition needs one row per data row: data has shape {values.shape}, "
                        f"condition {conditions.shape}")
    names = [f"c{i + 1}" for i in range(conditions.shape[1])]
    return _NamedArray(np.hstack([values, conditions]),
                       [f"x{i + 1}" for i in range(values.shape[1])] + names), names


def _joined_frames(data: Any, condition: Any) -> tuple[pd.DataFrame, list[str]]:
    """``data`` and ``condition`` (DataFrames, Series or arrays: an array's columns named x1..
    or c1..) side by side, row by row, and the condition's column names."""
    import pandas as pd

    def frame(part: Any, prefix: str) -> pd.DataFrame:
        if _is_series(part):
            return part.to_frame()
        if _is_frame(part):
            return part
        rows = _as_rows(part)
        return pd.DataFrame(rows, columns=[f"{prefix}{i + 1}" for i in range(rows.shape[1])])

    left, right = frame(data, "x"), frame(condition, "c")
    if len(left) != len(right):
        raise UserError(f"condition needs one row per data row: data has {len(left):,} rows, "
                        f"condition {len(right):,}")
    both = sorted({str(c) for c in left.columns} & {str(c) for c in right.columns})
    if both:
        raise UserError(f"condition: column {both[0]!r} is in the data too; a condition column is "
                        "one of the data's named in a list (condition=[...]), or a column beside them")
    joined = pd.concat([left.reset_index(drop=True), right.reset_index(drop=True)], axis=1)
    return joined, [str(c) for c in right.columns]


def _is_series(x: Any) -> bool:
    return hasattr(x, "to_frame") and hasattr(x, "iloc") and not hasattr(x, "columns")


def _as_table(x: Any) -> Any:
    """A pandas Series as the one-column DataFrame it is (its name, else x1), so that its kind
    (labels, dates, whole numbers) is found as a DataFrame's column's; anything else as it is."""
    return x.to_frame(name="x1" if x.name is None else x.name) if _is_series(x) else x


class _NamedArray(np.ndarray):
    """An array with column names (data and conditions side by side): still an array to fit."""

    def __new__(cls, values: np.ndarray, names: list[str]):
        array = np.asarray(values).view(cls)
        array.names = names
        return array


def _describe(prepared: TrainingData, encoder: TableEncoder, config: cfg.Config) -> None:
    """Say on stderr what the columns were taken to be, which values are point masses, what the
    network is shown of dates (and how to show it more), and what was dropped."""
    from .data.columns import CYCLE_EXAMPLES, CYCLE_NAMES, describe
    from .data.encoders import YeoJohnson
    from .data.tables import ONEHOT_MOST_ENTRIES

    print(f"columns: {describe(prepared.schema)}", file=sys.stderr)
    if encoder.categories_as_bits:
        print(f"categories: learnt as analog bits, their {encoder.onehot_entries} one-hot entries being "
              f"over {ONEHOT_MOST_ENTRIES} ({advice({'data.categorical_encoding': 'onehot'})} keeps one-hot)",
              file=sys.stderr)
    for j, masses in zip(encoder.point_mass_columns, encoder.masses):
        cells = prepared.train[:, j][~np.isnan(prepared.train[:, j])]
        name = encoder.schema[j].name
        shown = ", ".join(f"{m:g}" for m in masses[:8])
        shown += f" ({len(masses)} in all)" if len(masses) > 8 else ""
        what = f"are {shown}, learnt as a point mass" if len(masses) == 1 else (
            f"are one of {shown}, learnt as point masses")
        print(f"{name}: {np.isin(cells, masses).mean():.0%} of its values {what} "
              f"({advice({'data.numeric': [name]})} takes it as continuous)", file=sys.stderr)
    for step in encoder.numeric.steps:
        if isinstance(step, YeoJohnson):
            for k, exponent in zip(step.columns, step.lambdas):
                name = encoder.schema[encoder.numeric_columns[k]].name
                print(f"{name}: skewed, learnt through a Yeo-Johnson transform (exponent {exponent:.2g}; "
                      f"{advice({'data.preprocess': 'standardize'})} leaves it as it is)", file=sys.stderr)
    for column in encoder.schema:
        if not column.cycles:
            continue
        names = [f"a {CYCLE_NAMES[period]}" for period in column.cycles]
        cycles = " and ".join([", ".join(names[:-1]), names[-1]] if len(names) > 1 else names)
        what = "a time of day" if column.clock_only else "a date"
        if column.name in config.data.condition or config.train.inpainting == "learnt":
            where = "" if column.name in config.data.condition else " where given"
            print(f"{column.name}: {what}, shown to the network{where} with its phase in {cycles} (the "
                  "cycles its dates cover)", file=sys.stderr)
        else:
            examples = ", ".join(CYCLE_EXAMPLES[period] for period in column.cycles)
            print(f"{column.name}: {what}, drawn with the rest; for rows by its phase in {cycles} "
                  f"({examples}) train with {advice({'condition': [column.name]})} (rows given it) or "
                  f"{advice({'train.inpainting': 'learnt'})} (gaps filled given it)", file=sys.stderr)
    missing = np.isnan(prepared.train).any(1).sum()
    if missing:
        print(f"{missing:,} of {len(prepared.train):,} training rows have missing cells: where cells "
              "are missing is learnt with the values "
              f"({advice({'data.drop_missing': True})} drops such rows)",
              file=sys.stderr)
    if prepared.dropped:
        print(f"dropped {prepared.dropped:,} rows with missing cells", file=sys.stderr)


def _say_early_stop(trainer, show: bool) -> None:
    """A line on stderr when ``train.patience`` ended the run before its last epoch."""
    if show and trainer.epoch < trainer.epochs:
        print(f"stopped at epoch {trainer.epoch:,} of {trainer.epochs:,}: no lower validation loss "
              f"since epoch {trainer.best_epoch:,}, whose weights are kept ({trainer.patience:.0%} of the "
              f"run without one; {advice({'train.patience': 0})} trains to the end)", file=sys.stderr)


def _trained_model(trainer, parts: build.Parts, config: cfg.Config, prepared: TrainingData) -> DiffusionModel:
    encoded = trainer.train_data.double()
    info = {"data": prepared.source, "target": prepared.target, "frame": prepared.frame,
            **({"labels": prepared.labels} if prepared.labels else {}),
            "train_seconds": trainer.history[-1]["seconds"], "epochs": trainer.epoch,
            "best_epoch": trainer.best_epoch,
            # Where the data ends up at the top noise level, for log_prob's Gaussian there.
            "encoded_mean": encoded.mean(0).tolist(), "encoded_variance": encoded.var(0).tolist(),
            # The box a sampler's denoised estimates stay in (``DiffusionModel.denoised_bounds``).
            "encoded_min": encoded.min(0).values.tolist(), "encoded_max": encoded.max(0).values.tolist()}
    model = DiffusionModel(trainer.averaged_net(), parts.schedule, parts.encoder, config,
                           prepared.columns, info, parts.condition, trainer.objective.gaussian)
    model.history = list(trainer.history)  # for model.save
    return model


def load(path: str | os.PathLike) -> DiffusionModel:
    """Load a trained model from a run folder."""
    return RunFolder(path).load_model()


PART_ROWS = 1 << 20
"""Rows per Parquet part when samples go to a folder of parts (rounded up to whole chunks)."""


def kept_files(model: DiffusionModel, run: str | os.PathLike | None = None, **inputs: str | None
               ) -> dict[str, str]:
    """The files an output must not replace: the model's training data, the files of its run
    folder ``run``, and the command's ``inputs`` (``{option: path}``, e.g. ``data=...``)."""
    from .runs import RUN_FILES

    kept = {}
    data = model.info.get("data")
    file = io.workbook_sheet(data)[0] if isinstance(data, str) else None  # a named sheet's workbook
    if file and os.path.isfile(file):
        kept[file] = "the run's training data"
    if run is not None:
        kept |= {str(Path(run) / name): f"a file of the run folder ({name})" for name in RUN_FILES}
    return kept | {path: f"the --{option} file" for option, path in inputs.items() if path}


def write_samples(model: DiffusionModel, output: str, n: int, *, given: np.ndarray | None = None,
                  beside: pd.DataFrame | None = None, seed: int = 0, chunk_size: int = cfg.SAMPLING_CHUNK,
                  progress: bool = False, ranks: Ranks | None = None, **settings: Any) -> int:
    """Draw ``n`` samples (for each row of ``given``, rows of ``model.given_rows``) and write
    them to ``output``: one .npy, .csv or .parquet file, or a folder of Parquet parts
    (``part-00000.parquet``, ...: ``output`` ends with a slash) for outputs too large for one
    file. Memory grows with ``chunk_size``, not with ``n``. Returns the rows written. ``beside``
    (``model.split_given``'s other columns, one row per condition) goes first in each condition's
    rows of a table; an .npy file holds the model's numbers only.

    Among the ranks of a torchrun job each draws its share of whole chunks (and writes its own
    parts, or a part file that rank 0 then joins into ``output``): a row depends on the seed
    and its index only, so the output is the same whatever the number of processes.
    """
    ranks = ranks or Ranks.from_environment(model.device)
    io.check_stdout_writers(output, ranks.world_size)
    total = n * (1 if given is None else len(given))
    to_folder = io.is_parts_folder(output)
    model.noise_levels(**settings)  # a sampler the model lacks: said before anything is written
    ranks.on_main(io.check_output, output, model.schema, total)
    io.refuse_overwriting(output, kept_files(model))
    as_table = to_folder or io.file_format(output) != ".npy"  # .npy takes the numbers without pandas
    chunk_rows = -(-chunk_size // BLOCK) * BLOCK
    span = -(-PART_ROWS // chunk_rows) * chunk_rows if to_folder else chunk_rows
    rows = ranks.share_rows(total, span)
    chunks = model.sample_chunks(n, given=given, seed=seed, chunk_size=chunk_size, rows=rows,
                                 progress=progress and ranks.is_main, **settings)
    def table(start: int, chunk: torch.Tensor) -> pd.DataFrame | np.ndarray:
        if not as_table:
            return chunk.numpy()
        rows = model.to_frame(chunk)
        return rows if beside is None else beside_conditions(rows, beside, n, start)

    tables = ((start, table(start, chunk)) for start, chunk in chunks)
    if total == 0:  # a table of no rows still has its columns: a file of no bytes is no table
        empty = table(0, torch.empty(0, model.dim, dtype=torch.float64))
        ranks.on_main(io.write_chunks, str(Path(output) / io.part_name(0)) if to_folder else output,
                      [empty], 0, model.schema)
        ranks.barrier()
        return 0
    if to_folder:
        for part, pieces in itertools.groupby(tables, key=lambda item: item[0] // span):
            size = min(span, total - part * span)
            io.write_chunks(str(Path(output) / io.part_name(part)), (t for _, t in pieces), size,
                            model.schema)
        ranks.barrier()
        return total
    if not ranks.distributed:
        io.write_chunks(output, (t for _, t in tables), total, model.schema)
        return total
    target = Path(output)
    parts = [target.parent / f".{target.name}.rank-{r:05d}-of-{ranks.world_size:05d}{io.full_suffix(output)}"
             for r in range(ranks.world_size)]
    try:
        io.write_chunks(str(parts[ranks.rank]), (t for _, t in tables), len(rows), model.schema)
        ranks.barrier()
        if ranks.is_main:
            io.concatenate(parts, output)
        ranks.barrier()  # the parts are read before any is removed
    finally:
        parts[ranks.rank].unlink(missing_ok=True)
    return total


def distill(model: DiffusionModel | str | os.PathLike, *, num_steps: int = 1, pairs: int = 65_536,
            train_steps: int = 4_000, seed: int = 0, progress: bool = True,
            device: str | None = None) -> DiffusionModel:
    """Give a model a few-step sampler: a student network that samples in ``num_steps``
    evaluations (``sample(n, sampler="distilled")``), trained on ``pairs`` of the teacher's
    deterministic samples for ``train_steps`` steps (``training/distill.py``); a conditional
    model's student also samples given its condition columns (``sample(n, given=...,
    sampler="distilled")``). A run folder gets student.safetensors; the model is returned with
    its student. The student trains on ``device`` (a ``--device`` choice); by default on a
    model's own device, and for a run folder on ``auto``'s (a GPU where torch sees one). A model
    trained into a run folder or loaded from one (``fit(out=...)``, ``load``) gives its folder the
    student too, while the folder holds the model's weights.

    >>> import simple_diffusion as sd
    >>> model = sd.distill(sd.fit("two_gaussians", epochs=2, progress=False), pairs=8192,
    ...                    train_steps=16, progress=False)
    >>> model.sample(5, sampler="distilled", seed=0).shape
    torch.Size([5, 1])
    """
    from .training import distill as distillation

    if isinstance(model, DiffusionModel):
        source = None if model.source_folder is None else RunFolder(model.source_folder)
        folder = source if source is not None and source.holds_weights_of(model) else None
    else:
        folder = RunFolder(model)
        model = folder.load_model()
        device = device or "auto"
    if device is not None:
        model.to(resolve_device(device))
    student = distillation.distill(model, num_steps=num_steps, pairs=pairs, train_steps=train_steps,
                                   seed=seed, progress=progress)
    model.student = student
    if folder is not None:
        student.info["teacher_sha256"] = file_digest(folder.file("model.safetensors"))
        folder.save_student(student)
    return model


def evaluate(
    samples: np.ndarray | torch.Tensor | pd.DataFrame,
    against: str | np.ndarray | pd.DataFrame,
    train: np.ndarray | pd.DataFrame | None = None,
    columns: list[str] | None = None,
    two_sample_tests: bool = True,
    holdout: np.ndarray | pd.DataFrame | None = None,
) -> dict[str, Any]:
    """Metrics of ``samples`` against a built-in target (fresh draws) or reference rows.

    With ``train``, the same distances of the training data give the floor and the ratio; with
    ``holdout`` too (rows the model never saw), the share of copied-looking rows. DataFrames
    (with categories, gaps, dates) are compared as ``evaluate`` compares a run's table: in the
    metric encoding, with each category's total variation distance, missing rates, column-pair
    associations and, where installed, SDMetrics' quality score (under ``"table"``).

    >>> import pandas as pd
    >>> test = pd.DataFrame({"size": [1.0, 2.0, 3.0, 2.5], "kind": ["a", "b", "a", "b"]})
    >>> made = pd.DataFrame({"kind": ["a", "a", "b", "a"], "size": [1.1, 2.9, 2.0, 1.0]})
    >>> result = evaluate(made, against=test, two_sample_tests=False)
    >>> result["table"]["categories"][0]["tvd"]
    0.25

    ``against`` may also name a data file (.csv, .parquet, ...), read as ``train`` reads one.
    """
    if isinstance(against, str) and against not in builtin.TARGETS and os.path.splitext(against)[1]:
        table = io.read_table(against)  # a file (or a workbook's sheet), or "data file not found"
        against = to_frame(table.values, table.schema)
        if not _is_frame(samples) and np.ndim(samples) == 2 and np.shape(samples)[1] == len(table.columns):
            samples = to_frame(np.asarray(samples, dtype=np.float64), table.schema)
    for name, rows in (("samples", samples), ("against", against), ("train", train)):
        if rows is not None and not isinstance(rows, str) and not len(rows):
            raise UserError(f"{name}: no rows to evaluate with")
    if any(_is_frame(x) for x in (samples, against, train, holdout)):
        schema, (samples, against, train, holdout) = _table_rows(samples, against, train, holdout)
        if any(c.kind == "categorical" or c.nullable for c in schema):
            return _evaluate_rows(schema, samples, against, train, holdout, two_sample_tests)
        columns = columns or [c.name for c in schema]
    samples, train, holdout = (None if x is None else _as_rows(x) for x in (samples, train, holdout))
    target = against if isinstance(against, str) else None
    if target is not None:
        builtin.get(target)
        reference = builtin.draw(target, REFERENCE_SIZE, seed=REFERENCE_SEED).numpy()
    else:
        reference = _as_rows(against)
    for name, rows in (("the reference", reference), ("train", train), ("holdout", holdout)):
        if rows is not None and rows.shape[1] != samples.shape[1]:
            raise UserError(f"samples have {samples.shape[1]} columns but {name} has {rows.shape[1]}")
    names = columns or [f"x{i + 1}" for i in range(samples.shape[1])]
    from .evaluation import metrics  # POT and scikit-learn: only when evaluating

    return metrics.evaluate(samples, reference, names, train=train, target=target,
                            two_sample_tests=two_sample_tests, holdout=holdout)


def _as_rows(values: Any) -> np.ndarray:
    """``values`` as float rows: shape (n,) is one column of n rows, as ``fit`` reads it."""
    array = np.asarray(values, dtype=np.float64)
    return array[:, None] if array.ndim == 1 else array


def _is_frame(x: Any) -> bool:
    return hasattr(x, "columns") and hasattr(x, "iloc")


def _table_rows(*tables: Any) -> tuple[list[Column], list[np.ndarray | None]]:
    """DataFrames (None where not given) as rows of one schema, its kinds and labels found on
    all of them together: the columns of the reference (or of the samples against a target),
    in its order."""
    import pandas as pd

    from .data.columns import detect, to_values

    given = [(name, t) for name, t in zip(("samples", "against", "train", "holdout"), tables)
             if t is not None and not isinstance(t, str)]
    if not all(_is_frame(t) for _, t in given):
        raise UserError("evaluate: give samples, against, train and holdout alike, as DataFrames or as "
                        "arrays")
    frames = [(name, t.rename(columns=str)) for name, t in given]
    names = list(dict(frames).get("against", frames[0][1]).columns)
    for name, frame in frames:
        lacking = [c for c in names if c not in frame.columns]
        if lacking:
            raise UserError(f"evaluate: {name} has no column {lacking[0]!r} (the reference's columns: "
                            f"{', '.join(names)})")
        left = [c for c in frame.columns if c not in names]
        if left:  # a reference of some columns is a choice, but one that the numbers should say
            warnings.warn(f"evaluate: {name} column{'s' * (len(left) > 1)} {', '.join(map(repr, left))} "
                          f"not in the reference: compared on {', '.join(names)} only", stacklevel=3)
    together = pd.concat([frame[names] for _, frame in frames], ignore_index=True)
    schema = detect(together)
    rows = {name: to_values(frame[names], schema, name) for name, frame in frames}
    return schema, [rows.get(name, table) for name, table in zip(("samples", "against", "train", "holdout"),
                                                                  tables)]


def _evaluate_rows(schema: list[Column], samples: np.ndarray, reference: np.ndarray, train: np.ndarray | None,
                   holdout: np.ndarray | None, two_sample_tests: bool = True) -> dict[str, Any]:
    """Rows of a table with categories or gaps compared: distances, floor and memorisation in
    the metric encoding (scaled by the training rows, else the reference), plus the per-column
    and pairwise comparisons and SDMetrics' score, where it is installed."""
    from .data.columns import to_frame
    from .evaluation import tabular

    scale = reference if train is None else train
    encoded = {name: None if rows is None else tabular.encode(rows, schema, scale)[0]
               for name, rows in (("samples", samples), ("reference", reference), ("train", train),
                                  ("holdout", holdout))}
    result = evaluate(encoded["samples"], encoded["reference"], train=encoded["train"],
                      columns=tabular.encode(scale[:1], schema, scale)[1], holdout=encoded["holdout"],
                      two_sample_tests=two_sample_tests)
    result["table"] = tabular.table_metrics(samples, reference, train, schema)
    quality = tabular.sdmetrics_quality(to_frame(samples, schema), to_frame(reference, schema), schema)
    if quality is not None:
        result["table"]["sdmetrics_quality"] = quality
        if train is not None:
            result["table"]["sdmetrics_quality_floor"] = tabular.sdmetrics_quality(
                to_frame(train, schema), to_frame(reference, schema), schema)
    return result


def evaluate_run(
    path: str | os.PathLike,
    samples: np.ndarray | pd.DataFrame | None = None,
    against: str | None = None,
    n: int | None = None,
    seed: int = 0,
    progress: bool = False,
    likelihood_rows: int = LIKELIHOOD_ROWS,
    data: TrainingData | None = None,
    device: str = "auto",
) -> dict[str, Any]:
    """Sample a run's model (``n`` samples, default ``evaluation_size``, unless ``samples`` are
    given), evaluate, and write metrics and plots. ``data``: the run's rows, where the caller
    holds them (``fit``), instead of reading its data file again. ``device``: where the model
    samples and scores (a ``--device`` choice; ``auto`` takes a GPU where torch sees one).

    With ``likelihood_rows`` > 0 that many held-out rows (fresh draws for a built-in target) are
    scored by ``log_prob``, and the model's density is drawn over the truth (density.png). A
    table with categorical columns or missing cells is compared in the metric encoding of
    ``evaluation/tabular.py``, with per-column category and missing-rate comparisons.
    """
    from .evaluation import plots
    from .evaluation.report import render_report

    folder = RunFolder(path)
    model = folder.load_model().to(resolve_device(device))
    if data is None:
        data = run_training_data(folder, model.config, model.info)
    reference: str | np.ndarray = data.target if data.target else data.val
    if against is not None:
        reference = (against if against in builtin.TARGETS
                     else model.rows(io.read_frame(against), against))
        if not isinstance(reference, str):
            _warn_of_training_rows(reference, data, against)
    sample_seconds = None
    if samples is None:
        start = time.perf_counter()
        reference_rows = REFERENCE_SIZE if isinstance(reference, str) else len(reference)
        n = evaluation_size(len(data.train), reference_rows) if n is None else n
        samples = model.sample(n, seed=seed, progress=progress, frame=False).numpy()
        sample_seconds = time.perf_counter() - start
    elif hasattr(samples, "columns"):  # a DataFrame, e.g. a file of samples
        samples = model.rows(samples, "samples")
    samples = np.asarray(samples, dtype=np.float64)
    if samples.shape[1] != model.dim:
        raise UserError(f"samples have {samples.shape[1]} columns; the model has {model.dim}")
    if not len(samples):
        raise UserError("no samples to evaluate: " + ("n = 0 draws none" if sample_seconds is not None
                                                      else "the samples given have no rows"))
    result = _evaluate_samples(model, samples, reference, data)
    result["train_seconds"] = model.info.get("train_seconds")
    result["sample_seconds"] = sample_seconds
    if isinstance(model.student, Student):
        result["distilled"] = _evaluate_student(model, len(samples), reference, data, seed)
    true_log_density = _log_density(data.target)
    if likelihood_rows > 0:
        result["likelihood"] = _held_out_likelihood(model, data, likelihood_rows, true_log_density, progress)
        figure = None
        if "skipped" not in result["likelihood"]:
            figure = plots.density_plot(
                lambda x: model.log_prob(x, rtol=1e-4, atol=1e-4).numpy(), data.train, model.columns,
                true_log_density, title=f"{Path(path).name}: density",
            )
        if figure is not None:
            folder.save_bytes("density.png", figure)
    if model.condition_columns:
        if likelihood_rows > 0:
            result["conditional_likelihood"] = _held_out_conditional_likelihood(model, data, likelihood_rows,
                                                                                progress)
        result["calibration"] = _calibration(model, data, seed)
        if "skipped" not in result["calibration"]:
            folder.save_bytes("calibration.png", plots.calibration_plot(
                result["calibration"], title=f"{Path(path).name}: calibration on held-out rows"))
    folder.save_metrics(result)
    if "table" in result or model.dim > plots.CORNER_COLUMNS:  # a table, or too wide for a corner plot
        masses = dict(zip(model.encoder.point_mass_columns, model.encoder.masses))
        figure = plots.table_plot(samples, data.train, model.schema, title=Path(path).name,
                                  point_masses=masses)
        pairs = plots.pairs_plot(samples, data.train, model.schema,
                                 title=f"{Path(path).name}: the most associated column pairs")
        if pairs is not None:
            folder.save_bytes("pairs.png", pairs)
    else:
        density = None if true_log_density is None else (lambda x: np.exp(true_log_density(x)))
        figure = plots.distribution_plot(
            samples, data.train, [c.axis_label for c in model.schema], density=density,
            reference=data.reference() if density is None else None, title=Path(path).name,
        )
    folder.save_bytes("samples.png", figure)
    page = render_report(folder.path, result, folder.file("config.toml").read_text(), Path(path).name)
    folder.save_bytes("report.html", page.encode())
    return result


def _warn_of_training_rows(reference: np.ndarray, data: TrainingData, source: str) -> None:
    """Warn where the rows to compare with repeat the run's training rows far more often than
    its held-out rows do (a table of a few discrete values repeats them anyway): the floor then
    compares training rows largely with themselves, and the ratio overstates the distance."""
    seen = {row.tobytes() for row in _row_keys(data.train)}

    def share(rows: np.ndarray) -> float:
        return float(np.mean([row.tobytes() in seen for row in _row_keys(rows)])) if len(rows) else 0.0

    repeated, held_out = share(reference), share(data.val)
    if repeated - held_out > TRAINING_ROWS_WARNING:
        warnings.warn(f"{source}: {repeated:.0%} of its {len(reference)} rows are training rows of this run "
                      f"(of its held-out rows, {held_out:.0%}), so the floor compares them largely with "
                      "themselves and the ratio overstates the model's distance; compare with rows the model "
                      "never saw (by default, the run's held-out rows)", stacklevel=3)


def _row_keys(rows: np.ndarray) -> np.ndarray:
    """Rows that compare equal as bytes where their cells are equal (missing cells too)."""
    return np.ascontiguousarray(np.where(np.isnan(rows), np.inf, rows) + 0.0)  # + 0.0: -0.0 is 0.0


def _evaluate_samples(model: DiffusionModel, samples: np.ndarray, reference: str | np.ndarray,
                      data: TrainingData) -> dict[str, Any]:
    if _mixed(model.schema, data):
        return _evaluate_rows(model.schema, samples, reference, data.train, data.val)
    return evaluate(samples, reference, train=data.train, columns=model.columns, holdout=data.val)


def _evaluate_student(model: DiffusionModel, n: int, reference: str | np.ndarray, data: TrainingData,
                      seed: int) -> dict[str, Any]:
    """The distilled sampler's samples, judged as the run's are (same count, same seed)."""
    assert isinstance(model.student, Student)
    start = time.perf_counter()
    samples = model.sample(n, seed=seed, sampler="distilled", frame=False).numpy()
    seconds = time.perf_counter() - start
    result = _evaluate_samples(model, samples, reference, data)
    kept = ("distance", "floor", "ratio", "energy", "c2st", "memorisation")
    summary = {**{k: result[k] for k in kept if k in result}, "sample_seconds": seconds,
               "network_evaluations": model.student.network_evaluations,
               "distill_seconds": model.student.info.get("seconds")}
    if model.student.conditional:  # its draws given held-out conditions, checked as the run's
        calibrated = _calibration(model, data, seed, sampler="distilled")
        summary["calibration"] = {k: v for k, v in calibrated.items() if k in ("skipped", "coverage", "tarp")}
    return summary


CALIBRATION_ROWS = 200
"""Held-out rows whose conditional draws ``evaluate`` checks for calibration."""
CALIBRATION_DRAWS = 100
"""Draws per held-out row (ranks 0..100: ten bins of ten)."""


def _calibration(model: DiffusionModel, data: TrainingData, seed: int,
                 sampler: str | None = None) -> dict[str, Any]:
    """Calibration of a conditional model's numeric columns given the condition columns, on
    held-out rows whose cells are all present (``evaluation/calibration.py``), drawn with
    ``sampler`` (None: the run's)."""
    from .evaluation import calibration

    given = model.condition_positions
    checked = [j for j, c in enumerate(model.schema)
               if c.kind != "categorical" and c.name not in model.condition_columns]
    if not checked:
        return {"skipped": "every column that is not a condition is categorical"}
    rows = data.val[~np.isnan(data.val).any(1)][:CALIBRATION_ROWS]
    if len(rows) < 10:
        return {"skipped": f"{len(rows)} complete held-out rows; calibration needs at least 10"}
    conditions = np.full_like(rows, np.nan)
    conditions[:, given] = rows[:, given]
    with _beyond_the_training_range_allowed():
        draws = model.sample(CALIBRATION_DRAWS, given=conditions, seed=seed, frame=False,
                             sampler=sampler).numpy()
    draws = draws.reshape(len(rows), CALIBRATION_DRAWS, -1)[:, :, checked]
    return calibration.calibrate(draws, rows[:, checked], [model.columns[j] for j in checked])


def _mixed(schema: list[Column], data: TrainingData) -> bool:
    """Whether the table has categorical columns or missing cells (the tabular metrics)."""
    return any(c.kind == "categorical" or c.nullable for c in schema) or bool(
        np.isnan(data.train).any() or np.isnan(data.val).any())


def _held_out_likelihood(model: DiffusionModel, data: TrainingData, rows: int,
                         true_log_density, progress: bool) -> dict[str, Any]:
    from .evaluation import metrics

    held_out = data.reference(rows) if data.target else data.val[:rows]
    start = time.perf_counter()
    try:
        log_p = model.log_prob(held_out, progress=progress).numpy()
    except UserError as exc:
        return {"skipped": str(exc)}
    truth = None if true_log_density is None else true_log_density(held_out)
    return metrics.likelihood_summary(log_p, model.dim, truth) | {
        "seconds": time.perf_counter() - start}


@contextlib.contextmanager
def _beyond_the_training_range_allowed() -> Iterator[None]:
    """Held-out conditions beyond the training range are part of the test: no warning for them."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="given: .* outside the training rows' range")
        yield


def _held_out_conditional_likelihood(model: DiffusionModel, data: TrainingData, rows: int,
                                     progress: bool) -> dict[str, Any]:
    """The held-out NLL of a conditional model's other columns given each row's own condition,
    log p(x | c) (for a posterior, sbi's expected log-probability of the true parameters):
    rows with an empty condition cell are left out."""
    from .evaluation import metrics

    held_out = data.val[:rows]
    given = model.condition_positions
    held_out = held_out[~np.isnan(held_out[:, given]).any(1)]
    start = time.perf_counter()
    try:
        with _beyond_the_training_range_allowed():
            log_p = model.log_prob(held_out, given=held_out[:, given], progress=progress).numpy()
    except UserError as exc:
        return {"skipped": str(exc), "given": model.condition_columns}
    return metrics.likelihood_summary(log_p, model.dim - len(given)) | {
        "given": model.condition_columns, "seconds": time.perf_counter() - start}


def _log_density(target: str | None):
    """The target's true log-density as a function of a NumPy array, if it has a closed form."""
    if target is None:
        return None
    distribution = builtin.get(target)
    try:
        distribution.log_prob(torch.zeros(1, *distribution.event_shape, dtype=torch.float64))
    except NotImplementedError:
        return None
    return lambda x: distribution.log_prob(torch.as_tensor(x, dtype=torch.float64)).numpy()
