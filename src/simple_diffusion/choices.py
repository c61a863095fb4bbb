"""Every named choice of the package, declared once, with the sentence that explains it.

The config validates against these tables, the CLI builds its options and help from them, and the
modules that implement a choice check that they implement exactly these names (tests do too).
Nothing here imports torch, so ``--help``, ``--version`` and ``datasets`` answer at once.

>>> sorted(SAMPLERS)[:2]
['ancestral', 'ddim']
>>> print(describe(SPACINGS))
logsnr: evenly in log-SNR; uniform: evenly in t; karras: EDM's rho = 7 ramp
"""

from __future__ import annotations

TARGETS = {
    "two_gaussians": "1-D: weights 1:2 at -4 and +4, std 1 (the assignment's target)",
    "three_gaussians": "1-D: weights 1:1:2 at -4, 0, +4, stds 1, 2, 1",
    "eight_gaussians": "2-D: eight equal Gaussians (std 0.1) on a circle of radius 2",
    "moons": "2-D: two interleaved half circles with noise 0.05",
    "swiss_roll": "2-D: a spiral sheet seen from above, noise 0.1",
    "checkerboard": "2-D: uniform on the 8 dark squares of a 4x4 board",
    "pinwheel": "2-D: five curved arms",
    "correlated_6d": "6-D: one Gaussian, neighbour correlation 0.8, scales 0.5..3",
    "clusters_5d": "5-D: two correlated Gaussian clusters, weights 0.4 and 0.6",
}
"""The built-in targets (``data/targets.py`` builds them as ``torch.distributions``)."""

SAMPLERS = {
    "ancestral": "DDPM ancestral sampling (stochastic; the seed's sampler)",
    "ddim": "DDIM, deterministic, first order",
    "dpmpp_2m": "DPM-Solver++(2M), deterministic, second order multistep",
    "dpmpp_3m": "DPM-Solver++(3M), deterministic, third order multistep",
    "dpmpp_2m_sde": "SDE-DPM-Solver++(2M), stochastic, second order multistep",
    "heun": "EDM's Heun sampler, deterministic, second order, two evaluations per step",
    "distilled": "the run's few-step student (made by `distill`; also given conditions), deterministic",
}
"""Samplers (``diffusion/samplers.py``), k-diffusion's names; ``distilled`` is DDIM with the
run's student network on the student's own noise levels (``training/distill.py``)."""

SPACINGS = {
    "logsnr": "evenly in log-SNR",
    "uniform": "evenly in t",
    "karras": "EDM's rho = 7 ramp",
}
"""How a sampler's noise levels are spread between the largest and the smallest."""

PREPROCESSING = {
    "auto": "standardize, with a Yeo-Johnson power transform first for columns skewed beyond 2",
    "standardize": "subtract the mean, divide by the standard deviation",
    "quantile": "through the empirical CDF to a normal, for skewed or heavy-tailed columns",
    "none": "the raw values",
}
"""How columns are scaled before the network sees them (``data/encoders.py``)."""

SCHEDULES = {
    "constant": "the same beta at every step (the seed's)",
    "linear": "beta rising linearly (DDPM)",
    "cosine": "alpha_bar following cos^2 (Nichol and Dhariwal)",
}
PREDICTION_TYPES = {
    "epsilon": "the noise",
    "sample": "the clean data x_0",
    "v": "alpha * noise - sigma * x_0 (Salimans and Ho)",
}
DENOISERS = {"seed_mlp": "input (x_t, raw t)", "mlp": "Fourier features of t"}
ACTIVATIONS = {"relu": "ReLU", "silu": "SiLU"}
LR_SCHEDULES = {"constant": "fixed", "cosine": "decay to zero over the run after a warm-up"}
TIMESTEPS = {
    "discrete": "whole t uniform, as DDPM",
    "continuous": "real t uniform",
    "logsnr": "log sigma uniform over the sampler's range",
}
VARIANCES = {"beta": "DDPM's sigma_t^2 = beta_t", "posterior": "the posterior's variance"}
CATEGORICAL_ENCODINGS = {
    "auto": ("one-hot up to 10 categories (and 64 one-hot entries in all), analog bits beyond and "
             "for point masses"),
    "onehot": "+1 for the row's category, -1 for the others",
    "bits": "analog bits: the category's binary digits as +1/-1",
}
KEEP_BEST = {
    "auto": "below 10,000 training rows",
    "yes": "the weights of the epoch with the lowest validation loss",
    "no": "the last weights",
}
INPAINTING = {
    "repaint": "at sampling time, on any model (RePaint: each step redone sample.resample times)",
    "learnt": "the network is trained with random cells of each row shown (any subset given)",
}
"""How a model fills cells given to it that are not condition columns (``impute``, ``--given``)."""
PRECISIONS = {
    "auto": "bfloat16 for the distilled sampler where this CPU multiplies it natively, else float32",
    "float32": "float32 throughout",
    "bfloat16": "bfloat16 matrix products (autocast), unchecked",
}
"""How a sampler runs the network (``precision.py``); densities always use float32."""
DEVICES = {
    "auto": "a CUDA GPU if torch sees one for each process, else an Apple GPU (mps, one process), "
            "else the CPU",
    "cpu": "the CPU",
    "cuda": "the CUDA GPU (under torchrun, the one of the process's LOCAL_RANK)",
    "mps": "the Apple GPU",
}
"""Where the network trains and samples (``training/distributed.py``)."""
HEADER = {"auto": "detect", "yes": "the first row names the columns", "no": "no header row"}


def describe(choices: dict[str, str]) -> str:
    """``"name: explanation; ..."``, for help texts."""
    return "; ".join(f"{name}: {text}" for name, text in choices.items())
