"""Every failure voxedge reports on purpose is a VoxedgeError.

Messages name the input, the problem and what to do about it, so that an application can show them
to its user as they are.
"""

import contextlib
from pathlib import Path


class VoxedgeError(Exception):
    """Base class: catch this to handle anything voxedge refuses or cannot do."""


class AudioError(VoxedgeError, ValueError):
    """The audio given cannot be used: unreadable file, empty, NaN/Inf, wrong dtype or shape."""


class BundleError(VoxedgeError):
    """A bundle directory is missing, incomplete, tampered with or of an unknown format."""


class BufferOverflowError(VoxedgeError):
    """A ring buffer configured with overflow="raise" was written faster than it was read."""


class DependencyError(VoxedgeError, ImportError):
    """An optional dependency (e.g. sounddevice for the microphone) is not installed or not usable."""


class UnsupportedError(VoxedgeError):
    """A request that the bundle or this version of voxedge does not support (e.g. an unknown delay)."""


class OptionError(VoxedgeError, ValueError):
    """An option has a value of the wrong type or out of range (e.g. `beam_size=0`)."""


class InferenceError(VoxedgeError, RuntimeError):
    """onnxruntime failed while running a graph (out of memory, a device lost, a graph at odds with
    what it was given); the original exception is its __cause__."""


@contextlib.contextmanager
def inference_errors(what: str):
    """Exceptions raised inside onnxruntime (its own classes, or RuntimeError from its extension) while
    the block runs become an InferenceError that starts with `what`; anything else passes unchanged."""
    try:
        yield
    except VoxedgeError:
        raise
    except Exception as exc:
        if not _raised_in_onnxruntime(exc):
            raise
        detail = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise InferenceError(f"{what}: onnxruntime failed: {detail}") from exc


def _raised_in_onnxruntime(exc: BaseException) -> bool:
    """Whether the innermost Python frame of the traceback is onnxruntime's (its run() wrappers are
    the last Python code before its C++)."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_next is not None:
        tb = tb.tb_next
    return tb is not None and "onnxruntime" in Path(tb.tb_frame.f_code.co_filename).parts
