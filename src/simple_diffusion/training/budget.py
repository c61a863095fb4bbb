"""How long to train: a number of optimiser steps and a batch size that follow the data's size.

A fixed number of passes over the data starves a small table (120 rows at batch 256 get one step
per pass) and drowns a large one (a million rows would get a million steps). Instead the batch
grows with the rows (the power of two nearest n / 40, within [32, 512]) and the steps are 250
passes' worth, at least ``MIN_STEPS`` and at most ``MAX_STEPS``. At 10,000 rows this is the
budget the default was tuned with: batch 256, 250 passes (9,750 whole-batch steps).

Below ``SMALL_BELOW`` rows the data, not the step count, is what runs out: there the batch is the
power of two nearest n / 8 (within [32, 512]), the run takes ``MAX_STEPS`` steps, and the weights
kept are those of the epoch with the lowest validation loss (``keep_best``), so that a long run
cannot end learning its rows by heart; the run stops once a quarter of its epochs have passed
without a lower one (``train.patience``), which changes no weights kept but saves the time.
Measured on sbi's posterior tasks at 1,000 simulations, where one fixed budget cannot serve
both: two_moons keeps improving to thousands of passes, gaussian_linear overfits after a few
hundred (BENCHMARKS.md, "Conditioning"; patience ends its run at 851 epochs of 2,857).

>>> resolve(10_000)
Budget(batch_size=256, epochs=250, steps=9750, keep_best=False, validate_every=4)
>>> resolve(1_000)  # whole passes: the step budget rounded to a number of epochs
Budget(batch_size=128, epochs=2857, steps=19999, keep_best=True, validate_every=37)
>>> resolve(1_000_000).steps <= MAX_STEPS + resolve(1_000_000).steps_per_epoch
True
"""

from __future__ import annotations

import math
from dataclasses import dataclass

PASSES = 250
MIN_STEPS = 9_766
"""The budget the default was tuned with (250 passes over 10,000 rows at batch 256): a smaller
table trains no less (measured on tables: 5,000 steps fitted worse, BENCHMARKS.md)."""
MAX_STEPS = 20_000
MIN_BATCH, MAX_BATCH = 32, 512
ROWS_PER_BATCH = 40
SMALL_BELOW = 10_000
"""Training rows below which the small-data budget applies (all of ``MAX_STEPS``, ``keep_best``)."""
SMALL_ROWS_PER_BATCH = 8
VALIDATION_SPACING = 32_768
"""Training rows between two validation losses (the epochs between record none): a
validation of 1,000 rows then costs about 1% of the training between, where one every epoch of
10,000 rows cost 6-8% of the default's loop (BENCHMARKS.md, "Speed")."""


@dataclass(frozen=True)
class Budget:
    batch_size: int
    epochs: int
    steps: int
    keep_best: bool = False
    validate_every: int = 1

    @property
    def steps_per_epoch(self) -> int:
        return self.steps // self.epochs


def resolve(rows: int, steps: int = 0, epochs: int = 0, batch_size: int = 0,
            keep_best: str = "auto", validate_every: int = 0) -> Budget:
    """The budget for ``rows`` training rows; a non-zero ``steps``, ``epochs``, ``batch_size``
    or ``validate_every`` is kept (``epochs`` wins over ``steps``), and ``keep_best`` (``auto``:
    for small data, or ``yes``/``no``). Steps are whole passes: the nearest number of epochs to
    the step budget; validations are ``VALIDATION_SPACING`` training rows apart."""
    small = rows < SMALL_BELOW
    if not batch_size:
        per_batch = SMALL_ROWS_PER_BATCH if small else ROWS_PER_BATCH
        power = round(math.log2(max(rows, 1) / per_batch)) if rows > per_batch else 0
        batch_size = min(MAX_BATCH, max(MIN_BATCH, 2**power))
    batch_size = min(batch_size, rows)
    per_epoch = max(1, rows // batch_size)
    if not epochs:
        if not steps:
            steps = MAX_STEPS if small else min(MAX_STEPS, max(MIN_STEPS, round(PASSES * rows / batch_size)))
        epochs = max(1, round(steps / per_epoch))
    best = small if keep_best == "auto" else keep_best == "yes"
    validate_every = validate_every or math.ceil(VALIDATION_SPACING / (per_epoch * batch_size))
    return Budget(batch_size, epochs, epochs * per_epoch, best, validate_every)
