"""What a denoiser learns: for clean rows x_0, a noise level, the noise, the noisy input x_t and
the regression target (DDPM's Algorithm 1, Ho et al. 2020, with continuous noise levels as an
option); for a conditional model, which rows show the network their condition columns
(``ColumnCondition``), or which random cells of each row (``CellMasks``). How it is optimised
lives in ``training/loop.py``.

>>> import torch
>>> from simple_diffusion.diffusion import schedules
>>> objective = Objective(schedules.cosine(1000), "epsilon", timesteps="continuous")
>>> x_t, t, target, shown = objective.draw(torch.zeros(4, 2), torch.Generator().manual_seed(0))
>>> x_t.shape, t.shape, target.shape, shown
(torch.Size([4, 2]), torch.Size([4]), torch.Size([4, 2]), None)
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from . import prediction
from .gaussian import GaussianPart
from .schedules import Schedule, vp_scales


class Objective:
    """Draws of (x_t, t, target) for training ``prediction_type`` on a schedule.

    ``timesteps`` says how noise levels are drawn: ``discrete`` (whole t uniform in
    [t_min, t_max], as DDPM), ``continuous`` (real t uniform) or ``logsnr`` (log sigma uniform
    between the levels of t_min and the top sampling starts from: every sampler step gets equal
    attention). ``t_max = 0`` means the schedule's last timestep. A ``condition`` says what
    each row shows the network (drawn after the noise). With a ``gaussian`` part the target is
    what the network adds to it (conditioned on what is shown).
    """

    def __init__(self, schedule: Schedule, prediction_type: str = "epsilon", *,
                 timesteps: str = "continuous", t_min: int = 1, t_max: int = 0,
                 condition: Condition | None = None, gaussian: GaussianPart | None = None):
        self.schedule, self.prediction_type, self.timesteps = schedule, prediction_type, timesteps
        self.condition, self.gaussian = condition, gaussian
        self.t_min, self.t_max = t_min, t_max or schedule.num_timesteps
        top = min(float(schedule.sigmas[self.t_max]), schedule.sampling_top())
        self.log_sigma_range = (math.log(schedule.sigmas[t_min]), math.log(top))
        # x_t = signal * x_0 + noise * eps at each whole timestep (the VP scales).
        self._signal = schedule.alphas_cumprod.sqrt()
        self._noise = (1 - schedule.alphas_cumprod).sqrt()

    def draw(self, x0: torch.Tensor, generator: torch.Generator, validation: bool = False):
        """Timesteps, noisy inputs and targets for the rows of ``x0``, in its dtype, and what
        each row shows the network (None without a condition; as validation shows it with
        ``validation``)."""
        dtype = x0.dtype
        if self.timesteps == "discrete":
            t = torch.randint(self.t_min, self.t_max + 1, (len(x0),), generator=generator)
            alpha, sigma_vp = self._signal.to(dtype)[t], self._noise.to(dtype)[t]
        else:
            u = torch.rand(len(x0), generator=generator, dtype=torch.float64)
            if self.timesteps == "continuous":
                t = self.t_min + (self.t_max - self.t_min) * u
                sigma = self.schedule.t_to_sigma(t)
            else:
                low, high = self.log_sigma_range
                sigma = (low + (high - low) * u).exp()
                t = self.schedule.sigma_to_t(sigma)
            alpha, sigma_vp = vp_scales(sigma, dtype)
            t = t.to(dtype)
        alpha, sigma_vp = alpha.unsqueeze(-1), sigma_vp.unsqueeze(-1)
        noise = torch.randn(x0.shape, generator=generator, dtype=dtype)
        x_t = alpha * x0 + sigma_vp * noise
        shown = known = None
        if self.condition is not None:
            draw_shown = self.condition.validation_shown if validation else self.condition.draw_shown
            shown = draw_shown(len(x0), generator)
            if self.gaussian is not None:  # only the Gaussian part needs the shown coordinates
                known = (self.condition.loss_weights(x0, shown) == 0, x0)
        return x_t, t, network_target(self, x0, noise, x_t, alpha, sigma_vp, known), shown

    def shows(self, x0: torch.Tensor, shown: torch.Tensor | None):
        """The network's condition input and the loss weights for clean rows ``x0`` that show
        ``shown`` (None, None for an unconditional model)."""
        return condition_inputs(self.condition, x0, shown)


def condition_inputs(condition: Condition | None, x0: torch.Tensor, shown: torch.Tensor | None):
    """``condition``'s network input and loss weights for clean rows ``x0`` (None, None where
    nothing is shown)."""
    if condition is None or shown is None:
        return None, None
    return condition.inputs(x0, shown), condition.loss_weights(x0, shown)


class CalendarTerms:
    """The sine and cosine of a date's phase in calendar cycles (a year, a week, a day), as
    Prophet's Fourier terms (Taylor & Letham 2018): beside a date given as one number, a network
    sees where it falls in each cycle, which an MLP of that number alone cannot resolve over
    many cycles (its spectral bias: Tancik et al. 2020). One pair per cycle: the network makes
    the cycle's shape from the point on the circle (more harmonics measured no better).

    ``position`` is the date's place among the condition's coordinates, ``to_days`` maps its
    encoded value to days since 1970-01-01, ``periods`` are the cycles' lengths in days.

    >>> terms = CalendarTerms(0, lambda z: z, [7.0])
    >>> [round(v, 6) + 0.0 for v in terms(torch.tensor([[7.0], [1.75]]))[:, 0].tolist()]  # sin(2 pi d / 7)
    [0.0, 1.0]
    """

    def __init__(self, position: int, to_days: Callable[[torch.Tensor], torch.Tensor], periods: list[float]):
        self.position, self.to_days = position, to_days
        self.frequencies = 2 * math.pi / torch.tensor(periods, dtype=torch.float64)
        self.size = 2 * len(periods)

    def __call__(self, values: torch.Tensor) -> torch.Tensor:
        """The terms of the dates whose encoded values are ``values[:, position]``."""
        angles = self.to_days(values[:, self.position].double()).unsqueeze(-1) * self.frequencies
        return torch.cat([angles.sin(), angles.cos()], dim=-1).to(values.dtype)


class ColumnCondition:
    """Condition columns of a joint model: the network sees their clean values beside x_t.

    The model is trained on every column; for a share ``1 - dropout`` of the rows the network
    is also given the clean condition coordinates (``coordinates`` of the encoded row) and a flag
    saying so, and is not asked to denoise them (their loss is masked). The other rows train the
    same network unconditionally: classifier-free guidance (Ho & Salimans 2022) mixes the two,
    and sampling with no condition draws from the joint.

    >>> condition = ColumnCondition([1], dropout=0.5)
    >>> z = torch.tensor([[0.5, 2.0], [0.5, 3.0]])
    >>> condition.inputs(z, torch.tensor([True, False])).tolist()
    [[2.0, 1.0], [0.0, 0.0]]
    >>> condition.loss_weights(z, torch.tensor([True, False])).tolist()
    [[1.0, 0.0], [1.0, 1.0]]
    """

    def __init__(self, coordinates: list[int], dropout: float, calendars: list[CalendarTerms] = ()):
        self.coordinates, self.dropout, self.calendars = list(coordinates), dropout, list(calendars)
        self.size = len(self.coordinates) + 1 + sum(c.size for c in self.calendars)

    def draw_shown(self, rows: int, generator: torch.Generator) -> torch.Tensor:
        """Which of ``rows`` training rows show their condition."""
        return torch.rand(rows, generator=generator) >= self.dropout

    def validation_shown(self, rows: int, generator: torch.Generator) -> torch.Tensor:
        """What validation rows show: their condition (the validation loss is the conditional one)."""
        return torch.ones(rows, dtype=torch.bool)

    def shown_in(self, known: torch.Tensor) -> torch.Tensor:
        """Which rows, given the coordinates ``known`` (rows, d), show the network their
        condition: those where every condition coordinate is known."""
        return known[:, self.coordinates].all(1)

    def inputs(self, z: torch.Tensor, shown: torch.Tensor) -> torch.Tensor:
        """The network's condition input: the condition coordinates, a 1, and the calendar
        terms of condition dates where ``shown``; zeros elsewhere."""
        flag = shown.to(z.dtype).unsqueeze(-1)
        values = z[:, self.coordinates]
        return torch.cat([values * flag, flag, *(terms(values) * flag for terms in self.calendars)], dim=-1)

    def loss_weights(self, z: torch.Tensor, shown: torch.Tensor) -> torch.Tensor:
        """1 for each coordinate the network must denoise, 0 for the shown condition's."""
        weights = torch.ones_like(z)
        weights[:, self.coordinates] = (~shown).to(z.dtype).unsqueeze(-1)
        return weights


class CellMasks:
    """Random cells of each row shown to the network: a model that completes a row from any
    subset of its cells (learnt in-painting, as CSDI, Tashiro et al. 2021, trains for imputation).

    ``groups`` are the coordinates shown or hidden together (a number, a category's pattern, a
    missing-cell indicator). A share ``dropout`` of the rows shows nothing and trains the joint;
    each other row draws a rate r uniform in [0, 1] and shows each group with probability r, so
    that every number of known cells is practised. The network sees the shown coordinates' clean
    values and a flag per coordinate; the loss is on the hidden coordinates only.

    >>> masks = CellMasks([[0], [1, 2]], dim=3, dropout=0.0)
    >>> shown = torch.tensor([[True, False, False]])
    >>> masks.inputs(torch.tensor([[0.5, 1.0, 2.0]]), shown).tolist()
    [[0.5, 0.0, 0.0, 1.0, 0.0, 0.0]]
    >>> masks.loss_weights(torch.zeros(1, 3), shown).tolist()
    [[0.0, 1.0, 1.0]]
    >>> drawn = masks.draw_shown(1000, torch.Generator().manual_seed(0))
    >>> bool((drawn[:, 1] == drawn[:, 2]).all()), 0.4 < float(drawn.float().mean()) < 0.6
    (True, True)
    """

    def __init__(self, groups: list[list[int]], dim: int, dropout: float,
                 calendars: list[CalendarTerms] = ()):
        self.groups, self.dim, self.dropout = [list(g) for g in groups], dim, dropout
        self.calendars = list(calendars)
        self.size = 2 * dim + sum(c.size for c in self.calendars)
        self._group_of = torch.empty(dim, dtype=torch.long)
        for k, group in enumerate(self.groups):
            self._group_of[group] = k

    def draw_shown(self, rows: int, generator: torch.Generator) -> torch.Tensor:
        """Which coordinates of ``rows`` training rows are shown, shape (rows, d)."""
        rate = torch.rand(rows, 1, generator=generator)
        rate[torch.rand(rows, generator=generator) < self.dropout] = 0.0
        return (torch.rand(rows, len(self.groups), generator=generator) < rate)[:, self._group_of]

    def validation_shown(self, rows: int, generator: torch.Generator) -> torch.Tensor:
        """What validation rows show: masks drawn as in training (from ``generator``)."""
        return self.draw_shown(rows, generator)

    def shown_in(self, known: torch.Tensor) -> torch.Tensor:
        """Every known coordinate is shown."""
        return known

    def inputs(self, z: torch.Tensor, shown: torch.Tensor) -> torch.Tensor:
        """The network's condition input: shown coordinates (zeros elsewhere), the flags, and the
        calendar terms of shown dates."""
        flags = shown.to(z.dtype)
        dates = [terms(z) * flags[:, terms.position, None] for terms in self.calendars]
        return torch.cat([z * flags, flags, *dates], dim=-1)

    def loss_weights(self, z: torch.Tensor, shown: torch.Tensor) -> torch.Tensor:
        """1 for each hidden coordinate, 0 for the shown ones."""
        return (~shown).to(z.dtype)


Condition = ColumnCondition | CellMasks
"""What a conditional network is shown: fixed condition columns or random cells."""


class StraightPaths:
    """Draws for a few-step student: points on the straight paths from a teacher's noise to
    its samples, at the student's own noise levels only.

    The teacher's deterministic sampler maps each starting point x_T (at level ``sigmas[0]``) to
    a sample x_0; the straight path between them is x_sigma = x_0 + sigma e with
    e = (x_T - x_0) / sigmas[0]. A student that denoises every point of such a path to its x_0
    follows it exactly with DDIM's Euler steps (a straight path has a constant slope): the
    rectified-flow view of distillation (Liu et al. 2023), in the variance-exploding scaling.
    Rows of ``draw``'s input are [x_0 | e]; ``top_share`` of the draws are at the first level,
    whose step (noise to data in one go) is the hardest to learn, the rest uniform over all.
    A student of a conditional teacher (``condition``: its ``ColumnCondition``) takes rows
    [x_0 | e | shown]: x_0 drawn by the teacher given x_0's condition columns where shown is 1
    (the network sees them, as in training), from the joint where it is 0.

    >>> from simple_diffusion.diffusion import schedules
    >>> paths = StraightPaths(schedules.cosine(1000), "sample", torch.tensor([10.0, 1.0, 0.0]))
    >>> x_t, t, target, _ = paths.draw(torch.ones(4, 2), torch.Generator().manual_seed(0))
    >>> x_t.shape, target.tolist() == [[1.0]] * 4
    (torch.Size([4, 1]), True)
    """

    def __init__(self, schedule: Schedule, prediction_type: str, sigmas: torch.Tensor,
                 top_share: float = 0.5, gaussian: GaussianPart | None = None,
                 condition: ColumnCondition | None = None):
        self.schedule, self.prediction_type, self.top_share = schedule, prediction_type, top_share
        self.gaussian, self.condition = gaussian, condition
        self.levels = torch.as_tensor(sigmas, dtype=torch.float64)[:-1]

    def draw(self, pairs: torch.Tensor, generator: torch.Generator, validation: bool = False):
        """Timesteps, noisy inputs and targets for rows [x_0 | e (| shown)], in their dtype, and
        which rows show their condition (None for an unconditional student)."""
        dim = pairs.shape[1] // 2
        x0, slope = pairs[:, :dim], pairs[:, dim : 2 * dim]
        level = torch.randint(len(self.levels), (len(pairs),), generator=generator)
        top = torch.rand(len(pairs), generator=generator) < self.top_share
        sigma = self.levels[torch.where(top, 0, level)]
        alpha, sigma_vp = vp_scales(sigma, pairs.dtype)
        alpha, sigma_vp = alpha.unsqueeze(-1), sigma_vp.unsqueeze(-1)
        x_t = alpha * x0 + sigma_vp * slope  # alpha (x_0 + sigma e): the path at unit scale
        t = self.schedule.sigma_to_t(sigma).to(pairs.dtype)
        shown = known = None
        if self.condition is not None:
            shown = pairs[:, -1] > 0.5
            known = (self.condition.loss_weights(x0, shown) == 0, x0)
        return x_t, t, network_target(self, x0, slope, x_t, alpha, sigma_vp, known), shown

    def shows(self, pairs: torch.Tensor, shown: torch.Tensor | None):
        """``Objective.shows`` for rows [x_0 | e (| shown)]."""
        return condition_inputs(self.condition, pairs[:, : pairs.shape[1] // 2], shown)


def network_target(draws: Objective | StraightPaths, x0: torch.Tensor, noise: torch.Tensor,
                   x_t: torch.Tensor, alpha: torch.Tensor, sigma_vp: torch.Tensor,
                   known: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
    """The regression target of ``draws``' prediction type, less its Gaussian part if any
    (given the ``known`` (mask, values) that the network is shown)."""
    target = prediction.target(draws.prediction_type, x0, noise, alpha, sigma_vp)
    if draws.gaussian is None:
        return target
    return target - draws.gaussian.prediction(draws.prediction_type, x_t, alpha, sigma_vp, known)
