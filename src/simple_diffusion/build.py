"""Config -> parts: the one place where a resolved config meets the maths.

``fit``, ``load`` and resumption all assemble a model here, so there is one way to do it; the
modules under ``data/``, ``diffusion/`` and ``training/`` take plain arguments and know nothing of
configs.

>>> from simple_diffusion import config
>>> import torch
>>> cfg = config.preset("default")
>>> parts = build_parts(cfg, ["x"], rows=torch.randn(100, 1, dtype=torch.float64))
>>> parts.schedule.num_timesteps, parts.encoder.transformed_dim, parts.net.dim
(1000, 1, 1)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

from .config import Config, DataConfig, ModelConfig, SampleConfig, ScheduleConfig
from .data import encoders, tables
from .data.columns import TIME_UNITS, Column, days_since_1970
from .diffusion import schedules
from .diffusion.denoisers import MLP, FourierTime, RawTime
from .diffusion.gaussian import GaussianPart
from .diffusion.objective import CalendarTerms, CellMasks, ColumnCondition, Condition, Objective
from .errors import UserError, no_such_column
from .training import budget
from .training.distributed import Ranks
from .training.loop import Trainer

SCHEDULES: dict[str, Callable[[ScheduleConfig], schedules.Schedule]] = {
    "constant": lambda c: schedules.constant(c.beta, c.num_timesteps),
    "linear": lambda c: schedules.linear(c.beta_start, c.beta_end, c.num_timesteps),
    "cosine": lambda c: schedules.cosine(c.num_timesteps),
}


def schedule(config: ScheduleConfig) -> schedules.Schedule:
    return SCHEDULES[config.kind](config)


WIDE_ABOVE = 8
"""Encoded columns above which the default network is 4 x 256 instead of 4 x 128: measured on
tables (BENCHMARKS.md, "Tables"); every built-in target has at most 6 and keeps 4 x 128."""
TABLE_SAMPLER_STEPS = 100
"""Sampler steps of a table with categorical columns (or point masses: which spike a cell holds is
a category), where 50 steps misplace measurably more mass between category combinations
(BENCHMARKS.md, "Tables")."""


NARROW_BELOW = 500
"""Training rows below which the default network of a joint model is at most 4 x 128. On the
small tables of BENCHMARKS.md ("Tables", the network's width) 4 x 128 was as close to the held-out
rows as 4 x 256 or closer (iris 1.396 against 1.443, wine 1.107 against 1.139, penguins 1.068
against 1.066, diabetes 1.022 against 1.035), copied no more, and trained in half the time; 4 x 64
was mixed (wine 1.086, iris 1.442, penguins 1.175). A network that also takes a condition (the
condition columns, or learnt in-painting's shown cells) keeps 4 x 256: gaussian_linear's posterior
from 300 simulations scored C2ST 0.729 / 0.720 (two seeds) at 4 x 128 against 0.718 / 0.715, its
90% coverage 0.861 / 0.873 against 0.889 / 0.901, and learnt in-painting on penguins 1.084 against
1.055."""
NARROW_MOST_COLUMNS = 64
"""...and only for at most this many encoded columns: the narrow network is a bottleneck for a
wide table. World Bank fertility rates (219 countries x 51 years with gaps: 153 encoded columns)
scored 1.85 / 1.84 (seeds 0 / 1) at 4 x 128 against 1.20 / 1.35 at 4 x 256, generating 19.5 /
19.1% missing cells against the data's 9.7% (8.9 / 11.5% at 4 x 256); digits' 74 columns 2.16
against 1.31 (BENCHMARKS.md, "Tables").
The small tables that chose 4 x 128 have 7-38 (breast cancer's 30 numbers, label and spikes)."""


def widths(config: ModelConfig, dim: int, rows: int | None = None, conditioned: bool = False) -> list[int]:
    """The hidden widths: the config's, or (empty) four layers sized by the encoded columns and,
    for a joint model (not ``conditioned``) of few ``rows`` and at most ``NARROW_MOST_COLUMNS``
    encoded columns, at most 128 wide."""
    if config.hidden:
        return list(config.hidden)
    narrow = rows is not None and rows < NARROW_BELOW and not conditioned and dim <= NARROW_MOST_COLUMNS
    return [256 if dim > WIDE_ABOVE and not narrow else 128] * 4


def takes_a_condition(config: Config) -> bool:
    """Whether the network is shown something besides x_t: condition columns or learnt
    in-painting's cells (``condition``)."""
    return bool(config.data.condition) or config.train.inpainting == "learnt"


def denoiser(config: ModelConfig, dim: int, num_timesteps: int, condition_size: int = 0,
             rows: int | None = None) -> MLP:
    """The network a ``ModelConfig`` describes, for ``dim`` encoded columns (and ``rows``
    training rows, where the widths follow the data)."""
    time = RawTime() if config.kind == "seed_mlp" else FourierTime(config.time_features, num_timesteps)
    return MLP(dim, widths(config, dim, rows, condition_size > 0), time, config.activation, condition_size)


def condition(config: Config, encoder: tables.TableEncoder) -> Condition | None:
    """What the network is shown: random cells (``train.inpainting = learnt``), or the
    condition columns of ``data.condition`` as the encoded coordinates they occupy."""
    where = encoder.coordinates()
    dated = [j for j, column in enumerate(encoder.schema) if column.cycles and where[j]]
    if config.train.inpainting == "learnt":
        return CellMasks(encoder.cell_groups(), encoder.transformed_dim, config.train.condition_dropout,
                         [calendar_terms(encoder, j, where[j][0]) for j in dated])
    names = list(config.data.condition)
    if not names:
        return None
    columns = [c.name for c in encoder.schema]
    for name in names:
        if name not in columns:
            raise no_such_column("data.condition", name, columns)
    if set(names) >= set(columns):
        raise UserError("data.condition names every column: at least one must be left to generate")
    coordinates = sorted(k for name in names for k in where[columns.index(name)])
    calendars = [calendar_terms(encoder, j, coordinates.index(where[j][0]))
                 for j in dated if columns[j] in names]
    return ColumnCondition(coordinates, config.train.condition_dropout, calendars)


def calendar_terms(encoder: tables.TableEncoder, j: int, position: int) -> CalendarTerms:
    """The calendar terms of date column ``j`` of a condition, at ``position`` among its
    coordinates: the cycles (a year, a week, a day) whose phases its dates cover."""
    column = encoder.schema[j]
    origin = days_since_1970(column, np.zeros(1))[0]
    per_unit = TIME_UNITS[column.time_unit] / TIME_UNITS["D"]
    return CalendarTerms(position, lambda z: origin + encoder.values_of(j, z) * per_unit, column.cycles)


def encoder(config: DataConfig, rows: torch.Tensor, schema: Sequence[Column]) -> tables.TableEncoder:
    """The table encoder a ``DataConfig`` describes, fitted on the training ``rows``."""
    return tables.fit(
        rows, schema, scaling=config.preprocess, encoding=config.categorical_encoding,
        bounds=encoders.parse_bounds(config.bounds), integer=config.integer,
        keep_constant=config.keep_constant, continuous=config.numeric, round_to_data=config.round_to_data,
        clip_to_range=config.clip_to_range,
    )


def restore_encoder(state: dict[str, Any], columns: Sequence[str]) -> tables.TableEncoder:
    """A saved encoder; a model of version 0.2 saved only the numeric pipeline of its columns."""
    if "schema" in state:
        return tables.from_state(state)
    pipeline = encoders.from_state(state)
    return tables.TableEncoder([Column(name, "numeric") for name in columns], pipeline, "onehot",
                               [], [], [], [], [])


@dataclass
class Parts:
    """What a model is made of before training: schedule, column encoder, initialised network."""

    schedule: schedules.Schedule
    encoder: tables.TableEncoder
    net: MLP
    condition: Condition | None = None


def build_parts(config: Config, columns: Sequence[str | Column], *, rows: torch.Tensor | None = None,
                encoder_state: dict[str, Any] | None = None) -> Parts:
    """The parts of a model: the encoder fitted on ``rows`` (training; ``columns`` are names of
    numeric columns or ``Column`` kinds) or restored from ``encoder_state`` (loading), the
    schedule, and a network initialised from ``train.seed``."""
    schema = [c if isinstance(c, Column) else Column(c, "numeric") for c in columns]
    fitted = (restore_encoder(encoder_state, [c.name for c in schema]) if encoder_state is not None
              else encoder(config.data, rows, schema))
    if fitted.transformed_dim == 0:
        raise UserError("every column is constant: there is nothing to model")
    built = schedule(config.schedule)
    conditioned = condition(config, fitted)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.train.seed)
        net = denoiser(config.model, fitted.transformed_dim, built.num_timesteps,
                       conditioned.size if conditioned else 0, None if rows is None else len(rows))
    return Parts(built, fitted, net, conditioned)


def training_budget(config: Config, rows: int) -> Config:
    """``config`` with its training budget resolved for ``rows`` training rows (batch size,
    epochs and steps all set), as a run records it."""
    t = config.train
    resolved = budget.resolve(rows, t.steps, t.epochs, t.batch_size, t.keep_best, t.validate_every)
    return replace(config, train=replace(t, batch_size=resolved.batch_size, epochs=resolved.epochs,
                                         steps=resolved.steps,
                                         keep_best="yes" if resolved.keep_best else "no",
                                         validate_every=resolved.validate_every))


def follow_data(config: Config, rows: int, encoder: tables.TableEncoder, sampler_steps_set: bool) -> Config:
    """``config`` with what the default leaves to the data resolved, as a run records it: the
    training budget, the network's widths and, for a table with categorical columns, the
    sampler's steps (unless ``sampler_steps_set``: the caller chose them); point masses count as
    categories there (which spike a cell holds is one)."""
    config = training_budget(config, rows)
    config = replace(config, model=replace(config.model,
                                           hidden=widths(config.model, encoder.transformed_dim, rows,
                                                         takes_a_condition(config))))
    default_steps = SampleConfig().num_steps
    if ((encoder.categorical_columns or encoder.point_mass_columns) and not sampler_steps_set
            and config.sample.num_steps == default_steps):
        config = replace(config, sample=replace(config.sample, num_steps=TABLE_SAMPLER_STEPS))
    return config


def trainer(config: Config, net: torch.nn.Module, schedule: schedules.Schedule, train: torch.Tensor,
            val: torch.Tensor, condition: Condition | None = None,
            device: torch.device | str = "cpu", ranks: Ranks = Ranks(),
            measured: torch.Tensor | None = None) -> Trainer:
    """The training loop for ``net`` (any module with ``forward(x_t, t)``, and a ``condition``
    argument with ``condition``) on encoded rows, with the budget of ``training_budget``, on
    ``device`` and among ``ranks``; ``measured`` says which coordinates of ``train`` are the
    rows' own values (``TableEncoder.measured``), for the Gaussian part."""
    t = training_budget(config, len(train)).train
    share = config.model.gaussian_part
    objective = Objective(schedule, config.model.prediction_type, timesteps=t.timesteps,
                          t_min=t.t_min, t_max=t.t_max, condition=condition,
                          gaussian=GaussianPart.fit(train, share, measured) if share else None)
    return Trainer(net, objective, train, val, epochs=t.epochs, batch_size=t.batch_size,
                   lr=t.lr, lr_schedule=t.lr_schedule, warmup_steps=t.warmup_steps,
                   ema_decay=t.ema_decay, max_grad_norm=t.max_grad_norm, seed=t.seed,
                   threads=t.threads, fast=t.fast,
                   keep_best=t.keep_best == "yes", patience=t.patience, validate_every=t.validate_every,
                   device=device, ranks=ranks)
