"""Training: datasets and loaders, the trainer (the paper's recipe scaled down), evaluation and checkpoints."""
from . import checkpoints, data, trainer
from .checkpoints import *  # noqa: F401,F403
from .data import *  # noqa: F401,F403
from .trainer import *  # noqa: F401,F403

__all__ = data.__all__ + checkpoints.__all__ + trainer.__all__
