"""File mode with VAD (`vad_filter`): the speech chunks of a file are cut out and joined, the joined
audio is transcribed, and the times found in it are mapped back to the original audio. The same
steps and arithmetic as faster-whisper's `collect_chunks`, `SpeechTimestampsMap` and
`restore_speech_timestamps`, so that segment times agree with faster-whisper's on the same chunks.
"""

from __future__ import annotations

import bisect
import dataclasses

import numpy as np

from .audio import SAMPLE_RATE, AudioSource
from .transcript import Segment
from .vad import VadGate


class SpeechChunks:
    """Chunks [(start_sample, end_sample)] of one file, as `vad.speech_timestamps` returns them."""

    def __init__(self, chunks, time_precision: int = 2):
        self.chunks = [(int(start), int(end)) for start, end in chunks]
        self.time_precision = time_precision  # decimals of the restored times, as faster-whisper rounds
        self._ends = []  # end of each chunk in the joined audio (samples)
        self._silence_before = []  # seconds cut out before each chunk
        previous_end = silent = 0
        for start, end in self.chunks:
            silent += start - previous_end
            previous_end = end
            self._ends.append(end - silent)
            self._silence_before.append(silent / SAMPLE_RATE)

    @classmethod
    def find(cls, vad, source: AudioSource, options) -> SpeechChunks:
        """The speech chunks of a whole source, read block by block (memory stays bounded)."""
        gate = VadGate(vad, options)
        events = [event for block in source.blocks() for event in gate.feed(block)] + gate.close()
        return cls([(start, end) for (_, start), (_, end) in zip(events[::2], events[1::2])])

    def only_speech(self, source: AudioSource) -> AudioSource:
        """`source` with everything outside the chunks cut out, read block by block."""
        def read():
            position, chunks = 0, iter(self.chunks)
            chunk = next(chunks, None)
            for block in source.blocks():
                end = position + len(block)
                while chunk is not None and chunk[0] < end:
                    lo, hi = max(chunk[0], position), min(chunk[1], end)
                    if hi > lo:
                        yield block[lo - position : hi - position]
                    if chunk[1] > end:
                        break
                    chunk = next(chunks, None)
                position = end

        return AudioSource(source.name, self.speech_samples / SAMPLE_RATE, read)

    @property
    def speech_samples(self) -> int:
        return sum(end - start for start, end in self.chunks)

    def join(self, audio: np.ndarray) -> np.ndarray:
        """The chunks' audio, one after the other (empty without chunks)."""
        return np.concatenate([np.zeros(0, np.float32)] + [audio[start:end] for start, end in self.chunks])

    def chunk_index(self, time: float, is_end: bool = False) -> int:
        """The chunk a time of the joined audio falls in; an end time on a boundary belongs to the
        chunk it ends."""
        sample = int(time * SAMPLE_RATE)
        if is_end and sample in self._ends:
            return self._ends.index(sample)
        return min(bisect.bisect(self._ends, sample), len(self._ends) - 1)

    def original_time(self, time: float, chunk_index: int | None = None, is_end: bool = False) -> float:
        """A time of the joined audio as a time of the original audio."""
        if chunk_index is None:
            chunk_index = self.chunk_index(time, is_end)
        return round(self._silence_before[chunk_index] + time, self.time_precision)

    def restore(self, segment: Segment) -> Segment:
        """`segment`, transcribed from the joined audio, with original times. A word keeps both its
        times in the chunk of its middle; a segment with words spans its words."""
        if not segment.words:
            return dataclasses.replace(segment, start=self.original_time(segment.start),
                                       end=self.original_time(segment.end, is_end=True))
        words = []
        for word in segment.words:
            index = self.chunk_index((word.start + word.end) / 2)
            words.append(dataclasses.replace(word, start=self.original_time(word.start, index),
                                             end=self.original_time(word.end, index)))
        return dataclasses.replace(segment, start=words[0].start, end=words[-1].end, words=tuple(words))
