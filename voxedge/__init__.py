"""voxedge: on-device live speech transcription with numpy + onnxruntime.

    model = voxedge.load("whisper-tiny.en")              # a model name (voxedge models) or a bundle directory
    for segment in model.transcribe("meeting.wav"):
        print(segment.start, segment.end, segment.text)

Nothing here imports torch or transformers; those belong to the build-time `export/` step.
"""

__version__ = "0.1.0"

from .audio import PcmFormat, load_audio
from .errors import AudioError, BufferOverflowError, BundleError, DependencyError, UnsupportedError, VoxedgeError
from .live import LiveStream
from .model import load
from .ringbuffer import RingBuffer
from .transcript import Event, Segment, Transcript, Word


def __getattr__(name):
    # the microphone pulls in sounddevice/PortAudio: only when asked for
    if name == "Microphone":
        from .microphone import Microphone

        return Microphone
    raise AttributeError(f"module 'voxedge' has no attribute {name!r}")


__all__ = [
    "AudioError",
    "BufferOverflowError",
    "BundleError",
    "DependencyError",
    "Event",
    "LiveStream",
    "Microphone",
    "PcmFormat",
    "RingBuffer",
    "Segment",
    "Transcript",
    "UnsupportedError",
    "VoxedgeError",
    "Word",
    "load",
    "load_audio",
]
