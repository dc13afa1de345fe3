"""The reference CIFAR-10 model that ships with the package (benchmarks/cifar_reference.py wrote it): fused,
loadable by name, and as accurate on the real CIFAR-10 test images as its record says."""
import os

import pytest
import torch

import repghost_mini as r
from repghost_mini.training import checkpoints

SHIPPED = (checkpoints.WEIGHTS_DIR / r.training.REFERENCE_MODELS["cifar10"]).is_file()
DATA = os.environ.get("REPGHOST_MINI_DATA")
needs_weights = pytest.mark.skipif(not SHIPPED, reason="no reference weights in repghost_mini/weights/ (they are "
                                                       "committed only when the long run reaches 85%)")


@needs_weights
def test_shipped_reference_model_is_fused_small_and_records_its_run():
    model = r.training.load_reference_model("cifar10")
    path = checkpoints.WEIGHTS_DIR / r.training.REFERENCE_MODELS["cifar10"]
    assert path.stat().st_size <= 5e6, "the issue allows at most 5 MB of committed weights"
    assert not model.training and r.count_batchnorms(model) == 0
    assert model.class_names == list(r.training.CIFAR10_CLASSES)
    assert model.info["test_top1"] >= 85 and model.info["train_minutes"] > 0 and model.info["device"]
    raw = r.training.read_checkpoint(path).raw
    assert all(v.dtype == torch.float16 for v in raw["state_dict"].values() if v.is_floating_point())


@needs_weights
def test_shipped_reference_model_reaches_its_recorded_top1_on_the_real_test_images():
    """All 10,000 CIFAR-10 test images when the full set is there (the fp16 weights may move the record by a few
    images), else the subset's 1,017 test images (a slice of the same test batch, so >= 85% up to sampling)."""
    try:
        bundle = r.load_dataset("cifar10", download=False)
        floor = r.training.load_reference_model("cifar10").info["test_top1"] - 0.3
    except FileNotFoundError:
        if not DATA or not os.path.isdir(os.path.join(DATA, "cifar10-subset")):
            pytest.skip("no CIFAR-10 test images here (set REPGHOST_MINI_DATA)")
        bundle, floor = r.load_dataset("cifar10-subset", download=False), 82.0
    _, test = r.make_loaders(bundle, batch_size=500, augment=False)
    result = r.evaluate(r.training.load_reference_model("cifar10"), test)
    assert result["top1"] >= floor, f"reference model: {result['top1']:.2f}% on {len(bundle.test)} test images"
