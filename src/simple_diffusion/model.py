"""A trained diffusion model that behaves like a distribution: ``.sample(n)``, ``.log_prob(x)``,
``.sample(n, given=...)`` and ``.impute(rows)``.

It joins the pieces on the data's path back out: noise -> sampler (over the schedule's noise
levels, calling the denoiser) -> inverse preprocessing -> samples in the data's own units.
Given cells are known coordinates of the encoded row: the condition columns a model was trained
with (``data.condition``), or any cells for a model trained to in-paint
(``train.inpainting = learnt``), reach the network as its condition input, guided by
``sample.guidance``; any other given cell (and every observed cell when filling gaps) is
in-painted with RePaint. Either way the denoiser returns the known values where they are known.

>>> import simple_diffusion as sd
>>> model = sd.fit("two_gaussians", epochs=2, progress=False)
>>> model.sample(1000, seed=0).shape
torch.Size([1000, 1])
"""

from __future__ import annotations

import collections
import functools
import math
import os
import warnings
from collections.abc import Callable, Iterator
from dataclasses import fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from . import precision
from .config import SAMPLING_CHUNK, Config, SampleConfig, validate
from .data.columns import UNIT_NAMES, format_value, refuse_infinite
from .data.encoders import NoDensity
from .diffusion import likelihood, prediction, samplers
from .diffusion.denoisers import MLP
from .diffusion.gaussian import GaussianPart
from .diffusion.objective import Condition
from .diffusion.schedules import Schedule, ve_scale, vp_scales
from .errors import UserError, advice, counted, did_you_mean, is_follower, said
from .progress import bar as progress_bar
from .training.distributed import Ranks

if TYPE_CHECKING:
    import pandas as pd

    from .training.distill import Student

BLOCK = 4096
"""Rows per noise stream: samples depend on the seed and their row only, not on the chunk size."""


class DiffusionModel:
    """A denoiser with the schedule, column encoder and settings it was trained with."""

    def __init__(
        self,
        net: nn.Module,
        schedule: Schedule,
        encoder: Any,
        config: Config,
        columns: list[str],
        info: dict[str, Any] | None = None,
        condition: Condition | None = None,
        gaussian: GaussianPart | None = None,
    ):
        self.net = net.eval()
        self.gaussian = gaussian
        """The Gaussian part the network's output is added to (``model.gaussian_part``), if any."""
        self.schedule = schedule
        self.encoder = encoder
        self.config = config
        self.columns = list(columns)
        self.info = dict(info or {})
        self.condition = condition
        self.student: Student | str | None = None
        """The few-step sampler of ``distill``, if the run has one (``sampler="distilled"``); a
        sentence when the run's student no longer matches its weights."""
        self.split: tuple[dict[str, torch.Tensor], dict[str, str]] | None = None
        """Which rows it trained on (``runs.split_record``), kept by ``fit`` for ``save`` where no
        run folder (``source_folder``) holds them."""
        self.history: list[dict[str, float]] = []
        """The losses per epoch of the training that made it (``fit``), for ``save``."""
        self.source_folder: Path | None = None
        """The run folder it was loaded from (``sd.load``) or trained into (``fit(out=...)``), whose
        split and losses ``save`` copies."""

    def __getstate__(self) -> dict[str, Any]:
        """A pickle holds the model, not the rows it trained on (an array's are in ``split``):
        a model is shared to share what it learnt."""
        return {**self.__dict__, "split": None}

    def save(self, path: str | os.PathLike, *, overwrite: bool = False) -> None:
        """Write the model as a run folder, the one ``fit(out=...)`` and ``train`` write:
        ``sd.load(path)`` and the commands (``sample``, ``score``, ``impute``, ``evaluate``, ...)
        read it. A folder that holds a run is replaced only with ``overwrite``; any other
        non-empty folder is refused. The rows it trained on go with it (their order and the data
        file's digest, or the rows of an array or DataFrame), from the model or the folder it
        came from; an unpickled one has none to give, and its folder samples but does not
        evaluate. In a torchrun job, where every process holds the model, rank 0 alone writes.

        >>> import tempfile, simple_diffusion as sd
        >>> model = sd.fit("two_gaussians", epochs=2, progress=False)
        >>> with tempfile.TemporaryDirectory() as folder:
        ...     model.save(folder)
        ...     torch.equal(sd.load(folder).sample(5, seed=0), model.sample(5, seed=0))
        True
        """
        from .runs import RunFolder

        if not is_follower():
            RunFolder(path).save_fitted(self, overwrite)

    def __repr__(self) -> str:
        """What a notebook shows for the model: its columns and kinds, what it is conditioned
        on, its network, training and sampler.

        >>> import pandas as pd, simple_diffusion as sd
        >>> table = pd.DataFrame({"mass": [1.5, 2.0, 2.5, 3.0] * 8, "kind": ["a", "b"] * 16})
        >>> sd.fit(table, condition=["kind"], epochs=1, progress=False)  # doctest: +ELLIPSIS
        DiffusionModel(mass numeric, kind categorical (2); given kind; mlp 4 x 128 silu; trained 1 epoch...)
        """
        from .data.columns import describe

        m, smp = self.config.model, self.config.sample
        widths = [layer.out_features for layer in getattr(self.net, "layers", [])[:-1]]
        shape = (f"{len(widths)} x {widths[0]}" if len(set(widths)) == 1
                 else " x ".join(map(str, widths)))
        parts = [describe(self.schema)]
        if self.condition_columns:
            parts.append("given " + ", ".join(self.condition_columns))
        parts.append(f"{m.kind} {shape} {m.activation}" if widths else m.kind)
        if "epochs" in self.info:
            seconds = self.info.get("train_seconds")
            took = f" in {seconds:.1f} s" if seconds else ""
            parts.append(f"trained {counted(self.info['epochs'], 'epoch')}{took}")
        steps = "every timestep" if smp.num_steps == 0 else f"{smp.num_steps} steps"
        parts.append(f"sampler {smp.sampler} ({steps})")
        if not isinstance(self.student, (str, type(None))):
            parts.append(f"distilled ({counted(self.student.network_evaluations, 'step')})")
        return f"DiffusionModel({'; '.join(parts)})"

    @property
    def denoised_bounds(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        """Where a sampler's denoised estimates are kept (encoded units): the training rows'
        range widened by its own width on each side (None for runs saved without it).

        A healthy model never denoises that far; a network asked about a point far from its
        data can answer with a large step, and a sampler that follows it runs away (seen once in
        20,000 penguins rows with ``model.gaussian_part = 0.9``: values of 1e18). Clamping the
        estimate, as diffusers' ``clip_sample`` does with a fixed range, stops that.
        """
        if "encoded_min" not in self.info:
            return None
        low, high = (torch.tensor(self.info[k], dtype=torch.float64) for k in ("encoded_min", "encoded_max"))
        return low - (high - low), high + (high - low)

    @property
    def device(self) -> torch.device:
        """Where the network runs (samples and densities come back on the CPU either way)."""
        return next(self.net.parameters()).device

    def to(self, device: torch.device | str) -> DiffusionModel:
        """Move the network (and a distilled student) to ``device``; returns the model."""
        self.net.to(device)
        if not isinstance(self.student, (str, type(None))):
            self.student.net.to(device)
        return self

    @property
    def condition_columns(self) -> list[str]:
        """The columns the model learnt to condition on (empty: a joint model, which in-paints)."""
        return list(self.config.data.condition)

    @property
    def condition_positions(self) -> list[int]:
        """Where the condition columns sit among the model's columns."""
        return [self.columns.index(c) for c in self.condition_columns]

    @property
    def dim(self) -> int:
        """Columns of the samples (the data's)."""
        return len(self.columns)

    @property
    def schema(self) -> list:
        """Each column's kind (numeric, integer, categorical), dtype and labels."""
        return self.encoder.schema

    @property
    def returns_frames(self) -> bool:
        """Whether ``sample`` returns DataFrames: the model was fitted on a table (a DataFrame or
        a file), not on an array or a built-in target."""
        return bool(self.info.get("frame"))

    def to_frame(self, values: torch.Tensor | np.ndarray) -> pd.DataFrame:
        """Rows in the model's matrix form (values, category codes, NaN) as a DataFrame with the
        training table's columns, labels and dtypes."""
        from .data.columns import to_frame

        return to_frame(np.asarray(values, dtype=np.float64), self.schema)

    def beside_other_columns(self, frame: pd.DataFrame, table: pd.DataFrame) -> pd.DataFrame:
        """``frame`` (rows of ``table`` in the model's columns) with ``table``'s other columns,
        which the model does not know (an identifier, a note), kept as they are and in their
        places: what `impute` and `score` give back."""
        names = [str(c) for c in table.columns]
        if len(names) == len(self.columns) or not set(self.columns) <= set(names):
            return frame
        out = table.set_axis(names, axis=1).set_axis(frame.index)
        return out.assign(**{name: frame[name] for name in self.columns})

    def with_absent_columns(self, frame: pd.DataFrame, source: str = "rows") -> pd.DataFrame:
        """``frame`` with the model's columns that it lacks added empty (after the model's column
        before each), so that `impute` fills them in every row: new rows whose measurement is
        still to come. A frame of none of the model's columns is left as it is (a headerless
        table, read in order); a lacking column named like one of the frame's others (``Sex``
        for ``sex``) is refused as a typo."""
        names = [str(c) for c in frame.columns]
        absent = [c for c in self.columns if c not in names]
        if not absent or len(absent) == len(self.columns):
            return frame
        unknown = [name for name in names if name not in self.columns]
        for name in absent:
            if hint := did_you_mean(name, unknown):
                raise UserError(f"{source}: no column {name!r}{hint}: name it as the model does, or it is "
                                "taken to be absent and filled in every row")
        warnings.warn(f"{source} has no column{'s' if len(absent) > 1 else ''} "
                      f"{', '.join(map(repr, absent))}: filled in every row", stacklevel=3)
        out = frame.set_axis(names, axis=1)  # a copy, its attrs (first_row) kept
        for name in absent:
            before = [c for c in self.columns[: self.columns.index(name)] if c in out.columns]
            out.insert(out.columns.get_loc(before[-1]) + 1 if before else 0, name, np.nan)
        return out

    @property
    def latent_dim(self) -> int:
        """Columns the network works on (constant columns are not modelled)."""
        return self.encoder.transformed_dim

    def denoise(self, x: torch.Tensor, sigma: torch.Tensor, condition: torch.Tensor | None = None,
                known: tuple[torch.Tensor, torch.Tensor] | None = None,
                activations: dict | None = None) -> torch.Tensor:
        """The estimate of clean (preprocessed) data at VE noise level ``sigma``, given the
        network's ``condition`` input (a conditional model; None: unconditional) and the
        ``known`` (mask, values) of the coordinates it shows; ``activations``: a dict that a
        sampler's loop passes to every call, where the network keeps its hidden layers' outputs."""
        return self._denoise_with(self.net, self.config.model.prediction_type, x, sigma, condition, known,
                                  activations=activations)

    def _denoise_with(self, net: nn.Module, prediction_type: str, x: torch.Tensor, sigma: torch.Tensor,
                      condition: torch.Tensor | None = None,
                      known: tuple[torch.Tensor, torch.Tensor] | None = None, *,
                      bfloat16: bool = False, bounded: bool = False,
                      activations: dict | None = None) -> torch.Tensor:
        """``denoise`` with ``net``; ``known`` = (mask, values): the coordinates that
        ``condition`` shows the network, on which the Gaussian part is conditioned too;
        ``bounded``: within ``denoised_bounds`` (a sampler's denoiser); ``activations``: where
        a built-in MLP keeps its hidden layers' outputs between a sampler's calls."""
        weight = next(net.parameters())
        home, device, given_dtype = x.device, weight.device, x.dtype
        sigma = torch.as_tensor(sigma)
        if device.type == "mps":  # Apple's GPU has no float64: log_prob's rows run there in float32
            x, sigma = x.float(), sigma.float()
        x, sigma = x.to(device), sigma.to(device)
        condition = None if condition is None else condition.to(device, weight.dtype)
        alpha, sigma_vp = vp_scales(sigma, x.dtype)
        x_t = x * alpha
        t = self.schedule.sigma_to_t(sigma.cpu()).to(device, weight.dtype)
        with precision.autocast(bfloat16, device.type):  # the network in its own precision
            inputs = x_t.to(weight.dtype)
            if isinstance(net, MLP):  # its kept activations are float32: not under bfloat16 autocast
                output = net(inputs, t, condition, activations=None if bfloat16 else activations)
            else:
                output = net(inputs, t) if condition is None else net(inputs, t, condition)
        output = output.to(x.dtype)
        if self.gaussian is not None:
            if condition is not None and known is None:
                raise ValueError("a conditional model's Gaussian part needs the known coordinates")
            output = output + self.gaussian.prediction(prediction_type, x_t, alpha, sigma_vp,
                                                       None if condition is None else known)
        denoised = prediction.to_sample(prediction_type, output, x_t, alpha, sigma_vp)
        bounds = self.denoised_bounds if bounded else None
        if bounds is not None:
            denoised = denoised.clamp(*(b.to(device, denoised.dtype) for b in bounds))
        return denoised.to(home, given_dtype)

    @torch.no_grad()
    def log_prob(self, x: torch.Tensor | np.ndarray, *, given: Any = None, rtol: float = 1e-5,
                 atol: float = 1e-5, exact: bool | None = None, seed: int = 0,
                 progress: bool = False) -> torch.Tensor:
        """log p(x) per row, in the data's own units (float64).

        The probability-flow ODE (``diffusion/likelihood.py``) gives the density of the encoded
        rows; the encoder's log-Jacobian turns it into the data's units. ``rtol``/``atol`` are the
        ODE solver's tolerances; ``exact`` chooses the divergence (default: exact up to 16
        columns, Hutchinson's estimate above, ``seed`` fixing its noise). Rows outside a quantile
        encoder's training range get -inf, rows with a missing cell NaN (not scored: their density
        would be a marginal's). Models with integer or constant columns have no density and raise
        an error saying so. A conditional model gives the joint density of all its columns (its
        network without the condition input).

        With ``given`` (as ``sample`` takes it: one condition for every row, or one per row), the
        density of the other columns given those cells, log p(x | given): a posterior's density.
        The given columns must be the model's condition (any cells for learnt in-painting) and
        may be of any kind; the others need a density. ``x`` holds the other columns, or whole
        rows whose given cells are empty or as given (``sample(n, given=...)``'s rows). It is
        the flow of the conditional denoiser that ``sample`` uses, at the model's guidance.
        ``progress`` shows a bar of the rows scored.
        """
        if given is not None:
            return self._log_prob_given(x, given, rtol=rtol, atol=atol, exact=exact, seed=seed,
                                        progress=progress)
        x = torch.as_tensor(self._matrix(x))
        x = x[:, None] if x.ndim == 1 else x
        if x.ndim != 2 or x.shape[1] != self.dim:
            raise UserError(f"log_prob needs rows of {self.dim} columns, got shape {tuple(x.shape)}")
        try:
            z, log_det = self.encoder.forward_and_log_det(x)
        except NoDensity as exc:
            if self._has_density_given_condition(x):  # the model the advice would name: this one
                conditional = said("`score --conditional`", "log_prob(x, given=...)")
                raise UserError(f"this model has no density: {exc.what}; {conditional} gives the density "
                                f"of the other columns given {', '.join(self.condition_columns)}") from None
            raise UserError(f"this model has no density: {exc}") from None
        log_p = torch.full((len(x),), -math.inf, dtype=torch.float64)
        finite = torch.isfinite(log_det) & torch.isfinite(z).all(1)
        with _scoring_bar(int(finite.sum()), progress) as bar:
            if bool(finite.any()):
                log_p[finite] = self._flow_log_likelihood(self.denoise, z[finite], list(range(z.shape[1])),
                                                          rtol, atol, exact, seed, bar) + log_det[finite]
        return log_p.masked_fill(x.isnan().any(1), math.nan)

    def _has_density_given_condition(self, x: torch.Tensor) -> bool:
        """Whether a conditional model's columns other than its condition have a density, so
        that ``log_prob(x, given=...)`` gives one where the joint has none."""
        if not self.condition_columns:
            return False
        others = [j for j in range(self.dim) if j not in self.condition_positions]
        try:
            self.encoder.forward_and_log_det(x[:1], others)
        except NoDensity:
            return False
        return True

    def _flow_log_likelihood(self, denoise: Callable, rows: torch.Tensor, coordinates: list[int],
                             rtol: float, atol: float, exact: bool | None, seed: int,
                             bar: Any = None) -> torch.Tensor:
        """log p of the encoded ``coordinates`` of ``rows`` under the flow of ``denoise`` (a
        denoiser of those coordinates), the others being given; ``bar`` counts the rows. The
        prior at the top level is the training rows' there; with some coordinates given, the
        Gaussian part's conditional (its mean moves with the given values, which the marginal's
        would miss by about the shift over the top level: 0.02 nats on a test's rows)."""
        if len(coordinates) < rows.shape[1] and self.gaussian is not None:
            mean, variance = self.gaussian.conditional(rows, coordinates)
        else:
            mean, variance = (torch.as_tensor(self.info.get(key, default), dtype=torch.float64)
                              for key, default in (("encoded_mean", 0.0), ("encoded_variance", 1.0)))
            mean, variance = (v[coordinates] if v.ndim else v for v in (mean, variance))
        return likelihood.log_likelihood(
            denoise, rows[:, coordinates], self.schedule.sigma_min, self.schedule.sampling_top(),
            rtol=rtol, atol=atol, exact=exact, seed=seed, dtype=next(self.net.parameters()).dtype,
            data_mean=mean, data_variance=variance, bar=bar,
        )

    def _log_prob_given(self, x: Any, given: Any, *, rtol: float, atol: float, exact: bool | None,
                        seed: int, progress: bool) -> torch.Tensor:
        """``log_prob(x, given=given)``: the flow of the conditional denoiser over the encoded
        coordinates of the columns not given, the given ones held at their values."""
        import pandas as pd

        conditions = self.given_rows(given)
        shown = ~np.isnan(conditions)
        if not (shown == shown[0]).all():
            raise UserError("given: every condition must give the same columns "
                            "(some leave other cells empty)")
        names = [c for c, g in zip(self.columns, shown[0]) if g]
        free = [j for j in range(self.dim) if not shown[0, j]]
        if not free:
            raise UserError("given: every column is given; no column is left to have a density")
        dtype = next(self.net.parameters()).dtype
        if self._given_denoiser(torch.as_tensor(conditions[:1]), False, self.config.sample, dtype,
                                self.denoise)[1]:  # some given cell would be in-painted, not learnt
            learnt = ", ".join(self.condition_columns) or "none"
            raise UserError(f"log_prob given {', '.join(names)} needs a model that learnt them as its "
                            f"condition (this one's: {learnt}); train it with {advice({'condition': names})}")
        if isinstance(x, pd.DataFrame) and set(self.columns) & set(map(str, x.columns)):
            lacking = [self.columns[j] for j in free if self.columns[j] not in set(map(str, x.columns))]
            if lacking:
                raise UserError(f"log_prob given {', '.join(names)} needs the other columns: no column "
                                f"{lacking[0]!r}{did_you_mean(lacking[0], list(map(str, x.columns)))}")
            x = pd.DataFrame({c: x[c] if c in x.columns else np.nan for c in self.columns}, index=x.index)
        values = self._matrix(x)
        values = values[:, None] if values.ndim == 1 else values
        if values.ndim == 2 and values.shape[1] == len(free) < self.dim:
            values, partial = np.full((len(values), self.dim), np.nan), values
            values[:, free] = partial
        if values.ndim != 2 or values.shape[1] != self.dim:
            others = ", ".join(self.columns[j] for j in free)
            raise UserError(f"log_prob given {', '.join(names)} needs rows of the other {len(free)} "
                            f"column(s) ({others}) or of all {self.dim}, got shape {values.shape}")
        if len(conditions) not in (1, len(values)):
            raise UserError(f"given: one condition for every row or one per row ({len(values):,}), "
                            f"got {len(conditions):,}")
        conditions = np.broadcast_to(conditions, values.shape)
        clash = shown & ~np.isnan(values) & (values != conditions)
        if clash.any():
            i, j = np.argwhere(clash)[0]
            column = self.schema[j]
            has, given_as = (format_value(column, cells[i, j]) for cells in (values, conditions))
            raise UserError(f"log_prob: row {i + 1} has {column.name} = {has}, but it is given as {given_as}")
        rows = torch.as_tensor(np.where(shown, conditions, values))
        try:
            z, log_det = self.encoder.forward_and_log_det(rows, free)
        except NoDensity as exc:
            raise UserError(f"log_prob given {', '.join(names)}: no density: {exc}") from None
        coordinates = self.encoder.coordinates()
        unknown = sorted(k for j in free for k in coordinates[j])
        log_p = torch.full((len(rows),), -math.inf, dtype=torch.float64)
        finite = (torch.isfinite(log_det) & torch.isfinite(z).all(1)).nonzero()[:, 0]
        with _scoring_bar(len(finite), progress) as bar:
            for part in finite.split(likelihood.CHUNK_ROWS):  # a denoiser knows its rows' conditions
                denoise, _ = self._given_denoiser(torch.as_tensor(conditions[part.numpy()]), False,
                                                  self.config.sample, dtype, self.denoise)
                log_p[part] = self._flow_log_likelihood(
                    _on_coordinates(denoise, z[part].to(dtype), unknown), z[part], unknown, rtol, atol,
                    exact, seed, bar) + log_det[part]
        return log_p.masked_fill(torch.as_tensor(np.isnan(values[:, free]).any(1)), math.nan)

    def rows(self, frame: pd.DataFrame, source: str = "rows") -> np.ndarray:
        """A DataFrame's rows as the model's float matrix (values, category codes, NaN): its
        columns picked by the model's names, or taken in order when it has as many and none of
        them (a headerless file, an array). Some of the names and not all: which column is which
        is not known, so they are refused (in order, ``zzz, a`` would be read as ``a, b``)."""
        from .data.columns import to_values

        if not all(isinstance(c, str) for c in frame.columns):  # number labels, as the model has them
            frame = frame.set_axis(list(map(str, frame.columns)), axis=1)
        if not set(self.columns) <= set(frame.columns):
            if frame.shape[1] != self.dim or set(self.columns) & set(frame.columns):
                lacking = next(c for c in self.columns if c not in frame.columns)
                raise UserError(f"{source}: the model's columns are {', '.join(self.columns)}; "
                                f"its columns are {', '.join(map(str, frame.columns))} (no {lacking!r})")
            frame = frame.set_axis(self.columns, axis=1)
        return to_values(frame, self.schema, source)

    def _matrix(self, x: Any) -> np.ndarray:
        if hasattr(x, "columns") and hasattr(x, "iloc"):  # a pandas DataFrame
            return self.rows(x)
        if hasattr(x, "to_frame") and self.dim > 1 and set(self.columns) <= set(map(str, x.index)):
            return self.rows(x.to_frame().T)  # one row as a Series (df.iloc[0]): its cells by name
        return np.asarray(x, dtype=np.float64)

    def sampling_settings(self, **changes: Any) -> SampleConfig:
        """The model's sampling defaults with the given (non-None) settings changed and checked."""
        known = {f.name for f in fields(SampleConfig)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise UserError(f"unknown sampling setting {unknown[0]!r}; known: {', '.join(sorted(known))}")
        settings = replace(self.config.sample, **{k: v for k, v in changes.items() if v is not None})
        validate(replace(self.config, sample=settings))
        if changes.get("guidance") not in (None, self.config.sample.guidance) and self.condition is None:
            # It would change nothing: a user asking for sharper samples would get the same ones.
            ways = said("--condition COL or --inpainting learnt",
                        "condition=[...] or config={'train': {'inpainting': 'learnt'}}")
            raise UserError(f"{said('--guidance', 'guidance')} steers a learnt condition, and this model "
                            f"learnt none (train with {ways})")
        return settings

    @torch.inference_mode()
    def sample(
        self,
        n: int | tuple[int, ...] = 1,
        *,
        given: Any = None,
        seed: int | None = None,
        chunk_size: int = SAMPLING_CHUNK,
        progress: bool = False,
        preprocessed: bool = False,
        frame: bool | None = None,
        **settings: Any,
    ) -> torch.Tensor | pd.DataFrame:
        """Draw ``n`` samples in the data's own units: a DataFrame with the training table's
        columns, labels and dtypes for a model fitted on a table, else a float64 tensor of shape
        (n, d) (``preprocessed=True``: the network's encoded rows). ``frame`` chooses: a
        DataFrame (True) or the float matrix of values and category codes (False).

        ``given`` sets cells: a dict ``{column: value}`` (a list of values per column: one
        condition each), a DataFrame whose columns are some of the model's (its other columns,
        such as an identifier, go first in each condition's rows of a returned DataFrame), or an
        array (or a DataFrame without the model's names) of the condition columns' values or of
        whole rows, NaN where not given. ``n`` rows are drawn
        for each condition (condition i's are rows i*n to (i+1)*n, all in one batch), with the
        given cells as given.

        ``settings`` override the run's sampling defaults (``sampler``, ``num_steps``, ``spacing``,
        ``variance``, ``sigma_min``, ``sigma_max``, ``guidance``, ``resample``). The same ``seed``
        gives the same samples whatever ``chunk_size``; memory grows with the chunk, not with
        ``n``; ``seed=None`` draws a fresh seed.
        """
        sizes = n if isinstance(n, tuple) else (n,)
        if not all(isinstance(size, (int, float, np.integer, np.floating)) and not isinstance(size, bool)
                   and np.isfinite(size) for size in sizes):
            raise UserError(f"the number of samples is a whole number, not {n!r}")
        count = int(np.prod(sizes))
        if count != np.prod(sizes):
            raise UserError(f"the number of samples is a whole number, not {n}")
        if count < 0:
            raise UserError(f"cannot draw a negative number of samples ({count})")
        as_frame = (self.returns_frames if frame is None else frame) and not preprocessed
        conditions, beside = (None, None) if given is None else self.split_given(given, keep_others=as_frame)
        total = count * (1 if conditions is None else len(conditions))
        out = torch.empty(total, self.latent_dim if preprocessed else self.dim, dtype=torch.float64)
        chunks = self.sample_chunks(count, given=conditions, seed=seed, chunk_size=chunk_size,
                                    progress=progress, preprocessed=preprocessed, **settings)
        for start, chunk in chunks:
            out[start : start + len(chunk)] = chunk
        if as_frame:
            labels = self.info.get("labels")  # a DataFrame's number labels, as it had them
            rows = self.to_frame(out) if labels is None else self.to_frame(out).set_axis(labels, axis=1)
            return rows if beside is None else beside_conditions(rows, beside, count, 0)
        if isinstance(n, tuple) and conditions is None:
            return out.reshape(*n, out.shape[1])
        return out

    def split_given(self, given: Any, keep_others: bool = True) -> tuple[np.ndarray, pd.DataFrame | None]:
        """``given_rows`` of ``given``, and, for a DataFrame of conditions (a file's) that also
        holds columns the model lacks (an identifier, a note), those columns (``keep_others``),
        to write beside each condition's rows; else None. A column named like one of the
        model's that the table lacks is taken for a typo of it and refused."""
        import pandas as pd

        if not (keep_others and isinstance(given, pd.DataFrame)):
            return self.given_rows(given), None
        given = given.rename(columns=str)  # number labels as the model names them
        others = [c for c in given.columns if c not in self.columns]
        absent = [c for c in self.columns if c not in given.columns]
        typo = next((c for c in others if did_you_mean(c, absent)), None)
        if typo is not None:
            raise UserError(f"given: the model has no column {typo!r} (columns: {', '.join(self.columns)})"
                            f"{did_you_mean(typo, absent)}")
        if not others or len(others) == len(given.columns):
            return self.given_rows(given), None  # nothing to keep, or nothing to condition on: refused there
        return self.given_rows(given.drop(columns=others)), given[others].reset_index(drop=True)

    def given_rows(self, given: Any) -> np.ndarray:
        """Conditions as rows of the model's matrix (values, category codes), NaN where a cell
        is not given: from a dict, a DataFrame or an array (see ``sample``)."""
        import pandas as pd

        if isinstance(given, dict):
            empty = next((k for k, v in given.items() if np.ndim(v) == 0 and pd.isna(v)), None)
            if empty is not None:  # NaN means "not given": a single condition would be ignored
                raise UserError(f"given: column {empty!r} has no value ({given[empty]!r} conditions "
                                "nothing); give it a value or leave it out")
            values = {k: v if isinstance(v, (list, tuple, np.ndarray)) else [v] for k, v in given.items()}
            lengths = {len(v) for v in values.values()}
            if len(lengths) > 1:
                raise UserError("given: every column needs as many values")
            given = pd.DataFrame(values)
        unnamed = isinstance(given, pd.DataFrame) and all(str(c).isdigit() for c in given.columns)
        if unnamed and not set(map(str, given.columns)) & set(self.columns):
            try:  # columns 0, 1, ... (.npy, a headerless CSV): by position, as an array
                given = given.to_numpy(dtype=np.float64)
            except ValueError:
                raise UserError("given: a table without column names must hold numbers") from None
        if isinstance(given, pd.DataFrame):
            given = given.rename(columns=str)  # number labels (a DataFrame's 0, 1) as the model names them
            unknown = [str(c) for c in given.columns if str(c) not in self.columns]
            if unknown:
                raise UserError(f"given: the model has no column {unknown[0]!r} (columns: "
                                f"{', '.join(self.columns)}){did_you_mean(unknown[0], self.columns)}")
            full = pd.DataFrame({c: given[c] if c in given.columns else np.nan for c in self.columns})
            full.attrs = given.attrs  # a file's line numbers, for messages
            return self._within_range(self._drawable(self.rows(full, "given"), given.attrs.get("first_row")))
        array = np.asarray(given, dtype=np.float64)
        array = array.reshape(1, -1) if array.ndim < 2 else array  # one condition (one value: one column)
        names = self.condition_columns
        if array.ndim == 2 and names and array.shape[1] == len(names) != self.dim:
            rows = np.full((len(array), self.dim), np.nan)
            rows[:, self.condition_positions] = array
            array = rows
        if array.ndim != 2 or array.shape[1] != self.dim:
            wanted = f"{len(names)} (the condition columns) or {self.dim}" if names else str(self.dim)
            raise UserError(f"given: rows need {wanted} columns, got shape {array.shape}")
        return self._within_range(self._drawable(array))

    def _drawable(self, rows: np.ndarray, first_row: int | None = None) -> np.ndarray:
        """``rows`` of given cells, refused where the model never drew such a cell: an infinite
        value, a label its training rows lack (one only held-out rows have, or a category a pandas
        dtype declares), or a value between the whole ones of an integer column (a count, a date on
        its unit: the rows written would show it rounded, not as given). ``first_row``: the line
        of a file's first row, for the message."""
        refuse_infinite(rows, self.columns, "given", first_row)
        unseen = self._unseen_labels(rows)
        if unseen:
            raise UserError(f"given: {unseen[1]}")
        for j in (j for j, column in enumerate(self.schema) if column.kind == "integer"):
            column, cells = self.schema[j], rows[:, j]
            between = (cells != np.round(cells)) & np.isfinite(cells)
            if between.any():
                value = cells[between][0]
                if column.time_unit:  # said as the whole units on either side
                    low, high = (format_value(column, edge(value)) for edge in (math.floor, math.ceil))
                    raise UserError(f"given: column {column.name!r} holds whole "
                                    f"{UNIT_NAMES[column.time_unit]}, not a time between {low} and {high}")
                raise UserError(f"given: column {column.name!r} holds whole numbers, not "
                                f"{format_value(column, value)}")
        return rows

    def _unseen_labels(self, rows: np.ndarray) -> tuple[int, str] | None:
        """How many of ``rows`` hold a label that the training rows lack, and the first such
        cell in words; None where there is none."""
        unseen = {j: ~np.isnan(rows[:, j]) & ~np.isin(rows[:, j], seen)
                  for j, seen in zip(self.encoder.categorical_columns, self.encoder.seen)}
        first = next((j for j, cells in unseen.items() if cells.any()), None)
        if first is None:
            return None
        column, seen = self.schema[first], self.encoder.seen[self.encoder.categorical_columns.index(first)]
        label = column.categories[int(rows[unseen[first], first][0])]
        known = ", ".join(str(column.categories[c]) for c in seen
                          if c < len(column.categories))  # not the gap code past them
        return (int(np.any(list(unseen.values()), axis=0).sum()),
                f"column {column.name!r} has the label {label!r}, which the model never saw in its "
                f"training rows (it knows {known})")

    def _within_range(self, rows: np.ndarray) -> np.ndarray:
        """``rows`` of given cells, after a warning if some lie outside the training rows'
        range: the model has seen no such rows, so what it draws beside them is a guess (it
        still draws them: a user may want to see that guess)."""
        if "encoded_min" not in self.info or not len(rows):
            return rows
        z, known = self.encoder.known(torch.as_tensor(rows, dtype=torch.float64))
        low, high = (torch.tensor(self.info[k], dtype=torch.float64) for k in ("encoded_min", "encoded_max"))
        z = z.float().double()  # as the network saw the training rows: a training row at the edge is inside
        outside = known & ((z < low) | (z > high))
        if not bool(outside.any()):
            return rows
        where = self.encoder.coordinates()
        j = next(j for j in range(self.dim) if bool(outside[:, where[j]].any()))  # a number column
        row = int(outside[:, where[j]].any(1).nonzero()[0])
        split, k = self.encoder.numeric.transformed_dim, self.encoder.numeric_columns.index(j)
        data_low, data_high = self.encoder.numeric.inverse(torch.stack([low, high])[:, :split])[:, k].tolist()
        count = int(outside.any(1).sum())
        column = self.schema[j]
        cell = f"{column.name}={format_value(column, rows[row, j])}"
        span = (f"{column.name} runs from {format_value(column, data_low)} to "
                f"{format_value(column, data_high)} in the training rows")
        warnings.warn(
            (f"given: {cell} lies outside the training rows' range ({span})" if len(rows) == 1 else
             f"given: {count} of {len(rows)} conditions lie outside the training rows' range (the first: "
             f"{cell}; {span})") + ": the model has seen no such rows, so what it draws there is a guess",
            stacklevel=3)
        return rows

    @torch.inference_mode()
    def impute(self, rows: Any, *, draws: int = 1, seed: int = 0, progress: bool = False,
               median: bool = False, **settings: Any) -> torch.Tensor | pd.DataFrame:
        """Fill the missing cells of ``rows`` (a DataFrame or an array with NaN), each drawn from
        the model given the row's observed cells; observed cells are kept as they are, and so
        are a DataFrame's columns that the model was not trained on. A model's column that the
        DataFrame lacks is filled in every row (``with_absent_columns``).

        With ``draws`` > 1, that many fillings: a DataFrame of ``draws`` copies of the table one
        after the other, with a first column ``draw`` (1, 2, ...), or a tensor of shape
        (draws, rows, d). Their spread is the uncertainty of each filled cell. Among the ranks of
        a torchrun job (``impute --nproc``) each fills a share of the rows and every rank gets
        the whole table: the same numbers whatever the number of processes. With ``median``,
        one table instead, each filled cell summing up its draws: a number their median (the
        lower middle draw for an even count, so that it is one of them: whole, on a point
        mass, within the range as a draw is), a label the most frequent one. That is the best
        single guess under absolute error (CSDI's point estimate, Tashiro et al. 2021), and
        its spread is gone.
        """
        import pandas as pd

        if draws < 1:
            raise UserError(f"draws must be at least 1, got {draws}")
        if median and draws == 1:
            raise UserError("median sums up several draws of each cell: give draws, e.g. draws=19")
        is_frame = isinstance(rows, pd.DataFrame)
        if is_frame:
            rows = self.with_absent_columns(rows, "impute")
        values = self._matrix(rows)
        values = values[:, None] if values.ndim == 1 else values
        if values.ndim != 2 or values.shape[1] != self.dim:
            raise UserError(f"impute needs rows of {self.dim} columns, got shape {values.shape}")
        refuse_infinite(values, self.columns, "impute", rows.attrs.get("first_row") if is_frame else None)
        gaps = np.flatnonzero(np.isnan(values).any(1))
        filled = np.repeat(values[None], draws, axis=0)
        unseen = self._unseen_labels(values[gaps])
        if unseen:  # filled all the same: a user may want the guess, but should know it is one
            warnings.warn(f"impute: {counted(unseen[0], 'row')} to fill hold a label the training rows lack "
                          f"(the first: {unseen[1]}): what the model fills beside it is a guess",
                          stacklevel=2)
        if len(gaps):
            ranks = Ranks.from_environment(self.device)
            total = draws * len(gaps)

            def place(start: int, chunk: torch.Tensor) -> None:
                index = np.arange(start, start + len(chunk))
                filled[index % draws, gaps[index // draws]] = chunk.numpy()

            # Among ranks, each rank's rows in a table of -0.0, summed over the ranks: every
            # filled row (its cells all numbers) once, exactly (x + -0.0 is x, a zero's sign
            # too). Alone, the rows go straight to the result.
            drawn = (torch.full((total, self.dim), -0.0, dtype=torch.float64, device=self.device)
                     if ranks.distributed else None)
            for start, chunk in self.sample_chunks(draws, given=values[gaps], fill=True, seed=seed,
                                                   rows=ranks.share_rows(total, BLOCK),
                                                   progress=progress and ranks.is_main,
                                                   **settings):
                if drawn is None:
                    place(start, chunk)
                else:
                    drawn[start : start + len(chunk)] = chunk
            if drawn is not None:
                place(0, ranks.sum_(drawn).cpu())
        if median:
            filled, draws = self._median_of(filled)[None], 1
        if not (is_frame or self.returns_frames):
            result = torch.from_numpy(filled)
            return result[0] if draws == 1 else result
        frames = [self.to_frame(f).set_axis(rows.index if is_frame else range(len(f))) for f in filled]
        if is_frame:
            own = {str(c): c for c in rows.columns}  # the table's labels, numbers too
            frames = [self.beside_other_columns(f, rows).rename(columns=own) for f in frames]
        if draws == 1:
            return frames[0]
        return pd.concat([f.assign(draw=k + 1) for k, f in enumerate(frames)])[["draw", *frames[0].columns]]

    def _median_of(self, draws: np.ndarray) -> np.ndarray:
        """Each cell of ``draws`` (draws, rows, d) summed up: a label column's most frequent
        code, any other column's lower median, which is one of its draws."""
        summary = np.quantile(draws, 0.5, axis=0, method="inverted_cdf")
        for j, column in enumerate(self.schema):
            if column.kind == "categorical":
                codes = np.arange(len(column.categories))
                votes = (draws[:, :, j, None] == codes).sum(0)  # (rows, labels)
                summary[:, j] = codes[votes.argmax(1)]
        return summary

    @torch.inference_mode()
    def trajectory(self, n: int, *, seed: int = 0, **settings: Any) -> tuple[list[torch.Tensor], list[float]]:
        """The reverse process of ``n`` samples: the state at every sampler step (as x_t, the
        noisy data at unit scale, mapped back to data units, neither rounded nor kept within the
        training range, which would hide the noise) and the final samples; with the noise level
        of each."""
        step, sigmas, denoise = self._sampler(self.sampling_settings(**settings))
        sigmas = sigmas.float()
        frames: list[torch.Tensor] = []
        levels: list[float] = []

        def record(step: dict) -> None:
            x_t = step["x"] / ve_scale(step["sigma"])
            frames.append(self.encoder.inverse(x_t.cpu().double(), written=False))
            levels.append(float(step["sigma"]))

        noise = _BlockNoise(seed, 0, n, self.latent_dim, torch.float32, self.device)
        x = noise.draw() * ve_scale(sigmas[0])
        x = step(denoise, x, sigmas, noise_sampler=noise, callback=record)
        frames.append(self.encoder.inverse(x.cpu().double()))
        levels.append(0.0)
        return frames, levels

    def noise_levels(self, **settings: Any) -> torch.Tensor:
        """The VE noise levels a sampler with these settings walks, ending at 0: one step each."""
        return self._sampler(self.sampling_settings(**settings))[1]

    def _noise_levels(self, settings: SampleConfig) -> torch.Tensor:
        return self.schedule.sampling_sigmas(
            settings.num_steps, settings.spacing, settings.sigma_max, settings.sigma_min
        )

    def _sampler(self, settings: SampleConfig) -> tuple[Callable[..., torch.Tensor], torch.Tensor, Callable]:
        """The sampler function with its options bound, its noise levels and its denoiser
        (``distilled``: DDIM with the student on the student's levels)."""
        if settings.sampler == "distilled":
            if self.student is None:
                raise UserError("this model has no distilled sampler: make one with "
                                f"`{said('simple-diffusion distill RUN', 'sd.distill(model)')}`")
            if isinstance(self.student, str):
                raise UserError(self.student)
            return samplers.ddim, self.student.sigmas, functools.partial(
                self._denoise_with, self.student.net, self.student.prediction_type,
                bfloat16=precision.uses_bfloat16(settings.precision, settings.sampler), bounded=True,
                activations={})
        sigmas = self._noise_levels(settings)
        step = samplers.SAMPLERS[settings.sampler]
        if settings.sampler == "ancestral":
            step = functools.partial(step, variance=settings.variance)
        return step, sigmas, functools.partial(
            self._denoise_with, self.net, self.config.model.prediction_type,
            bfloat16=precision.uses_bfloat16(settings.precision, settings.sampler), bounded=True,
            activations={})

    @torch.inference_mode()
    def sample_chunks(
        self,
        n: int,
        *,
        given: np.ndarray | None = None,
        fill: bool = False,
        seed: int | None = None,
        chunk_size: int = SAMPLING_CHUNK,
        progress: bool = False,
        preprocessed: bool = False,
        rows: range | None = None,
        **changes: Any,
    ) -> Iterator[tuple[int, torch.Tensor]]:
        """Yield ``(first_row, samples)`` chunk by chunk: for writing large files in pieces.

        With ``given`` (rows of ``given_rows``), ``n`` rows for each; ``fill`` treats them as
        rows to complete (``impute``): every missing cell is generated as present. ``rows``
        (starting at a multiple of ``BLOCK``) draws only those of all the rows: what one of
        several processes writes. A row's value depends on the seed and its index only; chunks
        of the same rows compute the same numbers, so ranges that start at multiples of
        ``chunk_size`` (rounded up to whole blocks) give bit-identical rows.
        """
        settings = self.sampling_settings(**changes)
        if seed is None:
            seed = int(torch.randint(0, 2**31 - 1, ()).item())
        step, sigmas, denoise = self._sampler(settings)
        if given is not None and settings.sampler == "distilled":
            settings = self._student_settings(given, settings)
        blocks_per_chunk = max(1, -(-chunk_size // BLOCK))
        dtype = next(self.net.parameters()).dtype
        sigmas = sigmas.to(dtype)
        total = n * (1 if given is None else len(given))
        rows = range(total) if rows is None else rows
        if rows.start % BLOCK or rows.step != 1 or rows.stop > total:
            raise ValueError(f"rows must be a range of the {total} rows from a multiple of {BLOCK}")
        if given is not None and not fill and self._rejects(given, settings):
            yield from self._rejection_chunks(n, given, seed, rows, progress, preprocessed, changes)
            return
        with progress_bar(len(rows), desc="sampling", unit="pt", enabled=progress and len(rows) > 0,
                          unit_scale=True) as bar:  # no empty bar for a rank left no rows
            for first_block in range(rows.start // BLOCK, -(-rows.stop // BLOCK), blocks_per_chunk):
                start = first_block * BLOCK
                count = min(rows.stop - start, blocks_per_chunk * BLOCK)
                noise = _BlockNoise(seed, first_block, count, self.latent_dim, dtype, self.device)
                x = noise.draw() * ve_scale(sigmas[0])
                if given is None:
                    x = step(denoise, x, sigmas, noise_sampler=noise)
                    known = None
                else:
                    known = torch.as_tensor(given[np.arange(start, start + count) // n])
                    given_denoise, inpaints = self._given_denoiser(known, fill, settings, dtype,
                                                                   denoise)
                    chosen = (functools.partial(samplers.repaint, resample=settings.resample,
                                                variance=settings.variance) if inpaints else step)
                    x = chosen(given_denoise, x, sigmas, noise_sampler=noise)
                x = x.cpu().to(torch.float64)
                if not preprocessed:
                    x = self.encoder.inverse(x, complete=True) if fill else self.encoder.inverse(x)
                    if known is not None:  # given cells exactly as given
                        x = torch.where(known.isnan(), x, known)
                yield start, x
                bar.update(count)

    def _student_settings(self, given: np.ndarray, settings: SampleConfig) -> SampleConfig:
        """The settings under which the distilled sampler draws ``given`` rows: a student of a
        conditional model takes every condition column and nothing else (it learnt no
        in-painting), at the guidance it was distilled with (which its network now gives
        alone: 1) or at 0 (its joint)."""
        student = self.student
        assert not isinstance(student, (str, type(None)))  # ``_sampler`` refused those
        conditions = self.condition_positions if student.conditional else []
        others = [j for j in range(self.dim) if j not in conditions]
        if not conditions or np.isnan(given[:, conditions]).any() or not np.isnan(given[:, others]).all():
            shown = f"all of the condition columns ({', '.join(self.condition_columns)}) and nothing else"
            what = shown if conditions else "the whole distribution only"
            raise UserError(f"the distilled sampler draws {'rows given ' if conditions else ''}{what}; "
                            "for other given cells (filling gaps, in-painting) choose another sampler")
        learnt = student.info["guidance"]
        if settings.guidance not in (0, learnt):
            raise UserError(f"the distilled sampler follows its model at guidance {learnt:g}, the "
                            f"guidance it was distilled with (or 0: the joint); for guidance "
                            f"{settings.guidance:g} choose another sampler")
        return replace(settings, guidance=1.0 if settings.guidance else 0.0)

    def _rejects(self, given: np.ndarray, settings: SampleConfig) -> bool:
        """Whether ``given`` rows are met by reject sampling (``sample.reject_tries``), on a
        model that in-paints with RePaint: some given cells are labels of columns that the
        network does not take as its condition, and every other given cell is a condition
        column's (the network's input while the rows are drawn)."""
        if not settings.reject_tries or self.config.train.inpainting != "repaint":
            return False
        conditions = np.array([c.name in self.condition_columns for c in self.schema])
        labels = np.array([c.kind == "categorical" for c in self.schema]) & ~conditions
        shown = ~np.isnan(given)
        return bool(shown[:, labels].any()) and not bool(shown[:, ~labels & ~conditions].any())

    def _rejection_chunks(self, n: int, given: np.ndarray, seed: int, rows: range, progress: bool,
                          preprocessed: bool, changes: dict[str, Any]):
        """``sample_chunks`` for rows given labels (and condition columns).

        Conditions that give the network the same cells (all of them, on a joint model) share
        one stream of whole rows, drawn in blocks of ``BLOCK`` (seeded by ``seed`` and the
        group's first condition, so the rows do not depend on chunking); each row of it goes to
        the first condition, in order, that still needs rows and whose labels it carries. Rows
        are passed on in order as they are found, so memory follows the block, not ``n``. After
        ``reject_tries`` draws per row a group asks for, its missing rows are in-painted
        instead, and a warning says how often the model drew those labels."""
        tries = self.sampling_settings(**changes).reject_tries
        # The candidates are drawn given the condition columns' cells, the network's input.
        conditioned = given.copy()
        others = [j for j, name in enumerate(self.columns) if name not in self.condition_columns]
        conditioned[:, others] = np.nan
        last_condition = -(-rows.stop // n) if n else 0
        keys = [np.nan_to_num(row, nan=np.inf).tobytes() for row in conditioned]
        sizes = collections.Counter(keys)  # of the whole request: the same in every process
        groups: dict[bytes, list[int]] = {}
        for c in range(last_condition):  # the members this process needs, in order
            groups.setdefault(keys[c], []).append(c)
        streams = {key: _RejectionStream(members, n, rows) for key, members in groups.items()}
        short: list[tuple[int, int, int, int]] = []  # (condition, rows found, in-painted, drawn)
        with progress_bar(len(rows), desc="sampling", unit="pt", enabled=progress and len(rows) > 0,
                          unit_scale=True) as bar:  # no empty bar for a rank left no rows
            for c in range(rows.start // n, last_condition) if n else ():
                stream = streams[keys[c]]
                while True:
                    for start, piece in stream.pieces(c):
                        yield start, piece
                        bar.update(len(piece))
                    if not stream.missing(c):
                        break
                    if stream.drawn >= max(tries * n * sizes[keys[c]], BLOCK):  # in-paint the rest
                        made = stream.made[c]
                        short.append((c, made, stream.missing(c), stream.drawn))
                        seed_c = int(np.random.SeedSequence([seed, c, 2]).generate_state(1)[0])
                        # All n - made of them, whatever this process writes: the same rows in each.
                        (_, found), = self.sample_chunks(n - made, given=given[c : c + 1], seed=seed_c,
                                                         chunk_size=n - made, preprocessed=preprocessed,
                                                         **{**changes, "reject_tries": 0})
                        stream.take(c, found)
                        continue
                    seed_b = int(np.random.SeedSequence([seed, stream.members[0], stream.blocks, 1])
                                 .generate_state(1)[0])
                    network_given = None if np.isnan(conditioned[c]).all() else conditioned[c : c + 1]
                    (_, encoded), = self.sample_chunks(BLOCK, given=network_given, seed=seed_b,
                                                      chunk_size=BLOCK, preprocessed=True, **changes)
                    decoded = self.encoder.inverse(encoded)
                    stream.deal(encoded if preprocessed else decoded, decoded, given)
        if short:
            c, found, missing, drawn = short[0]
            cells = ", ".join(f"{self.columns[j]}={format_value(self.schema[j], v)}"
                              for j, v in enumerate(given[c]) if not np.isnan(v))
            warnings.warn(f"given: the model drew {cells} in {found:,} of {drawn:,} rows (at most "
                          f"sample.reject_tries = {tries} per row asked for); the other {missing:,} rows are "
                          "in-painted, which keeps the labels but leaves the rest of each row nearer "
                          "its marginal" + (f" ({len(short)} conditions so)" if len(short) > 1 else ""),
                          stacklevel=3)

    def _given_denoiser(self, known: torch.Tensor, fill: bool, settings: SampleConfig,
                        dtype: torch.dtype, base: Callable) -> tuple[Callable, bool]:
        """The denoiser for rows with ``known`` cells, and whether some are in-painted.

        Known coordinates that the model learnt as its condition (all of them given in a row;
        any of them for learnt in-painting) reach the network as its condition input, mixed
        with the unconditional output by ``guidance`` (0: the condition is ignored altogether);
        every other known coordinate is in-painted. The denoiser returns the known values where
        it uses them. ``base`` is the sampler's denoiser, ``(x, sigma[, condition])``.
        """
        z, mask = self.encoder.known(known, fill=fill)
        z, mask = z.to(self.device, dtype), mask.to(self.device)
        condition, guidance = None, settings.guidance
        learnt = torch.zeros_like(mask)
        if self.condition is not None:
            shown = self.condition.shown_in(mask)
            if guidance == 0:  # the condition ignored altogether: neither shown nor in-painted
                mask &= self.condition.loss_weights(z, shown).bool()
            elif bool(shown.any()):
                condition = self.condition.inputs(z, shown)
                learnt = ~self.condition.loss_weights(z, shown).bool()
        inpaints = bool((mask & ~learnt).any())

        def denoise(x: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
            if condition is None:
                out = base(x, sigma)
            elif guidance == 1:
                out = base(x, sigma, condition, (learnt, z))
            else:
                unconditional = base(x, sigma)
                out = unconditional + guidance * (base(x, sigma, condition, (learnt, z)) - unconditional)
            return torch.where(mask, z, out)

        return denoise, inpaints


def beside_conditions(rows: pd.DataFrame, beside: pd.DataFrame, per_condition: int,
                      start: int) -> pd.DataFrame:
    """Sampled ``rows`` (those from ``start`` on, ``per_condition`` for each condition in
    turn) with the conditions' other columns (``beside``, one row per condition) first.

    >>> import pandas as pd
    >>> rows = pd.DataFrame({"x": [0.1, 0.2, 0.3]})
    >>> beside_conditions(rows, pd.DataFrame({"case": ["a", "b"]}), 2, 1).values.tolist()
    [['a', 0.1], ['b', 0.2], ['b', 0.3]]
    """
    import pandas as pd

    which = (start + np.arange(len(rows))) // per_condition
    return pd.concat([beside.iloc[which].set_axis(rows.index), rows], axis=1)


def _scoring_bar(rows: int, enabled: bool):
    """The progress bar of ``log_prob``: rows scored, advanced as each chunk's ODE climbs."""
    return progress_bar(rows, desc="log-density", unit="row", enabled=enabled)


def _on_coordinates(denoise: Callable, known: torch.Tensor, coordinates: list[int]) -> Callable:
    """``denoise`` of whole encoded rows as a denoiser of their ``coordinates`` alone, the
    others held at ``known``'s values (gradients reach the coordinates, for the divergence)."""

    def denoise_coordinates(y: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
        rows = known.to(y.dtype).clone()
        rows[:, coordinates] = y
        return denoise(rows, sigma)[:, coordinates]

    return denoise_coordinates


class _RejectionStream:
    """The rows one stream of whole rows has dealt to its conditions (``members``, in order),
    for ``sample_chunks``' reject sampling of ``n`` rows each: each process needs every member
    up to its range's end, and writes only the rows in ``rows``."""

    def __init__(self, members: list[int], n: int, rows: range):
        self.members, self.n, self.rows = members, n, rows
        self.needed = {c: min(n, rows.stop - c * n) for c in members}
        self.made = dict.fromkeys(members, 0)
        self.kept: dict[int, list[torch.Tensor]] = {c: [] for c in members}
        self.written: dict[int, int] = {}
        self.drawn = self.blocks = 0

    def missing(self, c: int) -> int:
        return self.needed[c] - self.made[c]

    def take(self, c: int, found: torch.Tensor) -> None:
        """Give condition ``c`` the first of ``found`` that it still needs (rows before the range
        are counted, not kept: another process writes them)."""
        found = found[: self.missing(c)]
        skip = min(len(found), max(0, self.rows.start - c * self.n - self.made[c]))
        self.kept[c].append(found[skip:])
        self.made[c] += len(found)

    def deal(self, out: torch.Tensor, decoded: torch.Tensor, given: np.ndarray) -> None:
        """Deal a block of rows (``out``; ``decoded`` in the data's units) to the members, each
        row to the first that still needs rows and whose given labels it carries."""
        free = torch.ones(len(decoded), dtype=torch.bool)
        for c in self.members:
            if not self.missing(c):
                continue
            cells = ~np.isnan(given[c])
            match = free & (decoded[:, cells] == torch.as_tensor(given[c][cells])).all(1)
            chosen = match.nonzero().flatten()[: self.missing(c)]
            free[chosen] = False
            self.take(c, out[chosen])
        self.drawn, self.blocks = self.drawn + len(decoded), self.blocks + 1

    def pieces(self, c: int) -> Iterator[tuple[int, torch.Tensor]]:
        """Condition ``c``'s rows kept so far for this process, in pieces that end at block
        boundaries (the writers group chunks by part); the last, shorter piece only once the
        condition has all its rows."""
        rows = torch.cat(self.kept[c]) if self.kept[c] else torch.empty(0)
        at = max(self.rows.start, c * self.n) + self.written.get(c, 0)
        end = at + len(rows) if not self.missing(c) else (at + len(rows)) // BLOCK * BLOCK
        self.kept[c] = [rows[max(0, end - at):]] if len(rows) else []
        while at < end:
            stop = min(end, (at // BLOCK + 1) * BLOCK)
            yield at, rows[: stop - at]
            self.written[c] = self.written.get(c, 0) + stop - at
            rows, at = rows[stop - at :], stop


class _BlockNoise:
    """Standard normal noise from one generator per block of ``BLOCK`` rows, drawn on the CPU
    (the same numbers on any device) and moved to ``device``."""

    def __init__(self, seed: int, first_block: int, rows: int, dim: int, dtype: torch.dtype,
                 device: torch.device = torch.device("cpu")):
        self.sizes = [min(BLOCK, rows - k) for k in range(0, rows, BLOCK)]
        self.generators = [
            torch.Generator().manual_seed(
                int(np.random.SeedSequence([seed, first_block + k]).generate_state(1)[0])
            )
            for k in range(len(self.sizes))
        ]
        self.dim, self.dtype, self.device = dim, dtype, device

    def draw(self) -> torch.Tensor:
        return torch.cat([
            torch.randn(size, self.dim, generator=g, dtype=self.dtype)
            for size, g in zip(self.sizes, self.generators)
        ]).to(self.device)

    def __call__(self, like: torch.Tensor) -> torch.Tensor:
        return self.draw()

