"""Fig. 1 in full: the models, their Table 3 rows, the rank correlation with the paper's latency column."""
import pytest

import repghost_mini as rm
from repghost_mini.measure import figure1 as f1
from repghost_mini.training.registry import build_named_model


def test_rank_correlation():
    assert f1.rank_correlation([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert f1.rank_correlation([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    # ties take their average rank: ranks (1, 2.5, 2.5, 4) against (1, 3, 2, 4)
    assert f1.rank_correlation([1, 2, 2, 4], [1, 3, 2, 4]) == pytest.approx(0.9486832980505138)
    with pytest.raises(ValueError, match="same length"):
        f1.rank_correlation([1, 2, 3], [1, 2])
    with pytest.raises(ValueError, match="all values"):
        f1.rank_correlation([1, 1, 1], [1, 2, 3])


def test_every_figure1_model_builds_with_table3s_parameter_count():
    """The model timed for a Table 3 row is that row's architecture: its parameters within 6% of the paper's."""
    for row, name in f1.FIGURE1_MODELS.items():
        paper = rm.paper.table3(*row)
        assert paper["latency_ms"] is not None, row  # every model here enters the ranking
        params = rm.count_params(build_named_model(name)) / 1e6
        assert abs(params - paper["params_m"]) <= 0.06 * paper["params_m"], (row, name, params, paper["params_m"])


def test_rows_not_built_are_table3_rows_with_a_latency():
    for row, why in f1.NOT_BUILT.items():
        assert rm.paper.table3(*row)["latency_ms"] is not None and row not in f1.FIGURE1_MODELS and why


def test_labels_are_table3s():
    assert f1.label(("mobilenetv3_small", 0.75)) == "MobileNetV3 Small 0.75×"
    assert f1.label(("efficientnet_b0", 1.0)) == "EfficientNet B0"
    assert f1.label(("repghostnet", 1.0)) == "RepGhostNet 1.0×"


def test_comparison_ranks_and_names_the_models_that_move():
    names = {row: name for row, name in f1.FIGURE1_MODELS.items()}
    same = {name: rm.paper.table3(*row)["latency_ms"] for row, name in names.items()}
    result = f1.figure1_comparison(same)
    assert result.rho == pytest.approx(1.0) and result.movers == [] and len(result.rows) == len(names)
    assert [r.paper_ms for r in result.rows] == sorted(r.paper_ms for r in result.rows)
    moved = dict(same, **{"timm:efficientnet_b0": 1.0})  # the slowest on the phone is the fastest here
    result = f1.figure1_comparison(moved)
    assert result.rho < 1 and result.movers[0].name == "timm:efficientnet_b0"
    assert result.movers[0].paper_rank == len(names) and result.movers[0].here_rank == 1
    with pytest.raises(ValueError, match="at least 3"):
        f1.figure1_comparison({"ghostnet_100": 1.0, "other": 2.0})


def test_plot_has_both_panels():
    import matplotlib
    matplotlib.use("Agg")
    result = f1.figure1_comparison({name: float(i + 1) for i, name in enumerate(f1.FIGURE1_MODELS.values())})
    fig = f1.plot_figure1(result)
    assert len(fig.axes) == 2 and "rho" in fig.axes[1].get_title()
    matplotlib.pyplot.close(fig)
