"""train(compile=True): the training step through torch.compile gives the eager step's results (up to float
rounding), resumes exactly, and falls back to eager with one line when compilation fails."""
import pytest
import torch

import repghost_mini as r
from repghost_mini.training import trainer

from test_train import TINY, colour_bundle


@pytest.mark.slow
def test_compiled_training_matches_eager_and_resumes_exactly(tmp_path):
    b = colour_bundle(n_train=32, n_test=16)
    kw = dict(bundle=b, epochs=2, eval_every=0, ema_decay=None, **TINY)
    eager = r.train(out_dir=str(tmp_path / "eager"), compile=False, **kw)
    compiled = r.train(out_dir=str(tmp_path / "compiled"), compile=True, **kw)
    # Compiled kernels round differently and draw dropout masks from inductor's own random stream, and a tiny
    # network at initialization with batch statistics of 16 images amplifies both (its float32 gradients differ
    # from float64 by as much in eager mode): compare the first epoch's loss, and the logits of the same weights.
    assert compiled.history[0]["train_loss"] == pytest.approx(eager.history[0]["train_loss"], rel=1e-2)
    x = torch.randn(4, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        torch.testing.assert_close(torch.compile(eager.model)(x), eager.model(x), rtol=1e-4, atol=1e-4)
    part = r.train(out_dir=str(tmp_path / "part"), compile=True, stop_after=1, **kw)
    assert len(part.history) == 1
    resumed = r.train(out_dir=str(tmp_path / "part"), compile=True, resume=True, **kw)
    a, c = compiled.model.state_dict(), resumed.model.state_dict()
    assert all(torch.equal(a[k], c[k]) for k in a), "a resumed compiled run differs from the uninterrupted one"


def test_a_failed_compilation_falls_back_to_eager_with_one_line(tmp_path, monkeypatch, capsys):
    class Broken(torch.nn.Module):
        def __init__(self, module):
            super().__init__()
            self.module = module

        def forward(self, x):
            raise RuntimeError("inductor: no C++ compiler found\nmore detail")

    monkeypatch.setattr(trainer.torch, "compile", Broken)
    b = colour_bundle(n_train=32, n_test=16)
    res = r.train(bundle=b, epochs=1, eval_every=0, ema_decay=None, out_dir=str(tmp_path), compile=True,
                  **{**TINY, "progress": True})
    out = capsys.readouterr()
    assert "torch.compile failed (RuntimeError: inductor: no C++ compiler found); training continues without it" \
        in out.out + out.err
    eager = r.train(bundle=b, epochs=1, eval_every=0, ema_decay=None, out_dir=str(tmp_path / "e"), compile=False,
                    **TINY)
    assert res.history[0]["train_loss"] == eager.history[0]["train_loss"]
