"""simple-diffusion: learn a low-dimensional distribution from samples with a diffusion model.

>>> import simple_diffusion as sd
>>> model = sd.fit("two_gaussians", epochs=2, progress=False)
>>> model.sample(10, seed=0).shape
torch.Size([10, 1])
"""

__version__ = "0.1.0"

from . import targets
from .api import evaluate, evaluate_run, fit, load, training_data
from .errors import UserError
from .model import DiffusionModel

__all__ = [
    "DiffusionModel",
    "UserError",
    "__version__",
    "evaluate",
    "evaluate_run",
    "fit",
    "load",
    "targets",
    "training_data",
]
