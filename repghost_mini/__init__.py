"""repghost_mini: a small, readable implementation of RepGhost (Chen et al., 2022) for teaching.

Data flows one way: dataset -> model (training form) -> :func:`reparameterize` -> fused model -> export / bench.
Every public name of the modules below is re-exported here, so ``import repghost_mini as r`` is all you need.
"""
# the paper's model, in reading order
from .fusion import (bn_to_kernel, conv_from_kernel, fold_bn, fold_bn_into_conv, identity_kernel, pad_kernel,
                     sum_branches)
from .modules import (MODULE_VARIANTS, REPARAM_BRANCHES, GhostAddModule, GhostModule, LateReLUModule,
                      RepGhostInferenceModule, RepGhostModule, build_module)
from .bottlenecks import GhostBottleneck, RepGhostBottleneck, SqueezeExcite, make_divisible
from .networks import (GHOSTNET_CFG, REPGHOSTNET_CFG, TABLE3_WIDTHS, GhostNet, RepGhostNet, ghostnet, ghostnet_050,
                       ghostnet_100, ghostnet_130, repghostnet, repghostnet_050, repghostnet_058, repghostnet_080,
                       repghostnet_100, repghostnet_111, repghostnet_130, repghostnet_150, repghostnet_200)
from .reparam import count_batchnorms, fold_conv_bn_pairs, randomize_bn_stats_, reparameterize
from .counting import PAPER_TABLE3, count_macs, count_params
from .checkpoints import load_checkpoint, read_state_dict, save_atomic
# teaching aids
from .concat_cost import ghostnet_concat_shapes, operator_time_shares, replace_concat_with_add, time_concat_vs_add
from .diagrams import contiguous_copies, draw_memory_layout, draw_module, memory_order, module_structure
from .exercises import (check_answer, check_fold_bn, check_identity_kernel, check_pad_kernel,
                        check_repghost_module_params, compare)
from .summary import BottleneckChannels, LayerRow, bottleneck_channels, format_layer_table, layer_table
# data -> training -> deployment
from .data import (DATASET_NAMES, BatchAugment, DataBundle, InMemoryImages, denormalize, load_dataset, load_npz,
                   make_loaders)
from .train import (SHORT_RUN_RECIPE, TrainConfig, TrainResult, build_model, evaluate, evaluate_reparameterized,
                    load_trained, plot_history, train, train_or_load)
from .export import (check_onnx_matches, count_onnx_ops, draw_onnx_graph, export_onnx, fake_quantize_weights,
                     onnx_file_size_mb, onnx_session, onnxruntime_optimized_ops, run_onnx, snr_db)
from .bench import (MODEL_REGISTRY, RUNTIMES, available_models, benchmark_models, build_named_model, compare_latency,
                    compare_onnxruntime_latency, markdown_table, measure_latency, optimize_for_cpu, paired_ratios,
                    plot_latency)

__version__ = "0.1.0"
