"""Paper measurements around the core: counting (Table 3), concat cost (Table 1, Fig. 2), the Table 2 layer
summary, the timing primitives, :func:`compare` (may a sentence rank two measurements?), the one table formatter and
Fig. 1 in full (Table 3's top-1 against latency measured here, with the rank correlation to the paper's)."""
from . import concat_cost, counting, figure1, ranking, summary, tables, timing
from .concat_cost import *  # noqa: F401,F403
from .counting import *  # noqa: F401,F403
from .figure1 import *  # noqa: F401,F403
from .ranking import *  # noqa: F401,F403
from .summary import *  # noqa: F401,F403
from .tables import *  # noqa: F401,F403
from .timing import *  # noqa: F401,F403

__all__ = (counting.__all__ + ranking.__all__ + concat_cost.__all__ + summary.__all__ + timing.__all__ + tables.__all__
           + figure1.__all__)
