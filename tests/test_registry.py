"""The one model registry: every name builds, variants are the paper's (Tables 3, 6, 7), options reach every model
the same way, and training / latency / the CLI all resolve names through it."""
import pytest
import torch

import repghost_mini as r


def test_names_cover_table3_table6_table7_fused_and_timm():
    names = set(r.available_models())
    assert {f"repghostnet_{w}" for w in ("050", "058", "080", "100", "111", "130", "150", "200")} <= names
    assert {"ghostnet_050", "ghostnet_100", "ghostnet_130"} <= names
    table6 = {n for n in names if n.startswith("repghostnet_050_") and not n.endswith(("_fused", "noshortcut"))}
    assert len(table6) == 8  # 7 other branch sets (incl. no-reparam) + "+ReLU"
    assert {f"repghostnet_{w}_noshortcut" for w in ("050", "100", "150", "200")} <= names
    assert "repghostnet_050_relu_fused" not in names  # "+ReLU" cannot be fused
    assert {"timm_repghostnet_100", "timm_repghostnet_100_reparam"} <= names


def test_variant_names_set_the_paper_options():
    m = r.build_model("repghostnet_050_noreparam", 10)
    assert m.config["branches"] == () and m.config["small_input"] is False  # the paper's stem, as repghostnet()
    assert r.build_model("repghostnet_100_noshortcut", 10).config["shortcut"] is False
    assert r.build_model("repghostnet_050_relu", 10).config["relu_after_dw"] is True
    assert r.build_model("repghostnet_050_identity_bn_dconv1x1", 10).config["branches"] == (
        "identity", "bn", "dconv1x1")


def test_options_override_a_names_variant_the_same_way_for_every_model():
    m = r.build_model("repghostnet_050_noshortcut", 5, small_input=False, dropout=0.1, branches=("identity",),
                      shortcut=True)
    assert (m.config["shortcut"], m.config["branches"], m.config["dropout"], m.config["small_input"]) == (
        True, ("identity",), 0.1, False)
    g = r.build_model("ghostnet_050", 5, shortcut=False)
    assert g.config["shortcut"] is False
    with pytest.raises(r.UserError, match="GhostNet"):
        r.build_model("ghostnet_050", 5, branches=("bn",))


def test_fused_names_give_the_inference_form():
    fused = r.build_model("repghostnet_050_noshortcut_fused", 10)
    assert r.count_batchnorms(fused) == 0 and fused.config["shortcut"] is False
    assert r.count_params(fused) < r.count_params(r.build_model("repghostnet_050_noshortcut", 10))


def test_registry_entries_are_callable_builders_and_unknown_names_list_choices():
    model = r.training.MODEL_REGISTRY["repghostnet_050"]()
    assert not model.training and model.config["num_classes"] == 1000
    with pytest.raises(r.UserError, match="repghostnet_100_fused"):
        r.build_model("repghostnet_1000")


def test_every_model_name_the_trainer_accepts_is_the_registrys():
    cfg = r.TrainConfig(model="repghostnet_050_noreparam", branches=None, shortcut=False)
    m = r.build_model(cfg.model, 10, **cfg.build_kwargs())
    assert m.config["branches"] == () and m.config["shortcut"] is False and cfg.build(10).config == m.config
    earlier_style = r.TrainConfig(model="repghostnet_050", model_kwargs={"branches": ()})  # still accepted
    assert r.build_model(earlier_style.model, 10, **earlier_style.build_kwargs()).config["branches"] == ()


def test_an_option_given_twice_is_refused_not_silently_overridden():
    twice = r.TrainConfig(model="repghostnet_050", dropout=0.1, model_kwargs={"dropout": 0.3})
    with pytest.raises(ValueError, match="give each option once"):
        twice.build(10)


def test_timm_prefix_builds_any_timm_model():
    pytest.importorskip("timm")
    model = r.build_model("timm:repghostnet_050", 10)
    assert r.count_params(model) == r.count_params(r.build_model("repghostnet_050", 10, small_input=False))
    with torch.no_grad():
        assert model.eval()(torch.randn(1, 3, 32, 32)).shape == (1, 10)


def test_building_a_named_model_leaves_the_global_random_state_alone():
    torch.manual_seed(123)
    before = torch.get_rng_state()
    a = r.training.build_named_model("repghostnet_050_fused")
    assert torch.equal(torch.get_rng_state(), before)
    b = r.training.build_named_model("repghostnet_050_fused")  # still seeded: the same weights every time
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True))
