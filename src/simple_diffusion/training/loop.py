"""The training loop: DDPM's Algorithm 1 with validation, EMA, a learning-rate schedule and a
resumable state.

Each epoch reshuffles the training set and walks it in full batches (the last partial batch is
dropped, as in the seed). The epoch's timesteps, noise, noisy inputs and regression targets are
drawn at once, so a step is only the network's forward, backward and one fused Adam update.

>>> import torch
>>> from simple_diffusion.diffusion import denoisers, objective, schedules
>>> schedule = schedules.cosine(1000)
>>> net = denoisers.MLP(1, [32, 32], denoisers.FourierTime(8, 1000), "silu")
>>> trainer = Trainer(net, objective.Objective(schedule, "v"), torch.randn(500, 1), torch.randn(50, 1),
...                   epochs=2, batch_size=50, lr=1e-3)
>>> history = trainer.run(progress=False)
>>> len(history), sorted(history[0])
(2, ['epoch', 'seconds', 'train_loss', 'val_loss'])
"""

from __future__ import annotations

import contextlib
import copy
import math
import time
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import nn

from ..diffusion.objective import Objective, StraightPaths
from ..errors import UserError
from ..progress import bar as progress_bar
from . import engine
from .distributed import Ranks

VALIDATION_DRAWS = 8192
"""Noisy draws of the validation rows that ``keep_best`` compares epochs on (the rows repeated
with fresh noise levels and noise): enough that the choice follows the model, not the draws."""
SEGMENT_ROWS = 1 << 20
"""Rows of an epoch drawn at once (noise levels, noise, network inputs): an epoch of a larger
table is drawn in segments, so that memory does not grow with the table beyond its rows."""


class TrainingDiverged(UserError):
    """The loss became NaN or infinite."""


TWO_THREADS_FROM = 4e7
"""Floating-point operations per training step from which a second thread pays: on the 2-core
development machine about 1.0x up to 21 million, 1.2-1.3x from 41 million, 1.7x at 661 million
(BENCHMARKS.md, "Threads"; whole default runs on moons: 10.2-11.0 s with one, 8.1-8.4 s with two)."""


def choose_threads(net: nn.Module, batch_size: int) -> int:
    """One thread for small steps, where a second only adds synchronisation; for larger ones as
    many as torch may use in this process (at most 4): ``OMP_NUM_THREADS``, which torchrun and
    joblib's workers set to share the cores out, or the machine's cores."""
    flops_per_step = 6 * batch_size * sum(p.numel() for p in net.parameters())
    if flops_per_step < TWO_THREADS_FROM:
        return 1
    return max(1, min(4, torch.get_num_threads()))


def _adam(params: list[torch.Tensor], lr: float) -> torch.optim.Adam:
    fused = engine.fused_adam_available(params[0].device.type)
    return torch.optim.Adam(params, lr=lr, fused=fused or None, foreach=None if fused else True)


class Trainer:
    """Optimises ``net`` on ``objective``'s draws from the rows of ``train``, holding everything
    needed to resume.

    Adam with ``lr``, after ``warmup_steps`` either constant or (``lr_schedule="cosine"``)
    decaying to zero at the last step; an exponential moving average of the weights with
    ``ema_decay`` (0: none) is what sampling uses; a gradient longer than ``max_grad_norm`` (0:
    any) is scaled down to it. ``seed`` fixes batch order, noise levels and
    noise; ``threads = 0`` chooses from the network size; ``fast`` uses the explicit engine for
    the built-in MLPs. With the objective's ``condition`` the network learns to use the condition columns
    (and, on the rows that hide them, to do without). ``keep_best`` keeps the weights of the
    epoch with the lowest validation loss (measured on the same noise draws every epoch, so that
    epochs compare on the model alone) rather than the last: on small data, where the network
    starts to learn its training rows by heart, it stops there (as sbi's NPE stops early), and
    with ``patience`` the run ends once that share of its epochs has passed without a lower
    validation loss. The validation loss is measured every ``validate_every`` epochs and after
    the last.
    """

    def __init__(
        self,
        net: nn.Module,
        objective: Objective | StraightPaths,
        train: torch.Tensor,
        val: torch.Tensor,
        *,
        epochs: int,
        batch_size: int,
        lr: float,
        lr_schedule: str = "cosine",
        warmup_steps: int = 0,
        ema_decay: float = 0.0,
        max_grad_norm: float = 0.0,
        seed: int = 0,
        threads: int = 0,
        fast: bool = True,
        keep_best: bool = False,
        patience: float = 0.0,
        validate_every: int = 1,
        device: torch.device | str = "cpu",
        ranks: Ranks = Ranks(),
    ):
        self.device, self.ranks = torch.device(device), ranks
        self.net, self.objective = net.to(self.device), objective
        self.keep_best, self.patience, self.validation_seed = keep_best, patience, seed + 1
        self._fixed_validation: tuple | None = None
        self.best: tuple[float, int, list[torch.Tensor]] | None = None
        """(validation loss, epoch, weights) of the best epoch so far, with ``keep_best``."""
        self.epochs, self.lr, self.lr_schedule, self.max_grad_norm = epochs, lr, lr_schedule, max_grad_norm
        self.warmup_steps, self.ema_decay = warmup_steps, ema_decay
        self.dtype = next(net.parameters()).dtype
        self.train_data = train.to(self.dtype)
        self.val_data = val.to(self.dtype)
        self.batch_size = min(batch_size, len(train))
        if self.batch_size % ranks.world_size:
            raise UserError(f"a batch of {self.batch_size} rows does not split evenly over "
                            f"{ranks.world_size} processes: choose a process count that divides it "
                            "(or set train.batch_size)")
        self.local_batch = self.batch_size // ranks.world_size
        """The rows of each batch that this rank computes."""
        self.steps_per_epoch = len(train) // self.batch_size
        self.total_steps = self.steps_per_epoch * epochs
        self.validate_every = validate_every
        """Epochs between two validation losses; the epochs between record NaN."""
        self.threads = threads or choose_threads(net, self.local_batch)
        if fast and engine.supports(net):
            flat, grad = engine.flatten_parameters(net)
            self.fast: engine.FastMLP | None = engine.FastMLP(net, flat, grad, self.local_batch)
            # The fast path passes d(loss)/d(output) unscaled: residual = (N / 2) * gradient.
            multiplier = self.batch_size * net.dim / 2
            self.optimizer: Any = engine.FlatAdam(flat, grad, lr, gradient_multiplier=multiplier,
                                                  max_grad_norm=max_grad_norm)
            self.params = [flat]
        else:
            self.fast = None
            self.params = [p for p in net.parameters() if p.requires_grad]
            self.optimizer = _adam(self.params, lr)
        self.forward_net: nn.Module = net
        """What the loss calls: the network, wrapped by DDP among ranks (autograd only)."""
        if ranks.distributed and self.fast is None:
            from torch.nn.parallel import DistributedDataParallel

            self.forward_net = DistributedDataParallel(
                net, device_ids=[self.device] if self.device.type == "cuda" else None)
        self.ema = [p.detach().clone() for p in self.params] if ema_decay > 0 else None
        self.generator = torch.Generator().manual_seed(seed)
        self.val_generator = torch.Generator().manual_seed(seed + 1)
        self.epoch = 0
        self.history: list[dict[str, float]] = []
        self.lr_segments: list[tuple[int, float, int]] = [(0, lr, self.total_steps)]
        """(first step, learning rate there, step where it reaches zero) of each cosine decay:
        one, plus one per extension of the run."""

    # -- one epoch ---------------------------------------------------------------------------
    def _learning_rate(self, step: int) -> float:
        """Warm-up, then a cosine decay to zero at the last step.

        A run extended with more epochs adds a segment: the decay restarts from the learning
        rate it had reached (no jump) or, if the run had finished, from ``lr`` (a warm restart,
        Loshchilov and Hutter 2017), and reaches zero at the new last step.
        """
        first, peak, end = next(segment for segment in reversed(self.lr_segments) if segment[0] <= step)
        warm = min(1.0, (step + 1) / self.warmup_steps) if self.warmup_steps and first == 0 else 1.0
        if self.lr_schedule == "constant":
            return self.lr * warm
        span = max(1, end - first)
        return peak * warm * 0.5 * (1 + math.cos(math.pi * (step - first) / span))

    def extend(self, epochs: int) -> None:
        """Train up to ``epochs`` in all (after resuming), continuing the learning-rate schedule."""
        if epochs < self.epoch:
            raise UserError(f"the run has already trained {self.epoch} epochs; ask for at least that")
        if epochs == self.epochs:
            return
        step = self.epoch * self.steps_per_epoch
        finished = self.epoch >= self.epochs
        peak = self.lr if finished else self._learning_rate(step)
        self.epochs = epochs
        self.total_steps = self.steps_per_epoch * epochs
        self.lr_segments.append((step, peak, self.total_steps))

    def _set_learning_rate(self, lr: float) -> None:
        self.optimizer.param_groups[0]["lr"] = lr

    def _train_epoch(self) -> torch.Tensor:
        """Run one epoch; return the per-step losses (averaged over the ranks).

        The epoch's draws are made a segment of ``SEGMENT_ROWS`` rows at a time, so that memory
        follows the segment, not the table; an epoch of fewer rows is one segment.
        """
        b, steps = self.batch_size, self.steps_per_epoch
        order = torch.randperm(len(self.train_data), generator=self.generator)[: steps * b]
        segment_steps = max(1, SEGMENT_ROWS // b)
        constant_lr = self.lr_schedule == "constant" and not self.warmup_steps
        losses = []
        for first in range(0, steps, segment_steps):
            x0 = self.train_data[order[first * b : (first + segment_steps) * b]]
            x_t, t, target, shown = self.objective.draw(x0, self.generator)
            condition, weights = self.objective.shows(x0, shown)
            x_t, t, target, condition, weights = (self._mine(v) for v in (x_t, t, target, condition, weights))
            first_step = self.epoch * steps + first
            if self.fast is not None:
                inputs = self.net.inputs(x_t, t, condition, ones_column=True)
                losses.append(self._fast_steps(inputs, target, weights, first_step, constant_lr))
            else:
                losses.append(self._autograd_steps(x_t, t, target, condition, weights, first_step,
                                                   constant_lr))
        return self.ranks.sum_(torch.cat(losses)).cpu() / self.ranks.world_size

    def _mine(self, values: torch.Tensor | None) -> torch.Tensor | None:
        """This rank's rows of every batch of a segment's draws, on the training device."""
        if values is None or not self.ranks.distributed:
            return None if values is None else values.to(self.device)
        b, rank = self.local_batch, self.ranks.rank
        per_step = values.reshape(-1, self.batch_size, *values.shape[1:])
        return per_step[:, rank * b : (rank + 1) * b].reshape(-1, *values.shape[1:]).to(self.device)

    def _autograd_steps(self, x_t, t, target, condition, weights, first_step: int,
                        constant_lr: bool) -> torch.Tensor:
        b = self.local_batch
        steps = len(target) // b
        losses = torch.empty(steps, dtype=self.dtype, device=self.device)
        for i, start in enumerate(range(0, steps * b, b)):
            batch = slice(start, start + b)
            if not constant_lr:
                self._set_learning_rate(self._learning_rate(first_step + i))
            self.optimizer.zero_grad(set_to_none=True)
            loss = self._loss(x_t[batch], t[batch], target[batch],
                              None if condition is None else condition[batch],
                              None if weights is None else weights[batch], self.forward_net)
            loss.backward()  # DDP averages the ranks' gradients here
            losses[i] = loss.detach()
            if self.max_grad_norm:
                nn.utils.clip_grad_norm_(self.params, self.max_grad_norm)
            self.optimizer.step()
            self._update_ema(first_step + i + 1)
        return losses

    def _loss(self, x_t, t, target, condition, weights, net: nn.Module | None = None) -> torch.Tensor:
        """The mean squared error of the network's output (over the coordinates it must learn)."""
        net = net or self.net
        output = net(x_t, t) if condition is None else net(x_t, t, condition)
        if weights is None:
            return nn.functional.mse_loss(output, target)
        return ((output - target).square() * weights).mean()

    @torch.no_grad()
    def _fast_steps(self, inputs, target, weights, first_step: int, constant_lr: bool) -> torch.Tensor:
        b = self.local_batch
        residual = torch.empty_like(target)
        fast, optimizer, ranks = self.fast, self.optimizer, self.ranks
        steps = len(target) // b
        weight_batches = weights.split(b) if weights is not None else [None] * steps
        batches = zip(inputs.split(b), target.split(b), residual.split(b), weight_batches)
        for i, (input_batch, target_batch, residual_batch, weight_batch) in enumerate(batches):
            if not constant_lr:
                self._set_learning_rate(self._learning_rate(first_step + i))
            torch.sub(fast.forward(input_batch), target_batch, out=residual_batch)
            if weight_batch is not None:
                residual_batch.mul_(weight_batch)
            fast.backward(residual_batch)  # the gradient times the optimiser's multiplier
            ranks.sum_(optimizer.grad)  # the whole batch's: a sum over rows, so over ranks
            optimizer.step()
            self._update_ema(first_step + i + 1)
        return residual.square().reshape(steps, -1).mean(1)

    def _update_ema(self, step: int) -> None:
        if self.ema is not None:
            # The decay warms up so that the average is not dominated by the random start.
            decay = min(self.ema_decay, (1 + step) / (10 + step))
            torch._foreach_lerp_(self.ema, self.params, 1 - decay)

    @torch.no_grad()
    def validation_loss(self) -> float:
        """The loss on the validation rows of the weights that are saved (the EMA's, if any)."""
        if self.keep_best:
            # The same draws every time: made once (with a Gaussian part conditioned on each
            # row's shown cells they cost as much as a tenth of training to remake).
            if self._fixed_validation is None:
                rows = self.val_data.repeat(-(-VALIDATION_DRAWS // len(self.val_data)), 1)
                self._fixed_validation = self._validation_draws(
                    rows, torch.Generator().manual_seed(self.validation_seed))
            draws = self._fixed_validation
        else:
            draws = self._validation_draws(self.val_data, self.val_generator)
        with self._averaged_weights():
            return float(self._loss(*draws))

    def _validation_draws(self, rows: torch.Tensor, generator: torch.Generator) -> tuple:
        """The loss's inputs for validation ``rows``, on the training device."""
        x_t, t, target, shown = self.objective.draw(rows, generator, validation=True)
        condition, weights = self.objective.shows(rows, shown)
        return tuple(None if v is None else v.to(self.device) for v in (x_t, t, target, condition, weights))

    @contextlib.contextmanager
    def _averaged_weights(self) -> Iterator[None]:
        """Swap the EMA weights into the network for the duration of the block."""
        if self.ema is None:
            yield
            return
        live = [p.detach().clone() for p in self.params]
        with torch.no_grad():
            torch._foreach_copy_(self.params, self.ema)
        try:
            yield
        finally:
            with torch.no_grad():
                torch._foreach_copy_(self.params, live)

    # -- the loop ----------------------------------------------------------------------------
    def run(
        self,
        progress: bool = True,
        on_epoch_end: Callable[[Trainer], None] | None = None,
    ) -> list[dict[str, float]]:
        """Train until ``epochs``; call ``on_epoch_end`` after each epoch."""
        previous_threads = torch.get_num_threads()
        torch.set_num_threads(self.threads)
        bar = progress_bar(self.total_steps, initial=self.epoch * self.steps_per_epoch,
                           enabled=progress, desc="training", unit="step")
        elapsed = self.history[-1]["seconds"] if self.history else 0.0
        start = time.perf_counter() - elapsed
        measured = [h["val_loss"] for h in self.history if not math.isnan(h["val_loss"])]
        shown = measured[-1] if measured else math.nan  # the last validation loss, for the bar
        try:
            self.net.train()
            while self.epoch < self.epochs and not self._stopping():
                losses = self._train_epoch()
                self._check_finite(losses)
                train_loss = float(losses.mean())
                self.epoch += 1
                if self.epoch % self.validate_every and self.epoch < self.epochs and self.history:
                    val_loss = math.nan  # not measured this epoch: an empty cell in losses.csv
                else:
                    val_loss = shown = self.validation_loss()
                    if self.keep_best and (self.best is None or val_loss < self.best[0]):
                        weights = self.ema if self.ema is not None else self.params
                        self.best = (val_loss, self.epoch, [w.detach().clone() for w in weights])
                self.history.append({
                    "epoch": self.epoch, "train_loss": train_loss, "val_loss": val_loss,
                    "seconds": time.perf_counter() - start,
                })
                bar.set_postfix(epoch=self.epoch, train=f"{train_loss:.4g}", val=f"{shown:.4g}",
                                refresh=False)
                bar.update(self.steps_per_epoch)
                if on_epoch_end is not None:
                    on_epoch_end(self)
        finally:
            bar.close()
            torch.set_num_threads(previous_threads)
        return self.history

    def _check_finite(self, losses: torch.Tensor) -> None:
        bad = (~torch.isfinite(losses)).nonzero()
        if len(bad):
            step = int(bad[0])
            raise TrainingDiverged(
                f"training diverged at epoch {self.epoch + 1}, step {step + 1}: the loss became "
                f"{float(losses[step])}; the learning rate ({self.lr:g}) is likely too high"
            )

    def _stopping(self) -> bool:
        """``out_of_patience``, decided together among ranks (one that stopped alone would leave
        the others waiting in the next step's all-reduce), asked only where it can turn true so
        that the ranks' questions line up."""
        return self._patience_checked and self.ranks.any(self.out_of_patience, self.device)

    # -- results and resumption --------------------------------------------------------------
    @property
    def out_of_patience(self) -> bool:
        """Whether ``patience``'s share of the epochs has passed since the best epoch, as of the
        last validation: a function of the history alone, so that a resumed run stops where the
        uninterrupted one did."""
        return (self._patience_checked and self.best is not None
                and self.epoch - self.best[1] >= self.patience * self.epochs)

    @property
    def _patience_checked(self) -> bool:
        """Whether ``patience`` can end the run here: it is set and the last epoch validated."""
        return self.patience > 0 and bool(self.history) and not math.isnan(self.history[-1]["val_loss"])

    @property
    def best_epoch(self) -> int | None:
        """The epoch whose weights ``averaged_net`` returns with ``keep_best``."""
        return None if self.best is None else self.best[1]

    def averaged_net(self) -> nn.Module:
        """A copy of the network with the EMA weights (or the last weights without EMA); with
        ``keep_best``, those of the best epoch."""
        net = copy.deepcopy(self.net).eval()
        chosen = self.best[2] if self.best is not None else self.ema
        if chosen is not None:
            averages = engine.parameter_views(chosen[0], net) if self.fast is not None else chosen
            with torch.no_grad():
                for p, average in zip((p for p in net.parameters() if p.requires_grad), averages):
                    p.copy_(average)
        for p in net.parameters():
            p.grad = None
            p.data = p.data.clone(memory_format=torch.contiguous_format)  # own storage, not a view
        return net

    def state_dict(self) -> dict[str, Any]:
        """Everything that decides the rest of the run, to resume it bit for bit.

        Taken after every epoch (so that an interruption saves the last complete one), it copies
        only what training changes in place: the weights, the optimiser's moments and the EMA.
        The history's entries and the best epoch's weights are never changed once made, so they
        are shared (a copy of the history each epoch made a run of many short epochs quadratic)."""
        return {
            "net": {k: v.clone() for k, v in self.net.state_dict().items()},
            "optimizer": copy.deepcopy(self.optimizer.state_dict()),
            "ema": [e.clone() for e in self.ema] if self.ema is not None else None,
            "generator": self.generator.get_state(),
            "val_generator": self.val_generator.get_state(),
            "epoch": self.epoch,
            "history": list(self.history),
            "lr_segments": [list(segment) for segment in self.lr_segments],
            "best": None if self.best is None else [self.best[0], self.best[1], list(self.best[2])],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.net.load_state_dict(state["net"])
        self.optimizer.load_state_dict(state["optimizer"])
        if self.ema is not None and state["ema"] is not None:
            for e, saved in zip(self.ema, state["ema"]):
                e.copy_(saved)
        self.generator.set_state(state["generator"])
        self.val_generator.set_state(state["val_generator"])
        self.epoch = state["epoch"]
        self.history = copy.deepcopy(state["history"])
        segments = state.get("lr_segments") or [(0, self.lr, self.total_steps)]  # one decay
        self.lr_segments = [(int(first), float(lr), int(end)) for first, lr, end in segments]
        best = state.get("best")
        self.best = None if best is None else (float(best[0]), int(best[1]), [w.clone() for w in best[2]])
