"""RepGhostNet as a backbone (issue 13), modelled on timm's model tests: forward/backward of every registered
model; torch.fx, TorchScript, torch.export and torch.compile in both forms (training and re-parameterized);
``features_only`` shapes and reductions; fused == training features; a torchvision detector on real photos."""
import warnings
from pathlib import Path

import pytest
import torch
import torch.fx
from torch import nn

import repghost_mini as r

OURS = [n for n in r.available_models() if not n.startswith("timm_")]  # timm's own models are timm's business
SMALLEST = {"repghostnet": lambda: r.repghostnet(0.5, num_classes=10),
            "repghostnet_small_input": lambda: r.repghostnet(0.5, num_classes=10, small_input=True),
            "repghostnet_all_branches": lambda: r.repghostnet(0.5, num_classes=10,
                                                              branches=("identity", "bn", "dconv1x1")),
            "ghostnet": lambda: r.ghostnet(0.5, num_classes=10),
            "features": lambda: r.repghostnet(0.5, features_only=True),
            "ghostnet_features": lambda: r.ghostnet(0.5, features_only=True, out_indices=(0, 1, 2, 3, 4))}
MODULES = {"a": lambda: r.GhostModule(8, 12), "b": lambda: r.core.GhostAddModule(8, 12),
           "c": lambda: r.core.LateReLUModule(8, 12),
           "d": lambda: r.RepGhostModule(8, 12, branches=r.core.REPARAM_BRANCHES),
           "d+relu": lambda: r.RepGhostModule(8, 12, relu_after_dw=True),
           "e": lambda: r.RepGhostInferenceModule(8, 12),
           "bottleneck": lambda: r.RepGhostBottleneck(8, 12, 16, 5, stride=2, se_ratio=0.25),
           "ghost_bottleneck": lambda: r.GhostBottleneck(8, 24, 8, shortcut=True)}


def _form(model: nn.Module, form: str) -> nn.Module:
    model = r.randomize_bn_stats_(model).eval()
    if form == "fused" and not any(getattr(m, "relu_after_dw", False) for m in model.modules()):
        return r.reparameterize(model)
    return model


def _as_list(out):
    return list(out) if isinstance(out, (list, tuple)) else [out]


def _assert_same(out, ref):
    for a, b in zip(_as_list(out), _as_list(ref), strict=True):
        assert a.shape == b.shape and torch.allclose(a, b, rtol=1e-5, atol=1e-5)  # float32 rounding


def _script(model):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit.script is deprecated upstream, still used
        return torch.jit.script(model)


@pytest.mark.slow
@pytest.mark.parametrize("name", OURS)
def test_registered_model_forward_backward(name):
    torch.manual_seed(0)
    model = r.training.build_named_model(name).train()
    out = model(torch.randn(2, 3, 32, 32))
    assert out.ndim == 2 and out.shape[0] == 2 and torch.isfinite(out).all()
    out.mean().backward()
    assert all(p.grad is not None for p in model.parameters())  # every parameter is used


@pytest.mark.slow
@pytest.mark.parametrize("name", OURS)
def test_registered_model_fx_and_script(name):
    model = r.randomize_bn_stats_(r.training.build_named_model(name)).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        ref = model(x)
        _assert_same(torch.fx.symbolic_trace(model)(x), ref)
        _assert_same(_script(model)(x), ref)


@pytest.mark.slow
@pytest.mark.parametrize("form", ["training", "fused"])
@pytest.mark.parametrize("arch", list(SMALLEST))
def test_fx_script_export_in_both_forms(arch, form):
    model = _form(SMALLEST[arch](), form)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        ref = model(x)
        _assert_same(torch.fx.symbolic_trace(model)(x), ref)
        _assert_same(_script(model)(x), ref)
        _assert_same(torch.export.export(model, (x,)).module()(x), ref)


@pytest.mark.parametrize("form", ["training", "fused"])
@pytest.mark.parametrize("variant", list(MODULES))
def test_every_module_traces_and_scripts(variant, form):
    module = _form(MODULES[variant](), form)
    x = torch.randn(2, 8, 10, 10)
    with torch.no_grad():
        ref = module(x)
        _assert_same(torch.fx.symbolic_trace(module)(x), ref)
        _assert_same(_script(module)(x), ref)


def test_input_check_survives_fx_and_script():
    net = r.repghostnet(0.5).eval()
    gray = torch.randn(1, 1, 32, 32)
    for model in (net, torch.fx.symbolic_trace(net)):
        with pytest.raises(ValueError, match=r"expects images of shape \(N, 3, H, W\), got \[1, 1, 32, 32\]"):
            model(gray)
    with pytest.raises(torch.jit.Error, match=r"ValueError: RepGhostNet expects images of shape \(N, 3, H, W\)"):
        _script(net)(gray)
    module = torch.fx.symbolic_trace(r.RepGhostModule(8, 8))
    with pytest.raises(ValueError, match=r"RepGhostModule expects input of shape \(N, 8, H, W\)"):
        module(torch.randn(1, 4, 5, 5))


@pytest.mark.slow
@pytest.mark.parametrize("form", ["train", "fused"])
def test_compile_one_small_model(form):
    torch._dynamo.reset()
    model = _form(r.repghostnet(0.5, num_classes=10, small_input=True), form)
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        _assert_same(torch.compile(model)(x), model(x))


def test_features_at_224_have_reductions_4_to_32():
    feats = r.repghostnet(1.0, features_only=True).eval()
    assert feats.reduction() == [4, 8, 16, 32] and feats.channels() == [24, 40, 112, 960]
    with torch.no_grad():
        maps = feats(torch.randn(1, 3, 224, 224))
    assert [tuple(m.shape) for m in maps] == [(1, 24, 56, 56), (1, 40, 28, 28), (1, 112, 14, 14), (1, 960, 7, 7)]


@pytest.mark.parametrize("build", [*(lambda w=w: r.repghostnet(w, features_only=True, out_indices=range(5))
                                     for w in r.core.TABLE3_WIDTHS),
                                   lambda: r.repghostnet(0.5, features_only=True, small_input=True),
                                   lambda: r.ghostnet(1.0, features_only=True, out_indices=(0, 2, 4))],
                         ids=[*(f"repghostnet_{w}" for w in r.core.TABLE3_WIDTHS), "small_input", "ghostnet"])
def test_feature_shapes_match_feature_info(build):
    feats = build().eval()
    x = torch.randn(1, 3, 64, 96)
    with torch.no_grad():
        maps = feats(x)
    assert len(maps) == len(feats.feature_info)
    for m, info in zip(maps, feats.feature_info, strict=True):
        assert tuple(m.shape) == (1, info["num_chs"], 64 // info["reduction"], 96 // info["reduction"])
    small = feats.config.get("small_input", False)
    assert feats.reduction() == [2 ** (i + 1) // (2 if small else 1) for i in feats.out_indices]


@pytest.mark.parametrize("arch", ["repghostnet", "small_input", "ghostnet"])
def test_fused_features_equal_training_features(arch):
    kw = dict(small_input=True) if arch == "small_input" else {}
    build = r.ghostnet if arch == "ghostnet" else r.repghostnet
    feats = r.randomize_bn_stats_(build(0.5, features_only=True, out_indices=range(5), **kw), seed=3).eval()
    fused = r.reparameterize(feats)
    assert r.count_batchnorms(fused) == 0
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        for a, b in zip(fused(x), feats(x), strict=True):
            assert ((a - b).abs().max() / b.abs().max()).item() <= 1e-5  # float32, as test_networks
    feats64 = feats.double()
    with torch.no_grad():
        for a, b in zip(r.reparameterize(feats64)(x.double()), feats64(x.double()), strict=True):
            assert ((a - b).abs().max() / b.abs().max()).item() <= 1e-12


def test_classifier_split_and_checkpoint_into_features():
    net = r.repghostnet(0.5, num_classes=10).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(net.forward_head(net.forward_features(x)), net(x))
        assert net.forward_head(net.forward_features(x), pre_logits=True).shape == (2, 1280)
    feats = r.repghostnet(0.5, features_only=True).eval()
    result = feats.load_state_dict(net.state_dict(), strict=False)
    assert not result.missing_keys
    assert {k.split(".")[0] for k in result.unexpected_keys} == {"conv_head", "classifier"}
    with torch.no_grad():
        assert torch.equal(feats(x)[-1], net.forward_features(x))


def test_bad_out_indices_say_what_is_valid():
    with pytest.raises(ValueError, match=r"out_indices must be increasing distinct indices into the 5 feature"):
        r.repghostnet(0.5, features_only=True, out_indices=(1, 5))
    with pytest.raises(ValueError, match="reductions"):
        r.repghostnet(0.5, features_only=True, out_indices=(3, 1))


def _photos(n: int):
    from PIL import Image
    from torchvision.transforms.v2 import functional as TF
    root = Path(__import__("os").environ.get("REPGHOST_MINI_DATA", "data")) / "imagenet-samples" / "images"
    files = sorted(root.glob("*.JPEG"))[:n]
    if len(files) < n:
        pytest.skip(f"needs the ImageNet sample photos under {root} (set REPGHOST_MINI_DATA)")
    images = [TF.to_dtype(TF.to_image(Image.open(f).convert("RGB")), torch.float32, scale=True) for f in files]
    # one box per photo made by the test: the central 60% of an object-centred ImageNet photo, class 1
    targets = [{"boxes": torch.tensor([[0.2 * im.shape[2], 0.2 * im.shape[1], 0.8 * im.shape[2], 0.8 * im.shape[1]]]),
                "labels": torch.tensor([1])} for im in images]
    return images, targets


def test_fasterrcnn_trains_one_step_and_fused_backbone_gives_same_detections():
    torch.manual_seed(0)
    images, targets = _photos(2)
    det = r.deploy.repghost_detector("fasterrcnn", num_classes=3, width=1.0, min_size=224, max_size=320).train()
    before = det.backbone.body.conv_stem.weight.detach().clone()
    losses = det(images, targets)
    assert set(losses) == {"loss_classifier", "loss_box_reg", "loss_objectness", "loss_rpn_box_reg"}
    assert all(torch.isfinite(v) for v in losses.values())
    opt = torch.optim.SGD(det.parameters(), lr=0.01, momentum=0.9)
    sum(losses.values()).backward()
    opt.step()
    assert not torch.equal(before, det.backbone.body.conv_stem.weight)  # the backbone trained too
    det.eval()
    fused = r.reparameterize(det)  # the whole detector: only the backbone has BatchNorms / RepGhost modules
    assert r.count_batchnorms(det.backbone) > 0 and r.count_batchnorms(fused) == 0
    with torch.no_grad():
        ref, out = det(images), fused(images)
    for a, b in zip(out, ref, strict=True):
        assert len(b["boxes"]) > 0 and torch.equal(a["labels"], b["labels"])
        assert torch.allclose(a["boxes"], b["boxes"], atol=1e-3) and torch.allclose(a["scores"], b["scores"], atol=1e-5)


@pytest.mark.parametrize("kind", ["retinanet", "fcos"])
def test_one_stage_detectors_build_train_and_predict(kind):
    torch.manual_seed(0)
    images, targets = _photos(2)
    det = r.deploy.repghost_detector(kind, num_classes=3, width=0.5, min_size=160, max_size=224).train()
    losses = det(images, targets)
    assert losses and all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    with torch.no_grad():
        out = det.eval()(images)
    assert len(out) == 2 and all(set(o) == {"boxes", "scores", "labels"} for o in out)


def test_detector_rejects_unknown_kind():
    with pytest.raises(ValueError, match="kind must be one of"):
        r.deploy.repghost_detector("yolo")
