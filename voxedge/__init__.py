"""voxedge: on-device live speech transcription with numpy + onnxruntime.

    model = voxedge.load("whisper-tiny.en")              # a model name (voxedge models) or a bundle directory
    for segment in model.transcribe("meeting.wav"):
        print(segment.start, segment.end, segment.text)

Nothing here imports torch or transformers; those belong to the build-time `export/` step. Names are
imported when first used, so `import voxedge` (and the `voxedge` command) starts fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

__version__ = "0.4.1"

_EXPORTS = {
    "load": "model",
    "LiveStream": "live",
    "Microphone": "microphone",  # pulls in sounddevice/PortAudio: only when asked for
    "RingBuffer": "ringbuffer",
    "PcmFormat": "audio", "load_audio": "audio", "open_audio": "audio",
    "Keyterm": "options", "RuntimeOptions": "options", "StreamOptions": "options", "TranscribeOptions": "options",
    "VadOptions": "options",
    "Event": "transcript", "Segment": "transcript", "Transcript": "transcript", "Transcription": "transcript",
    "TranscriptionInfo": "transcript", "Word": "transcript",
    "AudioError": "errors", "BufferOverflowError": "errors", "BundleError": "errors", "DependencyError": "errors",
    "InferenceError": "errors", "OptionError": "errors", "UnsupportedError": "errors", "VoxedgeError": "errors",
}

__all__ = sorted(_EXPORTS)

if TYPE_CHECKING:  # for type checkers and IDEs: the same names, imported eagerly
    from .audio import PcmFormat, load_audio, open_audio  # noqa: F401
    from .errors import (AudioError, BufferOverflowError, BundleError, DependencyError, InferenceError,  # noqa: F401
                         OptionError, UnsupportedError, VoxedgeError)
    from .live import LiveStream  # noqa: F401
    from .microphone import Microphone  # noqa: F401
    from .model import load  # noqa: F401
    from .options import Keyterm, RuntimeOptions, StreamOptions, TranscribeOptions, VadOptions  # noqa: F401
    from .ringbuffer import RingBuffer  # noqa: F401
    from .transcript import Event, Segment, Transcript, Transcription, TranscriptionInfo, Word  # noqa: F401


def __getattr__(name):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'voxedge' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    globals()[name] = value
    return value
