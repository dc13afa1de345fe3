"""The paper core: RepGhost's model, in reading order (imports nothing else from repghost_mini).

* :mod:`.fusion`       the fusion algebra of Sec. 3.1 / Eq. 2 on plain tensors (BN -> kernel, padding, sums);
* :mod:`.modules`      the five modules of Fig. 3, from the Ghost module (a) to the fused RepGhost module (e);
* :mod:`.bottlenecks`  the Ghost and RepGhost bottlenecks of Fig. 4;
* :mod:`.networks`     RepGhostNet and GhostNet at every width of Table 3 (Table 2's layer list);
* :mod:`.reparam`      whole-network re-parameterization, training form -> inference form (Sec. 3.2).
"""
from . import bottlenecks, fusion, modules, networks, reparam
from .bottlenecks import *  # noqa: F401,F403
from .fusion import *  # noqa: F401,F403
from .modules import *  # noqa: F401,F403
from .networks import *  # noqa: F401,F403
from .reparam import *  # noqa: F401,F403

__all__ = fusion.__all__ + modules.__all__ + bottlenecks.__all__ + networks.__all__ + reparam.__all__
