"""Transcripts as text: txt, srt, vtt and json, written segment by segment as they are decided.

A writer's `begin()`, `add(segment)` and `end(transcript)` each return the text to write next, so a
long file's subtitles appear while it is transcribed; `render()` does all three at once. Subtitle cues
follow the usual guidelines: at most two lines of about 42 characters, a long segment split into
several cues at word boundaries (with the words' own times).
"""

from __future__ import annotations

import json
import math
import textwrap

from .transcript import Segment, Transcript

FORMATS = ("txt", "srt", "vtt", "json")
LINE_CHARS = 42
CUE_LINES = 2


def format_timestamp(seconds: float, decimal_marker: str = ".") -> str:
    """HH:MM:SS.mmm (hours grow past two digits if needed); `decimal_marker` is "," for SRT."""
    if seconds < 0:
        raise ValueError(f"timestamps cannot be negative, got {seconds}")
    ms = math.floor(seconds * 1000 + 0.5)  # half up, not Python's round-half-even
    hours, ms = divmod(ms, 3_600_000)
    minutes, ms = divmod(ms, 60_000)
    secs, ms = divmod(ms, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{decimal_marker}{ms:03d}"


def wrap(text: str) -> list[str]:
    """Non-empty lines of at most LINE_CHARS characters (longer words stay whole); the text's own line
    breaks are kept. A blank line would end a cue early in SRT and VTT."""
    return [line for part in text.strip().splitlines() for line in textwrap.wrap(part.strip(), LINE_CHARS)]


def cues(segment: Segment) -> list[tuple[float, float, list[str]]]:
    """A segment as subtitle cues of at most CUE_LINES lines: split at word boundaries, each cue timed by
    its own words (a segment without words is split by lines, its time shared out by characters)."""
    lines = wrap(segment.text)
    if len(lines) <= CUE_LINES:
        return [(segment.start, segment.end, lines)] if lines else []
    if segment.words:
        out, group = [], []
        for word in segment.words:
            if group and len(wrap("".join(w.text for w in group + [word]))) > CUE_LINES:
                out.append((group[0].start, group[-1].end, wrap("".join(w.text for w in group))))
                group = []
            group.append(word)
        return out + [(group[0].start, group[-1].end, wrap("".join(w.text for w in group)))]
    total = sum(len(line) for line in lines)
    out, start, done = [], segment.start, 0
    for i in range(0, len(lines), CUE_LINES):
        group = lines[i : i + CUE_LINES]
        done += sum(len(line) for line in group)
        end = segment.start + (segment.end - segment.start) * done / total
        out.append((start, end, group))
        start = end
    return out


class Writer:
    """txt: one line per segment."""

    def begin(self) -> str:
        return ""

    def add(self, segment: Segment) -> str:
        lines = [line.strip() for line in segment.text.strip().splitlines() if line.strip()]
        return "".join(f"{line}\n" for line in lines)

    def end(self, transcript: Transcript) -> str:
        return ""


class SrtWriter(Writer):
    def __init__(self):
        self.count = 0

    def add(self, segment: Segment) -> str:
        text = ""
        for start, end, lines in cues(segment):
            self.count += 1
            text += ("\n" if self.count > 1 else "") + f"{self.count}\n{format_timestamp(start, ',')} --> " \
                    f"{format_timestamp(end, ',')}\n" + "\n".join(lines) + "\n"
        return text


class VttWriter(Writer):
    def begin(self) -> str:
        return "WEBVTT\n"

    def add(self, segment: Segment) -> str:
        return "".join(f"\n{format_timestamp(start)} --> {format_timestamp(end)}\n"
                       + "\n".join(_vtt_escape(line) for line in lines) + "\n"
                       for start, end, lines in cues(segment))


class JsonWriter(Writer):
    """One line per file, when the file is done: {"text", "language", "language_probability", "duration",
    "segments": [{"start", "end", "text", "words": [...]}]}."""

    def add(self, segment: Segment) -> str:
        return ""

    def end(self, transcript: Transcript) -> str:
        return to_json(transcript) + "\n"


WRITERS = {"txt": Writer, "srt": SrtWriter, "vtt": VttWriter, "json": JsonWriter}


def writer(fmt: str) -> Writer:
    if fmt not in WRITERS:
        raise ValueError(f"unknown format {fmt!r}: choose txt, srt, vtt or json")
    return WRITERS[fmt]()


def render(transcript: Transcript, fmt: str) -> str:
    """The whole transcript in one of txt, srt, vtt, json."""
    out = writer(fmt)
    return out.begin() + "".join(out.add(s) for s in transcript.segments) + out.end(transcript)


def write_transcription(result, fmt: str, sink, on_segment=None) -> Transcript:
    """Write a `Transcription` to `sink` (anything with `write(text)`) in one of txt, srt, vtt, json, segment
    by segment as they are decided (`on_segment(segment)` after each); returns the whole transcript."""
    out = writer(fmt)
    sink.write(out.begin())
    segments = []
    for segment in result:
        segments.append(segment)
        sink.write(out.add(segment))
        if on_segment:
            on_segment(segment)
    info = result.info
    transcript = Transcript(tuple(segments), info.duration, language=info.language,
                            language_probability=info.language_probability)
    sink.write(out.end(transcript))
    return transcript


def to_json(transcript: Transcript) -> str:
    return json.dumps(to_record(transcript), ensure_ascii=False)


def to_record(transcript: Transcript) -> dict:
    """The transcript as `--format json` writes it: {"text", "language", "language_probability", "duration",
    "segments": [{"start", "end", "text", "words": [{"start", "end", "text"}]}]}, times rounded to ms."""

    def ms(t: float) -> float:
        return round(t, 3)

    return {
        "text": transcript.text,
        "language": transcript.language,
        "language_probability": None if transcript.language_probability is None
        else round(transcript.language_probability, 4),
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
    }


def _vtt_escape(text: str) -> str:
    # WebVTT cue text is markup: &, < and > must be escaped, and "-->" may not appear at all.
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
