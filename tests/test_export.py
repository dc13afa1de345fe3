"""ONNX export of the fused network (Sec. 3.2): what re-parameterization removes from the deployed graph.

Exports are slow-ish (torch.export + decompositions), so we export small networks built from the first four
rows of Table 2 (they include a stride-2 block, an SE block and a 5x5 depthwise conv) once per module.
"""
import onnx
import pytest
import torch

import repghost_mini as rg
from repghost_mini.core.networks import GHOSTNET_CFG, REPGHOSTNET_CFG
from repghost_mini.deploy.export import (
    check_onnx_matches,
    count_onnx_ops,
    draw_onnx_graph,
    export_onnx,
    onnx_file_size_mb,
    onnx_session,
    run_onnx,
)

SIZE = (1, 3, 32, 32)


def _repghostnet():
    torch.manual_seed(0)
    model = rg.RepGhostNet(width=0.5, num_classes=10, small_input=True, cfg=REPGHOSTNET_CFG[:4]).eval()
    return rg.randomize_bn_stats_(model, seed=1)


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    folder = tmp_path_factory.mktemp("onnx")
    train_form = _repghostnet()
    fused = rg.reparameterize(train_form)
    torch.manual_seed(0)
    ghost = rg.randomize_bn_stats_(rg.GhostNet(width=0.5, num_classes=10, small_input=True,
                                               cfg=GHOSTNET_CFG[:4]).eval())
    models = {"train": train_form, "fused": fused, "ghost": ghost}
    paths = {name: export_onnx(m, folder / f"{name}.onnx", SIZE) for name, m in models.items()}
    return models, paths


@pytest.mark.slow
def test_fused_graph_has_no_concat_and_no_batchnorm(exported):
    models, paths = exported
    ops = count_onnx_ops(paths["fused"])
    assert ops.get("Concat", 0) == 0 and ops.get("BatchNormalization", 0) == 0, ops
    # one Conv per nn.Conv2d, one Gemm for the classifier: nothing was lost or duplicated
    n_convs = sum(isinstance(m, torch.nn.Conv2d) for m in models["fused"].modules())
    assert ops["Conv"] == n_convs and ops["Gemm"] == 1


def test_ghostnet_graph_keeps_its_concats(exported):
    models, paths = exported
    n_ghost_modules = sum(isinstance(m, rg.GhostModule) for m in models["ghost"].modules())
    assert n_ghost_modules > 0
    assert count_onnx_ops(paths["ghost"])["Concat"] == n_ghost_modules


def test_training_form_graph_is_larger_than_fused(exported):
    """The exporter folds Conv->BN pairs itself in eval mode, but not module d's BN branch nor its Add."""
    models, paths = exported
    train_ops, fused_ops = count_onnx_ops(paths["train"]), count_onnx_ops(paths["fused"])
    assert sum(train_ops.values()) > sum(fused_ops.values())
    rep_modules = [m for m in models["train"].modules() if isinstance(m, rg.RepGhostModule)]
    assert train_ops["BatchNormalization"] == sum(m.fusion_bn is not None for m in rep_modules) > 0
    assert train_ops["Add"] - fused_ops["Add"] == len(rep_modules)
    assert train_ops["Conv"] == fused_ops["Conv"]


def test_exported_file_holds_weights_and_names_but_no_local_paths(exported):
    """Same model -> same file on any machine: the exporter's stack traces (with file paths) are dropped."""
    models, paths = exported
    proto = onnx.load(str(paths["fused"]))
    keys = {p.key for node in proto.graph.node for p in node.metadata_props}
    assert rg.deploy.export.STACK_TRACE_KEY not in keys and "namespace" in keys
    assert b"site-packages" not in paths["fused"].read_bytes()
    n_params = sum(p.numel() for p in models["fused"].parameters())
    assert 4 * n_params < onnx_file_size_mb(paths["fused"]) * 1e6 < 2 * 4 * n_params  # float32 weights + graph


@pytest.mark.parametrize("name", ["train", "fused", "ghost"])
def test_onnxruntime_matches_pytorch_with_dynamic_batch(exported, name):
    models, paths = exported
    proto = onnx.load(str(paths[name]))
    assert max(op.version for op in proto.opset_import if op.domain in ("", "ai.onnx")) >= 17
    assert proto.graph.input[0].type.tensor_type.shape.dim[0].dim_param  # symbolic batch dimension
    worst = check_onnx_matches(models[name], paths[name], SIZE, batch_sizes=(1, 5))
    assert worst < 1e-3
    assert onnx_file_size_mb(paths[name]) > 0


def test_fused_and_training_form_give_the_same_onnx_outputs(exported):
    _, paths = exported
    x = torch.randn(4, *SIZE[1:], generator=torch.Generator().manual_seed(3))
    a, b = run_onnx(onnx_session(paths["train"]), x), run_onnx(paths["fused"], x)
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)


def test_check_onnx_matches_detects_a_different_model(exported):
    models, paths = exported
    other = rg.reparameterize(rg.randomize_bn_stats_(_repghostnet(), seed=7))
    with pytest.raises(AssertionError, match="differ"):
        check_onnx_matches(other, paths["fused"], SIZE, batch_sizes=(2,))


def test_draw_onnx_graph_draws_one_box_per_node(exported):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    _, paths = exported
    ax = draw_onnx_graph(paths["fused"])
    n_nodes = sum(n.op_type != "Constant" for n in onnx.load(str(paths["fused"])).graph.node) + 1  # + input
    boxes = [t for t in ax.texts if not isinstance(t, matplotlib.text.Annotation)]  # arrows are annotations
    assert len(boxes) == n_nodes and len(ax.texts) > n_nodes
    plt.close(ax.figure)


def test_bad_inputs_give_clear_errors(tmp_path):
    model = _repghostnet()
    with pytest.raises(RuntimeError, match="eval"):
        export_onnx(model.train(), tmp_path / "m.onnx", SIZE)
    with pytest.raises(ValueError, match="opset"):
        export_onnx(model.eval(), tmp_path / "m.onnx", SIZE, opset=13)
    with pytest.raises(FileNotFoundError, match="export_onnx"):
        count_onnx_ops(tmp_path / "missing.onnx")
    with pytest.raises(TypeError):
        count_onnx_ops(42)


def test_int8_weights_of_fused_kernels_lose_more_with_per_tensor_scales():
    """Sec. 7 of notebook 07: fused kernels sum branches, so per-tensor INT8 scales get coarse."""
    train_form = _repghostnet()
    fused = rg.reparameterize(train_form)
    x = torch.randn(4, *SIZE[1:], generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        y = fused(x)
        snr = {(name, pc): rg.deploy.snr_db(y, rg.deploy.fake_quantize_weights(m, per_channel=pc)(x))
               for name, m in (("train", train_form), ("fused", fused)) for pc in (False, True)}
        assert rg.deploy.snr_db(y, rg.deploy.fake_quantize_weights(fused, bits=12)(x)) > snr[("fused", False)] + 15
    assert snr[("fused", False)] < snr[("train", False)]
    assert snr[("fused", True)] > snr[("fused", False)]
    assert rg.deploy.snr_db(y, y) == float("inf")
    with pytest.raises(ValueError, match="bits"):
        rg.deploy.fake_quantize_weights(fused, bits=1)
