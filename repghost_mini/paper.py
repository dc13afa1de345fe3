r"""The one place for numbers attributed to the paper: verbatim quotes, each with where it comes from.

Chen, Guo, Zeng, Xiong, Dong, "RepGhost: A Hardware-Efficient Ghost Module via Re-parameterization" (2022).
Code elsewhere in the package that prints "paper: 25.1 ms" or asserts "Table 3: 4.1 M parameters" should take the
number from here (:func:`quote`, :func:`table3`), so that every such number can be checked against the paper's
text in one test (:func:`check_quotes`) instead of being retyped, and possibly mistyped, in many files.

Every :class:`Quote` is a short verbatim piece of the paper (a table row, a clause), with the paper's own
spelling and symbols (``×`` in most of Table 3, ``x`` in its GhostNet 0.5x row, ``\times`` left over from the
typesetting in Tables 6 and 7). Whitespace is normalised (runs of spaces, tabs and newlines read as one
space), so a table row's cells are separated by single spaces and the empty cells of Table 6 vanish; ``where``
names the table and, where the cells no longer say it, the columns.

Not in the paper, so not here: the parameters and MACs of RepGhostNet 0.8x and 2.0x (from the authors' code
release, see ``repghost_mini.measure.counting.PAPER_TABLE3``), label smoothing (the paper's recipe does not
mention it), and the arXiv identifier (the text does not print it).
"""
from __future__ import annotations

import dataclasses
import difflib
from pathlib import Path
from typing import Dict, List, Optional, Tuple, Union

from .errors import UserError

__all__ = ["Quote", "QUOTES", "quote", "check_quotes", "normalise", "table3", "TABLE3_COLUMNS", "table5",
           "TABLE5_COLUMNS", "table7", "Claim", "CLAIMS"]


@dataclasses.dataclass(frozen=True)
class Quote:
    """A verbatim piece of the paper: ``key`` (the name code uses), ``text`` and ``where`` (e.g. "Table 3")."""

    key: str
    text: str
    where: str


def normalise(text: str) -> str:
    """``text`` with every run of whitespace (spaces, tabs, newlines) replaced by one space, ends stripped."""
    return " ".join(text.split())


_T3 = "Table 3"
_T6 = "Table 6, RepGhostNet 0.5x, re-parameterization branches ticked:"
_T7 = "Table 7 (Top1 Acc.(%), Latency(ms))"

_ENTRIES = [
    # title, authors, code
    ("title", "RepGhost: A Hardware-Efficient Ghost Module via Re-parameterization", "title"),
    ("authors", "Chengpeng Chen* Zichao Guo*† Haien Zeng Pengfei Xiong Jian Dong", "title"),
    ("code_url", "Code is available at <https://github.com/ChengpengChen/RepGhost>", "Abstract"),
    ("abstract.claim", "our RepGhostNet surpasses GhostNet $0.5\\times$ by 2.5% Top-1 accuracy on ImageNet dataset "
                       "with less parameters and comparable latency on an ARM-based mobile phone", "Abstract"),
    # Sec. 3.1 and Table 1: concatenation vs add on the phone
    ("table1.batch_sizes", "bs=1 2 8 32", "Table 1 (header, Latency(ms))"),
    ("table1.concat", "Concatenation 5.2 13.2 64.24 292.2", "Table 1 (Latency(ms))"),
    ("table1.add", "Add 2.6 6.7 34.0 149.8", "Table 1 (Latency(ms))"),
    ("table1.caption", "Runtime of concatenation and add operators with different batch sizes on an ARM-based "
                       "mobile phone.", "Table 1, caption"),
    ("sec3.1.ghostnet", "We take GhostNet 1.0x [14] as an example, and replace all its concatenation operators with "
                        "add operators for comparison", "Sec. 3.1"),
    ("sec3.1.operators", "Table. 1 shows the accumulated runtime of all 32 corresponding operators in the "
                         "corresponding network.", "Sec. 3.1"),
    ("sec3.1.same_shape", "Note that these two operators operate on tensors with exactly the same shape.", "Sec. 3.1"),
    ("sec3.1.cat_vs_add", "Concatenation costs $\\sim 2x$ times over Add.", "Sec. 3.1"),
    ("sec3.1.gap_larger", "With batch size increases, the gap of runtime percentage between concatenation and add "
                          "becomes larger", "Sec. 3.1, Fig. 2"),
    ("sec3.1.savings", "can save 7% ~ 11% time compared to concatenation and 5% ~ 8% to add", "Sec. 3.1, Fig. 2"),
    ("sec3.1.repeat_n", "Concatenating b_1 and b_2 is direct, and this process would repeat N times.", "Sec. 3.1"),
    ("footnote2", "For feature maps with batch size 1, pre-allocating memory to M_1 and M_2 can even omit the "
                  "concatenation process, but it needs operator-level optimization.", "Sec. 3.1, footnote 2"),
    ("sec3.1.nhwc", "For data in layout NHWC [1], the largest contiguous block of memory is much smaller",
     "Sec. 3.1"),
    ("sec3.2.module_b", "It should provide higher efficiency as shown in Table. 1 and Fig. 2.", "Sec. 3.2"),
    ("sec2.2.implicit_reuse", "We utilize re-parameterization technique to realize feature reuse implicitly by "
                              "replacing the inefficient concatenation operator in Ghost module", "Sec. 2.2"),
    # Table 2: RepGhostNet 1.0x, Input | Operator | #mid | #out | SE | Stride
    ("table2.header", "Input Operator #mid #out SE Stride", "Table 2 (header)"),
    ("table2.stem", "$224^2 \\times 3$ Conv3 \\times 3 - 16 - 2", "Table 2"),
    ("table2.bneck01", "$112^2 \\times 16$ RG-bneck 8 16 - 1", "Table 2"),
    ("table2.bneck02", "$112^2 \\times 16$ RG-bneck 24 24 - 2", "Table 2"),
    ("table2.bneck03", "$56^2 \\times 24$ RG-bneck 36 24 - 1", "Table 2"),
    ("table2.bneck04", "$56^2 \\times 24$ RG-bneck 36 40 1 2", "Table 2"),
    ("table2.bneck05", "$28^2 \\times 40$ RG-bneck 60 40 1 1", "Table 2"),
    ("table2.bneck06", "$28^2 \\times 40$ RG-bneck 120 80 - 2", "Table 2"),
    ("table2.bneck07", "$14^2 \\times 80$ RG-bneck 100 80 - 1", "Table 2"),
    ("table2.bneck08", "$14^2 \\times 80$ RG-bneck 120 80 - 1", "Table 2"),
    ("table2.bneck09", "$14^2 \\times 80$ RG-bneck 120 80 - 1", "Table 2"),
    ("table2.bneck10", "$14^2 \\times 80$ RG-bneck 240 112 1 1", "Table 2"),
    ("table2.bneck11", "$14^2 \\times 112$ RG-bneck 336 112 1 1", "Table 2"),
    ("table2.bneck12", "$14^2 \\times 112$ RG-bneck 336 160 1 2", "Table 2"),
    ("table2.bneck13", "$7^2 \\times 160$ RG-bneck 480 160 - 1", "Table 2"),
    ("table2.bneck14", "$7^2 \\times 160$ RG-bneck 480 160 1 1", "Table 2"),
    ("table2.bneck15", "$7^2 \\times 160$ RG-bneck 480 160 - 1", "Table 2"),
    ("table2.bneck16", "$7^2 \\times 160$ RG-bneck 480 160 1 1", "Table 2"),
    ("table2.conv960", "$7^2 \\times 160$ Conv1 \\times 1 - 960 - 1", "Table 2"),
    ("table2.avgpool", "$7^2 \\times 960$ AvgPool - 960 - -", "Table 2"),
    ("table2.conv1280", "$1^2 \\times 960$ Conv1 \\times 1 - 1280 - 1", "Table 2"),
    ("table2.classifier", "$1^2 \\times 1280$ Conv1 \\times 1 - 1000 - 1", "Table 2"),
    # Table 3: Model | Params(M) | FLOPs(M) | Latency(ms) | Top-1 Acc. (%) | Top-5 Acc. (%)
    ("table3.header", "Model Params(M) FLOPs(M) Latency(ms) Top-1 Acc. (%) Top-5 Acc. (%)", "Table 3 (header)"),
    ("table3.repghostnet_0.5x", "RepGhostNet 0.5× 2.3 43 25.1 66.9 86.9", _T3),
    ("table3.repghostnet_0.58x", "RepGhostNet 0.58× 2.5 60 31.9 68.9 88.4", _T3),
    ("table3.repghostnet_1x", "RepGhostNet 1.0× 4.1 142 62.2 74.2 91.5", _T3),
    ("table3.repghostnet_1.11x", "RepGhostNet 1.11× 4.5 170 71.5 75.1 92.2", _T3),
    ("table3.repghostnet_1.3x", "RepGhostNet 1.3× 5.5 231 92.9 76.4 92.9", _T3),
    ("table3.repghostnet_1.5x", "RepGhostNet 1.5× 6.6 301 116.9 77.5 93.5", _T3),
    ("table3.ghostnet_0.5x", "GhostNet 0.5x [14] 2.6 42 31.7 66.4 86.6", _T3),
    ("table3.ghostnet_1x", "GhostNet 1.0× [14] 5.2 141 74.5 74.0 91.5", _T3),
    ("table3.ghostnet_1.3x", "GhostNet 1.3× [14] 7.3 226 117.6 76.2 92.9", _T3),
    ("table3.mobilenetv3_small_1x", "MobileNetV3 Small 1.0× [19] 2.5 57 31.9 67.7 87.5", _T3),
    ("table3.mobilenetv3_large_0.75x", "MobileNetV3 Large 0.75× [19] 4.0 155 72.0 73.5 91.2", _T3),
    ("table3.mobilenetv3_large_1x", "MobileNetV3 Large 1.0× [19] 5.4 219 95.2 75.2 92.4", _T3),
    ("table3.mobilenetv3_small_0.75x", "MobileNetV3 Small 0.75× [19] 2.0 44 26.0 65.4 86.0", _T3),
    ("table3.mobilenetv2_0.35x", "MobileNetV2 0.35× [35] 1.7 59 36.0 60.3 82.9", _T3),
    ("table3.mobilenetv2_0.6x", "MobileNetV2 0.6× [35] 2.2 141 76.7 66.7 -", _T3),
    ("table3.mobilenetv2_1x", "MobileNetV2 1.0× [35] 3.5 300 135.6 71.8 91.0", _T3),
    ("table3.shufflenetv2_0.5x", "ShuffleNetV2 0.5× [31] 1.4 41 - 61.1 82.6", _T3),
    ("table3.shufflenetv2_1x", "ShuffleNetV2 1.0× [31] 2.3 146 - 69.4 88.9", _T3),
    ("table3.shufflenetv2_1.5x", "ShuffleNetV2 1.5× [31] 3.5 299 - 72.6 90.6", _T3),
    ("table3.mobilenext_0.35x", "MobileNeXt 0.35× [48] 1.8 80 34.1 67.7 -", _T3),
    ("table3.mobilenext_0.75x", "MobileNeXt 0.75× [48] 2.5 210 80.1 72.0 -", _T3),
    ("table3.mobilenext_1x", "MobileNeXt 1.0× [48] 3.4 300 113.6 74.0 -", _T3),
    ("table3.mobileone_s0_1x", "MobileOne-S0 [41] 2.1 275 79.4 71.4 -", _T3),
    ("table3.proxylessnas_1x", "ProxylessNAS [27] 4.1 320 128.0 74.6 92.2", _T3),
    ("table3.efficientnet_b0_1x", "EfficientNet B0 [39] 5.3 386 298.0 77.1 93.3", _T3),
    # Sec. 4: data and the latency protocol
    ("imagenet.size", "It contains 1,000 classes with 1.28M training images and 50k validation images.", "Sec. 4"),
    ("imagenet.single_crop", "Top-1 and Top-5 accuracy with single crop are reported.", "Sec. 4"),
    ("latency.mnn", "So we use MNN to evaluate the latency of the models on an ARM-based mobile phone using single "
                    "thread.", "Sec. 4, Latency"),
    ("latency.batch", "Batch size is set to 1 by default if not stated.", "Sec. 4, Latency"),
    ("latency.runs", "Each model runs for 100 times and the latency is recorded as their average.",
     "Sec. 4, Latency"),
    # Sec. 4.1: the training recipe ("Implementation Details")
    ("recipe.framework", "We adopt PyTorch [33] as our training framework and employ the timm [43] library.",
     "Sec. 4.1"),
    ("recipe.batch", "The global batch size is set to 1024 on 8 NVIDIA V100 GPUs.", "Sec. 4.1"),
    ("recipe.optimizer", "Standard SGD with momentum coefficient of 0.9 is the optimizer.", "Sec. 4.1"),
    ("recipe.lr", "Base learning rate is 0.6", "Sec. 4.1"),
    ("recipe.schedule", "cosine anneals for 300 epochs with first 5 epochs for warming up", "Sec. 4.1"),
    ("recipe.weight_decay", "weight decay is set as 1e-5", "Sec. 4.1"),
    ("recipe.dropout", "Dropout rate before classifier layer is set to 0.2.", "Sec. 4.1"),
    ("recipe.ema", "EMA (Exponential Moving Average) weight averaging with decay constant of 0.9999", "Sec. 4.1"),
    ("recipe.crop_flip", "except regular image crop and flip in timm [43]", "Sec. 4.1"),
    ("recipe.random_erase", "we also utilize random erase with prob 0.2", "Sec. 4.1"),
    ("recipe.autoaugment", "For larger models, *e.g.*, RepGhostNet 1.3× (231M), auto-augmentation [6] is applied.",
     "Sec. 4.1"),
    ("recipe.resnet50", "For ResNet50-like models, we only train for 100 epochs following [14].", "Sec. 4.1"),
    # Sec. 4.1: the comparisons the paper draws from Table 3
    ("claim.0.5x_faster", "RepGhostNet 0.5× is **20%** faster than GhostNet 0.5× with 0.5% higher Top-1 accuracy",
     "Sec. 4.1"),
    ("claim.1x_faster", "RepGhostNet 1.0× is 14% faster than MobileNetV3 Large 0.75× with 0.7% higher Top-1 "
                        "accuracy", "Sec. 4.1"),
    ("claim.0.58x_accuracy", "our RepGhostNet 0.58× surpasses GhostNet 0.5× by **2.5%** Top-1 accuracy", "Sec. 4.1"),
    ("claim.1.11x_accuracy", "RepGhostNet 1.11× surpasses MobileNetV3 Large 0.75× by 1.6% Top-1 accuracy",
     "Sec. 4.1"),
    # Table 5 and Sec. 4.3: Ghost-Res50 vs RepGhost-Res50
    ("table5.header", "Model Params(M) FLOPs(B) MNN Latency(ms) TRT Latency(ms) Top-1(%) Top-5(%)",
     "Table 5 (header)"),
    ("table5.ghost_res50_s2", "Ghost-Res50 (s=2) [14] 14.0 2.2 610.6 64.8 76.2 93.0", "Table 5"),
    ("table5.repghost_res50_s1.4", "RepGhost-Res50 (s=1.4) 13.2 2.2 547.1 56.5 76.2 93.0", "Table 5"),
    ("table5.ghost_res50_s4", "Ghost-Res50 (s=4) [14] 8.2 1.2 423.9 70.2 73.1 91.3", "Table 5"),
    ("table5.repghost_res50_s2", "RepGhost-Res50 (s=2) 7.1 1.2 331.6 38.9 73.6 91.5", "Table 5"),
    ("table5.caption", "Results on comparison with Ghost-Res50.", "Table 5, caption"),
    ("sec4.2.detection_results", "our RepGhostNet outperforms MobileNetV2 [35], MobileNetV3 [19] and GhostNet [14] on "
                                 "both tasks with faster inference speed", "Sec. 4.2"),
    ("sec4.3.res50_replace", "We replace the Ghost module in Ghost-Res50 with our RepGhost module to get "
                             "RepGhost-Res50.", "Sec. 4.3"),
    # Table 6: Variant | id | 1x1dconv | BN | Top-1 Acc.(%)
    ("table6.no_reparam", "no-reparam 66.3", f"{_T6} none (module e)"),
    ("table6.id", "✓ 66.4", f"{_T6} id"),
    ("table6.1x1dconv", "✓ 66.2", f"{_T6} 1x1dconv"),
    ("table6.bn", "✓ 66.9", f"{_T6} BN"),
    ("table6.1x1dconv_bn", "✓ ✓ 66.5", f"{_T6} 1x1dconv, BN"),
    ("table6.id_1x1dconv_bn", "✓ ✓ ✓ 66.5", f"{_T6} id, 1x1dconv, BN"),
    ("table6.bn_relu", "+ReLU ✓ 66.6", f"{_T6} BN, with ReLU after the depthwise conv"),
    ("sec4.3.bn_attribution", "We attribute this improvement to the training-time non-linearity of BN, which provides "
                              "more information than identity mapping.", "Sec. 4.3"),
    ("table6.fusable", "can be fused into a same efficient inference model, expect the last one row.", "Sec. 4.3"),
    # Table 7: RepGhostNet | Shortcut | Top1 Acc.(%) | Latency(ms)
    ("table7.shortcuts_removed", "there are 11 shortcuts of identity mapping removed in RepGhostNet", "Sec. 4.3"),
    ("table7.shortcut_cost", "thought shortcut increases memory access costs (thus affects runtime performance), this "
                             "affection is negligible for a computation-constrained mobile device", "Sec. 4.3"),
    ("table7.0.5x", "0.5 \\times ✓ 66.9 25.1", f"{_T7}, with shortcut"),
    ("table7.0.5x_no_shortcut", "✗ 64.1(-2.8) 24.9(-0.2)", f"{_T7}, RepGhostNet 0.5x without shortcut"),
    ("table7.1x", "1.0 \\times ✓ 74.2 62.2", f"{_T7}, with shortcut"),
    ("table7.1x_no_shortcut", "✗ 72.7(-1.5) 60.5(-1.7)", f"{_T7}, RepGhostNet 1.0x without shortcut"),
    ("table7.1.5x", "1.5 \\times ✓ 77.5 116.9", f"{_T7}, with shortcut"),
    ("table7.1.5x_no_shortcut", "✗ 75.8(-1.7) 114.9(-2.0)", f"{_T7}, RepGhostNet 1.5x without shortcut"),
    ("table7.2x", "2.0 \\times ✓ 78.8 190.0", f"{_T7}, with shortcut"),
    ("table7.2x_no_shortcut", "✗ 77.9(-0.9) 186.7(-2.3)", f"{_T7}, RepGhostNet 2.0x without shortcut"),
]

#: Every quote, by key.
QUOTES: Dict[str, Quote] = {key: Quote(key, text, where) for key, text, where in _ENTRIES}

@dataclasses.dataclass(frozen=True)
class Claim:
    """One claim of the paper that a reproduction can hold or break: ``key`` (what a notebook's ``RESULT`` line
    names), ``quotes`` (keys of :data:`QUOTES`: the paper's own words and numbers, so the ledger never retypes
    them), ``about`` (what is claimed, in a few words of ours) and, for a claim no notebook measures,
    ``not_attempted``: why."""

    key: str
    quotes: Tuple[str, ...]
    about: str
    not_attempted: Optional[str] = None


_IMAGENET = ("ImageNet top-1 needs the 1.28 M training images for 300 epochs on 8 GPUs (Sec. 4.1); this project "
             "trains on CPUs, on CIFAR-10 and on the first 10 classes of a 100-class 64 px ImageNet subset "
             "(notebook 06)")

#: The paper's claims, in the paper's order; :mod:`repghost_mini.teaching.ledger` gives each a status.
CLAIMS: Dict[str, Claim] = {c.key: c for c in [
    Claim("table1.cat_vs_add", ("sec3.1.cat_vs_add", "sec3.1.same_shape", "table1.concat", "table1.add"),
          "concatenation costs about twice an add of the same operands (Table 1)"),
    Claim("sec3.1.nhwc", ("sec3.1.nhwc",), "in NHWC layout concatenation copies smaller blocks, so it costs more"),
    Claim("fig2.savings", ("sec3.1.gap_larger", "sec3.1.savings"),
          "in the whole network the concatenations take a larger share of the time than the adds that replace them "
          "(Fig. 2's Diff > 0)"),
    Claim("footnote2", ("footnote2",), "pre-allocating the output omits the concatenation at batch 1"),
    Claim("sec3.2.fusion", ("sec2.2.implicit_reuse", "table6.fusable"),
          "every re-parameterization branch folds into one depthwise conv: same outputs, one operator"),
    Claim("table2.architecture", ("table2.header", "table2.stem"), "RepGhostNet 1.0x is built as Table 2 lists"),
    Claim("table3.params_flops", ("table3.header", "table3.repghostnet_1x"),
          "the parameters and FLOPs of every width of Table 3"),
    Claim("table3.latency", ("claim.0.5x_faster", "table3.repghostnet_1x", "table3.ghostnet_1x"),
          "fused RepGhostNet is faster than GhostNet of the same width in MNN (Table 3)"),
    Claim("fig1.ranking", ("latency.mnn", "latency.runs"),
          "the latency ranking of the mobile models of Table 3 / Fig. 1"),
    Claim("fig1.mobilenetv3", ("claim.1x_faster", "claim.1.11x_accuracy", "table3.repghostnet_0.5x",
                               "table3.mobilenetv3_small_0.75x", "table3.mobilenetv3_small_1x"),
          "RepGhostNet is faster than MobileNetV3 at similar or higher top-1 (Fig. 1)"),
    Claim("table3.top1", ("claim.0.58x_accuracy", "abstract.claim"),
          "ImageNet top-1 of RepGhostNet against GhostNet and MobileNetV3", _IMAGENET),
    Claim("table4.detection", ("sec4.2.detection_results",),
          "RepGhostNet backbones in RetinaNet / Mask R-CNN on COCO: higher mAP, faster (Table 4)",
          "COCO mAP needs the COCO data set and 12 epochs on 8 GPUs (Sec. 4.2); notebook 08 builds RetinaNet on "
          "RepGhostNet with random weights and times the backbone against the whole detector"),
    Claim("table5.params_flops", ("table5.ghost_res50_s2", "table5.repghost_res50_s2"),
          "parameters and FLOPs of Ghost-Res50 and RepGhost-Res50 (Table 5)"),
    Claim("table5.latency", ("table5.ghost_res50_s2", "table5.repghost_res50_s1.4", "table5.ghost_res50_s4",
                             "table5.repghost_res50_s2"),
          "RepGhost-Res50 is faster than Ghost-Res50 of equal FLOPs in MNN: s=1.4 against s=2, s=2 against s=4 "
          "(Table 5)"),
    Claim("table5.top1", ("table5.ghost_res50_s4", "table5.repghost_res50_s2"),
          "ImageNet top-1 of the ResNet-50 variants (Table 5)", _IMAGENET),
    Claim("table6.branches", ("table6.bn", "table6.no_reparam"),
          "the BN branch is the best re-parameterization structure (Table 6)"),
    Claim("table6.relu_latency", ("table6.bn_relu", "table6.fusable"),
          "a ReLU after the depthwise conv prevents fusing it, so it costs latency (Table 6)"),
    Claim("table7.shortcut_latency", ("table7.shortcut_cost", "table7.1x", "table7.1x_no_shortcut"),
          "removing the shortcuts saves little latency (Table 7)"),
    Claim("table7.shortcut_top1", ("table7.0.5x", "table7.0.5x_no_shortcut"),
          "removing the shortcuts costs top-1 accuracy (Table 7)"),
]}


#: The numeric columns of a Table 3 row, in order (``None`` where the paper prints "-").
TABLE3_COLUMNS = ("params_m", "flops_m", "latency_ms", "top1", "top5")


def quote(key: str) -> str:
    """The verbatim text of the quote ``key``, e.g. ``quote("recipe.lr") == "Base learning rate is 0.6"``."""
    if key not in QUOTES:
        near = difflib.get_close_matches(key, QUOTES, n=3)
        hint = f"did you mean {', '.join(near)}?" if near else "see repghost_mini.paper.QUOTES for the keys."
        raise UserError(f"no paper quote named {key!r}: {hint}")
    return QUOTES[key].text


def table3(arch: str, width: float) -> Dict[str, Optional[float]]:
    """The numbers of a Table 3 row by :data:`TABLE3_COLUMNS`: ``arch`` is "repghostnet", "ghostnet",
    "mobilenetv3_small", "mobilenetv3_large", "mobilenetv2", "shufflenetv2" or "mobilenext" with its width, or
    "mobileone_s0", "proxylessnas", "efficientnet_b0" with width 1.

    Read from the row's quote (its last five cells), so they cannot drift from the quoted text.
    """
    return _row_numbers(3, f"{arch}_{width:g}x", f"{arch} {width:g}x", TABLE3_COLUMNS)


def _row_numbers(table: int, row: str, label: str, columns) -> Dict[str, Optional[float]]:
    """The last ``len(columns)`` cells of the quote ``table<table>.<row>`` as numbers (``None`` for "-")."""
    prefix = f"table{table}."
    if prefix + row not in QUOTES:
        rows = sorted(k[len(prefix):] for k in QUOTES if k.startswith(prefix) and k != prefix + "header"
                      and k != prefix + "caption")
        raise UserError(f"Table {table} has no row {label}; its rows here are {', '.join(rows)}.")
    cells = QUOTES[prefix + row].text.split()[-len(columns):]
    return {col: None if cell == "-" else float(cell) for col, cell in zip(columns, cells, strict=True)}


#: The numeric columns of a Table 5 row, in order.
TABLE5_COLUMNS = ("params_m", "flops_b", "mnn_latency_ms", "trt_latency_ms", "top1", "top5")


def table5(arch: str, ratio: float) -> Dict[str, Optional[float]]:
    """The numbers of a Table 5 row (``arch`` "ghost_res50" or "repghost_res50", ``ratio`` its s), by
    :data:`TABLE5_COLUMNS`; read from the row's quote, like :func:`table3`."""
    return _row_numbers(5, f"{arch}_s{ratio:g}", f"{arch} s={ratio:g}", TABLE5_COLUMNS)


def table7(width: float) -> Dict[str, float]:
    """Table 7's row for RepGhostNet ``width``x, read from its two quotes: ``top1`` and ``latency_ms`` with the
    shortcuts, ``top1_no_shortcut`` and ``latency_no_shortcut_ms`` without them (the differences in brackets
    dropped)."""
    key = f"table7.{width:g}x"
    if key not in QUOTES:
        widths = sorted(k[len("table7."):] for k in QUOTES if k.startswith("table7.") and k[7].isdigit()
                        and not k.endswith("_no_shortcut"))
        raise UserError(f"Table 7 has no row RepGhostNet {width:g}x; its widths are {', '.join(widths)}.")
    with_cells = QUOTES[key].text.split()[-2:]
    without_cells = [cell.split("(")[0] for cell in QUOTES[key + "_no_shortcut"].text.split()[-2:]]
    return dict(top1=float(with_cells[0]), latency_ms=float(with_cells[1]), top1_no_shortcut=float(without_cells[0]),
                latency_no_shortcut_ms=float(without_cells[1]))


def check_quotes(seed_path: Union[str, Path]) -> List[str]:
    """The keys of :data:`QUOTES` whose text is not in the paper's text at ``seed_path`` (whitespace-normalised).

    An empty list means every number attributed to the paper is found verbatim in it.
    """
    paper = normalise(Path(seed_path).read_text(encoding="utf-8"))
    return [key for key, q in QUOTES.items() if normalise(q.text) not in paper]
