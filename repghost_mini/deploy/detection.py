r"""RepGhostNet as the backbone of a torchvision detector (paper Sec. 4.2, Table 4).

The paper trains RetinaNet and Mask R-CNN on COCO with RepGhostNet in place of the ImageNet backbone.
Here the pieces are torchvision's: :class:`~repghost_mini.core.networks.FeatureNet` (``features_only=True``)
gives the maps at strides 4, 8, 16, 32, :class:`torchvision.ops.FeaturePyramidNetwork` turns them into
``out_channels`` maps each, and :class:`BackboneFPN` carries the ``out_channels`` attribute that
``FasterRCNN`` / ``RetinaNet`` / ``FCOS`` read. (torchvision's own ``BackboneWithFPN`` needs the tapped
layers to be direct children of the backbone, while ours sit inside ``blocks``; that is the only reason
for the small wrapper.)

Re-parameterization is unchanged: :func:`repghost_mini.core.reparam.reparameterize` on the whole detector (in eval
mode) fuses the backbone's RepGhost modules and BatchNorms and leaves the FPN and heads as they are.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Dict, Optional, Sequence

from torch import Tensor, nn

from ..core.networks import FeatureNet, ghostnet, repghostnet

__all__ = ["BackboneFPN", "repghost_fpn_backbone", "repghost_detector", "DETECTORS"]

#: Detector kinds :func:`repghost_detector` builds, with the feature levels each uses (as torchvision does:
#: Faster R-CNN strides 4..32 plus a max-pooled level, one-stage detectors strides 8..32 plus P6, P7).
DETECTORS: Dict[str, Sequence[int]] = {"fasterrcnn": (1, 2, 3, 4), "retinanet": (2, 3, 4), "fcos": (2, 3, 4)}


class BackboneFPN(nn.Module):
    """``images -> OrderedDict`` of FPN maps ``"0"``, ``"1"`` ... (+ ``"pool"`` or ``"p6"``, ``"p7"``).

    ``body``: a :class:`FeatureNet`; ``extra_blocks``: torchvision's ``LastLevelMaxPool`` (default, for
    Faster R-CNN) or ``LastLevelP6P7`` (RetinaNet, FCOS). Every output has ``out_channels`` channels.
    """

    def __init__(self, body: FeatureNet, out_channels: int = 128,
                 extra_blocks: Optional[nn.Module] = None) -> None:
        super().__init__()
        from torchvision.ops.feature_pyramid_network import FeaturePyramidNetwork, LastLevelMaxPool
        if not isinstance(body, FeatureNet):
            raise TypeError(f"body must be a FeatureNet (repghostnet(..., features_only=True)), "
                            f"got {type(body).__name__}.")
        self.body = body
        self.fpn = FeaturePyramidNetwork(body.channels(), out_channels,
                                         extra_blocks if extra_blocks is not None else LastLevelMaxPool())
        self.out_channels = out_channels

    def forward(self, x: Tensor) -> Dict[str, Tensor]:
        feats = self.body(x)
        return self.fpn(OrderedDict([(str(i), f) for i, f in enumerate(feats)]))


def repghost_fpn_backbone(width: float = 1.0, out_indices: Sequence[int] = (1, 2, 3, 4), out_channels: int = 128,
                          extra_blocks: Optional[nn.Module] = None, arch: str = "repghostnet",
                          **variant) -> BackboneFPN:
    """A RepGhostNet (or ``arch="ghostnet"``) feature model of ``width`` wrapped with an FPN.

    ``variant`` goes to :func:`~repghost_mini.core.networks.repghostnet` (``small_input``, ``branches`` ...).
    Weights are random: load ImageNet weights into the :class:`FeatureNet` (``body``) with
    ``strict=False`` before training a detector for real.
    """
    builders = {"repghostnet": repghostnet, "ghostnet": ghostnet}
    if arch not in builders:
        raise ValueError(f"arch must be one of {sorted(builders)}, got {arch!r}.")
    body = builders[arch](width, features_only=True, out_indices=out_indices, **variant)
    return BackboneFPN(body, out_channels, extra_blocks)


def repghost_detector(kind: str = "fasterrcnn", num_classes: int = 91, width: float = 1.0,
                      out_channels: int = 128, min_size: int = 320, max_size: int = 640,
                      **detector_kwargs) -> nn.Module:
    """torchvision's ``FasterRCNN``, ``RetinaNet`` or ``FCOS`` (``kind``) on a RepGhostNet-FPN backbone.

    ``num_classes`` counts the background for Faster R-CNN (torchvision's convention); images are resized
    so that the short side is ``min_size`` (long side at most ``max_size``). ``detector_kwargs`` go to the
    torchvision class (score thresholds, anchor generator ...).
    """
    from torchvision.models.detection import FCOS, FasterRCNN, RetinaNet
    from torchvision.ops.feature_pyramid_network import LastLevelP6P7
    if kind not in DETECTORS:
        raise ValueError(f"kind must be one of {sorted(DETECTORS)}, got {kind!r}.")
    extra = None if kind == "fasterrcnn" else LastLevelP6P7(out_channels, out_channels)
    backbone = repghost_fpn_backbone(width, DETECTORS[kind], out_channels, extra)
    cls = {"fasterrcnn": FasterRCNN, "retinanet": RetinaNet, "fcos": FCOS}[kind]
    return cls(backbone, num_classes=num_classes, min_size=min_size, max_size=max_size, **detector_kwargs)
