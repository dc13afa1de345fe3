"""Running a model in eval mode for a measurement and putting back the mode it had: every measurement and export
of the package (counting, timing, concat cost, the Table 2 summary, ONNX checks) runs models under
:func:`eval_mode`."""
from __future__ import annotations

import contextlib
from typing import Iterator

from torch import nn

__all__ = ["eval_mode"]


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Run the block with ``model`` in eval mode, then put back the mode it had (also after an exception).

    Frozen TorchScript modules have no train/eval mode and pass through unchanged.
    """
    was_training = getattr(model, "training", False)
    if was_training:
        model.eval()
    try:
        yield model
    finally:
        if was_training:
            model.train(True)
