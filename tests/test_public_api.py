"""The public API: every name ``import repghost_mini as rm`` offered before the package was split into
core / measure / training / deploy / teaching still resolves, and ``__all__`` lists them for ``help()``."""
import ast
from pathlib import Path

import repghost_mini as rm

#: the public names of repghost_mini before the layout change (functions, classes, constants).
NAMES_BEFORE_SPLIT = """
BatchAugment BottleneckChannels DATASET_NAMES DataBundle GHOSTNET_CFG GhostAddModule GhostBottleneck GhostModule
GhostNet InMemoryImages LateReLUModule LayerRow MODEL_REGISTRY MODULE_VARIANTS PAPER_TABLE3 REPARAM_BRANCHES
REPGHOSTNET_CFG RUNTIMES RepGhostBottleneck RepGhostInferenceModule RepGhostModule RepGhostNet SHORT_RUN_RECIPE
SqueezeExcite TABLE3_WIDTHS TrainConfig TrainResult available_models benchmark_models bn_to_kernel
bottleneck_channels build_model build_module build_named_model check_answer check_fold_bn check_identity_kernel
check_onnx_matches check_pad_kernel check_repghost_module_params compare compare_latency compare_onnxruntime_latency
contiguous_copies conv_from_kernel count_batchnorms count_macs count_onnx_ops count_params denormalize
draw_memory_layout draw_module draw_onnx_graph evaluate evaluate_reparameterized export_onnx fake_quantize_weights
fold_bn fold_bn_into_conv fold_conv_bn_pairs format_layer_table ghostnet ghostnet_050 ghostnet_100 ghostnet_130
ghostnet_concat_shapes identity_kernel layer_table load_checkpoint load_dataset load_npz load_trained make_divisible
make_loaders markdown_table measure_latency memory_order module_structure onnx_file_size_mb onnx_session
onnxruntime_optimized_ops operator_time_shares optimize_for_cpu pad_kernel paired_ratios plot_history plot_latency
randomize_bn_stats_ read_state_dict reparameterize repghostnet repghostnet_050 repghostnet_058 repghostnet_080
repghostnet_100 repghostnet_111 repghostnet_130 repghostnet_150 repghostnet_200 replace_concat_with_add run_onnx
save_atomic snr_db sum_branches time_concat_vs_add train train_or_load
""".split()

PACKAGE = Path(rm.__file__).parent


def test_every_name_from_before_the_split_is_still_public():
    missing = [n for n in NAMES_BEFORE_SPLIT if not hasattr(rm, n)]
    assert not missing, f"public names lost: {missing}"
    not_listed = [n for n in NAMES_BEFORE_SPLIT if n not in rm.__all__]
    assert not not_listed, f"public names missing from repghost_mini.__all__: {not_listed}"
    assert callable(rm.train) and rm.train.__module__ == "repghost_mini.training.trainer"
    assert "train(" in rm.__doc__ or "Every public name" in rm.__doc__


def test_all_is_unique_and_resolves():
    assert len(rm.__all__) == len(set(rm.__all__)), "a name is exported by two modules"
    assert [n for n in rm.__all__ if not hasattr(rm, n)] == []
    assert rm.__version__


def _imported_modules(path: Path):
    """(level, absolute-or-relative module) of every import statement in ``path``."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            yield node.level, node.module or ""
        elif isinstance(node, ast.Import):
            for alias in node.names:
                yield 0, alias.name


def test_core_imports_nothing_else_from_the_package():
    for path in sorted((PACKAGE / "core").glob("*.py")):
        for level, module in _imported_modules(path):
            assert level <= 1, f"{path.name} imports from outside core ({'.' * level}{module})"
            assert not (level == 0 and module.startswith("repghost_mini")), f"{path.name} imports {module}"


GROUPS = ["core", "measure", "training", "deploy", "teaching"]


def test_groups_import_only_downward():
    """core <- measure <- training <- deploy <- teaching: a group never imports a group listed after it (the
    errors module, which imports nothing, is open to every group but the core)."""
    for rank, group in enumerate(GROUPS):
        for path in sorted((PACKAGE / group).glob("*.py")):
            for level, module in _imported_modules(path):
                if level == 2 and module:
                    target = module.split(".")[0]
                    allowed = GROUPS[:rank] + (["errors"] if rank else [])
                    assert target in allowed, f"{group}/{path.name} imports upward from ..{module}"
    assert [m for _, m in _imported_modules(PACKAGE / "errors.py") if m.startswith(("repghost_mini", "."))] == []
