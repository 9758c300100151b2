"""What every live stream shares, whatever the engine: audio in, events out, the clock, the counters.

A `Stream` wraps an engine's per-stream state (`EngineStream`, docs/architecture.md): it turns whatever
the caller feeds (any dtype, channel layout, sample rate) into 16 kHz float32 for the engine, accounts
for audio that never reached the engine (ring-buffer drops), and maps the engine's times (seconds of
audio the engine was given) to audio time once, here. Engines never touch the clock or the counters.
"""

from __future__ import annotations

import collections
import contextlib
import threading
import warnings
from dataclasses import dataclass, field, replace
from typing import Protocol

import numpy as np

from .audio import SAMPLE_RATE, StreamResampler, fix_int16_scale, to_float32, to_mono, validate
from .errors import AudioError, InferenceError, VoxedgeError, inference_errors
from .ringbuffer import Block
from .transcript import Event, Word


@dataclass
class Update:
    """What an engine call produced, in engine time: words that became final (never to change) and
    the words still open, which replace the previous partial ones."""

    final: list[Word] = field(default_factory=list)
    partial: list[Word] = field(default_factory=list)


class EngineStream(Protocol):
    """One stream's engine state. 16 kHz float32 in; words out, timed in seconds of engine audio."""

    steps: int  # engine steps run (80 ms each for Voxtral, hypotheses for Whisper)
    resets: int  # sessions restarted (e.g. after an end-of-sequence token)

    def process(self, samples: np.ndarray) -> Update: ...

    def finish(self) -> Update: ...

    def set_keyterms(self, terms) -> None:
        """Decode with these keyterms (Keyterm records) from now on."""


@dataclass
class StreamStats:
    samples_in: int = 0  # 16 kHz samples received (after resampling)
    samples_dropped: int = 0  # 16 kHz samples lost before reaching us (ring-buffer overflow), never silently
    samples_skipped: int = 0  # received samples the VAD called silence: not decoded, still on the clock
    steps: int = 0
    resets: int = 0
    utterances: int = 0


class AudioClock:
    """Maps the engine's sample count to audio time when some audio never reached the engine.

    Each gap is remembered as (engine sample index, total skipped so far); engine times at or after
    that index are shifted by the total. Old breakpoints are forgotten once time has moved past them.
    """

    def __init__(self):
        self._breaks = collections.deque()
        self._shift = 0  # skipped samples before every time still asked about

    def add_gap(self, at_sample: int, n: int) -> None:
        total = (self._breaks[-1][1] if self._breaks else self._shift) + n
        self._breaks.append((at_sample, total))

    def samples(self, engine_sample: float) -> float:
        """The audio sample index of an engine sample index; queries must be (nearly) non-decreasing."""
        while self._breaks and self._breaks[0][0] <= engine_sample:
            self._shift = self._breaks.popleft()[1]
        return engine_sample + self._shift

    def seconds(self, engine_sample: float) -> float:
        return self.samples(engine_sample) / SAMPLE_RATE


class Stream:
    """Push audio with `feed`, get `Event`s back; `close` flushes what the model still holds.

    Events: "partial" (the open words, replaced by the next partial), "final" (words that never change)
    and "utterance" (an utterance closed: its whole text, start and end). An utterance closes once
    `endpoint` seconds of audio have passed since its last word with no word open (gated by VAD or not:
    voxedge/gating.py), and at `close()`.
    """

    def __init__(self, engine: EngineStream, endpoint: float = 0.8):
        self.engine = engine
        self.endpoint = endpoint
        self.stats = StreamStats()
        self.clock = AudioClock()
        self.closed = False
        self._utterance: list[Word] = []  # final words of the utterance in progress
        self._rate: int | None = None
        self._resampler: StreamResampler | None = None
        self._dropped_in = 0  # input-rate samples dropped so far (converted to 16 kHz cumulatively)
        self._partial: tuple[Word, ...] = ()
        self._held: list[Event] = []  # the flush of a `with` block, handed out by close()
        self._busy = threading.Lock()
        self._int16_warned = [False]

    # -- public ---------------------------------------------------------------------------------

    def feed(self, block, sample_rate: int = SAMPLE_RATE, *, channels_first: bool | None = None) -> list[Event]:
        """Add audio (numpy array of any supported dtype/layout, or a ring-buffer `Block`)."""
        with self._exclusive():
            if self.closed:
                raise VoxedgeError("this stream is closed; start a new one with model.stream()")
            dropped = 0
            if isinstance(block, Block):
                block, dropped = block.samples, self._note_drop(block.dropped, sample_rate)
            if not isinstance(block, np.ndarray):
                raise AudioError(f"feed() takes numpy arrays, got {type(block).__name__}")
            events = []
            if block.size:
                samples = to_mono(validate(fix_int16_scale(to_float32(block), "fed audio", self._int16_warned)),
                                  channels_first=channels_first)
                samples = self._resample(samples, sample_rate)
                self.stats.samples_in += samples.size
                if samples.size:
                    events = self._events(self.engine.process(samples))
            return self._tag_drops(events, dropped)

    def close(self) -> list[Event]:
        """End of audio: returns the remaining events. After the first call (or the end of a `with`
        block, whose flush it returns), it returns []."""
        with self._exclusive():
            if not self.closed:
                self._held = self._flush()
            held, self._held = self._held, []
            return held

    def set_keyterms(self, terms) -> None:
        """Change the keyterms of this live stream (strings or `voxedge.Keyterm`s; [] for none): the
        decoding from now on uses them, e.g. between utterances."""
        from .keyterms import as_keyterms

        with self._exclusive():
            self.engine.set_keyterms(as_keyterms(terms))

    def run(self, source):
        """Feed every block from `source` (arrays, or a `Microphone`'s blocks) and yield events; closes
        at the end. If you stop early (break, Ctrl-C), call `close()` to get the words still held back."""
        ring = getattr(source, "ring", None)
        for block in source:
            events = self.feed(block, getattr(source, "sample_rate", SAMPLE_RATE))
            yield from with_backlog(events, ring.available / source.sample_rate) if ring else events
        yield from self.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        """Leaving a `with` block finishes the stream; `close()` then returns the last events."""
        with self._exclusive():
            if not self.closed:
                self._held = self._flush()

    # -- helpers --------------------------------------------------------------------------------

    @contextlib.contextmanager
    def _exclusive(self):
        """One thread at a time; an onnxruntime failure ends the stream (its state is unknown after it)."""
        if not self._busy.acquire(blocking=False):
            raise VoxedgeError("this stream is being fed from another thread: a stream takes audio from one "
                               "thread at a time (use one stream per thread, or voxedge.LiveStream)")
        try:
            with inference_errors("the stream cannot go on (start a new one with model.stream())"):
                yield
        except InferenceError:
            self.closed = True
            raise
        finally:
            self._busy.release()

    def _flush(self) -> list[Event]:
        self.closed = True
        tail = self._resampler.process(np.zeros(0, np.float32), last=True) if self._resampler else None
        events = []
        if tail is not None and tail.size:
            self.stats.samples_in += tail.size
            events = self._events(self.engine.process(tail))
        return events + self._events(self.engine.finish(), final=True)

    def _events(self, update: Update, final: bool = False) -> list[Event]:
        """Engine words -> audio-time events: one "final" for the words that closed, a "partial"
        whenever the open words changed, an "utterance" when one closed."""
        self.stats.steps, self.stats.resets = self.engine.steps, self.engine.resets
        self.stats.samples_skipped = getattr(self.engine, "skipped", 0)
        events = []
        if update.final:
            words = tuple(self._on_clock(w) for w in update.final)
            events.append(_event("final", words))
            self._utterance += words
        partial = () if final else tuple(self._on_clock(w) for w in update.partial)
        if partial != self._partial:
            self._partial = partial
            if partial:
                events.append(_event("partial", partial))
        if self._utterance and (final or self._silent_since_last_word()):
            self.stats.utterances += 1
            events.append(_event("utterance", tuple(self._utterance)))
            self._utterance = []
        return events

    def _silent_since_last_word(self) -> bool:
        """Endpointing: nothing open, and `endpoint` seconds of audio since the last word."""
        return not self._partial and self.clock.seconds(self.stats.samples_in) - self._utterance[-1].end >= self.endpoint

    def _on_clock(self, word: Word) -> Word:
        """Engine time -> audio time (they differ once audio was dropped before the engine)."""
        return Word(self.clock.seconds(word.start * SAMPLE_RATE), self.clock.seconds(word.end * SAMPLE_RATE), word.text)

    def _resample(self, samples: np.ndarray, rate: int) -> np.ndarray:
        if self._rate is None:
            self._rate = rate
            self._resampler = None if rate == SAMPLE_RATE else StreamResampler(rate)
        elif rate != self._rate:
            raise AudioError(f"the sample rate changed mid-stream ({self._rate} -> {rate} Hz); start a new stream")
        return self._resampler.process(samples) if self._resampler else samples

    def _note_drop(self, n: int, rate: int) -> int:
        """Account for `n` input samples a ring buffer dropped; returns them in 16 kHz samples."""
        if not n:
            return 0
        before = self._dropped_in * SAMPLE_RATE // rate
        self._dropped_in += n
        dropped = self._dropped_in * SAMPLE_RATE // rate - before
        first = not self.stats.samples_dropped
        self.stats.samples_dropped += dropped
        self.clock.add_gap(self.stats.samples_in, dropped)
        if first:  # once per stream: every drop is counted in the events and in stats
            warnings.warn(
                f"{n / rate:.2f} s of audio were dropped before transcription: the engine is slower than real time "
                "on this machine (see `voxedge bench --device`); further drops are counted in the events' "
                "dropped_samples and in stream.stats",
                stacklevel=4,
            )
        return dropped

    def _tag_drops(self, events: list[Event], dropped: int) -> list[Event]:
        """The first event of the block carries the drop count (an empty partial one if none came)."""
        if not dropped:
            return events
        if not events:
            now = self.clock.seconds(self.stats.samples_in)
            return [Event("partial", "", now, now, (), dropped)]
        first = events[0]
        return [Event(first.kind, first.text, first.start, first.end, first.words, dropped)] + events[1:]



def with_backlog(events: list[Event], seconds: float) -> list[Event]:
    """The events, stamped with the audio still waiting to be transcribed (Event.backlog)."""
    return [replace(event, backlog=round(seconds, 3)) for event in events] if seconds else events


def _event(kind: str, words: tuple[Word, ...]) -> Event:
    return Event(kind, "".join(w.text for w in words), words[0].start, words[-1].end, words)
