"""Issue #11 item 14 (core): BatchNorm statistics that would fuse into NaN/inf weights are refused by name."""
import pytest
import torch

import repghost_mini as rg


@pytest.mark.parametrize("buffer, value, word", [("running_var", float("nan"), "running_var"),
                                                  ("running_var", -1.0, "negative"),
                                                  ("running_mean", float("inf"), "running_mean"),
                                                  ("weight", float("nan"), "weight")])
def test_broken_bn_statistics_are_refused_before_fusing(buffer, value, word):
    model = rg.repghostnet(0.5, num_classes=10).eval()
    name, bn = [(n, m) for n, m in model.named_modules() if isinstance(m, torch.nn.BatchNorm2d)][5]
    with torch.no_grad():
        getattr(bn, buffer)[3] = value
    with pytest.raises(ValueError, match=word) as err:
        rg.reparameterize(model)
    assert repr(name) in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("kwargs, word", [(dict(width=float("nan")), "width"), (dict(width=float("inf")), "width"),
                                          (dict(width=True), "width"), (dict(width=0), "width"),
                                          (dict(num_classes=True), "num_classes"),
                                          (dict(num_classes=2.0), "num_classes")])
def test_width_and_num_classes_are_validated(kwargs, word):
    for factory in (rg.repghostnet, rg.ghostnet):
        with pytest.raises(ValueError, match=word):
            factory(**{"width": 0.5, "num_classes": 10, **kwargs})
