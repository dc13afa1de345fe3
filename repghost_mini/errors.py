"""What counts as a user's mistake: the one place the command line asks (bad settings, unknown names, bad data,
paths that are missing or not allowed).

Library code raises :class:`UserError` (a ``ValueError``, so ``except ValueError`` keeps working) with one
sentence that says what was wrong and what to do; the file-system errors in :data:`USER_ERRORS` (a path the
user named is missing, is a folder, is not writable) count as well. The command line prints exactly that
sentence and exits with code 2; every other exception is a bug and keeps its traceback. Imports nothing, so
every group may raise it.
"""
from __future__ import annotations

import contextlib
from typing import Any, Iterator, Tuple, Type

__all__ = ["UserError", "user_errors", "USER_ERRORS", "require_finite"]


class UserError(ValueError):
    """A problem with the user's input, stated in one sentence (the CLI prints it and exits with code 2)."""


#: The exceptions the command line reports as one line with exit code 2.
#: Every ``OSError`` counts: the paths the command line writes (a read-only or full disk, a file where a folder
#: should be) are the user's to choose; the writers in ``files.py`` phrase them as one sentence.
USER_ERRORS: Tuple[Type[BaseException], ...] = (UserError, OSError)


@contextlib.contextmanager
def user_errors(*kinds: Type[BaseException]) -> Iterator[None]:
    """Re-raise the ``kinds`` of exception raised inside the block as :class:`UserError` (same message).

    For a step that checks the user's input (loading the data they named, reading the file they gave), so that
    ``FileNotFoundError`` from *that step* is reported in one line while the same error elsewhere stays a bug.
    """
    caught: Tuple[Type[BaseException], ...] = kinds or (ValueError, OSError)
    try:
        yield
    except UserError:
        raise
    except caught as err:
        raise UserError(" ".join(str(err).split()) or type(err).__name__) from err


def require_finite(outputs: Any, what: str) -> None:
    """Raise :class:`UserError` when the tensor ``outputs`` holds NaN or inf: no comparison of outputs (ONNX vs
    PyTorch, fused vs training form, INT8 vs fp32) may pass, and no accuracy may be reported, on them (a NaN
    difference is never larger than a bound, and the argmax of NaN logits is a class)."""
    if not bool(outputs.isfinite().all()):
        raise UserError(f"{what} holds NaN or inf: the weights are not finite (a diverged training run, or a "
                        "damaged file); retrain with a lower learning rate or load other weights.")
