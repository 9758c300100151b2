"""What voxedge hands back: words, segments and live events, and the txt/srt/vtt/json writers.

Times are seconds from the start of the audio. Writers round them to whole milliseconds.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field


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
    """

    kind: str  # "partial" or "final"
    text: str
    start: float
    end: float
    words: tuple[Word, ...] = ()
    dropped_samples: int = 0


@dataclass(frozen=True)
class Transcript:
    """A whole file's result, as `--format json` prints it."""

    segments: tuple[Segment, ...]
    duration: float
    text: str = field(default="")

    def __post_init__(self):
        if not self.text:
            object.__setattr__(self, "text", "".join(s.text for s in self.segments).strip())


def format_timestamp(seconds: float, decimal_marker: str = ".") -> str:
    """HH:MM:SS.mmm (hours grow past two digits if needed); `decimal_marker` is "," for SRT."""
    if seconds < 0:
        raise ValueError(f"timestamps cannot be negative, got {seconds}")
    ms = math.floor(seconds * 1000 + 0.5)  # half up, not Python's round-half-even
    hours, ms = divmod(ms, 3_600_000)
    minutes, ms = divmod(ms, 60_000)
    secs, ms = divmod(ms, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{decimal_marker}{ms:03d}"


def _cue_text(text: str) -> str:
    """Cue text on non-empty lines only: a blank line would end the cue early in SRT and VTT."""
    return "\n".join(line.strip() for line in text.strip().splitlines() if line.strip())


def to_txt(segments) -> str:
    return "".join(f"{_cue_text(s.text)}\n" for s in segments if s.text.strip())


def to_srt(segments) -> str:
    cues = [s for s in segments if s.text.strip()]
    return "\n".join(
        f"{i}\n{format_timestamp(s.start, ',')} --> {format_timestamp(s.end, ',')}\n{_cue_text(s.text)}\n"
        for i, s in enumerate(cues, start=1)
    )


def _vtt_escape(text: str) -> str:
    # WebVTT cue text is markup: &, < and > must be escaped, and "-->" may not appear at all.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def to_vtt(segments) -> str:
    cues = "".join(
        f"\n{format_timestamp(s.start)} --> {format_timestamp(s.end)}\n{_vtt_escape(_cue_text(s.text))}\n"
        for s in segments
        if s.text.strip()
    )
    return "WEBVTT\n" + cues


def to_json(transcript: Transcript) -> str:
    """One line of JSON: {"text", "duration", "segments": [{"start", "end", "text", "words": [...]}]}."""

    def ms(t: float) -> float:
        return round(t, 3)

    return json.dumps(
        {
            "text": transcript.text,
            "duration": ms(transcript.duration),
            "segments": [
                {
                    "start": ms(s.start),
                    "end": ms(s.end),
                    "text": s.text,
                    "words": [{"start": ms(w.start), "end": ms(w.end), "text": w.text} for w in s.words],
                }
                for s in transcript.segments
            ],
        },
        ensure_ascii=False,
    )


WRITERS = {"txt": to_txt, "srt": to_srt, "vtt": to_vtt}


def render(transcript: Transcript, fmt: str) -> str:
    """The transcript in one of txt, srt, vtt, json."""
    if fmt == "json":
        return to_json(transcript) + "\n"
    if fmt not in WRITERS:
        raise ValueError(f"unknown format {fmt!r}: choose txt, srt, vtt or json")
    return WRITERS[fmt](transcript.segments)
