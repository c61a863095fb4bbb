"""A Gaussian part of the denoiser: the exact denoiser of a Gaussian with the training rows' mean
and covariance, which the network's output is added to (``model.gaussian_part``).

Under x_t = alpha x_0 + sigma_vp eps with x_0 ~ N(m, C), E[eps | x_t] =
sigma_vp (alpha^2 C + sigma_vp^2 I)^-1 (x_t - alpha m): linear in x_t, and at high noise nearly
all of what any denoiser of data with that mean and covariance does (Wang & Vastola 2023, "The
hidden linear structure in score-based models"). With a ``share`` of it given, the network learns
the rest: the data's departure from that Gaussian. On a Gaussian target the share 1 is the exact
denoiser, but on shapes a network asked for only the small remainder stopped learning (share 0.99
as 1; BENCHMARKS.md, "Densities"), so a share below 1 keeps a part of the linear map to learn.

A conditional network is also shown some coordinates exactly (its condition columns, or the
cells of learnt in-painting); its part is then the Gaussian conditioned on them as well, so
that the linear regression of the hidden coordinates on the shown ones is given too.

>>> import torch
>>> part = GaussianPart(torch.zeros(2), torch.diag(torch.tensor([1.0, 9.0])), share=1.0)
>>> x_t = torch.tensor([[0.5, 1.5]], dtype=torch.float64)
>>> part.prediction("sample", x_t, 0.6, 0.8)  # E[x_0 | x_t]: 0.6 v x_t / (0.36 v + 0.64), v = 1, 9
tensor([[0.3000, 2.0876]], dtype=torch.float64)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from . import prediction as predictions

VARIANCE_FLOOR = 1e-6
"""Smallest variance along a principal axis, relative to the mean variance: one-hot blocks and
other exactly dependent columns have none, and a zero would divide by sigma_vp alone."""
CHUNK_ELEMENTS = 1 << 22
"""Entries held at once (32 MiB in float64) by the part's work in row chunks: the per-row
matrices of the conditioned solves and of EM, the moments, the predictions over a training
segment."""
SHARED_SOLVES = 16
"""Most patterns of shown coordinates whose rows share one system at a sampler's step (a
posterior's rows all show their condition; filled gaps may show many patterns, solved row by
row)."""
SOLVE_GROUPS, SOLVE_GROUPS_FROM = 8, 10_000_000
"""Groups of rows of similar hidden counts in the conditioned solves, from this much work (rows
times d^3): a solve costs the cube of its size, so rows solved at their group's largest count
rather than all at d cost about a third as much when the counts spread evenly (learnt
in-painting's masks), while each group adds a dozen calls. Measured with learnt in-painting:
2,000 training steps on digits (1,437 rows x 74^3 per call) take 19.5 s in one group, 10.8 /
10.3 / 10.4 s in 4 / 8 / 16; on penguins (275 rows x 18^3) the groups' calls cost 10-15% of
training, while its imputation benchmark (training, then 19 draws of each of 344 rows filled:
6,536 rows x 18^3 per call) took 33 s with every call in 8 groups against 38 s in one."""
EM_ITERATIONS, EM_TOLERANCE = 200, 1e-6
"""Expectation-maximisation for rows with missing cells stops when no covariance entry moves by
more than ``EM_TOLERANCE`` times the mean variance in one iteration, or after ``EM_ITERATIONS``."""


def _moments(rows_of: Callable[[torch.Tensor], torch.Tensor], chunks: Sequence[torch.Tensor],
             centre: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The mean and the scatter matrix (sum of outer products about the mean) of the float64 rows
    ``rows_of(chunk)`` returns for each of ``chunks``, accumulated one chunk at a time about a
    ``centre`` near the mean (so that no large sums cancel)."""
    total, products, count = 0.0, 0.0, 0
    for chunk in chunks:
        shifted = rows_of(chunk) - centre
        total = total + shifted.sum(0)
        products = products + shifted.T @ shifted
        count += len(chunk)
    shift = total / count
    return centre + shift, products - count * torch.outer(shift, shift)


class GaussianPart:
    """``share`` times the Gaussian's own value of a network's regression target (eps, x_0 or
    v), for the rows' ``mean`` and ``covariance`` (kept in float64)."""

    def __init__(self, mean: torch.Tensor, covariance: torch.Tensor, share: float):
        self.mean = torch.as_tensor(mean, dtype=torch.float64)
        self.covariance = torch.as_tensor(covariance, dtype=torch.float64).reshape(len(self.mean), -1)
        self.share = float(share)
        variances, self.axes = torch.linalg.eigh(self.covariance)
        floor = VARIANCE_FLOOR * max(float(variances.mean()), 1e-12)
        self.variances = variances.clamp_min(floor)
        self.precision = (self.axes / self.variances) @ self.axes.T
        """The inverse of the covariance (with its floor): what conditioning on shown
        coordinates needs."""

    @classmethod
    def fit(cls, rows: torch.Tensor, share: float, measured: torch.Tensor | None = None) -> GaussianPart:
        """The part for encoded training ``rows`` (n, d).

        Where ``measured`` (n, d) is False a coordinate holds a stand-in for a missing cell, not
        data; stand-ins drawn apart from the rest of their row would shrink every correlation
        they touch (by 0.64 between two columns with 20% gaps). The mean and covariance are then
        the Gaussian's maximum-likelihood ones from the measured coordinates alone, by
        expectation-maximisation (Little & Rubin, "Statistical Analysis with Missing Data",
        ch. 11): each row's hidden coordinates are replaced by their conditional mean given
        its measured ones, and their conditional covariance is added to the rows' scatter.
        Unlike pairwise-complete moments this stays a covariance (positive semi-definite).
        """
        rows = torch.as_tensor(rows)  # each chunk is taken to float64 in turn, not the whole
        count, dim = rows.shape
        chunks = torch.arange(count).split(max(1, CHUNK_ELEMENTS // dim**2))
        mean, scatter = _moments(lambda chunk: rows[chunk].double(), chunks, rows[chunks[0]].double().mean(0))
        part = cls(mean, scatter / max(count - 1, 1), share)
        if measured is None or bool(measured.all()):
            return part
        # Rows that miss the same cells share their conditional covariance: one inverse each.
        patterns, which = torch.unique(measured, dim=0, return_inverse=True)
        counts = torch.bincount(which, minlength=len(patterns)).to(torch.float64)
        hidden = (~patterns).to(torch.float64)
        hidden_pairs = hidden[:, :, None] * hidden[:, None, :]
        for _ in range(EM_ITERATIONS):
            # The hidden block of the precision, inverted, is the hidden coordinates'
            # conditional covariance; identity on the measured block keeps it invertible (and
            # positive definite: Cholesky, as batched LU of 151 columns or more hangs in MKL
            # with two threads or more, pytorch/pytorch#141358).
            blocks = part.precision * hidden_pairs + torch.diag_embed(1 - hidden)
            conditional = torch.cholesky_inverse(torch.linalg.cholesky(blocks)) * hidden_pairs

            def expected(chunk: torch.Tensor, part: GaussianPart = part,
                         conditional: torch.Tensor = conditional) -> torch.Tensor:
                values = torch.where(measured[chunk], rows[chunk].double(), 0.0)
                residual = (part.mean - values) @ part.precision
                return values + (conditional[which[chunk]] @ residual[:, :, None])[..., 0]

            mean, scatter = _moments(expected, chunks, part.mean)
            scatter += (counts[:, None, None] * conditional).sum(0)
            previous, part = part, cls(mean, scatter / max(count - 1, 1), share)
            change = (part.covariance - previous.covariance).abs().max()
            if change <= EM_TOLERANCE * part.covariance.diagonal().mean():
                break
        return part

    def prediction(self, prediction_type: str, x_t: torch.Tensor, alpha: torch.Tensor, sigma_vp: torch.Tensor,
                   known: tuple[torch.Tensor, torch.Tensor] | None = None) -> torch.Tensor:
        """``share`` times E[target | x_t] under the Gaussian, in ``x_t``'s dtype and device
        (computed in float64 on the CPU; accelerators, where float64 is slow or absent, use
        ``x_t``'s dtype). ``known`` = (mask, values), both (rows, d): coordinates the network
        is shown exactly, which the Gaussian is conditioned on too."""
        dtype, device = x_t.dtype, x_t.device
        work = torch.float64 if device.type == "cpu" else dtype
        rows, dim = x_t.shape
        one_level = all(torch.as_tensor(v).numel() == 1 for v in (alpha, sigma_vp))  # a sampler's step
        alpha, sigma_vp = (torch.broadcast_to(torch.as_tensor(v, dtype=work, device=device).reshape(-1, 1),
                                              (rows, 1)) for v in (alpha, sigma_vp))
        out = torch.empty_like(x_t)
        # Rows in chunks that bound the memory (a training segment is a million rows; the
        # conditioned posterior holds a d x d matrix per row).
        size = CHUNK_ELEMENTS // (dim if known is None else dim**2)
        for chunk in torch.arange(rows, device=device).split(max(1, size)):
            a, s, x = alpha[chunk], sigma_vp[chunk], x_t[chunk].to(work)
            if known is None:
                sample, noise = self._posterior(x, a, s)
            else:
                # Only rows shown something need a solve of their own (a fifth of the rows
                # of learnt in-painting show nothing: they train the joint).
                mask, values = (v[chunk].to(device) for v in known)
                some = mask.any(1)
                sample, noise = torch.empty_like(x), torch.empty_like(x)
                if not bool(some.all()):
                    sample[~some], noise[~some] = self._posterior(x[~some], a[~some], s[~some])
                if bool(some.any()):
                    sample[some], noise[some] = self._conditioned_posterior(
                        x[some], a[some], s[some], mask[some], values[some].to(work), one_level)
            out[chunk] = (self.share * predictions.target(prediction_type, sample, noise, a, s)).to(dtype)
        return out

    def _posterior(self, x_t, alpha, sigma_vp) -> tuple[torch.Tensor, torch.Tensor]:
        """E[x_0 | x_t] and E[eps | x_t]."""
        mean, axes, variances = (v.to(x_t.device, x_t.dtype) for v in (self.mean, self.axes, self.variances))
        # In the covariance's principal axes the posterior is one division per axis.
        r = (x_t - alpha * mean) @ axes
        denominator = alpha**2 * variances + sigma_vp**2
        noise = (r * (sigma_vp / denominator)) @ axes.T
        sample = mean + (r * (alpha * variances / denominator)) @ axes.T
        return sample, noise

    def _conditioned_posterior(self, x_t, alpha, sigma_vp, mask, values,
                               one_level: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """E[x_0 | x_t, x_0 = values where mask] and E[eps | the same], row by row.

        With precision P, the hidden coordinates h of the posterior mean solve
        (sigma^2 P_hh + alpha^2 I) x_h = sigma^2 (P m - P v)_h + alpha x_t,h (v: the shown
        values, zero elsewhere), the Gaussian's log-density plus the noisy observation's, made
        stationary; multiplied through by sigma^2 so that no level divides by zero. One small
        solve per row, of its hidden coordinates only: rows are taken in groups of similar
        hidden counts (``SOLVE_GROUPS`` of them from ``SOLVE_GROUPS_FROM``), each solved at its
        largest count, the coordinates that pad a row's system being shown ones (identity rows,
        solution 0). ``alpha`` and ``sigma_vp`` are (rows, 1); with ``one_level`` (a sampler's
        step, every row at the same noise level) rows that show the same coordinates share their
        system: one factorisation for each of at most ``SHARED_SOLVES`` patterns.
        """
        precision, mean = (v.to(x_t.device, x_t.dtype) for v in (self.precision, self.mean))
        shown = mask.to(x_t.dtype)
        hidden = 1 - shown
        values = torch.where(mask, values, 0.0)
        b = (mean - values) @ precision  # P (m - v), P symmetric
        right = hidden * (sigma_vp**2 * b + alpha * x_t)
        which = _patterns(mask) if one_level else None
        if which is not None:
            x_h = torch.empty_like(x_t)
            for k in range(int(which.max()) + 1):
                rows = which == k
                x_h[rows] = _solve_hidden(precision, hidden[rows][:1], right[rows].T[None],
                                          alpha[:1], sigma_vp[:1])[0].T
        elif x_t.shape[0] * x_t.shape[1] ** 3 < SOLVE_GROUPS_FROM:
            x_h = _solve_hidden(precision, hidden, right[:, :, None], alpha, sigma_vp)[:, :, 0]
        else:
            x_h = torch.zeros_like(x_t)
            # Each row's coordinates, hidden ones first; rows by their number of hidden ones.
            counts = mask.logical_not().sum(1)
            coordinates = torch.argsort(mask.to(torch.int8), dim=1, stable=True)
            for group in torch.argsort(counts).tensor_split(SOLVE_GROUPS):
                size = int(counts[group].max()) if len(group) else 0
                if size:
                    rows, index = group[:, None], coordinates[group, :size]
                    x_h[rows, index] = _solve_hidden(
                        precision[index[:, :, None], index[:, None, :]], hidden[rows, index],
                        right[rows, index][:, :, None], alpha[group], sigma_vp[group])[:, :, 0]
        # E[eps]_h = (x_t - alpha x_0)_h / sigma, which the equation gives without dividing
        # by sigma; on shown coordinates eps is known from x_t.
        shown_noise = (x_t - alpha * values) / torch.where(sigma_vp > 0, sigma_vp, 1.0)
        noise = hidden * (sigma_vp / alpha) * (x_h @ precision - b) + shown * shown_noise
        return x_h + values, noise

    def conditional(self, rows: torch.Tensor, hidden: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """The Gaussian's mean (one per row) and variances of the ``hidden`` coordinates given
        the others at their values in ``rows``: for a precision P, the covariance is
        (P_hh)^-1 and the mean m_h - (P_hh)^-1 P_hk (x_k - m_k)."""
        known = sorted(set(range(len(self.mean))) - set(hidden))
        covariance = torch.linalg.inv(self.precision[hidden][:, hidden])
        pull = covariance @ self.precision[hidden][:, known]
        mean = self.mean[hidden] - (rows[:, known].double() - self.mean[known]) @ pull.T
        return mean, covariance.diagonal()

    def state(self) -> dict[str, torch.Tensor]:
        """Tensors to save with a model (``from_state`` reads them back)."""
        return {"mean": self.mean, "covariance": self.covariance,
                "share": torch.tensor(self.share, dtype=torch.float64)}

    @classmethod
    def from_state(cls, state: dict[str, torch.Tensor]) -> GaussianPart:
        return cls(state["mean"], state["covariance"], float(state["share"]))


def _patterns(mask: torch.Tensor) -> torch.Tensor | None:
    """Each row's pattern of shown coordinates as a number 0, 1, ..., or None where there are
    more than ``SHARED_SOLVES`` patterns. Rows are compared as bit fields (``torch.unique``
    over rows of 8,192 x 20 took 14 ms, the cost of the solves it saves); past 62 coordinates
    only rows that all show the same ones are grouped.

    >>> _patterns(torch.tensor([[True, False], [True, False], [False, False]]))
    tensor([1, 1, 0])
    >>> wide = torch.zeros(3, 70, dtype=torch.bool)
    >>> _patterns(wide).tolist()
    [0, 0, 0]
    >>> _patterns(torch.eye(20, dtype=torch.bool)) is None, _patterns(torch.eye(70, dtype=torch.bool)) is None
    (True, True)
    """
    rows, dim = mask.shape
    if dim <= 62:
        bits = mask.to(torch.int64) << torch.arange(dim, device=mask.device)
        which = torch.unique(bits.sum(1), return_inverse=True)[1]
    elif bool((mask == mask[:1]).all()):
        which = torch.zeros(rows, dtype=torch.int64, device=mask.device)
    else:
        return None
    return which if int(which.max()) < SHARED_SOLVES else None


def _solve_hidden(precision: torch.Tensor, inside: torch.Tensor, right: torch.Tensor,
                  alpha: torch.Tensor, sigma_vp: torch.Tensor) -> torch.Tensor:
    """For each system, x solving (sigma^2 P + alpha^2 I) x = right on its ``inside``
    coordinates, 0 on the others (identity rows; ``right`` is 0 there): ``right`` is (systems,
    k, right-hand sides), ``precision`` (k, k) or one per system. Symmetric positive definite
    (P's variances have a floor): a Cholesky solve, cheaper than a general one."""
    matrix = precision * (inside[:, :, None] * inside[:, None, :]) * (sigma_vp**2)[:, :, None]
    matrix.diagonal(dim1=1, dim2=2).add_(alpha**2 * inside + (1 - inside))
    factor, _ = torch.linalg.cholesky_ex(matrix)
    return torch.cholesky_solve(right, factor)
