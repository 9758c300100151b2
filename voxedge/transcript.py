"""What voxedge hands back: words, segments, live events and whole transcripts (voxedge/writers.py
turns them into txt, srt, vtt and json).

Times are seconds from the start of the audio.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .errors import inference_errors


@dataclass(frozen=True)
class Word:
    start: float
    end: float
    text: str  # as decoded, usually with its leading space


@dataclass(frozen=True)
class Segment:
    start: float
    end: float
    text: str
    words: tuple[Word, ...] = ()


@dataclass(frozen=True)
class Event:
    """A live result. "final" text never changes again; a "partial" is replaced by the next event.

    `dropped_samples` counts audio lost to ring-buffer overflow since the previous event (0 normally).
    `backlog` is the audio, in seconds, that waited in the ring buffer (of a LiveStream or a Microphone
    the stream runs on) when the event was made: above a fraction of a second, the engine is catching up.
    """

    kind: str  # "partial", "final" or "utterance"
    text: str
    start: float
    end: float
    words: tuple[Word, ...] = ()
    dropped_samples: int = 0
    backlog: float = 0.0


@dataclass(frozen=True)
class TranscriptionInfo:
    """What is known about a transcription before its first segment (faster-whisper's `info`)."""

    duration: float  # seconds of audio (from the file header for files)
    language: str | None  # the language transcribed: given, detected, or the model's only one
    language_probability: float | None  # the detector's probability; None when it did not run
    model: str  # the bundle's name (or directory) and family
    duration_after_vad: float | None = None  # seconds of speech transcribed, with `vad_filter`


class Transcription:
    """`model.transcribe(...)`: iterate it for the segments, yielded as they are decided (once);
    `info` is there from the start."""

    def __init__(self, segments, info: TranscriptionInfo):
        self._segments = iter(segments)
        self.info = info

    def __iter__(self):
        return self

    def __next__(self) -> Segment:
        with inference_errors("transcription failed"):
            segment = next(self._segments, None)
        if segment is None:
            raise StopIteration
        return segment


@dataclass(frozen=True)
class Transcript:
    """A whole file's result, as `--format json` prints it."""

    segments: tuple[Segment, ...]
    duration: float
    text: str = field(default="")
    language: str | None = None
    language_probability: float | None = None

    def __post_init__(self):
        if not self.text:
            object.__setattr__(self, "text", "".join(s.text for s in self.segments).strip())
