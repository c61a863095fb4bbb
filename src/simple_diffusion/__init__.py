"""simple-diffusion: learn a low-dimensional distribution from samples with a diffusion model.

>>> import simple_diffusion as sd
>>> model = sd.fit("two_gaussians", epochs=2, progress=False)
>>> model.sample(10, seed=0).shape
torch.Size([10, 1])

The names below load their modules (and torch) on first use, so that the command line's
``--help`` and ``--version`` answer without them.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.2.0"

_EXPORTS = {
    "DiffusionModel": "model",
    "UserError": "errors",
    "distill": "api",
    "evaluate": "api",
    "evaluate_run": "api",
    "fit": "api",
    "load": "api",
    "sweep": "sweeps",
    "training_data": "api",
    "write_samples": "api",
}
_MODULES = {"targets": "data.targets", "io": "data.io", "metrics": "evaluation.metrics"}
"""Modules reachable as attributes: ``sd.targets.get("moons")``, ``sd.io.write_table(...)``."""

__all__ = ["__version__", *_EXPORTS, *_MODULES]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    if name in _MODULES:
        return importlib.import_module(f".{_MODULES[name]}", __name__)
    try:  # any other submodule, as an eagerly imported package would offer it
        return importlib.import_module(f".{name}", __name__)
    except ModuleNotFoundError as exc:
        if exc.name != f"{__name__}.{name}":  # the submodule exists but needs a missing package
            raise
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None


def __dir__() -> list[str]:
    return sorted(__all__)
