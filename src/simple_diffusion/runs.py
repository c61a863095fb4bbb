"""The run folder: config, weights, losses, metrics and plots, written atomically.

```
DIR/config.toml          every hyperparameter, resolved, plus a [run] table (versions, data, threads)
DIR/model.safetensors    sampling weights (EMA), the schedule's table; columns and preprocessing as metadata
DIR/checkpoint.safetensors  everything to resume training bit for bit (weights, Adam, EMA, RNGs, history)
DIR/split.safetensors    which rows were trained on and held out (and the data file's SHA-256),
                         or the rows themselves for data given as an array
DIR/losses.csv           epoch, train_loss, val_loss (empty between validations), seconds
DIR/metrics.json         distances, floors, ratios, memorisation
DIR/student.safetensors  the few-step sampler of `distill` (its network and noise levels), if made
DIR/loss.png  DIR/samples.png  DIR/pairs.png  DIR/density.png  DIR/report.html
DIR/.simple-diffusion-run  the marker that makes --overwrite possible; .lock while training
```
Weights are read only from safetensors and metadata only from JSON and TOML: nothing is unpickled.
``--overwrite`` replaces only a folder that holds the marker, and deletes only the files above.
"""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import math
import shlex
import sys
from pathlib import Path
from typing import Any

import numpy as np
import tomli_w
import torch
from filelock import FileLock, Timeout
from safetensors import SafetensorError, safe_open
from safetensors.torch import save

from . import __version__
from .build import build_parts
from .choices import PREDICTION_TYPES
from .config import Config, from_dict
from .data.io import parquet_parts, write_bytes, write_text
from .diffusion.gaussian import GaussianPart
from .errors import UserError, advice, said
from .model import DiffusionModel
from .training.distill import Student
from .training.distributed import LostRank, Ranks, stop_requests

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

FORMAT_VERSION = 1
CONFIG, MODEL, CHECKPOINT = "config.toml", "model.safetensors", "checkpoint.safetensors"
LOSSES, METRICS, SPLIT = "losses.csv", "metrics.json", "split.safetensors"
STUDENT = "student.safetensors"
RUN_FILES = (CONFIG, MODEL, CHECKPOINT, SPLIT, LOSSES, METRICS, STUDENT, "loss.png", "samples.png",
             "pairs.png", "density.png", "calibration.png", "report.html")
"""Every file a run writes: all that ``--overwrite`` may delete."""
MARKER = ".simple-diffusion-run"
SAVED_BY = "saved_by"
"""The key of config.toml's [run] table that marks a folder ``DiffusionModel.save`` wrote."""


def resume_command(path: Path) -> str:
    """The command (or Python call) that continues the run in ``path``, quoted so that it works
    when pasted."""
    return said(f"simple-diffusion train --resume {shlex.quote(str(path))}",
                f"sd.fit(None, out={str(path)!r}, resume=True)")


class RunFolder:
    """One training run's folder."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self._lock: FileLock | None = None

    def file(self, name: str) -> Path:
        return self.path / name

    # -- starting a run ----------------------------------------------------------------------
    def check_claimable(self, overwrite: bool = False, resume: bool = False, resumable: bool = True) -> None:
        """Refuse, changing nothing, a folder that training could not claim: not a folder,
        another's files, a run without ``overwrite`` (or without a checkpoint for ``resume``).
        ``resumable``: whether the refusal may suggest continuing the run's training instead.

        Asked before the data are read, so that a refusal comes first and alone.
        """
        if self.path.exists() and not self.path.is_dir():
            raise UserError(f"{self.path} exists and is not a folder")
        present = sorted(p.name for p in self.path.iterdir() if not p.name.startswith(".")) \
            if self.path.exists() else []
        if resume:
            if not self.file(CHECKPOINT).exists():
                raise UserError(
                    f"{self.path} has no checkpoint to resume from (training stopped before its "
                    f"first checkpoint): start it again with {advice({'overwrite': True})}"
                )
        elif present:
            if not self.file(MARKER).exists():
                raise UserError(
                    f"{self.path} is not empty and is not a simple-diffusion run folder "
                    f"(it holds {', '.join(present[:3])}{', ...' if len(present) > 3 else ''}); "
                    "choose a new or empty folder"
                )
            if not overwrite:
                instead = f", or continue its training with `{resume_command(self.path)}`"
                raise UserError(f"{self.path} holds a run; pass {advice({'overwrite': True})} to replace it"
                                + (instead if resumable else ""))

    def open_for_training(self, overwrite: bool = False, resume: bool = False,
                          resumable: bool = True) -> None:
        """Create or claim the folder and lock it; refuse one that holds anything but a run.

        A non-empty folder is used only with ``resume`` (it must hold a checkpoint) or with
        ``overwrite`` when it carries the marker a run writes, and then only the run's own
        files are deleted: a folder of the user's is never emptied.
        """
        self.check_claimable(overwrite, resume, resumable)
        self.path.mkdir(parents=True, exist_ok=True)
        self._lock = FileLock(str(self.path / ".lock"))
        try:
            self._lock.acquire(timeout=0)
        except Timeout:
            raise UserError(f"another training is writing to {self.path}") from None
        try:
            # Again, now that no other process can change it.
            self.check_claimable(overwrite, resume, resumable)
            if not resume:
                for name in RUN_FILES:
                    self.file(name).unlink(missing_ok=True)
        except UserError:
            self.close()
            raise
        self.file(MARKER).touch()

    def train(self, trainer: Any, checkpoint_every: int, progress: bool, ranks: Ranks = Ranks()) -> None:
        """Run ``trainer`` to its end, checkpointing every ``checkpoint_every`` epochs, at the
        end, and on Ctrl-C, SIGTERM or divergence (then from the last complete epoch).

        Among ``ranks`` only rank 0 writes; a signal to any rank stops them all after the same
        epoch, and a rank that dies leaves the others its last checkpoint-worthy epoch, saved.
        """
        snapshot = trainer.state_dict()
        checkpoint = self.save_checkpoint if ranks.is_main else (lambda state: None)

        def stopped(reason: str, together: bool = True) -> UserError:
            checkpoint(snapshot)
            if together:  # the others wait for rank 0's checkpoint before they exit
                ranks.barrier()
            message = (f"{reason} after epoch {snapshot['epoch']} of {trainer.epochs}; checkpoint "
                       f"saved: resume with `{resume_command(self.path)}`")
            return UserError(message)

        with stop_requests(ranks) as requested:
            def on_epoch_end(t: Any) -> None:
                nonlocal snapshot
                snapshot = t.state_dict()
                if checkpoint_every and t.epoch % checkpoint_every == 0:
                    checkpoint(snapshot)
                if ranks.distributed and ranks.any(requested[0], trainer.device):
                    raise KeyboardInterrupt

            try:
                trainer.run(progress=progress, on_epoch_end=on_epoch_end)
            except KeyboardInterrupt:
                raise stopped("interrupted") from None
            except LostRank as exc:
                raise stopped(str(exc), together=False) from None
            except UserError:
                checkpoint(snapshot)
                raise
        checkpoint(snapshot)

    def close(self) -> None:
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    # -- writing -----------------------------------------------------------------------------
    def save_config(self, config: Config, run_info: dict[str, Any]) -> None:
        document = config.to_dict()
        document["run"] = {k: v for k, v in run_info.items() if v is not None}
        write_text(self.file(CONFIG), tomli_w.dumps(document))

    def save_model(self, model: DiffusionModel) -> None:
        tensors = {f"net.{k}": v.cpu().contiguous() for k, v in model.net.state_dict().items()}
        tensors["schedule.alphas_cumprod"] = model.schedule.alphas_cumprod.contiguous()
        if model.gaussian is not None:
            tensors |= {f"gaussian.{k}": v.contiguous() for k, v in model.gaussian.state().items()}
        metadata = {
            "format_version": str(FORMAT_VERSION),
            "columns": json.dumps(model.columns),
            "preprocess": json.dumps(model.encoder.state()),
            "info": json.dumps(model.info),
        }
        write_bytes(self.file(MODEL), save(tensors, metadata=metadata))

    def holds_weights_of(self, model: DiffusionModel) -> bool:
        """Whether the folder's model.safetensors holds ``model``'s network as it is now (a
        model loaded from it or trained into it, unchanged since)."""
        if not self.file(MODEL).exists():
            return False
        tensors, _ = _read_safetensors(self.file(MODEL))
        saved = {key[len("net."):]: v for key, v in tensors.items() if key.startswith("net.")}
        network = model.net.state_dict()
        return saved.keys() == network.keys() and all(torch.equal(saved[k], network[k].cpu()) for k in saved)

    def save_student(self, student: Student) -> None:
        """Write ``distill``'s student beside the model it was distilled from."""
        tensors = {f"net.{k}": v.cpu().contiguous() for k, v in student.net.state_dict().items()}
        tensors["sigmas"] = student.sigmas.contiguous()
        metadata = {"format_version": str(FORMAT_VERSION), "info": json.dumps(student.info),
                    "prediction_type": student.prediction_type}
        write_bytes(self.file(STUDENT), save(tensors, metadata=metadata))

    def _load_student(self, teacher: torch.nn.Module) -> Student | str | None:
        """The run's student; a sentence saying why not when it was distilled from weights
        that have since been retrained."""
        path = self.file(STUDENT)
        if not path.exists():
            return None
        tensors, metadata = _read_safetensors(path)
        info = json.loads(metadata.get("info", "{}"))
        if info.get("teacher_sha256") != file_digest(self.file(MODEL)):
            again = said(f"simple-diffusion distill {shlex.quote(str(self.path))}",
                         f"sd.distill({str(self.path)!r})")
            return f"{path} was distilled from weights that have since changed: run `{again}` again"
        if "sigmas" not in tensors or metadata.get("prediction_type") not in PREDICTION_TYPES:
            raise UserError(f"{path}: student file is incomplete or edited")
        net = copy.deepcopy(teacher)
        _load_weights(net, {k[len("net."):]: v for k, v in tensors.items() if k.startswith("net.")}, path)
        return Student(net.eval(), tensors["sigmas"], metadata["prediction_type"], info)

    def finish(self, model: DiffusionModel, history: list[dict[str, float]]) -> None:
        """Write what a finished training leaves: the model, the losses and their plot."""
        from .evaluation import plots  # matplotlib: only once there is something to draw

        self.save_model(model)
        self.save_history(history)
        self.save_bytes("loss.png", plots.loss_plot(history, title=self.path.name,
                                                    kept=model.info.get("best_epoch"),
                                                    planned=model.config.train.epochs))

    def save_history(self, history: list[dict[str, float]]) -> None:
        lines = ["epoch,train_loss,val_loss,seconds"]
        lines += [
            f"{h['epoch']},{h['train_loss']:.8g},{_cell(h['val_loss'])},{h['seconds']:.3f}" for h in history
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

    def save_split(self, record: SplitRecord) -> None:
        """Write a ``split_record``: which rows the run trained on and held out."""
        tensors, metadata = record
        write_bytes(self.file(SPLIT), save(tensors or {"none": torch.zeros(0)}, metadata=metadata))

    def save_fitted(self, model: DiffusionModel, overwrite: bool = False) -> None:
        """Write a model as a run folder (``DiffusionModel.save``): its config, weights, student,
        losses and, where known, the rows it trained on, which ``evaluate`` needs: a fitted
        model's own, or a loaded model's folder's (read before a replaced folder's files go).
        The folder is claimed as training claims it: never a user's own."""
        carried = {}
        if model.source_folder is not None:
            source = RunFolder(model.source_folder)
            carried = {name: source.file(name).read_bytes() for name in (SPLIT, LOSSES, "loss.png")
                       if source.file(name).exists()}
        self.open_for_training(overwrite=overwrite, resumable=False)
        try:
            run_info = {key: model.info[key] for key in ("data", "target") if model.info.get(key)}
            if model.split is not None:
                metadata = model.split[1]
                run_info |= {"train_rows": int(metadata["train_rows"]), "val_rows": int(metadata["held_out"])}
                self.save_split(model.split)
            self.save_config(model.config, run_info | {SAVED_BY: "DiffusionModel.save",
                                                       "simple_diffusion": __version__,
                                                       "torch": torch.__version__})
            for name, data in carried.items():
                self.save_bytes(name, data)
            if model.history:
                self.finish(model, model.history)
            else:
                self.save_model(model)
            if isinstance(model.student, Student):
                info = model.student.info | {"teacher_sha256": file_digest(self.file(MODEL))}
                self.save_student(dataclasses.replace(model.student, info=info))
        finally:
            self.close()

    def load_split(self) -> SplitRecord:
        """The tensors and metadata of ``save_split``."""
        if not self.file(SPLIT).exists():
            if SAVED_BY in self.read_config()[1]:
                raise UserError(f"{self.path} has no {SPLIT}: it was saved from a model that no longer "
                                "held the rows it trained on (an unpickled one), which evaluation needs; "
                                "in Python, sd.evaluate judges its samples against rows of yours")
            raise UserError(f"{self.path} has no {SPLIT}: it was trained by an older simple-diffusion; "
                            "retrain it to evaluate or resume")
        return _read_safetensors(self.file(SPLIT))

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
        # Runs written before the Gaussian part existed have none (the default has one now).
        document.setdefault("model", {}).setdefault("gaussian_part", 0.0)
        return from_dict(document), run_info

    def read_metrics(self) -> dict[str, Any]:
        try:
            return json.loads(self.file(METRICS).read_text())
        except FileNotFoundError:
            raise UserError(f"{self.path} has no {METRICS}: run `simple-diffusion evaluate "
                            f"{shlex.quote(str(self.path))}`") from None

    def load_checkpoint(self) -> dict[str, Any]:
        tensors, metadata = _read_safetensors(self.file(CHECKPOINT))
        return _join_tensors(json.loads(metadata["state"]), tensors)

    def load_model(self) -> DiffusionModel:
        config, run_info = self.read_config()
        path = self.file(MODEL)
        if not path.exists():
            raise UserError(
                f"{self.path} holds no trained model yet (training unfinished or interrupted: "
                f"resume with `{resume_command(self.path)}`)"
            )
        tensors, metadata = _read_safetensors(path)
        try:
            columns = json.loads(metadata["columns"])
            encoder_state = json.loads(metadata["preprocess"])
            info = json.loads(metadata.get("info", "{}"))
            saved_schedule = tensors["schedule.alphas_cumprod"]
        except (KeyError, json.JSONDecodeError, TypeError, ValueError) as exc:
            raise UserError(f"{path}: model file is incomplete or edited ({exc})") from None
        parts = build_parts(config, columns, encoder_state=encoder_state)
        if not torch.equal(saved_schedule, parts.schedule.alphas_cumprod):
            raise UserError(f"{path}: the schedule does not match {CONFIG}")
        weights = {k[len("net."):]: v for k, v in tensors.items() if k.startswith("net.")}
        _load_weights(parts.net, weights, path)
        gaussian = {k[len("gaussian."):]: v for k, v in tensors.items() if k.startswith("gaussian.")}
        if bool(gaussian) != bool(config.model.gaussian_part):
            raise UserError(f"{path}: the model's Gaussian part does not match {CONFIG} "
                            "(model.gaussian_part)")
        model = DiffusionModel(parts.net, parts.schedule, parts.encoder, config, columns,
                               info | run_info, parts.condition,
                               GaussianPart.from_state(gaussian) if gaussian else None)
        model.student = self._load_student(parts.net)
        model.source_folder = self.path
        return model


SplitRecord = tuple[dict[str, torch.Tensor], dict[str, str]]
"""The tensors and metadata of split.safetensors."""


def split_record(data: Any) -> SplitRecord:
    """What split.safetensors records of ``data`` (a ``TrainingData``), so that evaluation and
    resumption find the same split from any folder and notice a changed data file: the row
    order and the file's digest, or the rows themselves for data given as an array."""
    tensors: dict[str, torch.Tensor] = {}
    if data.order is not None:
        tensors["order"] = torch.as_tensor(data.order, dtype=torch.int64)
    if data.sha256 is None and data.target is None:  # an array: no file to come back to
        tensors["train"] = torch.as_tensor(data.train)
        tensors["val"] = torch.as_tensor(data.val)
    metadata = {"format_version": str(FORMAT_VERSION), "source": data.source,
                "columns": json.dumps(data.columns), "sha256": data.sha256 or "",
                "held_out": str(len(data.val)), "train_rows": str(len(data.train)),
                "schema": json.dumps([c.state() for c in data.schema]),
                "frame": "true" if data.frame else "false",
                **({"labels": json.dumps(data.labels)} if data.labels else {})}
    return tensors, metadata


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
        return {prefix: value.detach().cpu().contiguous().clone()}, {"__tensor__": prefix}
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


def file_digest(path: str | Path) -> str:
    """SHA-256 of a file's bytes, read in blocks; of a folder of Parquet parts, of its parts'
    names and digests, in order."""
    digest = hashlib.sha256()
    if parts := parquet_parts(str(path)):
        for part in parts:
            digest.update(f"{Path(part).name}\0{file_digest(part)}\n".encode())
        return digest.hexdigest()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _cell(loss: float) -> str:
    """A loss as losses.csv writes it: empty for an epoch without one (NaN)."""
    return "" if math.isnan(loss) else f"{loss:.8g}"
