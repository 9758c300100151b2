"""What every live stream shares, whatever the engine: audio in, events out, counters.

An engine's stream subclasses `Stream` and implements `_process(samples)` (16 kHz float32 in, events
out) and `_finish()` (end of audio). This class turns whatever the caller feeds (any dtype, channel
layout, sample rate) into that, accounts for audio a ring buffer dropped, and maps the engine's
clock (samples it actually saw) back to wall-clock audio time.
"""

from __future__ import annotations

import collections
import warnings
from dataclasses import dataclass

import numpy as np

from .audio import SAMPLE_RATE, StreamResampler, to_float32, to_mono, validate
from .errors import AudioError, VoxedgeError
from .ringbuffer import Block
from .transcript import Event


@dataclass
class StreamStats:
    samples_in: int = 0  # 16 kHz samples handed to the engine
    samples_dropped: int = 0  # lost before reaching us (ring-buffer overflow), never silently
    steps: int = 0  # engine steps run (80 ms each for Voxtral, windows for Whisper)
    resets: int = 0  # sessions restarted (e.g. after an end-of-stream token)

    @property
    def seconds_in(self) -> float:
        return self.samples_in / SAMPLE_RATE


class DropClock:
    """Maps the engine's sample count to audio time when some audio never reached the engine.

    Each drop is remembered as (engine sample index, total dropped so far); engine times at or after
    that index are shifted by the total. Old breakpoints are forgotten once time has moved past them.
    """

    def __init__(self):
        self._breaks = collections.deque()
        self._shift = 0  # dropped samples before every time still asked about

    def add_drop(self, at_sample: int, n: int) -> None:
        total = (self._breaks[-1][1] if self._breaks else self._shift) + n
        self._breaks.append((at_sample, total))

    def seconds(self, engine_sample: float) -> float:
        """Audio time of an engine sample index; queries must be (nearly) non-decreasing."""
        while self._breaks and self._breaks[0][0] <= engine_sample:
            self._shift = self._breaks.popleft()[1]
        return (engine_sample + self._shift) / SAMPLE_RATE


class Stream:
    """Push audio with `feed`, get `Event`s back; `close` flushes what the model still holds."""

    def __init__(self):
        self.stats = StreamStats()
        self.clock = DropClock()
        self.closed = False
        self._resampler: StreamResampler | None = None

    # -- engine interface -----------------------------------------------------------------------

    def _process(self, samples: np.ndarray) -> list[Event]:
        raise NotImplementedError

    def _finish(self) -> list[Event]:
        raise NotImplementedError

    # -- public ---------------------------------------------------------------------------------

    def feed(self, block, sample_rate: int = SAMPLE_RATE, *, channels_first: bool | None = None) -> list[Event]:
        """Add audio (numpy array of any supported dtype/layout, or a ring-buffer `Block`)."""
        if self.closed:
            raise VoxedgeError("this stream is closed; start a new one with model.stream()")
        dropped = 0
        if isinstance(block, Block):
            block, dropped = block.samples, block.dropped
        if not isinstance(block, np.ndarray):
            raise AudioError(f"feed() takes numpy arrays, got {type(block).__name__}")
        if dropped:
            self._note_drop(dropped)
        if block.size == 0:
            return []
        samples = to_mono(validate(to_float32(block)), channels_first=channels_first)
        samples = self._resample(samples, sample_rate)
        events = self._process(samples) if samples.size else []
        self.stats.samples_in += samples.size
        return self._tag_drops(events, dropped)

    def close(self) -> list[Event]:
        """End of audio: returns the remaining events. Idempotent."""
        if self.closed:
            return []
        tail = self._resampler.process(np.zeros(0, np.float32), last=True) if self._resampler else None
        events = self._process(tail) if tail is not None and tail.size else []
        self.stats.samples_in += 0 if tail is None else tail.size
        self.closed = True
        return events + self._finish()

    def run(self, source):
        """Feed every block from `source` (arrays, or a `Microphone`'s blocks) and yield events; closes
        at the end. If you stop early (break, Ctrl-C), call `close()` to get the words still held back."""
        for block in source:
            yield from self.feed(block, getattr(source, "sample_rate", SAMPLE_RATE))
        yield from self.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.closed = True

    # -- helpers --------------------------------------------------------------------------------

    def _resample(self, samples: np.ndarray, rate: int) -> np.ndarray:
        if rate == SAMPLE_RATE and self._resampler is None:
            return samples
        if self._resampler is None:
            self._resampler = StreamResampler(rate)
        elif self._resampler.rate != rate:
            raise AudioError(f"the sample rate changed mid-stream ({self._resampler.rate} -> {rate} Hz)")
        return self._resampler.process(samples)

    def _note_drop(self, n: int) -> None:
        self.stats.samples_dropped += n
        self.clock.add_drop(self.stats.samples_in, n)
        warnings.warn(
            f"{n} samples ({n / SAMPLE_RATE:.2f} s) of audio were dropped before transcription: the engine is "
            "slower than real time on this machine (see `voxedge bench --device`)",
            stacklevel=3,
        )

    def _tag_drops(self, events: list[Event], dropped: int) -> list[Event]:
        """The first event of the block carries the drop count (an empty partial one if none came)."""
        if not dropped:
            return events
        if not events:
            now = self.clock.seconds(self.stats.samples_in)
            return [Event("partial", "", now, now, (), dropped)]
        first = events[0]
        return [Event(first.kind, first.text, first.start, first.end, first.words, dropped)] + events[1:]
