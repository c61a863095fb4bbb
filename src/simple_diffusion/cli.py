"""The ``simple-diffusion`` command: a thin layer over ``simple_diffusion.api``.

One convention throughout: the folder a command works on is its first argument (``train RUN``,
``sample RUN``...), counts of samples are ``-n/--num-samples``, a sampler's steps ``--num-steps``
(``num_steps`` in Python). The spellings of version 0.1 (``train --out``, ``--eval-samples``,
``--steps``, ``evaluate --samples FILE``, ``demo --samples``/``--out``) still work in this release,
with a note on stderr.

User mistakes (bad data, options or files) print one line on stderr and exit with status 1;
Ctrl-C, at any moment including start-up, prints one line and exits with 130. Only the modules a
command uses are imported, and only when it runs: ``--help``, ``--version`` and ``datasets`` load
neither torch nor matplotlib.
"""

from __future__ import annotations

import contextlib
import os
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import click

from . import __version__, choices
from . import config as cfg
from .errors import UserError, command_line, counted, is_follower
from .training import budget

if TYPE_CHECKING:  # the commands import these when they run (a quick --help)
    import numpy as np
    import pandas as pd

    from .model import DiffusionModel

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}
DEFAULT_SAMPLES = 100_000


def _renamed(old: str, new: str, **options):
    """A hidden option under its 0.1 spelling, working for one more release with a note."""

    def note(ctx: click.Context, param: click.Parameter, value):
        if value is not None:
            click.echo(f"note: {old} is deprecated and goes in version 0.3; write {new} instead",
                       err=True)
        return value

    return click.option(old, f"legacy_{old.lstrip('-').replace('-', '_')}", hidden=True,
                        callback=note, **options)


class Count(click.IntRange):
    """A whole number as people write large ones: ``1000000``, ``1e6``, ``1_000_000``, ``1,000,000``."""

    name = "count"

    def convert(self, value, param, ctx):
        if isinstance(value, str):
            with contextlib.suppress(ValueError):  # not a number: IntRange says so
                number = float(value.strip().replace("_", "").replace(",", ""))
                value = str(int(number)) if number.is_integer() else value
        return super().convert(value, param, ctx)


def _either(value, legacy, default=None):
    return value if value is not None else legacy if legacy is not None else default


def _columns(value: str | None) -> list[str] | None:
    from .data.columns import parse_option_list

    return parse_option_list(value) if value else None


run_argument = click.argument("run", type=click.Path(file_okay=False), required=False,
                              metavar="RUN")
num_samples_option = click.option(
    "-n", "--num-samples", "count", type=Count(min=0), default=None,
    help=f"Samples to draw (1000000, 1e6 and 1_000_000 alike). [default: {DEFAULT_SAMPLES:,}]",
)
evaluation_samples_option = click.option(
    "-n", "--num-samples", "count", type=Count(min=0), default=None,
    help="Samples drawn for the evaluation; 0 skips it. [default: 10 per training or held-out "
    "row, whichever are fewer, within 10,000-100,000]",
)
likelihood_rows_option = click.option(
    "--likelihood-rows", type=Count(min=0), default=1000, show_default=True,
    help="Held-out rows scored by the model's log-likelihood (an ODE solve each; 0 skips).",
)
num_steps_option = click.option(
    "--num-steps", "num_steps", type=click.IntRange(min=0), default=None,
    help="Sampler steps; 0 walks every timestep of the schedule inside the run's noise range. "
    "[default: the run's]",
)


device_option = click.option(
    "--device", type=click.Choice(list(choices.DEVICES)), default=None,
    help="Where the network runs: " + choices.describe(choices.DEVICES) + ". [default: auto]",
)


def _output_name(ctx: click.Context, param: click.Parameter, value: str) -> str:
    """``-o``'s value, with ``/dev/stdout`` read as ``-`` (standard output)."""
    from .data import io

    return io.output_name(value)


nproc_option = click.option(
    "--nproc", type=click.IntRange(min=1), default=1, show_default=True,
    help="Processes on this machine, started through torchrun (one per GPU, or a few CPU "
    "processes); for several machines run torchrun yourself (README, \"Scaling up\").",
)


def _launched(nproc: int, device: str | None) -> bool:
    """Run the current command again in ``nproc`` processes through torchrun (unless it is one
    of them already, or ``nproc`` is 1); return whether it did. A ``device`` that cannot serve
    ``nproc`` processes is refused before any starts."""
    if nproc == 1 or "WORLD_SIZE" in os.environ:
        return False
    from .training.distributed import launch, resolve_device

    if device is not None:
        resolve_device(device, processes=nproc)

    argv = click.get_current_context().find_root().obj["argv"]
    status = launch(nproc, _without_option(argv, "--nproc"))
    if status:
        sys.exit(status)
    return True


def _without_option(argv: list[str], name: str) -> list[str]:
    """``argv`` without ``name VALUE`` or ``name=VALUE``."""
    kept, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg == name:
            skip = True
        elif not arg.startswith(name + "="):
            kept.append(arg)
    return kept


resample_option = click.option(
    "--resample", type=click.IntRange(min=1), default=None,
    help="RePaint's repetitions of each step, for given cells the model did not learn to condition "
    "on and for gaps. [default: the run's]",
)


def given_options(command):
    """``--given``, ``--guidance`` and ``--resample``: sampling with some cells set."""
    options = [
        click.option("--given", default=None, metavar="FILE|COL=VALUE,...", help="Draw -n rows for "
                     "each condition: each row of a table file (.csv, .parquet, .xlsx, ...: its columns "
                     "some of the run's; other columns, such as an identifier, go first in its rows), or one "
                     "condition written col=value,..."),
        click.option("--guidance", type=click.FloatRange(min=0), default=None, help="Classifier-free "
                     "guidance of the learnt condition: 0 ignores it, 1 is the conditional model, "
                     "above 1 sharpens it. [default: the run's]"),
        resample_option,
    ]
    for option in reversed(options):
        command = option(command)
    return command


@click.group(context_settings=CONTEXT)
@click.version_option(__version__, prog_name="simple-diffusion")  # also where it is not installed
def cli() -> None:
    """Learn a distribution from samples with a denoising diffusion model, then generate more.

    \b
    Quick start:
      simple-diffusion datasets                                  # built-in targets
      simple-diffusion train runs/two --data two_gaussians       # train, evaluate, plot
      simple-diffusion sample runs/two -n 100000 -o samples.npy  # draw new samples
      simple-diffusion evaluate runs/two                         # distances, floor, ratio, NLL
      simple-diffusion score runs/two --data rows.csv -o s.csv   # log-density of each row
      simple-diffusion sweep sweeps/lr --data moons --seeds 0,1,2 --jobs 2   # many runs
      simple-diffusion demo                                      # seed vs default, both targets

    Every command works on the folder named first and has its own --help.
    """


@cli.command(context_settings=CONTEXT)
@run_argument
@click.option("--data", "data", metavar="SPEC", help="Built-in target name (see `datasets`) or a "
              ".npy, .csv (comma-, tab-, semicolon-, bar- or space-separated; .csv.gz and the like "
              "too), .tsv, .txt or .dat (NumPy's savetxt), .parquet, .feather, .json, .jsonl (.jsonl.gz "
              "too) or .xlsx (its first sheet, or BOOK.xlsx#SHEET) table, or a folder of Parquet "
              "parts, one row per sample: numbers, categories (text, booleans), dates and times, and "
              "empty cells.")
@click.option("--preset", type=click.Choice(sorted(cfg.PRESETS)), default="default",
              show_default=True, help="Starting hyperparameters: "
              + "; ".join(f"{name} ({cfg.PRESET_USES[name]}): {cfg.summary(cfg.preset(name))}"
                          for name in cfg.PRESETS) + ".")
@click.option("--seed", type=int, default=None, help="Training seed (init, batches, noise). "
              "[default: the preset's]")
@click.option("--steps", type=Count(min=1), default=None,
              help=f"Optimiser steps. [default: from the data's size: {budget.PASSES} passes, "
              f"within {budget.MIN_STEPS:,}-{budget.MAX_STEPS:,}; below {budget.SMALL_BELOW:,} "
              f"rows {budget.MAX_STEPS:,}, keeping the epoch of lowest validation loss and "
              "stopping once a quarter of the run passes without a lower one]")
@click.option("--epochs", type=int, default=None,
              help="Passes over the training data instead of --steps; with --resume, the new "
              "total. [default: the preset's]")
@click.option("--config", "config_file", type=click.Path(dir_okay=False), default=None,
              help="TOML file of overrides, e.g. a line `[train]` then `lr = 1e-3` (the sections "
              "and keys of a run's config.toml).")
@click.option("--columns", default=None, help="Comma-separated columns to use (names, or indices "
              "for .npy). [default: all]")
@click.option("--header/--no-header", default=None, help="Whether the CSV's first row names the "
              "columns. [default: detected]")
@click.option("--preprocess", type=click.Choice(list(choices.PREPROCESSING)), default=None,
              help=choices.describe(choices.PREPROCESSING) + ". [default: the preset's]")
@click.option("--bounds", default=None, metavar="COL=LOW:HIGH,...", help="Columns that must stay "
              "in a range, e.g. `mass=0:,fraction=0:1` (an empty side is open).")
@click.option("--categorical", default=None, metavar="COL,...", help="Columns to model as "
              "categories besides the detected ones (text, booleans), e.g. integer codes.")
@click.option("--integer", default=None, metavar="COL,...", help="Columns to model as whole "
              "numbers besides the detected ones (whole-number columns).")
@click.option("--numeric", default=None, metavar="COL,...", help="Columns to model as purely "
              "continuous: whole numbers not rounded, repeated values not learnt as point masses.")
@click.option("--drop-missing", is_flag=True, default=None, help="Drop rows with an empty cell "
              "instead of learning where cells are missing.")
@click.option("--condition", default=None, metavar="COL,...", help="Columns to condition on: "
              "the model learns the others given these (`sample --given`), and the joint too.")
@click.option("--inpainting", type=click.Choice(list(choices.INPAINTING)), default=None,
              help="How cells given to the model (impute, sample --given) are filled: "
              + choices.describe(choices.INPAINTING) + ". [default: repaint]")
@click.option("--keep-constant", is_flag=True, default=None, help="Pass constant columns through "
              "unchanged instead of refusing them.")
@click.option("--full-precision", is_flag=True, default=None, help="Write samples of numeric "
              "columns with nine significant digits (the network computes in float32: about seven), "
              "not with the decimal places (5.1) or significant digits (3.469e-07) of the data's values.")
@click.option("--extrapolate", is_flag=True, default=None, help="Let samples of numeric columns "
              "leave the range of the data's values (by default they are kept within it).")
@evaluation_samples_option
@likelihood_rows_option
@click.option("--overwrite", is_flag=True, help="Replace the run in RUN (only a run folder, and "
              "only the files a run writes).")
@click.option("--resume", is_flag=True, help="Continue the interrupted (or finished) training in "
              "RUN; with --epochs, train up to that many in all.")
@device_option
@nproc_option
@click.option("--quiet", is_flag=True, help="No progress bars.")
@_renamed("--out", "the run folder as the first argument", type=click.Path(file_okay=False))
@_renamed("--eval-samples", "-n/--num-samples", type=click.IntRange(min=0))
def train(run, data, preset, seed, steps, epochs, config_file, columns, header, preprocess, bounds,
          categorical, integer, numeric, drop_missing, condition, inpainting, keep_constant, full_precision,
          extrapolate, count, likelihood_rows, overwrite, resume, device, nproc, quiet, legacy_out,
          legacy_eval_samples) -> None:
    """Train a model on --data into the run folder RUN, then evaluate it (metrics, plots, report).

    \b
    Examples:
      simple-diffusion train runs/two --data two_gaussians
      simple-diffusion train runs/moons --data moons --epochs 100 --seed 1
      simple-diffusion train runs/m --data measurements.csv --columns mass,energy
      simple-diffusion train runs/p --data penguins.csv --categorical year
      simple-diffusion train runs/ps --data penguins.csv --condition species,sex
      simple-diffusion train runs/pi --data penguins.csv --inpainting learnt   # for impute
      simple-diffusion train runs/seed --data two_gaussians --preset seed
      simple-diffusion train --resume runs/two        # after Ctrl-C
      simple-diffusion train --resume runs/two --epochs 400   # train on, to 400 in all
      simple-diffusion train runs/big --data big.parquet --nproc 2      # two processes (torchrun)
      simple-diffusion train runs/gpu --data big.parquet --device cuda
    """
    from . import api

    run = _either(run, legacy_out)
    if run is None:
        raise UserError("name the run folder: `simple-diffusion train RUN --data SPEC`")
    if resume and data is not None:
        raise UserError("--resume continues on the run's own data; leave out --data")
    if data is None and not resume:
        raise UserError("--data is required (a built-in target name or a data file)")
    data_options = {
        "header": None if header is None else ("yes" if header else "no"),
        "preprocess": preprocess, "bounds": bounds, "integer": _columns(integer),
        "categorical": _columns(categorical), "numeric": _columns(numeric),
        "drop_missing": drop_missing, "keep_constant": keep_constant,
        "condition": _columns(condition), "round_to_data": None if full_precision is None else False,
        "clip_to_range": None if extrapolate is None else False,
    }
    data_options = {k: v for k, v in data_options.items() if v is not None}
    train_options = {k: v for k, v in (("steps", steps), ("device", device), ("inpainting", inpainting))
                     if v is not None}
    if steps is not None and resume:
        raise UserError("--resume trains on to a number of --epochs; --steps sets a new run's budget")
    if device is not None and resume:
        raise UserError("--resume trains on the run's device (config.toml's train.device, auto "
                        "by default); edit it there to move the run")
    if resume and (data_options or inpainting is not None):
        given = next(iter(data_options), "inpainting")
        given = {"round_to_data": "full-precision", "clip_to_range": "extrapolate"}.get(
            given, given.replace("_", "-"))
        raise UserError(f"--resume continues with the run's own settings (config.toml); "
                        f"--{given} sets a new run's")
    config = cfg.merge(cfg.load_toml(config_file) if config_file else {},
                       {"data": data_options, "train": train_options})
    if _launched(nproc, config.get("train", {}).get("device")):  # --device, or the --config file's
        return
    count = _either(count, legacy_eval_samples)
    api.fit(
        data, preset=preset, config=config, seed=seed, epochs=epochs,
        columns=_columns(columns), out=run, overwrite=overwrite, resume=resume,
        progress=not quiet, num_samples=count, likelihood_rows=likelihood_rows, verbose=True,
    )
    if is_follower():
        return
    click.echo(f"trained: {run}", err=True)
    if count != 0:
        click.echo(_summary(api.RunFolder(run).read_metrics()))


def _summary(result: dict) -> str:
    from .evaluation.metrics import format_table

    return format_table(result)


@cli.command(context_settings=CONTEXT)
@run_argument
@num_samples_option
@click.option("-o", "output", required=True, metavar="FILE|FOLDER/", callback=_output_name,
              help="Output file: .csv or .tsv (with a header), .parquet or .feather (keeping the training "
              "table's dtypes), .json or .jsonl (an object per row), .xlsx (one sheet), .txt (as "
              "NumPy's savetxt) or .npy (numbers only, shape (n, d)); "
              "a new folder (written with a "
              "trailing slash) for Parquet parts of about a million rows each; or - for CSV on "
              "standard output.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Sampling seed; the same seed gives the same samples, whatever --nproc.")
@click.option("--sampler", type=click.Choice(list(choices.SAMPLERS)), default=None,
              help=choices.describe(choices.SAMPLERS) + ". [default: the run's]")
@num_steps_option
@click.option("--spacing", type=click.Choice(list(choices.SPACINGS)), default=None,
              help="How the steps' noise levels are spread: " + choices.describe(choices.SPACINGS)
              + ". [default: the run's]")
@click.option("--precision", type=click.Choice(list(choices.PRECISIONS)), default=None,
              help="The network's matrix products: " + choices.describe(choices.PRECISIONS)
              + ". [default: the run's, auto]")
@given_options
@click.option("--chunk-size", type=Count(min=1), default=cfg.SAMPLING_CHUNK,
              show_default=True, help="Samples generated at once; memory grows with this, not "
              "with -n.")
@device_option
@nproc_option
@click.option("--quiet", is_flag=True, help="No progress bar.")
@_renamed("--steps", "--num-steps", type=click.IntRange(min=0))
def sample(run, count, output, seed, sampler, num_steps, spacing, precision, given, guidance,
           resample, chunk_size, device, nproc, quiet, legacy_steps) -> None:
    """Draw -n samples from the model in RUN and write them to -o, in the data's own units.

    With --given, -n rows for each condition (a file of conditions, or col=value,...), written
    with the given cells as given: columns the model was trained to condition on (train
    --condition) are used as its condition, guided by --guidance; labels of other columns are
    met by reject sampling (whole rows drawn, those with the labels kept; sample.reject_tries);
    any other given cell is in-painted (RePaint, --resample; a model trained with --inpainting
    learnt completes the row itself).

    With --nproc (or under torchrun) each process draws a share of the rows; the output is the
    same file, bit for bit, whatever the number of processes.

    \b
    Examples:
      simple-diffusion sample runs/two -n 100000 -o samples.npy --sampler heun --num-steps 18
      simple-diffusion sample runs/ps -n 500 -o adelie.csv --given species=Adelie,sex=female
      simple-diffusion sample runs/posterior -n 10000 -o posteriors.parquet --given observations.csv
      simple-diffusion sample runs/moons -n 100000000 -o parts/ --sampler distilled --nproc 2
      simple-diffusion sample runs/ps -n 5 -o - --quiet
    """
    from . import api
    from .data import io
    from .training.distributed import resolve_device

    if run is None or count is None:
        raise UserError("write `simple-diffusion sample RUN -n COUNT -o FILE`")
    model = api.load(run)
    conditions, beside = (None, None) if given is None else model.split_given(
        _given_frame(given), keep_others=_names_a_file(given))  # a file's identifiers, not col=value's
    settings = model.sampling_settings(sampler=sampler, num_steps=_either(num_steps, legacy_steps),
                                       spacing=spacing, guidance=guidance, resample=resample,
                                       precision=precision)
    model.noise_levels(sampler=settings.sampler, num_steps=settings.num_steps)
    io.check_output(output, model.schema)
    io.refuse_overwriting(output, api.kept_files(
        model, run, given=given if given is not None and _names_a_file(given) else None))
    io.check_stdout_writers(output, nproc or 1)
    if _launched(nproc, device):
        return
    model.to(resolve_device(device or "auto"))
    total = api.write_samples(
        model, output, count, given=conditions, beside=beside, seed=seed, chunk_size=chunk_size,
        progress=not quiet,
        sampler=settings.sampler, num_steps=settings.num_steps, spacing=settings.spacing,
        guidance=settings.guidance, resample=settings.resample, precision=settings.precision,
    )
    if is_follower():
        return
    per = "" if conditions is None else (
        f" ({count:,} for each of {counted(len(conditions), 'condition')})")
    steps = len(model.noise_levels(sampler=settings.sampler, num_steps=settings.num_steps)) - 1
    click.echo(f"wrote {counted(total, 'sample')}{per} to {_destination(output)} "
               f"({settings.sampler}, {counted(steps, 'step')})", err=True)


def _destination(output: str) -> str:
    from .data import io

    return "standard output" if output == io.STDOUT else output


def _names_a_file(given: str) -> bool:
    """Whether ``--given`` names a table file (or a workbook's sheet, whose name may hold "="),
    not ``col=value,...``."""
    from .data import io

    return os.path.exists(io.workbook_sheet(given)[0]) or "=" not in given


def _given_frame(given: str):
    """The conditions of ``--given``: a table file, or ``col=value,...`` for one condition."""
    import pandas as pd

    from .data import io

    if _names_a_file(given):
        return io.read_frame(given)
    import csv

    pairs: list[list[str]] = []
    # Cells as a CSV row (a name with a comma in it quoted: '"weight, kg"=70'); a cell without "="
    # is the rest of a value with a comma in it: "price=$1,000.00", "height=171,3".
    for part in next(csv.reader([given]), []):
        if not part.strip():
            continue
        if "=" in part:
            pairs.append(part.split("=", 1))
        elif pairs:
            pairs[-1][1] += "," + part
        else:
            raise UserError(f"--given {given!r}: write col=value,... or name a file of conditions")
    names = [name.strip() for name, _ in pairs]
    twice = next((name for name in names if names.count(name) > 1), None)
    if twice is not None:
        raise UserError(f"--given {given!r}: column {twice!r} is given twice (one value per column; "
                        "several conditions go in a file, one per row)")
    from .data.columns import MISSING_TOKENS

    empty = next((name.strip() for name, value in pairs if value.strip().lower() in MISSING_TOKENS), None)
    if empty is not None:  # it would read as a missing cell, which means "not given": ignored
        raise UserError(f"--given {given!r}: column {empty!r} has no value (an empty or missing "
                        "cell conditions nothing); give it a value or leave it out")
    return pd.DataFrame({name.strip(): [value.strip()] for name, value in pairs})


@cli.command(context_settings=CONTEXT)
@run_argument
@click.option("--data", "data_file", type=click.Path(dir_okay=False), required=True,
              help="The table with gaps: .csv or .xlsx (empty cells), .json or .jsonl (null), .parquet, "
              ".feather or .npy (NaN), with the run's columns; other columns (an identifier) are "
              "written back as they are.")
@click.option("-o", "output", type=click.Path(dir_okay=False), required=True, callback=_output_name,
              help="The filled table, in the format of the extension (- : CSV on standard "
              "output); with --draws above 1, the table once per draw with a first column `draw`.")
@click.option("--draws", type=click.IntRange(min=1), default=1, show_default=True,
              help="Fillings per gap: their spread is each filled cell's uncertainty.")
@click.option("--median", is_flag=True, help="One table, each filled cell the median of its --draws "
              "(a label: the most frequent): the best single guess, without the spread.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Sampling seed; the same seed gives the same table, whatever --nproc.")
@resample_option
@device_option
@nproc_option
@click.option("--quiet", is_flag=True, help="No progress bar.")
def impute(run, data_file, output, draws, median, seed, resample, device, nproc, quiet) -> None:
    """Fill the missing cells of --data with draws from the model in RUN given each row's
    observed cells (RePaint in-painting, or the model's own for one trained with --inpainting
    learnt); observed cells are kept as they are, and a model's column that --data lacks is
    filled in every row.

    With --nproc (or under torchrun) each process fills a share of the rows with gaps; the
    output is the same file whatever the number of processes.

    \b
    Examples:
      simple-diffusion impute runs/penguins --data penguins-with-gaps.csv -o filled.csv --draws 5
      simple-diffusion impute runs/penguins --data penguins-with-gaps.csv -o best.csv --draws 19 --median
      simple-diffusion impute runs/big --data big-with-gaps.parquet -o filled.parquet --nproc 2
    """
    import numpy as np

    from . import api
    from .data import io
    from .training.distributed import resolve_device

    if run is None:
        raise UserError("write `simple-diffusion impute RUN --data FILE -o OUT`")
    if median and draws == 1:
        raise UserError("--median sums up several draws of each cell: give --draws, e.g. --draws 19")
    model = api.load(run)
    io.check_writable(output, model.schema)
    io.refuse_overwriting(output, api.kept_files(model, run, data=data_file))
    io.check_stdout_writers(output, nproc or 1)
    table = model.with_absent_columns(io.read_frame(data_file), data_file)
    rows = model.rows(table, data_file)
    gaps = int(np.isnan(rows).sum())
    if _launched(nproc, device):
        return
    model.to(resolve_device(device or "auto"))
    filled = model.impute(_as_written(model, rows, table, output), draws=draws, seed=seed,
                          progress=not quiet, median=median, resample=resample)
    if is_follower():
        return
    io.write_table(output, filled, schema=model.schema)
    how = f" with the median of {draws} draws" if median else f" {draws} times" if draws > 1 else ""
    click.echo(f"filled {counted(gaps, 'missing cell')} in {counted(len(rows), 'row')}{how}: "
               f"wrote {_destination(output)}", err=True)


@cli.command(context_settings=CONTEXT)
@run_argument
@click.option("--num-steps", type=click.IntRange(min=1), default=1, show_default=True,
              help="Network evaluations of the student's sampler.")
@click.option("--pairs", type=Count(min=8192), default=65_536, show_default=True,
              help="Teacher samples (with their starting noise) the student learns from.")
@click.option("--train-steps", type=Count(min=1), default=4_000, show_default=True,
              help="Adam steps of the student (batch 256), starting from the teacher's weights.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the pairs and batches.")
@device_option
@click.option("--quiet", is_flag=True, help="No progress bars.")
def distill(run, num_steps, pairs, train_steps, seed, device, quiet) -> None:
    """Distill the model in RUN into a sampler of a few network evaluations (student.safetensors in
    RUN), used by `sample --sampler distilled` and reported by `evaluate` beside the default.

    The student starts as a copy of the model and learns to follow, in --num-steps DDIM steps,
    the straight paths from starting noise to the model's own deterministic samples (rectified
    flow's reflow, Liu et al. 2023; one step is a direct regression). On the built-in targets one
    evaluation did as well as two or three (BENCHMARKS.md, "Few-step sampling"). A conditional
    model's student samples given its condition columns (`sample --given`) and the joint; a
    model trained to in-paint gets a student of its joint.

    \b
    Example:
      simple-diffusion distill runs/moons
      simple-diffusion sample runs/moons -n 1000000 -o moons.npy --sampler distilled
    """
    import shlex

    from . import api

    if run is None:
        raise UserError("write `simple-diffusion distill RUN`")
    model = api.distill(run, num_steps=num_steps, pairs=pairs, train_steps=train_steps, seed=seed,
                        progress=not quiet, device=device or "auto")
    seconds = model.student.info["seconds"]
    trained = model.info.get("train_seconds")
    against = f" (the model trained in {trained:.1f} s)" if trained else ""
    labelled = not all(c.numbers_only for c in model.schema)  # .npy holds numbers only
    click.echo(f"distilled a sampler of {counted(num_steps, 'network evaluation')} in {seconds:.1f} s"
               f"{against}: sample with `simple-diffusion sample {shlex.quote(str(run))} -n 100000 "
               f"-o samples.{'parquet' if labelled else 'npy'} --sampler distilled`"
               + (f" (with --given for rows given {', '.join(model.condition_columns)})"
                  if model.student.conditional else ""), err=True)


@cli.command(context_settings=CONTEXT)
@run_argument
@click.option("--samples-file", type=click.Path(), default=None,
              help="Evaluate these samples (a file, or a folder of Parquet parts as `sample -o "
              "parts/` writes) instead of drawing new ones from the model.")
@click.option("--against", default=None, metavar="SPEC", help="Reference: a built-in target or a "
              "data file. [default: the run's target, or its held-out rows]")
@evaluation_samples_option
@likelihood_rows_option
@click.option("--seed", type=int, default=0, show_default=True, help="Sampling seed.")
@click.option("--json", "as_json", is_flag=True, help="Print the JSON instead of the table.")
@device_option
@click.option("--quiet", is_flag=True, help="No progress bar.")
@_renamed("--samples", "--samples-file", type=click.Path(dir_okay=False))
def evaluate(run, samples_file, against, count, likelihood_rows, seed, as_json, device, quiet,
             legacy_samples) -> None:
    """Distances of the model's samples to the target, the training data's own (the floor),
    their ratio, and a memorisation check; written to RUN/metrics.json, samples.png, report.html.

    \b
    The distance is the 1-D Wasserstein distance for one column and the sliced Wasserstein
    distance for more. Ratio 1 means the model is as close to the truth as its training rows;
    exact samples score less when there are more of them than training rows (the line says how
    much at the sizes used). Memorisation near 0.5 means no training row was copied. The held-out
    negative log-likelihood comes with the truth's for built-in targets: their difference
    estimates the KL divergence to the truth; density.png draws the model's density over it.
    """
    import json

    from . import api
    from .data import io

    if run is None:
        raise UserError("write `simple-diffusion evaluate RUN`")
    samples_file = _either(samples_file, legacy_samples)
    if count == 0:
        raise UserError("-n 0 draws no samples, and evaluate needs some "
                        "(in train, -n 0 skips the evaluation)")
    if samples_file and count is not None:
        raise UserError("-n: the rows of --samples-file are evaluated as they are; leave -n out (it is how "
                        "many samples to draw)")
    # The file's rows in the model's columns here, so that a message names the file.
    samples = api.load(run).rows(io.read_frame(samples_file), samples_file) if samples_file else None
    result = api.evaluate_run(run, samples=samples, against=against, n=count, seed=seed,
                              progress=not quiet, likelihood_rows=likelihood_rows,
                              device=device or "auto")
    click.echo(json.dumps(result, indent=2) if as_json else _summary(result))


@cli.command(context_settings=CONTEXT)
@run_argument
@click.option("-o", "output", type=click.Path(dir_okay=False), required=True, help="Output .gif file.")
@click.option("-n", "--num-samples", "count", type=Count(min=10, max=200_000), default=3000,
              show_default=True, help="Samples to follow.")
@click.option("--num-steps", "num_steps", type=click.IntRange(min=2), default=None,
              help="Sampler steps, one frame each. [default: the run's, or 60 for every-timestep runs]")
@click.option("--seed", type=int, default=0, show_default=True, help="Sampling seed.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
@_renamed("--steps", "--num-steps", type=click.IntRange(min=2))
def animate(run, output, count, num_steps, seed, quiet, legacy_steps) -> None:
    """Animate the reverse process of the model in RUN: a histogram evolving from noise (1-D
    data) or points moving into place (2-D; the first two numeric columns of wider data).

    \b
    Example:
      simple-diffusion animate runs/moons -o moons.gif
    """
    from . import api
    from .data.io import atomic_path
    from .evaluation.plots import animate_reverse_process

    if run is None:
        raise UserError("write `simple-diffusion animate RUN -o FILE.gif`")
    if not output.lower().endswith(".gif"):
        raise UserError(f"{output}: the animation is written as .gif")
    model = api.load(run)
    # Category codes would only jump between whole numbers: the picture follows numbers.
    shown = [j for j, column in enumerate(model.schema) if column.kind != "categorical"][:2]
    if not shown:
        raise UserError(f"{run}: animate draws numeric columns, and every column of this model is "
                        "categorical")
    steps = _either(num_steps, legacy_steps)
    if steps is None and model.config.sample.num_steps == 0:
        steps = 60
    frames, levels = model.trajectory(count, seed=seed, num_steps=steps)
    with atomic_path(output) as temporary:
        gif = temporary.with_suffix(".gif")
        animate_reverse_process([f.numpy()[:, shown] for f in frames], levels,
                                [model.schema[j].axis_label for j in shown], str(gif), progress=not quiet)
        gif.replace(temporary)
    click.echo(f"wrote {output} ({len(frames)} frames)", err=True)


@cli.command(context_settings=CONTEXT)
@run_argument
@click.option("--data", "data_file", type=click.Path(dir_okay=False), required=True,
              help="Rows to score: a table file (.csv, .parquet, .jsonl, .xlsx, ...) with the run's "
              "columns (by name, or the same number of columns); other columns (an identifier) are "
              "written back beside them.")
@click.option("-o", "output", type=click.Path(dir_okay=False), required=True, callback=_output_name,
              help="The rows with a log_density column added, in the format of the extension; a "
              "histogram of the scores goes beside it (same name, .png).")
@click.option("--lowest", type=click.IntRange(min=0), default=10, show_default=True,
              help="How many of the least likely rows to list and mark on the histogram.")
@click.option("--tolerance", type=click.FloatRange(min=1e-10, max=1e-1), default=1e-5,
              show_default=True, help="Relative and absolute tolerance of the ODE solver: 1e-4 is "
              "about 3x quicker, to about 4e-3 nats per row.")
@click.option("--conditional", is_flag=True,
              help="Score each row's other columns given its condition columns, log p(x | c) (a run "
              "trained with --condition: a posterior's density; the condition may be categorical). "
              "Rows with an empty condition cell are not scored.")
@device_option
@click.option("--quiet", is_flag=True, help="No progress bar.")
def score(run, data_file, output, lowest, tolerance, conditional, device, quiet) -> None:
    """Score each row of --data by the log-density of the model in RUN (nats, in the data's own
    units): low scores flag unusual rows, e.g. anomalies among detector events.

    \b
    Examples:
      simple-diffusion score runs/detector --data new-events.csv -o scored.csv --lowest 20
      simple-diffusion score runs/posterior --data pairs.csv -o scored.csv --conditional
    """
    import numpy as np
    import torch

    from . import api
    from .data import io
    from .data.columns import position
    from .data.encoders import significant
    from .evaluation.plots import score_plot
    from .training.distributed import resolve_device

    if run is None:
        raise UserError("write `simple-diffusion score RUN --data FILE -o OUT`")
    if output == io.STDOUT:
        raise UserError("-o: score writes a histogram beside its output, so standard output will not do; "
                        "name a file, e.g. -o scored.csv")
    io.file_format(output)  # before the work, not after it
    model = api.load(run).to(resolve_device(device or "auto"))
    kept = api.kept_files(model, run, data=data_file)
    for written in (output, str(Path(output).with_suffix(".png"))):
        io.refuse_overwriting(written, kept)
    table = io.read_frame(data_file)
    rows = model.rows(table, data_file)
    if conditional:
        log_p = _conditional_log_prob(model, run, rows, tolerance, progress=not quiet)
    else:
        log_p = model.log_prob(rows, rtol=tolerance, atol=tolerance, progress=not quiet).numpy()
    written = significant(torch.from_numpy(log_p)).numpy()  # a model's number, as its samples are
    io.write_table(output, _as_written(model, rows, table, output).assign(log_density=written),
                   schema=model.schema)
    io.write_bytes(Path(output).with_suffix(".png"), score_plot(log_p, lowest))
    click.echo(f"wrote {counted(len(rows), 'scored row')} to {output} and a histogram to "
               f"{Path(output).with_suffix('.png')}", err=True)
    unscored = int(np.isnan(log_p).sum())
    if unscored:
        click.echo(f"not scored: {counted(unscored, 'row')} with a missing cell (log_density left empty)",
                   err=True)
    order = np.argsort(log_p, kind="stable")[: min(lowest, len(log_p) - unscored)]  # NaN sorts last
    for row in order:  # where the user finds it: a CSV's line, a sheet's row, an array's row
        click.echo(f"{position(row, table.attrs.get('first_row'))}: log density {log_p[row]:.3f}")


def _conditional_log_prob(model: DiffusionModel, run: str, rows: np.ndarray, tolerance: float,
                          progress: bool) -> np.ndarray:
    """log p(x | c) of each row given its own condition cells; NaN where one is empty."""
    import numpy as np

    if not model.condition_columns:
        raise UserError(f"--conditional: the model in {run} learnt no condition (train it with "
                        "--condition COL,...)")
    conditions = rows[:, model.condition_positions]
    complete = ~np.isnan(conditions).any(1)
    log_p = np.full(len(rows), np.nan)
    if complete.any():
        log_p[complete] = model.log_prob(rows[complete], given=conditions[complete], rtol=tolerance,
                                         atol=tolerance, progress=progress).numpy()
    return log_p


def _as_written(model: DiffusionModel, rows: np.ndarray, table: pd.DataFrame, output: str) -> pd.DataFrame:
    """The model's ``rows`` of the file's ``table`` as a DataFrame, with the file's other
    columns kept beside them (an .npy output holds the model's numbers only)."""
    from .data import io

    frame = model.to_frame(rows)
    written = frame if io.file_format(output) == ".npy" else model.beside_other_columns(frame, table)
    written.attrs = table.attrs  # a file's line numbers, for messages
    return written


def _grid(pairs: tuple[str, ...]) -> dict[str, list]:
    """``--set section.key=V1,V2`` options as a grid; each value read as a TOML value (numbers,
    booleans, [lists]), else as text."""
    import re

    tomllib = cfg.tomllib  # tomli before Python 3.11
    grid: dict[str, list] = {}
    for pair in pairs:
        key, equals, values = pair.partition("=")
        if not equals or not values:
            raise UserError(f"--set {pair!r}: write section.key=VALUE,VALUE,... e.g. train.lr=1e-3,4e-3")
        for value in re.split(r",(?![^\[]*\])", values):  # commas outside [...]
            try:
                parsed = tomllib.loads(f"v = {value.strip()}")["v"]
            except tomllib.TOMLDecodeError:
                parsed = value.strip()
            grid.setdefault(key.strip(), []).append(parsed)
    return grid


@cli.command(context_settings=CONTEXT)
@click.argument("out", type=click.Path(file_okay=False), required=False, metavar="OUT")
@click.option("--data", "data", required=True, metavar="SPEC", help="Built-in target name or a "
              "data file, as for `train`.")
@click.option("--set", "settings", multiple=True, metavar="SECTION.KEY=V1,V2,...",
              help="A setting to vary (a key of config.toml), with its values; repeat for a grid.")
@click.option("--seeds", default="0", show_default=True, metavar="S1,S2,...",
              help="Training seeds, each run with every combination of --set.")
@click.option("--preset", type=click.Choice(sorted(cfg.PRESETS)), default="default",
              show_default=True, help="Starting hyperparameters of every run.")
@click.option("--config", "config_file", type=click.Path(dir_okay=False), default=None,
              help="TOML file of overrides shared by every run.")
@click.option("--jobs", type=click.IntRange(min=1), default=1, show_default=True,
              help="Runs at once, each in its own worker process (joblib); about one per core.")
@evaluation_samples_option
@likelihood_rows_option
@click.option("--overwrite", is_flag=True, help="Replace runs that already exist in OUT.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def sweep(out, data, settings, seeds, preset, config_file, jobs, count, likelihood_rows, overwrite,
          quiet) -> None:
    """Train one run per combination of --set values and --seeds, each a normal run folder in
    OUT (named by its settings), --jobs at a time; print and write OUT/summary.csv (each run's
    settings, ratio, distance, floor, KL or NLL, seconds), and the mean and spread over seeds.

    \b
    Examples:
      simple-diffusion sweep sweeps/lr --data moons --set train.lr=1e-3,4e-3 --seeds 0,1,2 --jobs 2
      simple-diffusion sweep sweeps/width --data moons --set "model.hidden=[64,64],[128,128]"
    """
    import pandas as pd

    from .sweeps import by_setting
    from .sweeps import sweep as run_sweep

    if out is None:
        raise UserError("write `simple-diffusion sweep OUT --data SPEC --set SECTION.KEY=V1,V2`")
    try:
        seed_list = [int(s) for s in seeds.split(",") if s.strip()]
    except ValueError:
        raise UserError(f"--seeds {seeds!r}: write whole numbers separated by commas") from None
    table = run_sweep(data, out, grid=_grid(settings), seeds=seed_list, preset=preset,
                      config=config_file, jobs=jobs, overwrite=overwrite, num_samples=count,
                      likelihood_rows=likelihood_rows, progress=not quiet)
    with pd.option_context("display.width", 120, "display.max_columns", 20, "display.precision", 4):
        click.echo(table.to_string(index=False))
        averaged = by_setting(table)
        if averaged is not None:
            click.echo(f"\nover seeds:\n{averaged.to_string()}")
    failed = int(table["error"].notna().sum()) if "error" in table else 0
    click.echo(f"wrote {Path(out) / 'summary.csv'} ({counted(len(table), 'run')}"
               f"{f', {failed} failed' if failed else ''})", err=True)


@cli.command(context_settings=CONTEXT)
def datasets() -> None:
    """List the built-in targets."""
    width = max(len(name) for name in choices.TARGETS)
    for name, description in choices.TARGETS.items():
        click.echo(f"{name:<{width}}  {description}")


@cli.command(context_settings=CONTEXT)
@click.argument("out", type=click.Path(file_okay=False), required=False, metavar="[OUT]")
@num_samples_option
@click.option("--quick", is_flag=True, help="A few epochs per model: checks the pipeline in "
              "seconds; the numbers mean nothing.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
@_renamed("--out", "the folder as the first argument", type=click.Path(file_okay=False))
@_renamed("--samples", "-n/--num-samples", type=click.IntRange(min=1000))
def demo(out, count, quick, quiet, legacy_out, legacy_samples) -> None:
    """Train the seed and default presets on both 1-D targets, sample, evaluate, plot, and write
    a results table (OUT/results.md, OUT defaulting to demo-results) comparing them."""
    from .demo import run_demo

    out = _either(out, legacy_out, "demo-results")
    count = _either(count, legacy_samples, DEFAULT_SAMPLES)
    if count < 1000:
        raise UserError("the demo needs at least 1,000 samples per model (-n)")
    table = run_demo(Path(out), count, quick=quick, progress=not quiet)
    click.echo(table)


def _one_line_warning(message, category, filename, lineno, file=None, line=None) -> None:
    click.echo(f"warning: {message}", err=True)


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI, turning user mistakes and interruptions into one-line messages.

    Warnings print as one line while the command runs; the process's warning and floating-point
    settings are left as they were.
    """
    args = sys.argv[1:] if argv is None else list(argv)
    try:
        with warnings.catch_warnings(), command_line():
            warnings.showwarning = _one_line_warning
            cli.main(args=args, prog_name="simple-diffusion", standalone_mode=False,
                     obj={"argv": args})
    except UserError as exc:
        if not is_follower():  # rank 0 of a torchrun job speaks for all
            click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    except (click.exceptions.Abort, KeyboardInterrupt):
        click.echo("interrupted", err=True)
        sys.exit(130)
    except click.UsageError as exc:
        command = exc.ctx.command_path if exc.ctx else "simple-diffusion"
        click.echo(f"error: {exc.format_message()} (see `{command} --help`)", err=True)
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        click.echo(f"error: {exc.format_message()}", err=True)
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    finally:
        if "torch" in sys.modules:
            from .training.distributed import leave

            leave()
