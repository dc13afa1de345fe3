"""The tour's report says what this run measured: headings follow the numbers, a model that did not learn is not
presented, busy cores are detected from step times."""
import torch

from repghost_mini.teaching import tour


def _results(cat_ms, learned=True, speed=1.5, oversubscribed=False):
    concat = {lay: {"cat": cat_ms, "add_operands": 1.0, "add_output": 2.0} for lay in ("NCHW", "NHWC")}
    side = {"train_form": {"top1": 40.0, "top5": 80.0}, "fused": {"top1": 40.0 if learned else 10.0, "top5": 80.0}}
    return dict(
        quick=True, seconds={"total": 1.0}, torch="x", threads=2, machine="m", model="repghostnet_050",
        data={"name": "cifar10-subset", "source": "s", "train": 10, "test": 10},
        concat_vs_add=dict(pairs=32, **concat),
        fusion=[dict(module="c", params=1, params_fused=1, batchnorms_fused=0, max_abs_output=1.0, max_abs_diff=1e-16)],
        table3=[dict(width=0.5, params_m=2.3, paper_params_m=2.3, macs_m=43.0, paper_macs_m=43)],
        recipe={"batch_size": 64, "weight_decay": 5e-4}, train_seconds=60.0,
        thread_choice=dict(threads=1 if oversubscribed else 2, step_ms={2: 300.0, 1: 200.0},
                           oversubscribed=oversubscribed, load_average=9.0),
        reparam=dict(side, agreement=1.0, max_logit_diff=1e-6, batchnorms=(112, 0), params=(2, 1), macs_32=(4, 4),
                     epochs=3, steps=100, chance=10.0, learned=learned),
        latency={"32x32": {"training form": speed, "fused": 1.0}})


def test_concat_heading_follows_the_measurement():
    cheap = tour._report_markdown(_results(cat_ms=0.5), [])
    assert "## 1. Concatenation vs add (Sec. 3.1, Table 1): cat was cheaper than add in both layouts here" in cheap
    assert "not free" not in cheap
    dear = tour._report_markdown(_results(cat_ms=2.0), [])
    assert "cat cost more than add in both layouts here" in dear


def test_a_model_that_did_not_learn_is_not_presented():
    text = tour._report_markdown(_results(1.0, learned=False, speed=0.9), [])
    assert "did not learn in this budget (test top-1 10.0%, chance 10%)" in text
    assert "predictions.png" not in text and "not faster at 32x32 here (0.90x)" in text
    assert "RESULT tour test top-1: 10.0%" in text


def test_oversubscription_is_reported():
    text = tour._report_markdown(_results(1.0, oversubscribed=True), [])
    assert "300 ms with 2 threads and 200 ms with 1, so the cores were oversubscribed" in text


def test_choose_threads_keeps_one_thread_and_measures_steps(monkeypatch):
    old = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        assert tour.choose_threads("repghostnet_050", log=lambda _: None)["threads"] == 1
    finally:
        torch.set_num_threads(old)
    calls = []
    monkeypatch.setattr(tour, "step_times_ms",
                        lambda name, counts, rounds=3: calls.append(rounds) or {2: 95.0, 1: 100.0})
    monkeypatch.setattr(torch, "get_num_threads", lambda: 2)
    logged = []
    choice = tour.choose_threads("repghostnet_050", log=logged.append)
    assert choice["oversubscribed"] and choice["threads"] == 1 and calls == [1, 3]  # unclear after 1 round
    assert "oversubscribed" in logged[0] and "--threads" in logged[0]
    monkeypatch.setattr(tour, "step_times_ms", lambda name, counts, rounds=3: {2: 55.0, 1: 100.0})
    assert tour.choose_threads("repghostnet_050", log=logged.append)["threads"] == 2


def test_step_times_are_positive_and_restore_threads():
    old = torch.get_num_threads()
    times = tour.step_times_ms("repghostnet_050", (2, 1), rounds=1, batch_size=4)
    assert set(times) == {1, 2} and all(t > 0 for t in times.values())
    assert torch.get_num_threads() == old
