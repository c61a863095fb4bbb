"""The few functions users call: ``fit``, ``load``, ``evaluate``; the CLI is a thin layer over them.

>>> import simple_diffusion as sd
>>> model = sd.fit("two_gaussians", epochs=3, progress=False)
>>> x = model.sample(20_000, seed=0)
>>> result = sd.evaluate(x, against="two_gaussians", train=sd.training_data("two_gaussians").train)
>>> sorted(k for k in result if k in ("distance", "floor", "ratio"))
['distance', 'floor', 'ratio']
"""

from __future__ import annotations

import os
import platform
import signal
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from . import __version__, denoisers, io, metrics, plots, preprocess, schedules
from . import config as cfg
from . import targets as builtin
from .errors import UserError
from .model import DiffusionModel
from .report import render_report
from .runs import RunFolder
from .training import Trainer

REFERENCE_SIZE = 100_000
REFERENCE_SEED = 1_000_003
"""Seed of the fresh target draws that evaluation compares against (never used for training)."""


@dataclass
class TrainingData:
    """Training and validation rows in the data's own units, and where they came from."""

    train: np.ndarray
    val: np.ndarray
    columns: list[str]
    source: str
    target: str | None = None

    def reference(self, n: int = REFERENCE_SIZE) -> np.ndarray:
        """What samples are judged against: fresh target draws, or the held-out rows."""
        if self.target is not None:
            return builtin.draw(self.target, n, seed=REFERENCE_SEED).numpy()
        return self.val


def training_data(
    data: str | os.PathLike | np.ndarray,
    data_config: cfg.DataConfig | None = None,
    columns: list[str] | None = None,
) -> TrainingData:
    """Resolve a built-in target name, a file path or an array into training and validation rows."""
    data_config = data_config or cfg.DataConfig()
    if isinstance(data, str) and data in builtin.TARGETS:
        train = builtin.draw(data, data_config.train_size, seed=data_config.data_seed).numpy()
        val = builtin.draw(data, data_config.val_size, seed=data_config.data_seed + 1).numpy()
        names = ["x"] if train.shape[1] == 1 else [f"x{i + 1}" for i in range(train.shape[1])]
        return TrainingData(train, val, names, data, target=data)
    if isinstance(data, (str, os.PathLike)):
        path = str(data)
        if not os.path.splitext(path)[1]:
            raise UserError(
                f"{path!r} is neither a built-in target ({', '.join(builtin.TARGETS)}) "
                "nor a .npy, .csv or .parquet file"
            )
        header = {"auto": None, "yes": True, "no": False}[data_config.header]
        table = io.read_table(path, columns=columns, header=header)
    else:
        table = io.from_array(data)
    rng = np.random.default_rng(data_config.data_seed)
    order = rng.permutation(len(table.values))
    held_out = max(1, round(data_config.val_fraction * len(order)))
    if len(order) - held_out < 1:
        raise UserError(f"{table.source}: too few rows ({len(order)}) to hold some out")
    val, train = table.values[order[:held_out]], table.values[order[held_out:]]
    return TrainingData(train, val, table.columns, table.source)


def resolve_config(
    preset: str = "default",
    config: cfg.Config | dict[str, Any] | str | None = None,
    seed: int | None = None,
    epochs: int | None = None,
) -> cfg.Config:
    """A preset with overrides from a ``Config``, a nested dict or a TOML file, then seed/epochs."""
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
    return cfg.override(resolved, {"train": changes}) if changes else resolved


def fit(
    data: str | os.PathLike | np.ndarray,
    *,
    preset: str = "default",
    config: cfg.Config | dict[str, Any] | str | None = None,
    seed: int | None = None,
    epochs: int | None = None,
    columns: list[str] | None = None,
    out: str | os.PathLike | None = None,
    overwrite: bool = False,
    resume: bool = False,
    progress: bool = True,
) -> DiffusionModel:
    """Train a diffusion model on ``data`` (a built-in target name, a file path or an array).

    With ``out`` the run folder receives the config at once, checkpoints while training (and on
    Ctrl-C or SIGTERM, after which ``resume=True`` continues bit for bit), then the model and losses.
    """
    folder = RunFolder(out) if out is not None else None
    if resume:
        if folder is None:
            raise UserError("resuming needs the run folder (out=...)")
        saved, run_info = folder.read_config()
        config = resolved = cfg.override(saved, {"train": {"epochs": epochs}}) if epochs else saved
        data = run_info.get("data", data)
        columns = run_info.get("columns_selected", columns)
    else:
        resolved = resolve_config(preset, config, seed, epochs)
    prepared = training_data(data, resolved.data, columns)
    scaler = preprocess.fit(
        torch.as_tensor(prepared.train), prepared.columns, scaling=resolved.data.preprocess,
        bounds=preprocess.parse_bounds(resolved.data.bounds), integer=resolved.data.integer,
        keep_constant=resolved.data.keep_constant,
    )
    train = scaler.forward(torch.as_tensor(prepared.train)).float()
    val = scaler.forward(torch.as_tensor(prepared.val)).float()
    schedule = schedules.from_config(resolved.schedule)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(resolved.train.seed)
        net = denoisers.build(resolved.model, train.shape[1], schedule.num_timesteps)
    trainer = Trainer(net, schedule, resolved.model.prediction_type, resolved.train, train, val)
    run_info = {
        "data": prepared.source,
        "target": prepared.target,
        "columns_selected": list(columns) if columns else None,
        "train_rows": len(prepared.train),
        "val_rows": len(prepared.val),
        "threads": trainer.threads,
        "fast_path": trainer.fast is not None,
        "simple_diffusion": __version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
    }
    if folder is None:
        trainer.run(progress=progress)
    else:
        _train_in_folder(trainer, folder, resolved, run_info, overwrite, resume, progress)
    info = {k: run_info[k] for k in ("data", "target")} | {
        "train_seconds": trainer.history[-1]["seconds"], "epochs": trainer.epoch,
    }
    model = DiffusionModel(trainer.averaged_net(), schedule, scaler, resolved, prepared.columns,
                           info)
    if folder is not None:
        last = trainer.net.state_dict() if trainer.ema is not None else None
        folder.save_model(model, last)
        folder.save_history(trainer.history)
        folder.save_bytes("loss.png", plots.loss_plot(trainer.history, title=folder.path.name))
        folder.close()
    return model


def _train_in_folder(trainer, folder, config, run_info, overwrite, resume, progress) -> None:
    folder.open_for_training(overwrite=overwrite, resume=resume)
    try:
        if resume:
            trainer.load_state_dict(folder.load_checkpoint())
        else:
            folder.save_config(config, run_info)
        snapshot = trainer.state_dict()
        every = config.train.checkpoint_every

        def on_epoch_end(t: Trainer) -> None:
            nonlocal snapshot
            snapshot = t.state_dict()
            if every and t.epoch % every == 0:
                folder.save_checkpoint(snapshot)

        with _sigterm_as_interrupt():
            try:
                trainer.run(progress=progress, on_epoch_end=on_epoch_end)
            except KeyboardInterrupt:
                folder.save_checkpoint(snapshot)
                raise UserError(
                    f"interrupted after epoch {snapshot['epoch']} of {config.train.epochs}; "
                    f"checkpoint saved: resume with `simple-diffusion train --resume {folder.path}`"
                ) from None
            except UserError:
                folder.save_checkpoint(snapshot)
                raise
        folder.save_checkpoint(snapshot)
    except BaseException:
        folder.close()
        raise


@contextmanager
def _sigterm_as_interrupt():
    """Treat SIGTERM like Ctrl-C so that a killed run still leaves a checkpoint."""

    def handler(signum, frame):
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not in the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def load(path: str | os.PathLike) -> DiffusionModel:
    """Load a trained model from a run folder."""
    return RunFolder(path).load_model()


def evaluate(
    samples: np.ndarray | torch.Tensor,
    against: str | np.ndarray,
    train: np.ndarray | None = None,
    columns: list[str] | None = None,
    two_sample_tests: bool = True,
) -> dict[str, Any]:
    """Metrics of ``samples`` against a built-in target (fresh draws) or reference rows.

    With ``train``, the same distances of the training data give the floor and the ratio.
    """
    samples = np.asarray(samples, dtype=np.float64)
    samples = samples[:, None] if samples.ndim == 1 else samples
    target = against if isinstance(against, str) else None
    if target is not None:
        builtin.get(target)
        reference = builtin.draw(target, REFERENCE_SIZE, seed=REFERENCE_SEED).numpy()
    else:
        reference = np.asarray(against, dtype=np.float64)
        reference = reference[:, None] if reference.ndim == 1 else reference
    if reference.shape[1] != samples.shape[1]:
        raise UserError(
            f"samples have {samples.shape[1]} columns but the reference has {reference.shape[1]}"
        )
    names = columns or [f"x{i + 1}" for i in range(samples.shape[1])]
    return metrics.evaluate(samples, reference, names, train=train, target=target,
                            two_sample_tests=two_sample_tests)


def evaluate_run(
    path: str | os.PathLike,
    samples: np.ndarray | None = None,
    against: str | None = None,
    n: int = REFERENCE_SIZE,
    seed: int = 0,
    progress: bool = False,
) -> dict[str, Any]:
    """Sample a run's model (unless ``samples`` are given), evaluate, and write metrics and plots."""
    folder = RunFolder(path)
    model = folder.load_model()
    data = training_data(model.info.get("data"), model.config.data,
                         model.info.get("columns_selected"))
    sample_seconds = None
    if samples is None:
        start = time.perf_counter()
        samples = model.sample(n, seed=seed, progress=progress).numpy()
        sample_seconds = time.perf_counter() - start
    if samples.shape[1] != model.dim:
        raise UserError(f"samples have {samples.shape[1]} columns; the model has {model.dim}")
    if against is not None:
        reference = against if against in builtin.TARGETS else io.read_table(against).values
        result = evaluate(samples, reference, train=data.train, columns=model.columns)
    else:
        target = data.target
        result = evaluate(samples, target if target else data.val, train=data.train,
                          columns=model.columns)
    result["train_seconds"] = model.info.get("train_seconds")
    result["sample_seconds"] = sample_seconds
    folder.save_metrics(result)
    density = _density(data.target)
    folder.save_bytes("samples.png", plots.distribution_plot(
        samples, data.train, model.columns, density=density,
        reference=data.reference() if density is None else None, title=Path(path).name,
    ))
    page = render_report(folder.path, result, folder.file("config.toml").read_text(), Path(path).name)
    folder.save_bytes("report.html", page.encode())
    return result


def _density(target: str | None):
    """The target's true density as a function of a NumPy array, if it has a closed form."""
    if target is None:
        return None
    distribution = builtin.get(target)
    try:
        distribution.log_prob(torch.zeros(1, *distribution.event_shape, dtype=torch.float64))
    except NotImplementedError:
        return None
    return lambda x: distribution.log_prob(torch.as_tensor(x, dtype=torch.float64)).exp().numpy()
