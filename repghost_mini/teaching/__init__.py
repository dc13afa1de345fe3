"""Teaching aids for the notebooks: Fig. 3 / memory-layout diagrams, exercise checkers, the guided tour, the
run stamp / one-run execution of all notebooks, and the ledger of the paper's claims."""
from . import diagrams, exercises, ledger, runs, tour
from .diagrams import *  # noqa: F401,F403
from .exercises import *  # noqa: F401,F403
from .ledger import *  # noqa: F401,F403
from .runs import *  # noqa: F401,F403
from .tour import *  # noqa: F401,F403

__all__ = diagrams.__all__ + exercises.__all__ + ledger.__all__ + runs.__all__ + tour.__all__
