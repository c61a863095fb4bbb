"""Devices and processes: where tensors live, and how ranks launched by ``torchrun`` cooperate.

One model trains in several processes the way PyTorch's own launcher runs them: ``torchrun``
starts K copies of the command with ``RANK``, ``WORLD_SIZE`` and a rendezvous in the
environment; ``Ranks.from_environment`` joins them into one ``torch.distributed`` group (gloo on
CPUs, NCCL on GPUs). Nothing here knows about configs or files.

Every rank draws the same epoch (the same permutation, noise levels and noise: one generator,
seeded alike) and trains on its own share of each batch, B / K rows; the gradients are summed
over the ranks (``all_reduce``), so each rank takes the same Adam step and the weights stay
identical. The run is then the one-process run with the same global batch, whatever K, up to
the order of floating-point sums: a checkpoint written with K processes resumes with any other
number. Sampling splits its rows into whole chunks of fixed noise blocks, so a seed gives the
same rows whatever the number of processes.

>>> ranks = Ranks.from_environment()  # no torchrun here: one process
>>> ranks.rank, ranks.world_size, ranks.is_main
(0, 1, True)
>>> ranks.share(range(10))
range(0, 10)
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from ..choices import DEVICES
from ..errors import UserError, said


def resolve_device(choice: str = "auto", processes: int | None = None) -> torch.device:
    """The device of a ``--device`` choice for one of ``processes`` processes on this machine
    (default: torchrun's ``LOCAL_WORLD_SIZE``, else 1). ``auto`` takes a CUDA GPU when there is
    one for each process, else Apple's MPS for a single process, else the CPU; under ``torchrun``
    a CUDA rank takes the GPU of its ``LOCAL_RANK``. A device asked for but absent, or fewer GPUs
    than processes (NCCL serves one process per GPU), is a one-line error."""
    if choice not in DEVICES:
        raise UserError(f"unknown device {choice!r}; choose one of {', '.join(DEVICES)}")
    processes = int(os.environ.get("LOCAL_WORLD_SIZE", 1)) if processes is None else processes
    if choice == "auto":
        choice = ("cuda" if torch.cuda.is_available() and torch.cuda.device_count() >= processes
                  else "mps" if torch.backends.mps.is_available() and processes == 1 else "cpu")
    device = said("--device {}", "device {!r}").format  # the option, or the argument and setting
    if choice == "cuda":
        if not torch.cuda.is_available():
            raise UserError(f"{device('cuda')}: this torch sees no CUDA GPU (torch {torch.__version__}); "
                            f"use {device('cpu')} or auto")
        gpus = torch.cuda.device_count()
        if processes > gpus:
            fewer = said(f"--nproc {gpus} (one process per GPU)", f"one process per GPU ({gpus})")
            raise UserError(f"{device('cuda')}: {processes} processes on this machine need a GPU each, "
                            f"and torch sees {gpus}; use {fewer} or {device('cpu')}")
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    if choice == "mps" and not torch.backends.mps.is_available():
        raise UserError(f"{device('mps')}: this torch sees no Apple GPU; use {device('cpu')} or auto")
    return torch.device(choice)


@dataclass(frozen=True)
class Ranks:
    """This process's place among the processes of one run (rank 0 of 1 without torchrun)."""

    rank: int = 0
    world_size: int = 1

    @classmethod
    def from_environment(cls, device: torch.device | None = None) -> Ranks:
        """Join the process group that ``torchrun`` describes in the environment (once per
        process), or stay alone. gloo serves CPU tensors, NCCL CUDA ones."""
        world_size = int(os.environ.get("WORLD_SIZE", 1))
        if world_size == 1:
            return cls()
        import torch.distributed as dist

        if device is not None and device.type not in ("cpu", "cuda"):
            raise UserError(f"several processes train on CPUs or CUDA GPUs, not {device.type}: "
                            f"use {said('--device cpu', repr('cpu'))}, or one process")
        if not dist.is_initialized():
            backend = "nccl" if device is not None and device.type == "cuda" else "gloo"
            if backend == "nccl":
                torch.cuda.set_device(device)
            dist.init_process_group(backend)
        return cls(dist.get_rank(), dist.get_world_size())

    @property
    def is_main(self) -> bool:
        """Whether this process writes files and talks to the user."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    def share(self, items: Sequence) -> Sequence:
        """This rank's contiguous part of ``items``: the parts of all ranks, in rank order, are
        ``items``, and their sizes differ by at most one."""
        n = len(items)
        return items[self.rank * n // self.world_size : (self.rank + 1) * n // self.world_size]

    def share_rows(self, total: int, run: int) -> range:
        """This rank's contiguous part of ``total`` rows in whole runs of ``run`` rows (a
        sampler's blocks, a file's parts), as ``share`` gives out the runs."""
        runs = self.share(range(-(-total // run)))
        return range(runs.start * run, min(total, runs.stop * run)) if runs else range(0)

    def sum_(self, tensor: torch.Tensor) -> torch.Tensor:
        """Sum ``tensor`` over the ranks, in place (every rank gets the sum)."""
        if self.distributed:
            with _collective():
                torch.distributed.all_reduce(tensor)
        return tensor

    def any(self, flag: bool, device: torch.device | None = None) -> bool:
        """Whether ``flag`` is true on some rank (every rank gets the same answer)."""
        if not self.distributed:
            return flag
        return bool(self.sum_(torch.tensor([int(flag)], device=device)).item())

    def barrier(self) -> None:
        if self.distributed:
            with _collective():
                torch.distributed.barrier()

    def on_main(self, action: Callable[..., object], *args: Any, **kwargs: Any) -> None:
        """Run ``action`` on rank 0 only; a ``UserError`` it raises is raised on every rank, so
        that no rank waits for one that has given up."""
        message = None
        if self.is_main:
            try:
                action(*args, **kwargs)
            except UserError as exc:
                message = str(exc)
        if self.distributed:
            box = [message]
            torch.distributed.broadcast_object_list(box, src=0)
            message = box[0]
        if message is not None:
            raise UserError(message)


class LostRank(UserError):
    """Another process of the run stopped (killed, crashed) while this one waited for it."""


@contextlib.contextmanager
def _collective() -> Iterator[None]:
    """A collective operation, whose failure means that a peer is gone (gloo raises a bare
    RuntimeError: "Connection reset by peer")."""
    try:
        yield
    except RuntimeError as exc:
        # "[.../pair.cc:537] Read error [127.0.0.1]:6797: Connection reset by peer. This is ..."
        reason = re.sub(r"^\[[^\]]*\]\s*", "", str(exc).splitlines()[0]).split(". ")[0]
        raise LostRank(f"another process of the run stopped ({reason})") from exc


@contextlib.contextmanager
def stop_requests(ranks: Ranks) -> Iterator[list[bool]]:
    """Ctrl-C and SIGTERM while training. Alone, either raises ``KeyboardInterrupt`` at once.
    Among ranks, a signal only sets the flag yielded, which the ranks compare at each epoch's end
    (``Ranks.any``) so that all stop after the same epoch; a signalled rank that stopped at once
    would leave the others waiting in the next gradient sum."""
    requested = [False]

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    def defer(signum, frame):
        requested[0] = True

    handler = defer if ranks.distributed else interrupt
    signals = (signal.SIGTERM, signal.SIGINT) if ranks.distributed else (signal.SIGTERM,)
    try:
        previous = {s: signal.signal(s, handler) for s in signals}
    except ValueError:  # not in the main thread: leave signals alone
        yield requested
        return
    try:
        yield requested
    finally:
        for number, kept in previous.items():
            signal.signal(number, kept)


def launch(nproc: int, argv: list[str]) -> int:
    """Run ``simple-diffusion ARGV`` in ``nproc`` processes on this machine through torchrun
    (``torch.distributed.run``, standalone rendezvous); return its exit status: 0, 1 when a
    process failed, 130 when interrupted."""
    from torch.distributed import run
    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError

    args = ["--standalone", f"--nproc_per_node={nproc}", "-m", "simple_diffusion", *argv]
    threads = os.environ.get("OMP_NUM_THREADS")
    # The cores shared out (torchrun would give each process one, with a warning).
    os.environ["OMP_NUM_THREADS"] = threads or str(max(1, (os.cpu_count() or 1) // nproc))
    try:
        run.run(run.parse_args(args))  # torchrun's main, without its traceback on failure
    except ChildFailedError:  # rank 0 has said what went wrong
        return 1
    except SignalException:  # Ctrl-C or SIGTERM: torchrun passed it on, rank 0 saved and said so
        return 130
    finally:
        if threads is None:
            del os.environ["OMP_NUM_THREADS"]
    return 0


def leave() -> None:
    """Leave the process group, if this process joined one (before exiting: a process that exits
    inside the group aborts in gloo's threads)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()
