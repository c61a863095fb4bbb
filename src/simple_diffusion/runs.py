"""The run folder: config, weights, losses, metrics and plots, written atomically.

```
DIR/config.toml          every hyperparameter, resolved, plus a [run] table (versions, data, threads)
DIR/model.safetensors    sampling weights (EMA), the schedule's table; columns and preprocessing as metadata
DIR/checkpoint.safetensors  everything to resume training bit for bit (weights, Adam, EMA, RNGs, history)
DIR/losses.csv           epoch, train_loss, val_loss, seconds
DIR/metrics.json         distances, floors, ratios
DIR/loss.png  DIR/samples.png
```
Weights are read only from safetensors and metadata only from JSON and TOML: nothing is unpickled.
"""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np
import tomli_w
import torch
from filelock import FileLock, Timeout
from safetensors import SafetensorError, safe_open
from safetensors.torch import save

from . import __version__, denoisers, preprocess
from .config import Config, from_dict
from .errors import UserError
from .io import write_bytes, write_text
from .model import DiffusionModel
from .schedules import Schedule

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

FORMAT_VERSION = 1
CONFIG, MODEL, CHECKPOINT = "config.toml", "model.safetensors", "checkpoint.safetensors"
LOSSES, METRICS = "losses.csv", "metrics.json"


class RunFolder:
    """One training run's folder."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._lock: FileLock | None = None

    def file(self, name: str) -> Path:
        return self.path / name

    # -- starting a run ----------------------------------------------------------------------
    def open_for_training(self, overwrite: bool = False, resume: bool = False) -> None:
        """Create or claim the folder; refuse a non-empty one unless told; lock it."""
        if self.path.exists() and not self.path.is_dir():
            raise UserError(f"{self.path} exists and is not a folder")
        self.path.mkdir(parents=True, exist_ok=True)
        self._lock = FileLock(str(self.path / ".lock"))
        try:
            self._lock.acquire(timeout=0)
        except Timeout:
            raise UserError(f"another training is writing to {self.path}") from None
        present = [p.name for p in self.path.iterdir() if not p.name.startswith(".")]
        if resume:
            if not self.file(CHECKPOINT).exists():
                self.close()
                raise UserError(f"{self.path} has no checkpoint to resume from")
        elif present:
            if not overwrite:
                self.close()
                raise UserError(
                    f"{self.path} is not empty; pass --overwrite to replace it or --resume to "
                    "continue its training"
                )
            for name in present:
                target = self.path / name
                shutil.rmtree(target) if target.is_dir() else target.unlink()

    def close(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    # -- writing -----------------------------------------------------------------------------
    def save_config(self, config: Config, run_info: dict[str, Any]) -> None:
        document = config.to_dict()
        document["run"] = {k: v for k, v in run_info.items() if v is not None}
        write_text(self.file(CONFIG), tomli_w.dumps(document))

    def save_model(self, model: DiffusionModel, last_weights: dict[str, torch.Tensor] | None = None):
        tensors = {f"net.{k}": v.contiguous() for k, v in model.net.state_dict().items()}
        if last_weights is not None:
            tensors.update({f"last.{k}": v.contiguous() for k, v in last_weights.items()})
        tensors["schedule.alphas_cumprod"] = model.schedule.alphas_cumprod.contiguous()
        metadata = {
            "format_version": str(FORMAT_VERSION),
            "columns": json.dumps(model.columns),
            "preprocess": json.dumps(model.preprocessor.state()),
            "info": json.dumps(model.info),
        }
        write_bytes(self.file(MODEL), save(tensors, metadata=metadata))

    def save_history(self, history: list[dict[str, float]]) -> None:
        lines = ["epoch,train_loss,val_loss,seconds"]
        lines += [
            f"{h['epoch']},{h['train_loss']:.8g},{h['val_loss']:.8g},{h['seconds']:.3f}"
            for h in history
        ]
        write_text(self.file(LOSSES), "\n".join(lines) + "\n")

    def save_metrics(self, metrics: dict[str, Any]) -> None:
        write_text(self.file(METRICS), json.dumps(metrics, indent=2) + "\n")

    def save_bytes(self, name: str, data: bytes) -> None:
        write_bytes(self.file(name), data)

    def save_checkpoint(self, state: dict[str, Any]) -> None:
        """Write a ``Trainer.state_dict()`` as one safetensors file (tensors + JSON metadata)."""
        tensors, plain = _split_tensors(state)
        metadata = {"format_version": str(FORMAT_VERSION), "state": json.dumps(plain)}
        write_bytes(self.file(CHECKPOINT), save(tensors, metadata=metadata))

    # -- reading -----------------------------------------------------------------------------
    def read_config(self) -> tuple[Config, dict[str, Any]]:
        path = self.file(CONFIG)
        if not self.path.is_dir():
            raise UserError(f"run folder not found: {self.path}")
        if not path.exists():
            raise UserError(f"{self.path} is not a run folder (no {CONFIG})")
        try:
            document = tomllib.loads(path.read_text())
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise UserError(f"{path} is not valid TOML: {exc}") from None
        run_info = document.pop("run", {})
        return from_dict(document), run_info

    def load_checkpoint(self) -> dict[str, Any]:
        tensors, metadata = _read_safetensors(self.file(CHECKPOINT))
        return _join_tensors(json.loads(metadata["state"]), tensors)

    def load_model(self) -> DiffusionModel:
        config, run_info = self.read_config()
        path = self.file(MODEL)
        if not path.exists():
            raise UserError(
                f"{self.path} holds no trained model yet (training unfinished or interrupted: "
                f"resume with `simple-diffusion train --resume {self.path}`)"
            )
        tensors, metadata = _read_safetensors(path)
        try:
            columns = json.loads(metadata["columns"])
            preprocessor = preprocess.from_state(json.loads(metadata["preprocess"]))
            info = json.loads(metadata.get("info", "{}"))
            schedule = Schedule(tensors["schedule.alphas_cumprod"])
        except (KeyError, json.JSONDecodeError, TypeError, ValueError) as exc:
            raise UserError(f"{path}: model file is incomplete or edited ({exc})") from None
        if schedule.num_timesteps != config.schedule.num_timesteps:
            raise UserError(f"{path}: the schedule does not match {CONFIG}")
        net = denoisers.build(config.model, preprocessor.transformed_dim, schedule.num_timesteps)
        weights = {k[len("net."):]: v for k, v in tensors.items() if k.startswith("net.")}
        _load_weights(net, weights, path)
        return DiffusionModel(net, schedule, preprocessor, config, columns, info | run_info)


def _read_safetensors(path: Path) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    if not path.exists():
        raise UserError(f"{path} not found")
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}  # noqa: SIM118
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise UserError(f"{path} is corrupt or truncated ({exc})") from None
    version = metadata.get("format_version", "?")
    if not version.isdigit():
        raise UserError(f"{path} has no format version: not written by simple-diffusion")
    if int(version) > FORMAT_VERSION:
        raise UserError(
            f"{path} is format {version}, newer than this simple-diffusion {__version__} "
            f"(format {FORMAT_VERSION}) reads: upgrade simple-diffusion"
        )
    return tensors, metadata


def _load_weights(net: torch.nn.Module, weights: dict[str, torch.Tensor], path: Path) -> None:
    expected = net.state_dict()
    missing = sorted(set(expected) - set(weights))
    if missing:
        raise UserError(f"{path}: weights lack {missing[0]}: they do not match {CONFIG}")
    for name, tensor in expected.items():
        if weights[name].shape != tensor.shape:
            raise UserError(
                f"{path}: {name} has shape {tuple(weights[name].shape)} but {CONFIG} implies "
                f"{tuple(tensor.shape)}"
            )
        if not torch.isfinite(weights[name]).all():
            raise UserError(f"{path}: {name} holds NaN or infinite values")
    net.load_state_dict(weights)


def _split_tensors(value: Any, prefix: str = "") -> tuple[dict[str, torch.Tensor], Any]:
    """Separate the tensors of a nested structure (for safetensors) from the rest (for JSON)."""
    if isinstance(value, torch.Tensor):
        return {prefix: value.detach().contiguous().clone()}, {"__tensor__": prefix}
    if isinstance(value, dict):
        tensors, plain = {}, {}
        for key, item in value.items():
            t, p = _split_tensors(item, f"{prefix}.{key}" if prefix else str(key))
            tensors.update(t)
            plain[str(key)] = p
        return tensors, {"__dict__": plain, "__int_keys__": all(isinstance(k, int) for k in value)
                         and bool(value)}
    if isinstance(value, (list, tuple)):
        tensors, plain = {}, []
        for i, item in enumerate(value):
            t, p = _split_tensors(item, f"{prefix}.{i}")
            tensors.update(t)
            plain.append(p)
        return tensors, plain
    if isinstance(value, (np.floating, np.integer)):
        return {}, value.item()
    return {}, value


def _join_tensors(plain: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(plain, dict) and "__tensor__" in plain:
        return tensors[plain["__tensor__"]]
    if isinstance(plain, dict) and "__dict__" in plain:
        convert = int if plain.get("__int_keys__") else str
        return {convert(k): _join_tensors(v, tensors) for k, v in plain["__dict__"].items()}
    if isinstance(plain, list):
        return [_join_tensors(v, tensors) for v in plain]
    return plain
