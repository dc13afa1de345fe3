"""Timing: the one place that imports ``torch.utils.benchmark`` (quietly) for every latency measurement."""
from __future__ import annotations

import logging

# Importing torch.utils.benchmark logs a "No CUDA runtime is found" warning (with a timestamp) on CPU machines
# that have a CUDA toolkit installed; it is noise for latency measurement, so it is muted for this import only.
_cpp_log = logging.getLogger("torch.utils.cpp_extension")
_cpp_level = _cpp_log.level
_cpp_log.setLevel(logging.ERROR)
try:
    import torch.utils.benchmark as benchmark
finally:
    _cpp_log.setLevel(_cpp_level)
