r"""Table 2 read back from a model: the layer table of RepGhostNet / GhostNet (paper Sec. 3.3, Table 2, Fig. 4).

:func:`layer_table` runs one forward pass on a zero image with forward hooks to record each layer's input
size, and reads the channels, SE and stride from the layers themselves, so the table describes the model
that was built (any width, ``small_input``, training or fused form), not the configuration it came from.
:func:`bottleneck_channels` lists, per bottleneck, the channels of Fig. 4 that differ between the Ghost and
the RepGhost bottleneck ("thinner" middle, "thicker" second depthwise conv).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Tuple, Union

import torch
from torch import nn

from ..core.bottlenecks import GhostBottleneck, RepGhostBottleneck
from ..modes import eval_mode

__all__ = ["LayerRow", "layer_table", "format_layer_table", "BottleneckChannels", "bottleneck_channels"]


@dataclass(frozen=True)
class LayerRow:
    """One row of Table 2. ``None`` stands for Table 2's "-" (not applicable)."""

    input_hw: Tuple[int, int]  # spatial size of the layer's input (H, W)
    in_channels: int
    operator: str  # "Conv3x3", "RG-bneck" / "G-bneck", "Conv1x1", "AvgPool", "FC"
    mid: Optional[int]  # #mid: output channels of the bottleneck's first module
    out: int  # #out
    se: Optional[bool]  # SE block inside the bottleneck (None for non-bottleneck rows)
    stride: Optional[int]  # None for the pooling row


def _bottlenecks(model: nn.Module):
    return [b for b in model.modules() if isinstance(b, (GhostBottleneck, RepGhostBottleneck))]


def _check_model(model: nn.Module) -> None:
    needed = ("conv_stem", "blocks", "global_pool", "conv_head", "classifier")
    missing = [n for n in needed if not hasattr(model, n)]
    if missing or not _bottlenecks(model):
        raise TypeError(f"layer_table reads RepGhostNet / GhostNet models (repghost_mini.repghostnet / ghostnet), "
                        f"but this {type(model).__name__} has no {missing[0] if missing else 'bottlenecks'}.")


def layer_table(model: nn.Module, input_size: Union[int, Tuple[int, int]] = 224) -> List[LayerRow]:
    """The rows of Table 2 for ``model`` (RepGhostNet or GhostNet, training or fused form).

    ``input_size``: image side (or ``(H, W)``) used for the forward pass that records each row's input size.
    Rows: stem conv, every bottleneck, the 1x1 conv to 960 (x width), average pooling, the 1x1 conv to 1280,
    and the classifier (Table 2's last "Conv1x1", an ``nn.Linear`` here, shown as "FC").
    The model's train/eval mode is restored afterwards.
    """
    _check_model(model)
    h, w = (input_size, input_size) if isinstance(input_size, int) else tuple(input_size)
    if h < 1 or w < 1:
        raise ValueError(f"input_size must be positive, got {input_size!r}.")
    bottleneck_op = "RG-bneck" if isinstance(_bottlenecks(model)[0], RepGhostBottleneck) else "G-bneck"
    head = model.blocks[-1][-1]  # ConvBnAct: the 1x1 conv to 960
    layers: List[Tuple[nn.Module, str]] = [(model.conv_stem, "stem")]
    layers += [(b, "bneck") for b in _bottlenecks(model)]
    layers += [(head, "head"), (model.global_pool, "pool"), (model.conv_head, "conv_head"),
               (model.classifier, "fc")]
    shapes = {}

    def hook(module, inputs, output):
        shapes[id(module)] = tuple(inputs[0].shape)

    handles = [m.register_forward_hook(hook) for m, _ in layers]
    param = next(model.parameters())
    try:
        with eval_mode(model), torch.no_grad():
            model(torch.zeros(1, model.in_chans, h, w, dtype=param.dtype, device=param.device))
    finally:
        for handle in handles:
            handle.remove()

    rows = []
    for module, kind in layers:
        shape = shapes[id(module)]
        hw = (shape[2], shape[3]) if len(shape) == 4 else (1, 1)  # the classifier gets (N, 1280)
        cin = shape[1]
        if kind == "stem":
            k = module.kernel_size[0]
            rows.append(LayerRow(hw, cin, f"Conv{k}x{k}", None, module.out_channels, None, module.stride[0]))
        elif kind == "bneck":
            rows.append(LayerRow(hw, cin, bottleneck_op, module.ghost1.out_channels, module.out_channels,
                                 module.se is not None, module.stride))
        elif kind == "head":
            rows.append(LayerRow(hw, cin, "Conv1x1", None, module.conv.out_channels, None, module.conv.stride[0]))
        elif kind == "pool":
            rows.append(LayerRow(hw, cin, "AvgPool", None, cin, None, None))
        elif kind == "conv_head":
            rows.append(LayerRow(hw, cin, "Conv1x1", None, module.out_channels, None, module.stride[0]))
        else:
            rows.append(LayerRow(hw, cin, "FC", None, module.out_features, None, 1))
    return rows


def format_layer_table(rows: List[LayerRow]) -> str:
    """Render rows as Table 2: ``Input | Operator | #mid | #out | SE | Stride`` ("-" where not applicable)."""
    def size(row: LayerRow) -> str:
        h, w = row.input_hw
        return f"{h}^2 x {row.in_channels}" if h == w else f"{h}x{w} x {row.in_channels}"

    def dash(value) -> str:
        if value is None or value is False:
            return "-"
        return "1" if value is True else str(value)

    header = ("Input", "Operator", "#mid", "#out", "SE", "Stride")
    body = [(size(r), r.operator, dash(r.mid), str(r.out), dash(r.se), dash(r.stride)) for r in rows]
    widths = [max(len(line[i]) for line in [header] + body) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
             for line in [header] + body]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines)


@dataclass(frozen=True)
class BottleneckChannels:
    """Channels inside one bottleneck (Fig. 4): where the two bottleneck designs differ."""

    in_channels: int
    mid: int  # channels after the first module: what the stride-2 DS conv and the SE block see
    dw2: int  # channels of the second module's depthwise conv
    out: int
    stride: int
    se: bool


def _depthwise_channels(ghost_module: nn.Module) -> int:
    cheap = ghost_module.cheap_operation
    conv = cheap if isinstance(cheap, nn.Conv2d) else next(m for m in cheap.modules() if isinstance(m, nn.Conv2d))
    return conv.out_channels


def bottleneck_channels(model: nn.Module) -> List[BottleneckChannels]:
    """Per bottleneck of ``model``: input, middle (DS/SE), second-depthwise and output channels (Fig. 4).

    GhostNet: mid = $C_{mid}$, dw2 = $C_{out}/2$ (the other half comes from the concat).
    RepGhostNet: mid = $C_{mid}/2$ ("thinner"), dw2 = $C_{out}$ ("thicker").
    """
    blocks = _bottlenecks(model)
    if not blocks:
        raise TypeError(f"bottleneck_channels needs a model with Ghost or RepGhost bottlenecks, got "
                        f"{type(model).__name__}.")
    return [BottleneckChannels(b.in_channels, b.ghost1.out_channels, _depthwise_channels(b.ghost2), b.out_channels,
                               b.stride, b.se is not None) for b in blocks]
