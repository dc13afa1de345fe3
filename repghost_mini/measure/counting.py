"""Counting parameters and multiply-accumulates the way Table 3 does.

Table 3 counts all parameters of the (training-form) model and the multiply-accumulates (MACs, called
"FLOPs" in the paper) of convolution and linear layers at 224x224. MACs come from
``torch.utils.flop_counter.FlopCounterMode``, which reports 2 FLOPs per multiply-accumulate.
"""
from __future__ import annotations

from typing import Dict, Tuple

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

from ..modes import eval_mode

__all__ = ["count_params", "count_macs", "PAPER_TABLE3"]

#: Table 3 (params in M, "FLOPs" = MACs in M). 0.8x and 2.0x are not in the paper's Table 3: their numbers
#: are from the authors' release notes (github.com/ChengpengChen/RepGhost, README model table).
PAPER_TABLE3: Dict[Tuple[str, float], Tuple[float, int]] = {
    ("repghostnet", 0.5): (2.3, 43),
    ("repghostnet", 0.58): (2.5, 60),
    ("repghostnet", 0.8): (3.3, 96),
    ("repghostnet", 1.0): (4.1, 142),
    ("repghostnet", 1.11): (4.5, 170),
    ("repghostnet", 1.3): (5.5, 231),
    ("repghostnet", 1.5): (6.6, 301),
    ("repghostnet", 2.0): (9.8, 516),
    ("ghostnet", 0.5): (2.6, 42),
    ("ghostnet", 1.0): (5.2, 141),
    ("ghostnet", 1.3): (7.3, 226),
}


def count_params(model: nn.Module) -> int:
    """Number of parameters (trainable or not; BN running statistics are buffers and not counted)."""
    return sum(p.numel() for p in model.parameters())


@torch.no_grad()
def count_macs(model: nn.Module, input_size: Tuple[int, ...] = (1, 3, 224, 224)) -> int:
    """Multiply-accumulates of one forward pass on a zero input of ``input_size`` (conv and linear layers).

    Runs the model once in eval mode under ``FlopCounterMode`` and halves its FLOP count; the model's
    train/eval mode is restored afterwards.
    """
    param = next(model.parameters(), None)
    x = torch.zeros(input_size, dtype=param.dtype if param is not None else torch.float32,
                    device=param.device if param is not None else "cpu")
    counter = FlopCounterMode(display=False)
    with eval_mode(model), counter:
        model(x)
    return counter.get_total_flops() // 2
