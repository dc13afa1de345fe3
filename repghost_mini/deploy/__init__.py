"""Deployment: export to ONNX and run it in onnxruntime, INT8 quantization, latency of named models in several
runtimes, the paper's own runtime MNN and PyTorch's on-device runtime ExecuTorch (optional extra ``mobile``), and
RepGhostNet as the backbone of a torchvision detector."""
from . import artifacts, detection, executorch, export, latency, mnn, quantize
from .artifacts import *  # noqa: F401,F403
from .detection import *  # noqa: F401,F403
from .executorch import *  # noqa: F401,F403
from .export import *  # noqa: F401,F403
from .latency import *  # noqa: F401,F403
from .mnn import *  # noqa: F401,F403
from .quantize import *  # noqa: F401,F403

__all__ = (artifacts.__all__ + export.__all__ + quantize.__all__ + latency.__all__ + mnn.__all__ + executorch.__all__
           + detection.__all__)
