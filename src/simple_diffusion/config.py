"""Every hyperparameter as a typed dataclass, the ``seed`` and ``default`` presets, and TOML I/O.

>>> cfg = preset("seed")
>>> cfg.schedule.kind, cfg.schedule.num_timesteps, cfg.train.batch_size
('constant', 250, 64)
>>> override(cfg, {"train": {"epochs": 3}}).train.epochs
3
"""

from __future__ import annotations

import dataclasses
import json
import sys
from dataclasses import dataclass, field
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from . import choices
from .errors import UserError, said

SAMPLING_CHUNK = 8192
"""Rows sampled at once by default: small enough that a network's activations stay in the CPU's
cache (65,536 rows at once took twice as long), large enough to amortise the per-step overhead."""


@dataclass
class DataConfig:
    """Where training and validation points come from and how they are scaled."""

    train_size: int = 10_000
    """Draws from a built-in target used for training."""
    val_size: int = 1_000
    """Separate draws from a built-in target used for validation."""
    val_fraction: float = 0.1
    """Share of user data held out for validation and for the evaluation floor."""
    data_seed: int = 42
    """Seed of the target draws and of the held-out split."""
    preprocess: str = "auto"
    """How columns are scaled before the network sees them: ``none``, ``standardize``, ``auto``
    (standardize, with a Yeo-Johnson transform first for columns whose skewness is beyond 2: a
    population, an income) or ``quantile`` (through the empirical CDF to a normal)."""
    bounds: str = ""
    """Columns that must stay in a range, as ``"mass=0:,fraction=0:1"`` (a side left empty is
    open); they are mapped through log or logit, so samples respect the bounds."""
    integer: list[str] = field(default_factory=list)
    """Columns taken as whole numbers (rounded into their training range on output), besides the
    ones detected (whole-number dtypes, CSV columns of whole numbers)."""
    categorical: list[str] = field(default_factory=list)
    """Columns taken as categories, besides the ones detected (text, booleans, pandas
    categories): e.g. integer codes such as a 1/2 sex column."""
    numeric: list[str] = field(default_factory=list)
    """Columns taken as purely continuous numbers although detection would say integer, or would
    learn the values they repeat (a spike at 0, readings mostly whole) as point masses."""
    categorical_encoding: str = "auto"
    """How categories (and missing-cell indicators, point masses) enter the Gaussian diffusion:
    ``onehot`` (+1/-1 per category), ``bits`` (analog bits: the category's binary digits as
    +1/-1) or ``auto`` (one-hot up to 10 categories, bits beyond and for point masses; bits for
    every category once the table's categorical columns would take over 64 one-hot entries)."""
    condition: list[str] = field(default_factory=list)
    """Columns the model learns to condition on (``sample --given``): it learns p(other
    columns | these) and, with ``train.condition_dropout``, the joint too."""
    drop_missing: bool = False
    """Drop rows with a missing cell instead of learning where cells are missing."""
    keep_constant: bool = False
    """Pass constant columns through unchanged instead of refusing them."""
    round_to_data: bool = True
    """Write samples of a numeric column with the decimal places its training values have (iris'
    5.1, not 5.0873; up to 6 places, as SDV's ``enforce_rounding``), or else their significant
    digits (3.469e-07, not 3.46912874e-07); the density is unchanged."""
    clip_to_range: bool = True
    """Keep samples of a numeric column within the range of its training values (SDV's
    ``enforce_min_max_values``): no population below 0, no age above the oldest. Integer columns
    always are; the density is unchanged."""
    header: str = "auto"
    """Whether a CSV's first row names the columns: ``auto`` (detect), ``yes`` or ``no``."""


@dataclass
class ScheduleConfig:
    """The forward (noising) process: a table of alpha_bar over ``num_timesteps`` steps."""

    kind: str = "cosine"
    """``constant`` (beta fixed), ``linear`` (beta from beta_start to beta_end) or ``cosine``."""
    num_timesteps: int = 1000
    beta: float = 0.02
    """The beta of the ``constant`` schedule."""
    beta_start: float = 1e-4
    beta_end: float = 0.02


@dataclass
class ModelConfig:
    """The denoiser network and what it predicts."""

    kind: str = "mlp"
    """``seed_mlp`` (input (x_t, raw t), ReLU) or ``mlp`` (Fourier time embedding)."""
    hidden: list[int] = field(default_factory=list)
    """Widths of the hidden layers; empty follows the data: four layers of 128 for up to 8
    encoded columns, of 256 above unless a model without a condition has fewer than 500
    training rows (``build.py``; the run's config.toml records the widths)."""
    activation: str = "silu"
    """``relu`` or ``silu``."""
    time_features: int = 16
    """Sine/cosine pairs of the ``mlp`` time embedding."""
    prediction_type: str = "epsilon"
    """What the network predicts: ``epsilon`` (the noise), ``sample`` (x_0) or ``v``."""
    gaussian_part: float = 0.5
    """Share, in [0, 1], of the exact denoiser of a Gaussian with the training rows' mean and
    covariance that the network's output is added to (``diffusion/gaussian.py``): the network
    learns the rest. 0.5 lowered the held-out KL on correlated, clustered and 2-D data below
    zuko's NSF and kept tables, imputation and posteriors as good or better; 0.9 fits
    likelihoods closer still but spreads tables with gaps too wide, and 1 and 0.99 stopped the
    network learning shapes (BENCHMARKS.md "Densities"). 0: a network alone (the seed preset)."""


@dataclass
class TrainConfig:
    """The optimisation loop (DDPM Algorithm 1)."""

    steps: int = 0
    """Optimiser steps; 0 follows the data: 250 passes over it, at least ``MIN_STEPS`` and at
    most ``MAX_STEPS``, and ``MAX_STEPS`` below 10,000 rows (``training/budget.py``). The
    resolved number is written to config.toml."""
    epochs: int = 0
    """Passes over the training rows instead of ``steps``; 0 uses ``steps``."""
    batch_size: int = 0
    """Rows per step; 0 follows the data: the power of two nearest n / 40 (n / 8 below 10,000
    rows), between 32 and 512."""
    lr: float = 4e-3
    lr_schedule: str = "cosine"
    """``constant`` or ``cosine`` (decay to zero over the run, after ``warmup_steps``)."""
    warmup_steps: int = 100
    ema_decay: float = 0.999
    """Exponential moving average of the weights used for sampling; 0 disables it."""
    max_grad_norm: float = 1.0
    """A step whose gradient is longer than this is scaled down to it (diffusers' training
    scripts clip at 1.0 too); 0 never clips. Typical steps are far below it (moons' largest of
    9,750: 0.61); the rare spikes above it (up to 119 on a table of 153 encoded columns) threw
    such a network off for good on one split in three (BENCHMARKS.md, "Tables")."""
    timesteps: str = "continuous"
    """How training draws noise levels: ``discrete`` (whole t uniform in [t_min, t_max], as
    DDPM), ``continuous`` (real t uniform) or ``logsnr`` (log sigma uniform between the levels
    of t_min and t_max, capped as sampling caps it: every sampler step gets equal attention)."""
    t_min: int = 1
    """Smallest timestep drawn in training (inclusive)."""
    t_max: int = 0
    """Largest timestep drawn in training (inclusive); 0 means ``num_timesteps``."""
    seed: int = 0
    """Seed of initialisation, batch order, timesteps and noise."""
    threads: int = 0
    """CPU threads for torch; 0 chooses from the network size."""
    fast: bool = True
    """Use the explicit forward/backward engine for the built-in MLPs."""
    keep_best: str = "auto"
    """Keep the weights of the epoch with the lowest validation loss instead of the last:
    ``yes``, ``no``, or ``auto`` (yes below 10,000 training rows; ``training/budget.py``)."""
    patience: float = 0.25
    """With ``keep_best``: stop once this share of the run's epochs has passed since the epoch of
    lowest validation loss (0: train to the end). The weights kept are that epoch's either way,
    so a stop changes nothing unless a later epoch would have been lower still: on the 15 splits
    of the benchmark tables and 2 posterior tasks none was, and the stop saved up to about two
    thirds of their training time (BENCHMARKS.md, "Tables")."""
    condition_dropout: float = 0.2
    """Share of training rows whose condition columns (with ``data.condition``), or cells
    (with learnt ``inpainting``), are all hidden from the network: what lets one model sample
    unconditionally and be guided (BENCHMARKS.md, "Conditioning", measures it)."""
    inpainting: str = "repaint"
    """How given cells other than condition columns are filled (``impute``, ``sample --given``):
    ``repaint`` at sampling time on any model, or ``learnt``: the network also trains on rows
    with random cells shown (its ``condition_dropout`` share shows none and learns the joint),
    so that it completes rows from any subset of their cells (BENCHMARKS.md, "Conditioning",
    compares the two on imputation)."""
    validate_every: int = 0
    """Epochs between two validation losses (the cells between are empty in losses.csv);
    0 follows the data: every 32,768 training rows or so, and every epoch of a larger table
    (``training/budget.py``). The seed preset validates every epoch, as its assignment does."""
    checkpoint_every: int = 0
    """Write a resumable checkpoint every this many epochs; 0 only on interruption and at the end."""
    device: str = "auto"
    """Where the network trains: ``auto`` (a CUDA or Apple GPU if torch sees one, else the CPU),
    ``cpu``, ``cuda`` or ``mps``; the [run] table records the device used. Weights are saved
    for any device."""


@dataclass
class SampleConfig:
    """How samples are drawn unless the caller says otherwise."""

    sampler: str = "dpmpp_2m_sde"
    """A stochastic solver by default: its fresh noise forgives the network's errors, which a
    deterministic solver carries to the end (in 1-D, as misplaced mass between modes)."""
    num_steps: int = 50
    """Sampler steps; 0 means every timestep of the schedule. Left at 50, a table with
    categorical columns gets 100 (``build.py``)."""
    spacing: str = "logsnr"
    """How the steps' noise levels are spread: ``logsnr``, ``uniform`` (in t) or ``karras``."""
    sigma_max: float = 10.0
    """Noise level of the first step (in units of the preprocessed data); 0: the schedule's top.
    Far above unit-scale data the denoiser only returns the mean, so steps there are wasted."""
    sigma_min: float = 0.02
    """Noise level of the last step before 0; 0: the schedule's lowest."""
    variance: str = "beta"
    """Noise of the ``ancestral`` sampler: ``beta`` (DDPM's sigma_t^2 = beta_t) or ``posterior``."""
    guidance: float = 1.0
    """Classifier-free guidance of a conditional model (Ho & Salimans 2022): the denoiser is
    unconditional + guidance x (conditional - unconditional); 0 ignores the condition, 1 is the
    conditional model, above 1 sharpens it (BENCHMARKS.md, "Conditioning")."""
    resample: int = 5
    """Given cells that the model did not learn to condition on (filling gaps, ``--given`` on
    other columns) are in-painted with RePaint (Lugmayr et al. 2022): each step is redone this
    many times, noising back in between, so the rest of the row agrees with them."""
    reject_tries: int = 200
    """Given labels of categorical columns the network does not take as its condition
    (``--given island=Dream``, alone or beside the condition columns' cells) are met by reject
    sampling, as SDV's conditional sampling does: whole rows are drawn (given the condition
    columns) and those with the given labels kept, which is exact for the model, where
    in-painting a label leaves the rest of the row nearer its marginal (BENCHMARKS.md,
    "Conditioning"). Not with numbers given beside them, nor for learnt in-painting. At most
    this many rows are drawn per row asked for; rows still missing then are in-painted, with a
    warning. 0: always in-paint."""
    precision: str = "auto"
    """Matrix products of the sampler's network: ``auto`` uses bfloat16 for the distilled sampler
    where the CPU runs it natively (measured at run time), float32 for the solvers, whose ratios
    bfloat16 moved (``precision.py``; BENCHMARKS.md)."""


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    sample: SampleConfig = field(default_factory=SampleConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _seed() -> Config:
    """The university assignment's system, number for number (see shared/seed.md)."""
    return Config(
        data=DataConfig(train_size=10_000, val_size=1_000, data_seed=42, preprocess="none",
                        clip_to_range=False),
        schedule=ScheduleConfig(kind="constant", num_timesteps=250, beta=0.02),
        model=ModelConfig(
            kind="seed_mlp", hidden=[16, 16], activation="relu", prediction_type="epsilon",
            gaussian_part=0.0,
        ),
        train=TrainConfig(
            epochs=1000,
            batch_size=64,
            lr=0.8e-4,
            lr_schedule="constant",
            warmup_steps=0,
            ema_decay=0.0,
            max_grad_norm=0.0,
            timesteps="discrete",
            t_min=1,
            t_max=249,
            seed=42,
            keep_best="no",
            validate_every=1,
        ),
        sample=SampleConfig(sampler="ancestral", num_steps=0, variance="beta", sigma_max=0.0,
                            sigma_min=0.0),
    )


DENSITY_CHANGES = {"model": {"gaussian_part": 0.9}, "train": {"timesteps": "logsnr"}}
"""What the ``density`` preset changes in the default: a Gaussian part of 0.9 and noise levels
even in log sigma, which spend the network on the low noise levels that decide a density's
detail. Held-out likelihoods improve (checkerboard's KL to the truth 0.21 -> 0.16) and samples
move further from the data (two_gaussians' ratio 1.36 -> 2.20): BENCHMARKS.md, "Densities"."""


def _density() -> Config:
    """The default made for ``log_prob`` (``DENSITY_CHANGES``)."""
    return override(Config(), DENSITY_CHANGES)


PRESETS = {"seed": _seed, "default": Config, "density": _density}
PRESET_USES = {"seed": "the assignment, number for number", "default": "samples closest to the data",
               "density": "held-out likelihood and anomaly scores, samples a little further"}
"""What each preset is for, as ``--help`` says."""


def summary(config: Config) -> str:
    """One line naming a config's main choices, for help texts (generated, so it cannot drift)."""
    m, smp = config.model, config.sample
    steps = "every timestep" if smp.num_steps == 0 else f"{smp.num_steps} steps"
    widths = "x".join(map(str, m.hidden)) or "width by data"
    part = f", Gaussian part {m.gaussian_part:g}" if m.gaussian_part else ""
    return (f"{config.data.preprocess} data, {config.schedule.kind} schedule "
            f"(T={config.schedule.num_timesteps}), {m.kind} {widths} "
            f"{m.activation}{part}, {_budget(config.train)} with {config.train.timesteps} noise "
            f"levels, sampler {smp.sampler} ({steps})")


def _budget(train: TrainConfig) -> str:
    if train.epochs:
        return f"{train.epochs} epochs"
    return f"{train.steps} steps" if train.steps else "steps by data size"


CHOICES: dict[tuple[str, str], dict[str, str]] = {
    ("data", "categorical_encoding"): choices.CATEGORICAL_ENCODINGS,
    ("data", "preprocess"): choices.PREPROCESSING,
    ("data", "header"): choices.HEADER,
    ("schedule", "kind"): choices.SCHEDULES,
    ("model", "kind"): choices.DENOISERS,
    ("model", "activation"): choices.ACTIVATIONS,
    ("model", "prediction_type"): choices.PREDICTION_TYPES,
    ("train", "lr_schedule"): choices.LR_SCHEDULES,
    ("train", "timesteps"): choices.TIMESTEPS,
    ("train", "keep_best"): choices.KEEP_BEST,
    ("train", "device"): choices.DEVICES,
    ("train", "inpainting"): choices.INPAINTING,
    ("sample", "variance"): choices.VARIANCES,
    ("sample", "sampler"): choices.SAMPLERS,
    ("sample", "spacing"): choices.SPACINGS,
    ("sample", "precision"): choices.PRECISIONS,
}


def preset(name: str) -> Config:
    """A fresh copy of a named preset."""
    if name not in PRESETS:
        raise UserError(f"unknown preset {name!r}; choose one of: {', '.join(PRESETS)}")
    return validate(PRESETS[name]())


def override(config: Config, changes: dict[str, Any]) -> Config:
    """A copy of ``config`` with ``{"section": {"field": value}}`` applied and checked."""
    sections = config.to_dict()
    for section, values in changes.items():
        if section not in sections:
            raise UserError(f"unknown config section [{section}]; known: {', '.join(sections)}")
        if not isinstance(values, dict):
            raise UserError(f"config section [{section}] must be a table of settings")
        for key, value in values.items():
            if key not in sections[section]:
                known = ", ".join(sections[section])
                raise UserError(f"unknown setting {section}.{key}; known: {known}")
            sections[section][key] = value
    return from_dict(sections)


def merge(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    """``{"section": {"field": value}}`` overrides ``base`` updated by ``changes``, section by
    section (neither is modified).

    >>> merge({"train": {"lr": 1e-3, "seed": 1}}, {"train": {"seed": 2}, "data": {"bounds": "x=0:"}})
    {'train': {'lr': 0.001, 'seed': 2}, 'data': {'bounds': 'x=0:'}}
    """
    merged = {section: dict(values) for section, values in base.items()}
    for section, values in changes.items():
        merged[section] = {**merged.get(section, {}), **values}
    return merged


def from_dict(raw: dict[str, Any]) -> Config:
    """Build and check a ``Config`` from nested dictionaries (as read from TOML)."""
    parts = {}
    for f in dataclasses.fields(Config):
        section_type = f.type if isinstance(f.type, type) else globals()[f.type]
        values = raw.get(f.name, {})
        known = {g.name for g in dataclasses.fields(section_type)}
        unknown = set(values) - known
        if unknown:
            raise UserError(f"unknown setting {f.name}.{sorted(unknown)[0]}")
        defaults = section_type()
        for g in dataclasses.fields(section_type):
            if g.name in values:
                values[g.name] = _coerce(f.name, g.name, values[g.name], getattr(defaults, g.name))
        parts[f.name] = section_type(**values)
    return validate(Config(**parts))


def _coerce(section: str, key: str, value: Any, default: Any) -> Any:
    where = f"{section}.{key}"
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise UserError(f"{where} must be true or false, got {value!r}")
        return value
    if isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise UserError(f"{where} must be a whole number, got {value!r}")
        return value
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise UserError(f"{where} must be a number, got {value!r}")
        return float(value)
    if isinstance(default, list):
        kind, noun = ((str, "names") if section == "data"
                      else (int, "whole numbers"))
        if not isinstance(value, (list, tuple)) or not all(
            isinstance(v, kind) and not isinstance(v, bool) for v in value
        ):
            # One name alone (--set data.categorical=smoker, or a string in Python), or names in
            # brackets without quotes (--set data.condition=[firm], not TOML): the list it meant.
            meant, shown = None, ""
            if kind is str and isinstance(value, str) and value.startswith("[") and value.endswith("]"):
                meant = [v.strip().strip("'\"") for v in value[1:-1].split(",") if v.strip()]
                shown = " (in TOML the names in a list are quoted: {})"
            elif isinstance(value, kind):
                meant, shown = [value], " (a list of one: {})"
            shown = shown.format(said(json.dumps(meant), repr(meant))) if meant else ""
            raise UserError(f"{where} must be a list of {noun}, got {value!r}{shown}")
        return list(value)
    if not isinstance(value, str):
        raise UserError(f"{where} must be text, got {value!r}")
    return value


def validate(config: Config) -> Config:
    """Reject impossible hyperparameters with a message naming the setting."""
    for (section, key), options in CHOICES.items():
        value = getattr(getattr(config, section), key)
        if value not in options:
            raise UserError(f"{section}.{key} = {value!r} is not one of: {', '.join(options)}")
    d, s, m, t, smp = config.data, config.schedule, config.model, config.train, config.sample
    checks = [
        (d.train_size >= 2, "data.train_size must be at least 2"),
        (d.val_size >= 1, "data.val_size must be at least 1"),
        (0 < d.val_fraction < 1, "data.val_fraction must lie strictly between 0 and 1"),
        (s.num_timesteps >= 2, "schedule.num_timesteps must be at least 2"),
        (0 < s.beta < 1, "schedule.beta must lie strictly between 0 and 1"),
        (0 < s.beta_start <= s.beta_end < 1, "need 0 < schedule.beta_start <= beta_end < 1"),
        (not m.hidden or min(m.hidden) >= 1, "model.hidden widths must be at least 1 (empty: from the data)"),
        (m.time_features >= 1, "model.time_features must be at least 1"),
        (0 <= m.gaussian_part <= 1, f"model.gaussian_part must lie in [0, 1], got {m.gaussian_part}"),
        (t.epochs >= 0, f"train.epochs must be 0 (use steps) or positive, got {t.epochs}"),
        (t.steps >= 0, f"train.steps must be 0 (from the data) or positive, got {t.steps}"),
        (t.batch_size >= 0, f"train.batch_size must be 0 (from the data) or positive, got {t.batch_size}"),
        (t.lr > 0 and t.lr < 10, f"train.lr must be a positive learning rate, got {t.lr}"),
        (t.warmup_steps >= 0, "train.warmup_steps must not be negative"),
        (0 <= t.ema_decay < 1, "train.ema_decay must lie in [0, 1)"),
        (t.t_min >= 1, "train.t_min must be at least 1"),
        (t.t_max == 0 or t.t_min <= t.t_max <= s.num_timesteps,
         "train.t_max must be 0 or between t_min and schedule.num_timesteps"),
        (t.threads >= 0, "train.threads must not be negative"),
        (t.checkpoint_every >= 0, "train.checkpoint_every must not be negative"),
        (t.validate_every >= 0, "train.validate_every must be 0 (from the data) or positive"),
        (0 <= t.patience <= 1, f"train.patience must lie in [0, 1] (a share of the epochs): {t.patience}"),
        (0 <= t.condition_dropout < 1, "train.condition_dropout must lie in [0, 1)"),
        (t.inpainting == "repaint" or not d.condition,
         "train.inpainting = learnt conditions on any columns: leave data.condition (--condition) empty"),
        (smp.resample >= 1, "sample.resample must be at least 1"),
        (smp.reject_tries >= 0, "sample.reject_tries must be 0 (never) or positive"),
        (smp.num_steps >= 0, "sample.num_steps must not be negative"),
        (smp.guidance >= 0, "sample.guidance must not be negative (0 ignores the condition, 1 follows it)"),
        (smp.sigma_max >= 0 and smp.sigma_min >= 0, "sample.sigma_min and sigma_max must not be negative"),
        (smp.sigma_max == 0 or smp.sigma_min < smp.sigma_max, "sample.sigma_min must be below sigma_max"),
        (smp.num_steps <= s.num_timesteps,
         f"sample.num_steps must be at most schedule.num_timesteps ({s.num_timesteps})"),
    ]
    for ok, message in checks:
        if not ok:
            raise UserError(message)
    return config


def load_toml(path: str) -> dict[str, Any]:
    """Read a TOML file of overrides, with a clear error for a missing or broken file."""
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise UserError(f"config file not found: {path}") from None
    except tomllib.TOMLDecodeError as exc:
        raise UserError(f"config file {path} is not valid TOML: {exc}") from None
