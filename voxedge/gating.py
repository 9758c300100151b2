"""Speech only: Silero VAD in front of any engine, so that silence is never decoded.

`SpeechOnly` is itself an EngineStream (voxedge/stream.py) wrapping the family's: it feeds the gate
everything, holds the audio whose status is not yet known, skips what the gate calls silence, feeds
the engine the rest, and ends the engine's session at each speech end. Times it returns are in
samples it was given, so the skipped silence keeps its place on the clock: it is not "dropped" audio,
and no counter of dropped audio moves.

Speech is fed as it arrives, and the gate reports a speech end only after `min_silence_duration_ms`,
so that much trailing silence reaches the engine: a pause shorter than that stays inside one session
(a live Whisper buffer keeps the audio before the next words, and confirms the last ones on a second
hypothesis; Voxtral needs some silence anyway for its delayed words). Utterances are not the gate's
business: the Stream closes them after its endpoint silence, gated or not.
"""

from __future__ import annotations

import numpy as np

from .audio import SAMPLE_RATE
from .stream import AudioClock, Update
from .transcript import Word


class SpeechOnly:
    def __init__(self, engine, gate):
        self.engine, self.gate = engine, gate
        self.skipped = 0  # samples never given to the engine (silence)
        self.sessions = 0  # engine sessions ended at a speech end (or at the stream's end)
        self._held = np.zeros(0, np.float32)  # audio from `_at` on, not yet given to the engine or skipped
        self._at = 0  # index (in samples given to us) of _held[0]
        self._fed = 0  # samples given to the engine
        self._speaking = False
        self._partial: list[Word] = []  # the engine's open words, on our clock
        self._clock = AudioClock()  # engine samples -> our samples: the skipped silence is a gap

    @property
    def steps(self) -> int:
        return self.engine.steps

    @property
    def resets(self) -> int:
        return self.engine.resets

    def set_keyterms(self, terms) -> None:
        self.engine.set_keyterms(terms)

    def process(self, samples: np.ndarray) -> Update:
        self._held = np.concatenate([self._held, samples])
        return self._apply(self.gate.feed(samples))

    def finish(self) -> Update:
        update = self._apply(self.gate.close())
        if self._speaking:
            update = _join(update, self._end_session())
        self._skip_to(self._at + len(self._held))  # after the last speech: silence to the end
        return update

    def _apply(self, transitions) -> Update:
        update = Update([], self._partial)
        for kind, index in transitions:
            if kind == "speech_start":
                self._skip_to(index)
                self._speaking = True
            else:
                update = _join(update, self._feed_to(index))
                update = _join(update, self._end_session())
        if self._speaking:
            update = _join(update, self._feed_to(self._at + len(self._held)))
        else:
            self._skip_to(self.gate.settled)
        return update

    def _skip_to(self, index: int) -> None:
        """Silence up to `index` is not decoded; the clock keeps its duration."""
        n = min(max(0, index - self._at), len(self._held))
        if n:
            self._clock.add_gap(self._fed, n)
            self.skipped += n
            self._held, self._at = self._held[n:], self._at + n

    def _feed_to(self, index: int) -> Update:
        n = min(max(0, index - self._at), len(self._held))
        if not n:
            return Update([], self._partial)
        samples, self._held, self._at = self._held[:n], self._held[n:], self._at + n
        self._fed += n
        return self._timed(self.engine.process(samples))

    def _end_session(self) -> Update:
        """Speech ended: the engine flushes what it holds and starts afresh on the next speech."""
        self._speaking = False
        self.sessions += 1
        return self._timed(self.engine.finish())

    def _timed(self, update: Update) -> Update:
        def ours(word: Word) -> Word:
            return Word(self._clock.samples(word.start * SAMPLE_RATE) / SAMPLE_RATE,
                        self._clock.samples(word.end * SAMPLE_RATE) / SAMPLE_RATE, word.text)

        self._partial = [ours(w) for w in update.partial]
        return Update([ours(w) for w in update.final], self._partial)


def _join(first: Update, second: Update) -> Update:
    """Two updates in order: the finals of both, the second's open words."""
    return Update(first.final + second.final, second.partial)
