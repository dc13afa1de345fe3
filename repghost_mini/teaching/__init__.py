"""Teaching aids for the notebooks: Fig. 3 / memory-layout diagrams, exercise checkers and the guided tour."""
from . import diagrams, exercises, tour
from .diagrams import *  # noqa: F401,F403
from .exercises import *  # noqa: F401,F403
from .tour import *  # noqa: F401,F403

__all__ = diagrams.__all__ + exercises.__all__ + tour.__all__
