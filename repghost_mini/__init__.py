"""repghost_mini: a small, readable implementation of RepGhost (Chen et al., 2022) for teaching.

Data flows one way: dataset -> model (training form) -> :func:`reparameterize` -> fused model -> export / latency.
The package is grouped by job, each group importing only the ones above it::

    core/      the paper: fusion algebra, the modules of Fig. 3, bottlenecks, networks, reparameterize
    measure/   paper measurements: parameter/MAC counts, concat cost, Table 2 summary, timing, tables
    training/  data, trainer, evaluation, checkpoints
    deploy/    ONNX export and latency
    teaching/  diagrams, exercise checkers, the guided tour
    cli.py     python -m repghost_mini {tour,train,eval,convert,bench}

Every public name of every group is re-exported here (listed in ``__all__``), so ``import repghost_mini as rm``
is all you need.
"""
from . import core, deploy, measure, teaching, training
from .core import *  # noqa: F401,F403
from .measure import *  # noqa: F401,F403
from .training import *  # noqa: F401,F403
from .deploy import *  # noqa: F401,F403
from .teaching import *  # noqa: F401,F403
from .errors import UserError

__version__ = "0.1.0"

__all__ = core.__all__ + measure.__all__ + training.__all__ + deploy.__all__ + teaching.__all__ + ["UserError"]
