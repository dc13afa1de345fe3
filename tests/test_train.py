"""Trainer: exact resume, EMA, schedule, time budget, fused == training form, run folder, errors, real data."""
import json
import os
from pathlib import Path

import pytest
import torch

import repghost_mini as r
from repghost_mini.training.data import DataBundle, InMemoryImages

TINY = dict(model="repghostnet", model_kwargs={"width": 0.1}, batch_size=16, progress=False, lr=0.2, threads=1)


def colour_bundle(n_train=64, n_test=32, size=16, classes=4, seed=0):
    """A learnable toy set: each class has its own mean colour, plus noise."""
    g = torch.Generator().manual_seed(seed)

    def make(n):
        labels = torch.arange(n) % classes
        colour = torch.linspace(30, 220, classes)[labels].view(n, 1, 1, 1)
        shift = torch.tensor([1.0, -1.0, 0.5]).view(1, 3, 1, 1) * (labels.view(n, 1, 1, 1) - classes / 2) * 20
        noise = torch.randn(n, 3, size, size, generator=g) * 25
        return InMemoryImages((colour + shift + noise).clamp(0, 255).to(torch.uint8), labels)

    return DataBundle("toy", make(n_train), make(n_test), classes, [f"c{i}" for i in range(classes)], size,
                      (0.5, 0.5, 0.5), (0.25, 0.25, 0.25), "made in the test", True)


@pytest.mark.slow
def test_resume_continues_exactly(tmp_path):
    b = colour_bundle()
    full = r.train(bundle=b, epochs=2, out_dir=str(tmp_path / "full"), eval_every=0, **TINY)
    part = r.train(bundle=b, epochs=2, out_dir=str(tmp_path / "part"), eval_every=0, stop_after=1, **TINY)
    assert len(part.history) == 1
    resumed = r.train(bundle=b, epochs=2, out_dir=str(tmp_path / "part"), eval_every=0, resume=True, **TINY)
    a, c = full.model.state_dict(), resumed.model.state_dict()
    assert all(torch.equal(a[k], c[k]) for k in a), "resumed run differs from the uninterrupted one"
    assert [h["train_loss"] for h in full.history] == [h["train_loss"] for h in resumed.history]
    assert full.final["train_form"]["top1"] == resumed.final["train_form"]["top1"]
    # (the interrupted run started from scratch with the same seed, so this also shows CPU runs are reproducible)


@pytest.mark.slow
def test_run_folder_checkpoint_ema_and_fused_agreement(tmp_path):
    b = colour_bundle()
    res = r.train(bundle=b, epochs=3, out_dir=str(tmp_path), ema_decay=0.9, **TINY)
    for name in ("metrics.csv", "metrics.json", "curves.png", "checkpoint.pth", "final.json"):
        assert (tmp_path / name).is_file(), name
    assert not list(tmp_path.glob("*.tmp"))  # atomic writes leave no temp files
    hist = json.loads((tmp_path / "metrics.json").read_text())
    assert [h["epoch"] for h in hist] == [1, 2, 3] and all(h["test_top1"] is not None for h in hist)
    assert hist[-1]["lr"] == pytest.approx(0.0, abs=1e-9)  # cosine ends at zero
    assert 0 <= hist[-1]["data_wait"] < 1 and hist[-1]["img_s"] > 0
    ckpt = torch.load(tmp_path / "checkpoint.pth", map_location="cpu", weights_only=True)
    # with an EMA, 10% of every class is held out (2 of each class's 16 images): 56 left, 3 steps of 16 per epoch
    assert ckpt["epoch"] == 3 and ckpt["step"] == 9 and int(ckpt["ema_n_averaged"]) == 9
    # the returned model carries the better of the EMA and raw weights, and final.json / the checkpoint say which
    ema_sd, raw_sd = ckpt["state_dict_ema"], ckpt["state_dict"]
    final_json = json.loads((tmp_path / "final.json").read_text())
    kept = final_json["weights"]
    scores = final_json["top1_by_weights"]
    assert ckpt["weights"] == kept and ckpt["finished"] and scores[kept] >= max(scores.values())
    # the choice was made on the held-out slice of the training split, and the card says so; the test split only
    # measures the kept weights
    card = res.card
    assert card.weights == kept and "held out" in card.selected_on and card.top1 == final_json["train_form"]["top1"]
    assert card.top1_split == "toy test split, 32 images" and ckpt["card"]["weights"] == kept
    held_out_split = r.training.holdout_split(b, 0.1, 0)[1]
    held_out = r.evaluate(res.model, r.training.eval_loader(b, held_out_split), device="cpu")["top1"]
    assert held_out == pytest.approx(scores[kept], abs=1e-6)
    assert all(torch.equal(v, (ema_sd if kept == "ema" else raw_sd)[k]) for k, v in res.model.state_dict().items())
    assert not torch.equal(ema_sd["classifier.weight"], raw_sd["classifier.weight"])
    # training form and re-parameterized form predict the same classes
    final = res.final
    assert final["agree"] and final["agreement"] == 1.0
    assert final["train_form"]["top1"] == final["fused"]["top1"]
    assert final["train_form"]["top5"] == final["fused"]["top5"] == 100.0  # 4 classes: top-5 is everything
    loaded = r.training.load_trained(tmp_path)
    assert all(torch.equal(v, loaded.state_dict()[k]) for k, v in res.model.state_dict().items())
    raw = r.training.load_trained(tmp_path / "checkpoint.pth", use_ema=False)
    assert torch.equal(raw.state_dict()["classifier.weight"], raw_sd["classifier.weight"])


def test_train_accepts_a_model_or_a_builder(tmp_path):
    b = colour_bundle()
    kw = dict(epochs=1, eval_every=0, ema_decay=None, **{**TINY, "model": "repghostnet_050"})
    built = []

    def builder(num_classes):  # called where the registry would build cfg.model (same seed, same weights)
        built.append(num_classes)
        return r.build_model("repghostnet", num_classes, small_input=True, width=0.1)

    via_builder = r.train(bundle=b, out_dir=str(tmp_path / "b"), network=builder, **kw)
    via_registry = r.train(bundle=b, out_dir=str(tmp_path / "n"), **{**kw, "model": "repghostnet"})
    assert built == [4]
    a, c = via_builder.model.state_dict(), via_registry.model.state_dict()
    assert all(torch.equal(a[k], c[k]) for k in a)
    torch.manual_seed(0)
    given = r.build_model("repghostnet", 4, small_input=True, width=0.1)
    res = r.train(bundle=b, out_dir=str(tmp_path / "m"), network=given, **kw)
    assert res.history[0]["steps"] == 4 and r.training.read_checkpoint(tmp_path / "m").model_name == "repghostnet_050"


@pytest.mark.slow
def test_training_learns_the_toy_task(tmp_path):
    b = colour_bundle(n_train=128)
    res = r.train(bundle=b, epochs=4, out_dir=str(tmp_path), ema_decay=None, eval_every=0, **{**TINY, "lr": 0.05})
    losses = [h["train_loss"] for h in res.history]
    assert losses[-1] < losses[0] - 0.2, losses
    assert res.final["train_form"]["top1"] > 50  # chance is 25%


@pytest.mark.slow
def test_train_many_runs_side_by_side_as_each_run_alone(tmp_path):
    """Two runs in two processes (notebook 05's ablation) give the weights, histories and top-1 of the same runs
    trained here one after the other with the same thread count; bad calls are one sentence."""
    b = colour_bundle()
    configs = [r.TrainConfig(**{**TINY, "threads": None}, epochs=2, ema_decay=None, eval_every=0, seed=seed,
                             out_dir=str(tmp_path / f"side-by-side-{seed}")) for seed in (0, 1)]
    many = r.training.train_many(configs, bundle=b, processes=2)
    assert [m.config.threads for m in many] == [max(1, torch.get_num_threads() // 2)] * 2
    for config, side in zip(configs, many, strict=True):
        alone = r.train(config, bundle=b, threads=side.config.threads, out_dir=str(tmp_path / f"alone-{config.seed}"))
        assert [h["train_loss"] for h in side.history] == [h["train_loss"] for h in alone.history]
        assert side.final["fused"]["top1"] == alone.final["fused"]["top1"]
        assert all(torch.equal(x, y) for x, y in zip(side.model.state_dict().values(),
                                                     alone.model.state_dict().values(), strict=True))
    assert many[0].history != many[1].history  # two seeds, two runs
    for bad, message in (([], "non-empty list"), ([configs[0], configs[0]], "its own out_dir")):
        with pytest.raises(ValueError, match=message):
            r.training.train_many(bad, bundle=b)
    with pytest.raises(ValueError, match="processes must be"):
        r.training.train_many(configs, bundle=b, processes=0)


def test_warmup_then_cosine_schedule(tmp_path):
    b = colour_bundle()
    res = r.train(bundle=b, epochs=4, warmup=0.25, out_dir=str(tmp_path), eval_every=0, ema_decay=None, **TINY)
    lrs = [h["lr"] for h in res.history]  # lr after epochs 1..4 (4 steps each, 16 steps, 4 warm-up steps)
    assert lrs[0] == pytest.approx(0.2)  # warm-up over: peak
    cos = [0.2 * 0.5 * (1 + torch.cos(torch.tensor(torch.pi * s / 12))).item() for s in (4, 8, 12)]
    assert lrs[1:] == pytest.approx(cos, abs=1e-7)


def test_time_budget_stops_and_schedule_follows_time(tmp_path):
    b = colour_bundle()
    res = r.train(bundle=b, epochs=None, time_budget=1e-3, out_dir=str(tmp_path), eval_every=0, **TINY)
    assert len(res.history) == 1 and res.history[0]["steps"] == 1  # the first step already spends the budget
    assert res.history[0]["lr"] == pytest.approx(0.0, abs=1e-9)  # all of the (time) schedule is used up


def test_evaluate_on_randomized_bn_fused_equals_unfused():
    b = colour_bundle()
    model = r.build_model("repghostnet", 4, small_input=True, width=0.1)
    r.randomize_bn_stats_(model, seed=0)
    _, test = r.make_loaders(b, 16)
    res = r.training.evaluate_reparameterized(model, test)
    assert res["agree"] and res["agreement"] == 1.0 and res["max_logit_diff"] < 1e-3
    plain = r.evaluate(model, test)
    assert plain["top1"] == res["train_form"]["top1"] and plain["n"] == 32
    assert plain["predictions"].shape == (32,)


def test_evaluation_gives_the_model_back_in_its_own_mode():
    """Evaluation has no side effect on the caller's model: a model in training mode stays in training mode (its
    BatchNorm statistics untouched), an eval-mode one stays in eval mode."""
    b = colour_bundle()
    _, test = r.make_loaders(b, 16)
    model = r.randomize_bn_stats_(r.build_model("repghostnet", 4, small_input=True, width=0.1), seed=0).train()
    stats = {k: v.clone() for k, v in model.state_dict().items()}
    r.evaluate(model, test)
    r.training.evaluate_reparameterized(model, test)
    assert model.training and all(m.training for m in model.modules())
    assert all(torch.equal(v, model.state_dict()[k]) for k, v in stats.items())
    r.evaluate(model.eval(), test)
    assert not any(m.training for m in model.modules())


class _NoParameters(torch.nn.Module):
    """A model with no parameters (like OnnxModel or ExecutorchModel): a frozen copy of another model's function."""

    def __init__(self, model):
        super().__init__()
        self.fn = lambda x: model(x)

    def forward(self, x):
        return self.fn(x)


def test_evaluate_runs_a_model_without_parameters_on_the_cpu():
    b = colour_bundle()
    model = r.build_model("repghostnet", 4, small_input=True, width=0.1).eval()
    _, test = r.make_loaders(b, 16)
    wrapped = _NoParameters(model)
    assert next(wrapped.parameters(), None) is None
    assert torch.equal(r.evaluate(wrapped, test)["predictions"], r.evaluate(model, test)["predictions"])


def test_build_model_names():
    assert r.build_model("ghostnet_050", 10).classifier.out_features == 10
    assert r.build_model("repghostnet_050", 10, small_input=True).config["small_input"] is True
    timm_model = r.build_model("timm:repghostnet_050", 10)
    assert r.count_params(timm_model) == r.count_params(r.build_model("repghostnet_050", 10, small_input=False))
    with pytest.raises(ValueError, match="unknown model"):
        r.build_model("resnet50", 10)


def test_bad_settings_give_one_sentence(tmp_path):
    b = colour_bundle()
    with pytest.raises(ValueError, match="never stop"):
        r.train(bundle=b, epochs=None, time_budget=None, **TINY)
    with pytest.raises(TypeError, match="unknown training setting"):
        r.train(bundle=b, epoch=3, **TINY)
    with pytest.raises(ValueError, match="warmup"):
        r.train(bundle=b, warmup=1.5, **TINY)
    with pytest.raises(FileNotFoundError, match="resume"):
        r.train(bundle=b, epochs=1, resume=True, out_dir=str(tmp_path / "none"), **TINY)
    r.train(bundle=b, epochs=1, out_dir=str(tmp_path / "one"), eval_every=0, **TINY)
    with pytest.raises(ValueError, match="cannot resume.*epochs 1 -> 2"):
        r.train(bundle=b, epochs=2, resume=True, out_dir=str(tmp_path / "one"), **TINY)
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        r.training.load_trained(tmp_path / "none")


@pytest.mark.skipif(not os.environ.get("REPGHOST_MINI_DATA")
                    or not Path(os.environ["REPGHOST_MINI_DATA"], "cifar10-subset").is_dir(),
                    reason="REPGHOST_MINI_DATA is not set to the shared data folder (CI sets it)")
def test_real_cifar10_subset_short_run(tmp_path):
    res = r.train(dataset="cifar10-subset", train_per_class=12, test_per_class=6, epochs=1, out_dir=str(tmp_path),
                  **TINY)
    assert res.history[0]["steps"] == 6  # 120 images less 1 per class held out for the EMA choice, batch 16, last
    # partial batch dropped
    assert res.final["train_form"]["n"] == 60 and res.final["agree"]
    assert json.loads((tmp_path / "final.json").read_text())["config"]["dataset"] == "cifar10-subset"
