"""Deployment: export to ONNX and run it in onnxruntime, INT8 quantization, and latency of named models in several
runtimes."""
from . import export, latency, quantize
from .export import *  # noqa: F401,F403
from .quantize import *  # noqa: F401,F403
from .latency import *  # noqa: F401,F403

__all__ = export.__all__ + quantize.__all__ + latency.__all__
