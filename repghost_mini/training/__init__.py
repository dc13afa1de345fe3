"""Training: datasets and loaders, the model registry, the trainer (the paper's recipe scaled down), evaluation
and the one checkpoint format."""
from . import card, checkpoints, data, evaluation, registry, trainer
from .card import *  # noqa: F401,F403
from .checkpoints import *  # noqa: F401,F403
from .data import *  # noqa: F401,F403
from .evaluation import *  # noqa: F401,F403
from .registry import *  # noqa: F401,F403
from .trainer import *  # noqa: F401,F403

__all__ = card.__all__ + data.__all__ + registry.__all__ + checkpoints.__all__ + trainer.__all__ + evaluation.__all__
