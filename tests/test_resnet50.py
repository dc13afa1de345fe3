"""Table 5: Ghost-Res50 and RepGhost-Res50 (repghost_mini.core.resnet) -- counts within 5% of the paper's
(read from the quoted Table 5 rows), shapes, and exact fusion of RepGhost-Res50 in float64."""
import pytest
import torch

import repghost_mini as r
from repghost_mini.core import resnet
from repghost_mini.measure import count_macs, count_params

ROWS = {"Ghost-Res50 (s=2)": ("ghost_res50", 2), "RepGhost-Res50 (s=1.4)": ("repghost_res50", 1.4),
        "Ghost-Res50 (s=4)": ("ghost_res50", 4), "RepGhost-Res50 (s=2)": ("repghost_res50", 2)}


def test_table5_rows_are_the_papers():
    assert list(resnet.TABLE5_MODELS) == list(ROWS)
    for name, (arch, ratio) in ROWS.items():
        assert name.split(" [")[0] in r.paper.quote(f"table5.{arch}_s{ratio:g}")


@pytest.mark.slow
@pytest.mark.parametrize("name", list(ROWS))
def test_params_and_flops_within_5_percent_of_table5(name):
    paper = r.paper.table5(*ROWS[name])
    params = count_params(resnet.table5_model(name))
    with torch.device("meta"):  # FLOPs need shapes only: count on the meta device, no arithmetic
        macs = count_macs(resnet.table5_model(name))
    assert abs(params / 1e6 / paper["params_m"] - 1) < 0.05, (name, params)
    assert abs(macs / 1e9 / paper["flops_b"] - 1) < 0.05, (name, macs)


def test_every_bottleneck_conv_and_projection_is_a_module():
    model = resnet.repghost_resnet50(2)
    modules = [m for m in model.modules() if isinstance(m, r.RepGhostModule)]
    assert len(modules) == 16 * 3 + 4  # 16 bottlenecks x 3 convs + 4 projections
    assert sum(isinstance(m, torch.nn.Conv2d) and m.groups == 1 and m.kernel_size == (3, 3)
               for m in model.modules()) == 16  # every 3x3 conv2 is a module's primary conv
    ghost = resnet.ghost_resnet50(4)
    assert sum(isinstance(m, r.GhostModule) for m in ghost.modules()) == 52
    assert ghost.fc.in_features == 2048 and model.fc.in_features == 1024  # RepGhost s=2 halves every width


def test_forward_shapes():
    x = torch.randn(2, 3, 64, 64)
    for model in (resnet.ghost_resnet50(2, num_classes=7), resnet.repghost_resnet50(1.4, num_classes=7)):
        assert model.eval()(x).shape == (2, 7)


def test_repghost_res50_fuses_exactly_in_float64():
    torch.manual_seed(0)
    model = r.randomize_bn_stats_(resnet.repghost_resnet50(2, num_classes=10)).double().eval()
    fused = r.reparameterize(model)
    assert r.count_batchnorms(model) > 0 and r.count_batchnorms(fused) == 0
    assert not any(isinstance(m, r.RepGhostModule) for m in fused.modules())
    x = torch.randn(2, 3, 32, 32, dtype=torch.float64)  # the last stage sees 1x1 maps
    with torch.no_grad():
        ref, out = model(x), fused(x)
    torch.testing.assert_close(out, ref, rtol=1e-10, atol=1e-10)


def test_strided_3x3_primary_conv_survives_fusion():
    m = r.randomize_bn_stats_(r.RepGhostModule(8, 12, kernel_size=3, stride=2)).double().eval()
    e = m.fuse()
    assert e.primary_conv[0].kernel_size == (3, 3) and e.primary_conv[0].stride == (2, 2)
    x = torch.randn(1, 8, 9, 9, dtype=torch.float64)
    torch.testing.assert_close(e(x), m(x), rtol=1e-12, atol=1e-12)
    assert e(x).shape == (1, 12, 5, 5)


def test_bad_arguments_say_what_to_do():
    with pytest.raises(ValueError, match="no row"):
        resnet.table5_model("ResNet-50")
    with pytest.raises(ValueError, match="ratio s must be >= 1"):
        resnet.repghost_resnet50(0.5)
    with pytest.raises(ValueError, match="kernel_size must be a positive odd"):
        r.GhostModule(8, 8, kernel_size=2)


def test_table5_inference_models_are_deployed_as_the_latency_column_needs():
    """Paper order, eval mode, RepGhost-Res50 fused (no BatchNorm), Ghost-Res50 as built, BN statistics
    randomized, and the caller's random stream untouched."""
    state = torch.random.get_rng_state()
    models = resnet.table5_inference_models()
    assert torch.equal(state, torch.random.get_rng_state())
    assert list(models) == list(resnet.TABLE5_MODELS)
    for name, model in models.items():
        bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
        assert not model.training
        assert (not bns) if name.startswith("RepGhost") else (bns and not torch.all(bns[0].running_var == 1))


@pytest.mark.slow
def test_table5_latency_rows_and_names_with_spaces_in_file_names():
    """One row per (runtime, Table 5 row) with a sample per round; a model name with spaces and brackets becomes a
    file name the runtimes accept."""
    rows = r.deploy.table5_latency(runtimes=("torch",), rounds=2, image_size=32, min_run_time=0.01)
    assert [row["model"] for row in rows] == list(resnet.TABLE5_MODELS)
    assert all(len(row["samples_ms"]) == 2 and min(row["samples_ms"]) > 0 for row in rows)
    tiny = {"tiny net (s=2)": r.repghostnet(0.5, num_classes=10).eval()}
    rows = r.deploy.benchmark_models(tiny, runtimes=("onnxruntime",), rounds=1, image_size=32, min_run_time=0.01)
    assert [row["model"] for row in rows] == ["tiny net (s=2)"] and rows[0]["median_ms"] > 0
