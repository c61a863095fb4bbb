"""Distillation: a student network that samples in a few evaluations what the teacher samples
in fifty.

The teacher's deterministic solver (DPM-Solver++(3M), ``TEACHER_STEPS`` steps) maps starting
noise to samples; the student learns to denoise the straight paths between the two
(``objective.StraightPaths``: rectified flow's reflow, Liu et al. 2023, at the student's own
noise levels only), starting from the teacher's weights. DDIM then walks those levels in
``num_steps`` network evaluations; one step is the direct regression of Luhman & Luhman (2021).
A conditional teacher's student learns its paths given condition columns too (and the joint's,
as the teacher trained with condition dropout); a teacher trained to in-paint gets a student of
its joint. Why these settings: BENCHMARKS.md, "Few-step sampling".

>>> import simple_diffusion as sd
>>> teacher = sd.fit("two_gaussians", epochs=2, progress=False)
>>> student = distill(teacher, num_steps=3, pairs=8192, train_steps=16, progress=False)
>>> [round(sigma, 3) for sigma in student.sigmas.tolist()]  # DDIM's levels, evaluated 3 times
[10.0, 1.0, 0.1, 0.0]
"""

from __future__ import annotations

import copy
import functools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from ..diffusion import samplers
from ..diffusion.objective import ColumnCondition, StraightPaths
from ..diffusion.schedules import ve_scale
from ..errors import UserError
from ..progress import bar as progress_bar
from .loop import Trainer

if TYPE_CHECKING:
    from ..model import DiffusionModel

TEACHER_STEPS = 20
"""Steps of the teacher's deterministic solver that makes the pairs: its samples score within
the spread of fifty (BENCHMARKS.md)."""
STUDENT_SIGMA_MIN = 0.1
"""The student's lowest level before 0: below it a denoiser returns its input nearly unchanged,
so a step there would be a wasted evaluation."""
VALIDATION_PAIRS = 4096
PAIR_CHUNK = 8192


@dataclass
class Student:
    """A few-step sampler: a network with the teacher's architecture and the noise levels DDIM
    walks with it (ending at 0)."""

    net: nn.Module
    sigmas: torch.Tensor
    prediction_type: str = "sample"
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def network_evaluations(self) -> int:
        return len(self.sigmas) - 1

    @property
    def conditional(self) -> bool:
        """Whether it samples given its model's condition columns (else from the joint only)."""
        return bool(self.info.get("conditional", False))


def learns_a_condition(model: DiffusionModel) -> bool:
    """Whether a student of ``model`` learns to sample given its condition columns: a conditional
    model sampled with its guidance (at 0, which ignores the condition, the student learns the
    joint alone, as for a model trained to in-paint)."""
    return isinstance(model.condition, ColumnCondition) and model.sampling_settings().guidance != 0


def student_sigmas(model: DiffusionModel, num_steps: int) -> torch.Tensor:
    """The student's levels: ``num_steps`` evenly in log sigma from the run's top sampling level
    to ``STUDENT_SIGMA_MIN``, then 0."""
    return model.schedule.sampling_sigmas(num_steps, "logsnr", model.config.sample.sigma_max,
                                          STUDENT_SIGMA_MIN)


@torch.inference_mode()
def teacher_pairs(model: DiffusionModel, n: int, top: float, seed: int,
                  progress: bool = False) -> torch.Tensor:
    """Rows [x_0 | e] of ``n`` straight paths: the teacher's deterministic samples x_0 (encoded)
    from starting points x_T at level ``top``, and the slopes e = (x_T - x_0) / top.

    A conditional teacher's rows end in a flag: where it is 1 (the share of rows that training
    showed their condition), x_0 is drawn given condition columns taken from the teacher's own
    joint samples of other noise (so a condition is independent of its row's x_T, as when a
    user gives one); where it is 0, from the joint."""
    dtype = next(model.net.parameters()).dtype
    sigmas = model.schedule.sampling_sigmas(TEACHER_STEPS, "logsnr", top,
                                            model.config.sample.sigma_min).to(dtype)
    generator = torch.Generator().manual_seed(seed)
    start = torch.randn(n, model.latent_dim, generator=generator, dtype=dtype) * ve_scale(sigmas[0])
    settings = model.sampling_settings()
    conditional = learns_a_condition(model)
    shown = (torch.rand(n, generator=generator) >= model.condition.dropout if conditional
             else torch.zeros(n, dtype=torch.bool))
    sources = torch.randn(int(shown.sum()), model.latent_dim, generator=generator, dtype=dtype)
    x0 = torch.empty_like(start)
    denoise = functools.partial(model.denoise, activations={})
    others = [j for j in range(model.dim) if j not in model.condition_positions]
    with progress_bar(n + len(sources), desc="teacher pairs", unit="pt", enabled=progress,
                      unit_scale=True) as bar:

        def solve(given_denoise: Callable, noise: torch.Tensor) -> torch.Tensor:
            samples = samplers.dpmpp_3m(given_denoise, noise, sigmas)
            bar.update(len(noise))
            return samples

        for rows in torch.arange(n)[~shown].split(PAIR_CHUNK):
            x0[rows] = solve(denoise, start[rows])
        for noise, rows in zip(sources.split(PAIR_CHUNK), torch.arange(n)[shown].split(PAIR_CHUNK)):
            conditions = model.encoder.inverse(solve(denoise, noise * ve_scale(sigmas[0])).double())
            conditions[:, others] = torch.nan
            # A joint row without a condition cell is drawn as such: from the joint, shown nothing.
            shown[rows] = ~conditions[:, model.condition_positions].isnan().any(1)
            given_denoise, _ = model._given_denoiser(conditions, False, settings, dtype, denoise)
            x0[rows] = solve(given_denoise, start[rows])
    pairs = [x0, (start - x0) / sigmas[0]]
    return torch.cat([*pairs, shown.to(dtype).unsqueeze(-1)] if conditional else pairs, dim=1)


def distill(
    model: DiffusionModel,
    *,
    num_steps: int = 1,
    pairs: int = 65_536,
    train_steps: int = 4_000,
    batch_size: int = 256,
    lr: float = 4e-3,
    seed: int = 0,
    prediction_type: str = "sample",
    progress: bool = True,
) -> Student:
    """Train a ``num_steps``-evaluation student of ``model`` on ``pairs`` teacher samples for
    ``train_steps`` Adam steps (cosine decay from ``lr``, EMA 0.999).

    The student predicts x_0 (``prediction_type="sample"``) whatever the teacher predicts: at
    the top level a noise prediction reaches x_0 only through a division by alpha (about 0.1),
    which magnifies its errors tenfold (measured in BENCHMARKS.md).
    """
    if num_steps < 1 or pairs < 2 * VALIDATION_PAIRS or train_steps < 1:
        raise UserError(f"distill needs num_steps >= 1, pairs >= {2 * VALIDATION_PAIRS} and "
                        f"train_steps >= 1 (got {num_steps}, {pairs}, {train_steps})")
    start = time.perf_counter()
    sigmas = student_sigmas(model, num_steps)
    paths = teacher_pairs(model, pairs, float(sigmas[0]), seed, progress)
    conditional = learns_a_condition(model)
    pair_seconds = time.perf_counter() - start
    net = copy.deepcopy(model.net).train()
    for p in net.parameters():
        p.requires_grad_(True)
    train, val = paths[VALIDATION_PAIRS:], paths[:VALIDATION_PAIRS]
    steps_per_epoch = len(train) // min(batch_size, len(train))
    trainer = Trainer(
        net, StraightPaths(model.schedule, prediction_type, sigmas, gaussian=model.gaussian,
                           condition=model.condition if conditional else None), train, val,
        epochs=math.ceil(train_steps / steps_per_epoch), batch_size=batch_size, lr=lr,
        ema_decay=0.999, seed=seed, device=model.device,
    )
    history = trainer.run(progress=progress)
    info = {"num_steps": num_steps, "pairs": pairs, "train_steps": trainer.total_steps,
            "teacher_steps": TEACHER_STEPS, "pair_seconds": pair_seconds,
            "seconds": time.perf_counter() - start, "val_loss": history[-1]["val_loss"], "seed": seed,
            "conditional": conditional, "guidance": model.sampling_settings().guidance}
    return Student(trainer.averaged_net(), sigmas.to(torch.float32), prediction_type, info)
