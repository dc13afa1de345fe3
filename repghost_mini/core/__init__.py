r"""The paper core: fusion -> modules -> bottlenecks -> networks -> reparam (RepGhost, Chen et al. 2022).

Read in that order; each file is one step of the paper and imports only the ones before it (nothing else of
``repghost_mini``): :mod:`.fusion`, :mod:`.modules`, :mod:`.bottlenecks`, :mod:`.networks`, :mod:`.reparam`.

==============  ==============================================================================
 file            paper
==============  ==============================================================================
 fusion          Sec. 3.1, Eq. 2: the algebra (BN folding, identity / BN / 1x1 branches as kernels)
 modules         Fig. 3 a-e: Ghost module -> RepGhost module (training form d, inference form e)
 bottlenecks     Fig. 4, Sec. 3.3: Ghost and RepGhost bottlenecks, SE
 networks        Table 2 / 3: RepGhostNet and GhostNet at every width, ``features_only`` feature maps
 reparam         Sec. 3.2 "Fast Inference", Fig. 4c: the whole network to its inference form
 resnet          Table 5: Ghost-Res50 and RepGhost-Res50 (ResNet-50 built from modules a and d)
==============  ==============================================================================

Vocabulary (one word per idea, used in every signature and docstring)
---------------------------------------------------------------------
Channels
    ``in_chans``: channels of the *images* a network takes (timm's name; 3 for RGB). Only the networks and
    :class:`FeatureNet` take it.
    ``in_channels`` / ``out_channels``: channels of the tensor a *layer* takes / returns (``torch.nn.Conv2d``'s
    names); every module and bottleneck uses them, and ``mid_channels`` for a bottleneck's middle (Table 2's
    #mid). ``channels``: only where input and output have the same count (an identity kernel, SE, a BN).
    ``num_chs`` / ``reduction``: channels and total stride of a feature map in ``feature_info`` (timm's keys).
Fusion, from the smallest step to the largest
    *fold*: put an eval-mode BatchNorm into the conv before it -- :func:`fold_bn` on tensors,
    :func:`fold_bn_into_conv` on modules, :func:`fold_conv_bn_pairs` over a model.
    *fuse*: turn the parallel branches of one RepGhost module (d) into one depthwise conv (e) --
    :meth:`RepGhostModule.fuse`, via :meth:`RepGhostModule.equivalent_kernel_bias` (Eq. 2).
    *re-parameterize*: the whole model, fuse every RepGhost module and fold every BN -- :func:`reparameterize`.
    The result is the *fused* or *inference* form; the model before it is the *training* form.

Every module, bottleneck and network (both forms) is traceable by ``torch.fx.symbolic_trace`` and scriptable by
``torch.jit.script``: the input checks are :func:`check_input` calls that FX records as one graph node.
"""
from . import bottlenecks, fusion, modules, networks, reparam, resnet
from .bottlenecks import *  # noqa: F401,F403
from .fusion import *  # noqa: F401,F403
from .modules import *  # noqa: F401,F403
from .networks import *  # noqa: F401,F403
from .reparam import *  # noqa: F401,F403
from .resnet import *  # noqa: F401,F403

__all__ = fusion.__all__ + modules.__all__ + bottlenecks.__all__ + networks.__all__ + reparam.__all__ + resnet.__all__
