"""The ``simple-diffusion`` command: a thin layer over ``simple_diffusion.api``.

User mistakes (bad data, options or files) print one line on stderr and exit with status 1.
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path

import click
import numpy as np

from . import api, io
from . import config as cfg
from .errors import UserError
from .model import CHUNK
from .samplers import SAMPLER_HELP
from .targets import TARGETS

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


@click.group(context_settings=CONTEXT)
@click.version_option(package_name="simple-diffusion")
def cli() -> None:
    """Learn a distribution from samples with a denoising diffusion model, then generate more.

    \b
    Quick start:
      simple-diffusion datasets                                  # built-in targets
      simple-diffusion train --data two_gaussians --out runs/two # train, evaluate, plot
      simple-diffusion sample runs/two -n 100000 -o samples.npy  # draw new samples
      simple-diffusion evaluate runs/two                         # distances, floor, ratio
      simple-diffusion demo                                      # seed vs default, both targets

    Every command has its own --help.
    """


def _columns(value: str | None) -> list[str] | None:
    return [c for c in value.split(",") if c.strip()] if value else None


@cli.command(context_settings=CONTEXT)
@click.option("--data", "data", metavar="SPEC", help="Built-in target name (see `datasets`) or a "
              ".npy, .csv or .parquet file of numbers, one row per sample.")
@click.option("--out", "out", type=click.Path(file_okay=False), required=True,
              help="Run folder to create: config, weights, losses, metrics and plots go here.")
@click.option("--preset", type=click.Choice(sorted(cfg.PRESETS)), default="default",
              show_default=True, help="Starting hyperparameters: "
              + "; ".join(f"{k}: {v}" for k, v in cfg.PRESET_HELP.items()) + ".")
@click.option("--seed", type=int, default=None, help="Training seed (init, batches, noise). "
              "[default: the preset's]")
@click.option("--epochs", type=int, default=None, help="Passes over the training data. "
              "[default: the preset's]")
@click.option("--config", "config_file", type=click.Path(dir_okay=False), default=None,
              help="TOML file of overrides, e.g. `[train]\\nlr = 1e-3` (see a run's config.toml).")
@click.option("--columns", default=None, help="Comma-separated columns to use (names, or indices "
              "for .npy). [default: all]")
@click.option("--header/--no-header", default=None, help="Whether the CSV's first row names the "
              "columns. [default: detected]")
@click.option("--preprocess", type=click.Choice(["standardize", "quantile", "none"]), default=None,
              help="Column scaling: standardize, quantile (to a normal, for skewed or heavy-tailed "
              "columns) or none. [default: the preset's]")
@click.option("--bounds", default=None, metavar="COL=LOW:HIGH,...", help="Columns that must stay "
              "in a range, e.g. `mass=0:,fraction=0:1` (an empty side is open).")
@click.option("--integer", default=None, metavar="COL,...", help="Columns rounded to whole "
              "numbers on output.")
@click.option("--keep-constant", is_flag=True, default=None, help="Pass constant columns through "
              "unchanged instead of refusing them.")
@click.option("--eval-samples", type=int, default=100_000, show_default=True,
              help="Samples drawn after training for metrics.json and samples.png (0 skips).")
@click.option("--overwrite", is_flag=True, help="Replace an existing run folder.")
@click.option("--resume", is_flag=True, help="Continue the interrupted (or finished) training in "
              "--out; with --epochs, train up to that many epochs.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
def train(data, out, preset, seed, epochs, config_file, columns, header, preprocess, bounds, integer,
          keep_constant, eval_samples, overwrite, resume, quiet) -> None:
    """Train a model on --data and write a run folder to --out.

    \b
    Examples:
      simple-diffusion train --data two_gaussians --out runs/two
      simple-diffusion train --data moons --out runs/moons --epochs 100 --seed 1
      simple-diffusion train --data measurements.csv --columns mass,energy --out runs/m
      simple-diffusion train --data two_gaussians --preset seed --out runs/seed
      simple-diffusion train --resume --out runs/two      # after Ctrl-C
    """
    if data is None and not resume:
        raise UserError("--data is required (a built-in target name or a data file)")
    data_options = {
        "header": None if header is None else ("yes" if header else "no"),
        "preprocess": preprocess, "bounds": bounds, "integer": _columns(integer),
        "keep_constant": keep_constant,
    }
    data_options = {k: v for k, v in data_options.items() if v is not None}
    config = cfg.load_toml(config_file) if config_file else {}
    if data_options:
        config = {**config, "data": {**config.get("data", {}), **data_options}}
    api.fit(
        data, preset=preset, config=config, seed=seed, epochs=epochs,
        columns=_columns(columns), out=out, overwrite=overwrite, resume=resume,
        progress=not quiet,
    )
    click.echo(f"trained: {out}", err=True)
    if eval_samples > 0:
        result = api.evaluate_run(out, n=eval_samples, progress=not quiet)
        click.echo(_summary(result))


def _summary(result: dict) -> str:
    from .metrics import format_table

    return format_table(result)


@cli.command(context_settings=CONTEXT)
@click.argument("run", type=click.Path(file_okay=False))
@click.option("-n", "count", type=click.IntRange(min=1), required=True, help="Number of samples.")
@click.option("-o", "output", type=click.Path(dir_okay=False), required=True,
              help="Output file: .npy (shape (n, d)), .csv (with a header) or .parquet.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Sampling seed; the same seed gives the same samples.")
@click.option("--sampler", type=click.Choice(sorted(SAMPLER_HELP)), default=None,
              help="; ".join(f"{k}: {v}" for k, v in SAMPLER_HELP.items())
              + ". [default: the run's]")
@click.option("--steps", type=click.IntRange(min=0), default=None,
              help="Sampler steps (0: every timestep). [default: the run's]")
@click.option("--spacing", type=click.Choice(["logsnr", "uniform", "karras"]), default=None,
              help="How the steps' noise levels are spread. [default: the run's]")
@click.option("--chunk-size", type=click.IntRange(min=1), default=CHUNK, show_default=True,
              help="Samples generated at once; memory grows with this, not with -n.")
@click.option("--quiet", is_flag=True, help="No progress bar.")
def sample(run, count, output, seed, sampler, steps, spacing, chunk_size, quiet) -> None:
    """Draw -n samples from the model in RUN and write them to -o, in the data's own units.

    \b
    Example:
      simple-diffusion sample runs/two -n 100000 -o samples.npy --sampler heun --steps 18
    """
    model = api.load(run)
    settings = model.sampling_settings(sampler=sampler, num_steps=steps, spacing=spacing)
    chunks = (
        chunk.numpy()
        for _, chunk in model.sample_chunks(
            count, sampler=settings.sampler, num_steps=settings.num_steps,
            spacing=settings.spacing, seed=seed, chunk_size=chunk_size, progress=not quiet,
        )
    )
    io.write_chunks(output, chunks, model.columns, count)
    click.echo(f"wrote {count:,} samples to {output} ({settings.sampler}, "
               f"{settings.num_steps or model.schedule.num_timesteps} steps)", err=True)


@cli.command(context_settings=CONTEXT)
@click.argument("run", type=click.Path(file_okay=False))
@click.option("--samples", "samples_file", type=click.Path(dir_okay=False), default=None,
              help="Evaluate these samples instead of drawing new ones from the model.")
@click.option("--against", default=None, metavar="SPEC", help="Reference: a built-in target or a "
              "data file. [default: the run's target, or its held-out rows]")
@click.option("-n", "count", type=click.IntRange(min=1), default=100_000, show_default=True,
              help="Samples to draw when --samples is not given.")
@click.option("--seed", type=int, default=0, show_default=True, help="Sampling seed.")
@click.option("--json", "as_json", is_flag=True, help="Print the JSON instead of the table.")
def evaluate(run, samples_file, against, count, seed, as_json) -> None:
    """Distances of the model's samples to the target, the training data's own (the floor),
    and their ratio; written to RUN/metrics.json and RUN/samples.png.

    \b
    The distance is the 1-D Wasserstein distance for one column and the sliced Wasserstein
    distance for more. Ratio 1 means the model is as close to the truth as its data is.
    """
    samples = io.read_table(samples_file).values if samples_file else None
    result = api.evaluate_run(run, samples=samples, against=against, n=count, seed=seed)
    click.echo(json.dumps(result, indent=2) if as_json else _summary(result))


@cli.command(context_settings=CONTEXT)
@click.argument("run", type=click.Path(file_okay=False))
@click.option("-o", "output", type=click.Path(dir_okay=False), required=True, help="Output .gif file.")
@click.option("-n", "count", type=click.IntRange(min=10, max=200_000), default=3000, show_default=True,
              help="Samples to follow.")
@click.option("--steps", type=click.IntRange(min=2), default=None,
              help="Sampler steps, one frame each. [default: the run's, or 60 for every-timestep runs]")
@click.option("--seed", type=int, default=0, show_default=True, help="Sampling seed.")
def animate(run, output, count, steps, seed) -> None:
    """Animate the reverse process of the model in RUN: a histogram evolving from noise (1-D
    data) or points moving into place (2-D; the first two columns of wider data).

    \b
    Example:
      simple-diffusion animate runs/moons -o moons.gif
    """
    from .io import atomic_path
    from .plots import animate_reverse_process

    if not output.lower().endswith(".gif"):
        raise UserError(f"{output}: the animation is written as .gif")
    model = api.load(run)
    if steps is None and model.config.sample.num_steps == 0:
        steps = 60
    frames, levels = model.trajectory(count, seed=seed, num_steps=steps)
    with atomic_path(output) as temporary:
        gif = temporary.with_suffix(".gif")
        animate_reverse_process([f.numpy() for f in frames], levels, model.columns, str(gif))
        gif.replace(temporary)
    click.echo(f"wrote {output} ({len(frames)} frames)", err=True)


@cli.command(context_settings=CONTEXT)
def datasets() -> None:
    """List the built-in targets."""
    width = max(len(name) for name in TARGETS)
    for name, target in TARGETS.items():
        click.echo(f"{name:<{width}}  {target.description}")


@cli.command(context_settings=CONTEXT)
@click.option("--out", type=click.Path(file_okay=False), default="demo-results",
              show_default=True, help="Folder for the runs, plots and the results table.")
@click.option("--samples", "count", type=click.IntRange(min=1000), default=100_000,
              show_default=True, help="Samples drawn from each model.")
@click.option("--quick", is_flag=True, help="A few epochs per model: checks the pipeline in "
              "seconds; the numbers mean nothing.")
@click.option("--quiet", is_flag=True, help="No progress bars.")
def demo(out, count, quick, quiet) -> None:
    """Train the seed and default presets on both 1-D targets, sample, evaluate, plot, and write
    a results table (OUT/results.md) comparing them."""
    from .demo import run_demo

    table = run_demo(Path(out), count, quick=quick, progress=not quiet)
    click.echo(table)


def main(argv: list[str] | None = None) -> None:
    """Entry point: run the CLI, turning user mistakes into one-line messages."""
    warnings.formatwarning = lambda message, *args, **kwargs: f"warning: {message}\n"
    np.seterr(all="ignore")
    try:
        cli.main(args=argv, prog_name="simple-diffusion", standalone_mode=False)
    except UserError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(1)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
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
    except KeyboardInterrupt:
        click.echo("interrupted", err=True)
        sys.exit(130)
