"""Benchmark helpers: named models, interleaved multi-runtime benchmark, table, plot. No timing assertions."""
import matplotlib
import pytest
import torch

matplotlib.use("Agg")
import repghost_mini as rg  # noqa: E402
from repghost_mini.deploy.latency import (  # noqa: E402
    benchmark_models,
    build_named_model,
    compare_latency,
    latency_table,
    markdown_table,
    measure_latency,
    optimize_for_cpu,
    plot_latency,
)

REQUIRED = ["ghostnet_050", "ghostnet_100", "repghostnet_050", "repghostnet_100", "repghostnet_050_fused",
            "repghostnet_100_fused", "timm_repghostnet_100_reparam"]


def test_registry_has_the_models_of_the_issue():
    assert set(REQUIRED) <= set(rg.available_models())


def test_unknown_name_lists_the_choices():
    with pytest.raises(ValueError, match="repghostnet_100_fused"):
        build_named_model("repghostnet_1000")


def test_named_models_are_eval_and_fused_means_no_batchnorm():
    fused, train_form = build_named_model("repghostnet_050_fused"), build_named_model("repghostnet_050")
    assert not fused.training and not train_form.training
    assert rg.count_batchnorms(fused) == 0 < rg.count_batchnorms(train_form)
    # the fused model is the re-parameterized training form (same seed, randomized BN statistics)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        reference = rg.reparameterize(rg.randomize_bn_stats_(train_form, seed=0))
        torch.testing.assert_close(fused(x), reference(x))


def test_timm_reparameterized_model_keeps_batchnorms():
    pytest.importorskip("timm")
    peer = build_named_model("timm_repghostnet_100_reparam")
    ours = build_named_model("repghostnet_100_fused")
    convs = [sum(isinstance(m, torch.nn.Conv2d) for m in net.modules()) for net in (peer, ours)]
    assert convs[0] == convs[1]  # same conv skeleton; timm keeps a BN after 48 of the convs
    assert rg.count_batchnorms(peer) == 48 and rg.count_batchnorms(ours) == 0


def test_optimize_for_cpu_keeps_outputs():
    model = build_named_model("repghostnet_050_fused")
    fast = optimize_for_cpu(model, (1, 3, 64, 64))
    x = torch.randn(3, 3, 64, 64)  # another batch size than traced
    with torch.no_grad():
        torch.testing.assert_close(fast(x), model(x), rtol=1e-4, atol=1e-4)
    with pytest.raises(RuntimeError, match="eval"):
        optimize_for_cpu(model.train())


@pytest.mark.slow
def test_benchmark_rows_table_and_plot():
    names = ["repghostnet_050_fused", "ghostnet_050"]
    runtimes = ("torch", "torch_channels_last", "torch_optimized")
    rows = benchmark_models(names, batch_sizes=(1, 2), threads=(1,), runtimes=runtimes,
                            rounds=2, image_size=32, min_run_time=0.01, baseline="ghostnet_050")
    assert len(rows) == 2 * 2 * 1 * 3
    assert {(r["runtime"], r["batch"]) for r in rows} == {(rt, b) for rt in runtimes for b in (1, 2)}
    for r in rows:
        assert r["threads"] == 1 and r["rounds"] == 2 and 0 < r["min_ms"] <= r["median_ms"]
        if r["model"] == "ghostnet_050":
            assert r["ratio"] == 1.0  # each round's baseline divided by itself
    table = latency_table(rows).splitlines()
    assert len(table) == 2 + len(rows)
    assert table[0] == "| model | runtime | batch | threads | median ms | min ms | ratio |"
    ax = plot_latency(rows, value="ratio")
    assert len(ax.patches) == len(rows)
    matplotlib.pyplot.close(ax.figure)


def test_benchmark_rejects_bad_arguments():
    with pytest.raises(ValueError, match="runtime"):
        benchmark_models(["ghostnet_050"], runtimes=("tensorrt",))
    with pytest.raises(ValueError, match="baseline"):
        benchmark_models(["ghostnet_050"], baseline="ghostnet_100")
    with pytest.raises(ValueError, match="unknown model"):
        benchmark_models(["nope"])
    with pytest.raises(ValueError, match="no rows"):
        markdown_table([])


def test_measure_and_compare_latency_keep_their_signatures():
    model = build_named_model("repghostnet_050_fused").train()
    ms = measure_latency(model, (1, 3, 32, 32), threads=1, min_run_time=0.01)
    assert ms > 0 and model.training  # mode restored
    out = compare_latency({"a": model, "b": model}, (1, 3, 32, 32), threads=1, rounds=2, min_run_time=0.01)
    assert set(out) == {"a", "b"} and all(v > 0 for v in out.values())


@pytest.mark.slow
def test_every_runtime_and_model_share_the_same_rounds(monkeypatch, tmp_path):
    """A ratio between two runtimes (INT8 vs fp32) is measured side by side: one interleaved_rounds call per
    (batch, threads) setting holds every (runtime, model) pair. Rows carry the file each runtime ran."""
    import repghost_mini.deploy.latency as lat

    calls = []
    real = lat.interleaved_rounds

    def recording(measure, names, rounds):
        calls.append(list(names))
        return real(measure, names, rounds)

    monkeypatch.setattr(lat, "interleaved_rounds", recording)
    names, runtimes = ["repghostnet_050_fused", "ghostnet_050"], ("torch", "onnxruntime")
    rows = benchmark_models(names, batch_sizes=(1, 2), runtimes=runtimes, rounds=2, image_size=32,
                            min_run_time=0.01, workdir=str(tmp_path))
    assert calls == [[(rt, n) for rt in runtimes for n in names]] * 2  # batch 1, then batch 2
    onnx_rows = [r for r in rows if r["runtime"] == "onnxruntime"]
    assert all(r["file"].endswith(".onnx") and r["file_mb"] > 0 for r in onnx_rows)
    assert all(r["file"] is None and r["file_mb"] is None for r in rows if r["runtime"] == "torch")
    lat.add_output_differences(rows, torch.rand(4, 3, 32, 32))
    assert all(r["max_abs_diff_vs_torch"] < 1e-3 for r in onnx_rows)
    assert all(r["max_abs_diff_vs_torch"] is None for r in rows if r["runtime"] == "torch")


@pytest.mark.slow
def test_pairs_time_only_the_pairs_named(monkeypatch, tmp_path):
    """``pairs`` keeps a subset of runtimes x names in the same rounds: an INT8 file of one model only, nothing
    written or timed for the pairs left out; a pair outside runtimes x names is refused in one sentence."""
    import repghost_mini.deploy.latency as lat

    calls = []
    real = lat.interleaved_rounds
    monkeypatch.setattr(lat, "interleaved_rounds", lambda m, names, r: calls.append(list(names)) or real(m, names, r))
    names, runtimes = ["repghostnet_050_fused", "ghostnet_050"], ("onnxruntime", "onnxruntime-int8")
    chosen = [("onnxruntime", names[0]), ("onnxruntime", names[1]), ("onnxruntime-int8", names[0])]
    rows = benchmark_models(names, runtimes=runtimes, rounds=1, image_size=32, min_run_time=0.01,
                            workdir=str(tmp_path), pairs=chosen, baseline=names[1])
    assert calls == [chosen]
    assert [(r["runtime"], r["model"]) for r in rows] == chosen
    assert sorted(p.name for p in tmp_path.glob("*int8*")) == [f"{names[0]}-int8.onnx"]
    assert "ratio" in rows[0] and "ratio" not in rows[2]  # no GhostNet sample in the INT8 runtime to divide by
    with pytest.raises(rg.errors.UserError, match="not a \\(runtime, name\\)"):
        benchmark_models(names, runtimes=("onnxruntime",), pairs=[("mnn", names[0])])


@pytest.mark.slow
def test_output_differences_need_the_files():
    rows = benchmark_models(["ghostnet_050"], runtimes=("onnxruntime",), rounds=1, image_size=32, min_run_time=0.01)
    assert rows[0]["file"] is None and rows[0]["file_mb"] > 0  # measured, then deleted with the temporary folder
    with pytest.raises(ValueError, match="workdir"):
        rg.deploy.add_output_differences(rows, torch.rand(1, 3, 32, 32))


def test_plot_names_a_common_batch_and_thread_count_once():
    rows = [dict(model=m, runtime=rt, batch=1, threads=1, median_ms=v)
            for rt in ("onnxruntime fp32", "executorch INT8") for m, v in (("a", 1.0), ("b", 2.0))]
    ax = plot_latency(rows)
    assert ax.get_xlabel() == "batch 1, 1 thread"
    assert [t.get_text() for t in ax.get_xticklabels()] == ["onnxruntime\nfp32", "executorch\nINT8"]
    matplotlib.pyplot.close(ax.figure)
