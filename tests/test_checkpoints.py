"""Loading timm / authors'-format weights into our models (training form and fused), strictly."""
import pytest
import torch

import repghost_mini as r

timm = pytest.importorskip("timm")


def randomized_timm(name):
    torch.manual_seed(0)
    return r.randomize_bn_stats_(timm.create_model(name), seed=5).eval()


@pytest.fixture(scope="module")
def timm_repghost():
    return randomized_timm("repghostnet_100")


@pytest.fixture(scope="module")
def x():
    return torch.randn(2, 3, 224, 224)


def test_timm_parity_training_form(timm_repghost, x):
    ours = r.load_checkpoint(r.core.repghostnet_100(), timm_repghost.state_dict()).eval()
    assert torch.equal(ours(x), timm_repghost(x))


def test_timm_parity_fused(timm_repghost, x):
    fused = r.load_checkpoint(r.reparameterize(r.core.repghostnet_100().eval()), timm_repghost.state_dict())
    ref = timm_repghost(x)
    assert r.count_batchnorms(fused) == 0
    assert ((fused(x) - ref).abs().max() / ref.abs().max()).item() <= 1e-5


def test_ghostnet_parity(x):
    g = randomized_timm("ghostnet_100")
    ours = r.load_checkpoint(r.core.ghostnet_100(), g.state_dict()).eval()
    assert torch.equal(ours(x), g(x))


@pytest.mark.parametrize("wrap", ["plain", "state_dict", "state_dict_ema", "module_prefix"])
def test_checkpoint_formats_from_file(timm_repghost, tmp_path, wrap):
    sd = timm_repghost.state_dict()
    if wrap == "state_dict":
        obj = {"state_dict": sd, "epoch": 3}
    elif wrap == "state_dict_ema":  # EMA weights are preferred over the raw ones
        obj = {"state_dict": {k: torch.zeros_like(v) for k, v in sd.items()}, "state_dict_ema": sd}
    elif wrap == "module_prefix":
        obj = {"state_dict": {"module." + k: v for k, v in sd.items()}}
    else:
        obj = sd
    path = r.training.save_atomic(obj, tmp_path / "ckpt.pth")
    ours = r.load_checkpoint(r.core.repghostnet_100(), path).eval()
    for k, v in ours.state_dict().items():
        assert torch.equal(v, sd[k]), k


def test_wrong_checkpoint_names_keys_and_loads_nothing(timm_repghost):
    model = r.core.repghostnet_050()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(ValueError, match=r"wrong shape .*conv_stem.weight"):
        r.load_checkpoint(model, timm_repghost.state_dict())
    sd = dict(timm_repghost.state_dict())
    sd.pop("classifier.bias")
    sd["extra.weight"] = torch.zeros(1)
    with pytest.raises(ValueError, match=r"missing: classifier.bias; unexpected: extra.weight"):
        r.load_checkpoint(r.core.repghostnet_100(), sd)
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


def test_bad_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        r.load_checkpoint(r.core.repghostnet_050(), tmp_path / "nope.pth")
    bad = tmp_path / "bad.pth"
    bad.write_text("not a checkpoint")
    with pytest.raises(ValueError, match="could not read"):
        r.load_checkpoint(r.core.repghostnet_050(), bad)


def test_save_atomic_leaves_no_temp_files(tmp_path):
    r.training.save_atomic({"a": torch.ones(2)}, tmp_path / "x.pt")
    assert [p.name for p in tmp_path.iterdir()] == ["x.pt"]
