"""Live Whisper: LocalAgreement-2 over a growing audio buffer (as in whisper_streaming).

Every `step_ms` of new audio the buffer (at most one 30 s window) is transcribed again, conditioned on
the text already committed. Words on which this hypothesis and the previous one agree, from the
start, are committed: they become "final" events and never change. The rest is the "partial" event.
Once the buffer is long, it is cut at the end of a completed segment that is already committed, so
memory and work per step stay bounded on endless streams.
"""

from __future__ import annotations

import collections
import difflib
import string

import numpy as np

from ..audio import SAMPLE_RATE
from ..stream import Stream
from ..transcript import Event, Word
from .whisper_decoding import WindowDecoder, split_segments
from .whisper import TIME_PRECISION

TRIM_SECONDS = 15.0  # past this the buffer is cut at a committed segment end
MAX_BUFFER_SECONDS = 25.0  # past this, words older than FORCE_COMMIT_LAG are committed without agreement
FORCE_COMMIT_LAG = 5.0


def _key(word: Word) -> str:
    return word.text.strip().lower().strip(string.punctuation)


class WhisperStream(Stream):
    def __init__(self, model, step_ms: int, on_step=None):
        super().__init__()
        self.model = model
        self.step = SAMPLE_RATE * step_ms // 1000
        self._decoder = WindowDecoder(model, on_step)
        self._buffer = np.zeros(0, np.float32)
        self._buffer_start = 0  # engine sample index of _buffer[0]
        self._since_decode = 0
        self._in_buffer: list = []  # [(key, tokens)] of committed words whose audio is still in the buffer
        self._history = collections.deque(maxlen=model.config["decoder"]["max_positions"] // 2)  # the prompt
        self._pending: list = []  # [(word, tokens)] of the previous hypothesis, not committed yet
        self._last_end = 0.0  # end of the last committed word, engine seconds

    # -- Stream interface -----------------------------------------------------------------------

    def _process(self, samples: np.ndarray) -> list[Event]:
        """Decode at every `step` samples of audio exactly, however the audio was chunked, so the
        output does not depend on the feed size."""
        events = []
        while len(samples):
            take = min(len(samples), self.step - self._since_decode)
            self._buffer = np.concatenate([self._buffer, samples[:take]])
            self._since_decode += take
            samples = samples[take:]
            if self._since_decode == self.step:
                self._since_decode = 0
                events += self._update(final=False)
        return events

    def _finish(self) -> list[Event]:
        return self._update(final=True) if len(self._buffer) else []

    # -- LocalAgreement -------------------------------------------------------------------------

    def _update(self, final: bool) -> list[Event]:
        words, segment_ends = self._hypothesis()
        self.stats.steps += 1
        first_new = self._after_committed(words)
        new = words[first_new:]
        if final:
            commit = new
        else:
            commit = []
            for word, old in zip(new, self._pending):
                if _key(word[0]) != _key(old[0]):
                    break
                commit.append(word)
            if len(self._buffer) > MAX_BUFFER_SECONDS * SAMPLE_RATE:  # no agreement for too long
                horizon = (self._buffer_start + len(self._buffer)) / SAMPLE_RATE - FORCE_COMMIT_LAG
                while len(commit) < len(new) and new[len(commit)][0].end <= horizon:
                    commit.append(new[len(commit)])
        self._pending = [] if final else new[len(commit) :]
        commit = [(self._monotonic(w), tokens) for w, tokens in commit]
        self._in_buffer += [(_key(w), tokens) for w, tokens in commit]
        self._trim(words[: first_new + len(commit)], segment_ends)
        return self._events([w for w, _ in commit], final)

    def _monotonic(self, word: Word) -> Word:
        """Committed times never go backwards (each hypothesis interpolates word times anew)."""
        start = max(word.start, self._last_end)
        self._last_end = max(word.end, start)
        return Word(start, self._last_end, word.text)

    def _hypothesis(self) -> tuple[list, list]:
        """Transcribe the whole buffer: ([(word, tokens)], segment end times), in engine seconds."""
        model = self.model
        offset = self._buffer_start / SAMPLE_RATE
        result = self._decoder.decode(model.encode(model.features(self._buffer)), model.prompt(self._history))
        if model.is_silence(result):
            return [], []
        words, ends = [], []
        pieces, _, _ = split_segments(result.tokens, model.special["timestamp_begin"])
        for start, end, tokens in pieces:
            end_time = offset + (len(self._buffer) / SAMPLE_RATE if end is None else end * TIME_PRECISION)
            words += model.timed_words(offset + start * TIME_PRECISION, end_time, tokens)
            ends.append(end_time)
        return words, ends

    def _after_committed(self, words: list) -> int:
        """Index of the first word of `words` past the committed text. The hypothesis re-transcribes
        the committed words still in the buffer; they are found by aligning text, not times (word
        times are only interpolated within segments)."""
        committed = [key for key, _ in self._in_buffer]
        if not committed:
            return 0
        matcher = difflib.SequenceMatcher(a=committed, b=[_key(w) for w, _ in words], autojunk=False)
        blocks = [b for b in matcher.get_matching_blocks() if b.size]
        return blocks[-1].b + blocks[-1].size if blocks else 0

    def _trim(self, committed_words: list, segment_ends: list) -> None:
        """Past TRIM_SECONDS, cut the buffer at the last completed segment whose words are all
        committed; past MAX_BUFFER_SECONDS, before the first uncommitted word whatever the segments.
        Committed words cut out of the buffer become the prompt for what follows."""
        size = len(self._buffer)
        if size <= TRIM_SECONDS * SAMPLE_RATE:
            return
        committed_end = committed_words[-1][0].end if committed_words else self._buffer_start / SAMPLE_RATE
        cuts = [e for e in segment_ends[:-1] if e <= committed_end + 1e-6]
        if cuts:
            cut = max(cuts)
        elif size > MAX_BUFFER_SECONDS * SAMPLE_RATE:
            cut = (self._buffer_start + size) / SAMPLE_RATE - FORCE_COMMIT_LAG
            if self._pending:
                cut = min(cut, self._pending[0][0].start)
        else:
            return
        drop = int(cut * SAMPLE_RATE) - self._buffer_start
        if drop <= 0:
            return
        self._buffer = self._buffer[drop:]
        self._buffer_start += drop
        gone = sum(1 for w, _ in committed_words if w.end <= cut + 1e-6)
        gone = min(gone, len(self._in_buffer))
        for _, tokens in self._in_buffer[:gone]:
            self._history.extend(tokens)
        self._in_buffer = self._in_buffer[gone:]

    def _events(self, committed: list[Word], final: bool) -> list[Event]:
        events = []
        if committed:
            words = tuple(self._on_clock(w) for w in committed)
            events.append(Event("final", "".join(w.text for w in words), words[0].start, words[-1].end, words))
        if not final and self._pending:
            words = tuple(self._on_clock(w) for w, _ in self._pending)
            events.append(Event("partial", "".join(w.text for w in words), words[0].start, words[-1].end, words))
        return events

    def _on_clock(self, word: Word) -> Word:
        """Engine time -> audio time (they differ once the ring buffer has dropped audio)."""
        return Word(self.clock.seconds(word.start * SAMPLE_RATE), self.clock.seconds(word.end * SAMPLE_RATE), word.text)
