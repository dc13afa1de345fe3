"""Deployment: export to ONNX and run it in onnxruntime, and latency of named models in several runtimes."""
from . import export, latency
from .export import *  # noqa: F401,F403
from .latency import *  # noqa: F401,F403

__all__ = export.__all__ + latency.__all__
