"""Live transcription for any windowed model: LocalAgreement-2 over a growing buffer (whisper_streaming).

Every `step` samples of new audio the buffer (at most one window) is transcribed again by the model's
`hypothesize(audio, prompt, offset, settled, final)`, conditioned on the text already committed
(`final`: no more audio will come to this buffer). Words on which
this hypothesis and the previous one agree, from the start, are committed: they become "final" and
never change. The rest is the partial. `settled` is the previous hypothesis' committed words still in
the buffer (its own words, as it returned them): what the new hypothesis need not decode again. Once
the buffer is long, it is cut at the end of a completed segment that is already committed (or right
after the committed words, when the hypothesis holds nothing after them), so memory and work per step
stay bounded on endless streams. Words piled at one instant (several in a row of no duration) are
not speech and never committed.

`hypothesize` returns an object with `words` ([(Word, token ids)], times in seconds of engine audio)
and `segment_ends` (seconds), and has `set_keyterms(terms)`; this module knows nothing else about the
model.
"""

from __future__ import annotations

import collections
import difflib
import itertools
import string

import numpy as np

from .audio import SAMPLE_RATE
from .stream import Update
from .transcript import Word

TRIM_SECONDS = 15.0  # past this the buffer is cut at a committed segment end
MAX_BUFFER_SECONDS = 25.0  # past this, words older than FORCE_COMMIT_LAG are committed without agreement
FORCE_COMMIT_LAG = 5.0
PILED_WORDS = 2  # this many words in a row, each of no duration, are not speech (unpiled)


def word_key(word: Word) -> str:
    """What two hypotheses must share for a word to count as agreed: case and punctuation aside."""
    return word.text.strip().lower().strip(string.punctuation)


def unpiled(words: list) -> list:
    """[(Word, tokens)] less the runs of PILED_WORDS or more words in a row of no duration: no one
    says two words in no time. A window's alignment piles words that have no audio under them at one
    instant: tiny.en, without VAD, wrote committed text again in the noise after speech ("fail
    again, fail" at 23.76 s), and 16 words at the last frame of a stream it closed. On clean speech
    (the two recordings and the 70 keyterm sentences, live, with VAD and without), 10 of 1,700
    committed words had no duration, never two in a row."""
    kept = []
    for timeless, run in itertools.groupby(words, key=lambda item: item[0].end <= item[0].start):
        run = list(run)
        if not (timeless and len(run) >= PILED_WORDS):
            kept += run
    return kept


class LocalAgreement:
    """An EngineStream (voxedge/stream.py) over a `hypothesize` callable."""

    def __init__(self, hypothesize, step_samples: int, context_tokens: int):
        self.hypothesize = hypothesize
        self.step = step_samples
        self.steps = self.resets = 0
        self._buffer = np.zeros(0, np.float32)
        self._buffer_start = 0  # engine sample index of _buffer[0]
        self._since_decode = 0
        self._in_buffer: list = []  # [(key, tokens)] of committed words whose audio is still in the buffer
        self._history = collections.deque(maxlen=context_tokens)  # the prompt: committed text cut out of the buffer
        self._pending: list = []  # [(word, tokens)] of the previous hypothesis, not committed yet
        self._settled: list = []  # [(word, tokens)] of the previous hypothesis, committed and still in the buffer
        self._last_end = 0.0  # end of the last committed word

    # -- EngineStream ---------------------------------------------------------------------------

    def set_keyterms(self, terms) -> None:
        self.hypothesize.set_keyterms(terms)

    def process(self, samples: np.ndarray) -> Update:
        """Decode at every `step` samples of audio exactly, however the audio was chunked, so the
        output does not depend on the feed size."""
        committed = []
        while len(samples):
            take = min(len(samples), self.step - self._since_decode)
            self._buffer = np.concatenate([self._buffer, samples[:take]])
            self._since_decode += take
            samples = samples[take:]
            if self._since_decode == self.step:
                self._since_decode = 0
                committed += self._update(final=False)
        return Update(committed, [w for w, _ in self._pending])

    def finish(self) -> Update:
        """Commit everything still open; audio fed after this starts a new buffer (the committed text
        stays the prompt)."""
        committed = self._update(final=True) if len(self._buffer) else []
        for _, tokens in self._in_buffer:
            self._history.extend(tokens)
        self._in_buffer, self._pending, self._settled = [], [], []
        self._buffer_start += len(self._buffer)
        self._buffer, self._since_decode = np.zeros(0, np.float32), 0
        return Update(committed)

    # -- LocalAgreement -------------------------------------------------------------------------

    def _update(self, final: bool) -> list[Word]:
        hypothesis = self.hypothesize(self._buffer, list(self._history), self._buffer_start / SAMPLE_RATE,
                                      self._settled, final)
        words = unpiled(hypothesis.words)
        self.steps += 1
        first_new = self._after_committed(words)
        new = words[first_new:]
        commit = new if final else self._agreed(new)
        self._pending = [] if final else new[len(commit) :]
        self._settled = words[: first_new + len(commit)]
        commit = [(self._monotonic(w), tokens) for w, tokens in commit]
        self._in_buffer += [(word_key(w), tokens) for w, tokens in commit]
        self._trim(hypothesis.segment_ends)
        return [w for w, _ in commit]

    def _agreed(self, new: list) -> list:
        """The prefix of `new` that the previous hypothesis had too; past MAX_BUFFER_SECONDS without
        agreement, also every word that ended FORCE_COMMIT_LAG before the buffer's end."""
        commit = []
        for word, old in zip(new, self._pending):
            if word_key(word[0]) != word_key(old[0]):
                break
            commit.append(word)
        if len(self._buffer) > MAX_BUFFER_SECONDS * SAMPLE_RATE:
            horizon = (self._buffer_start + len(self._buffer)) / SAMPLE_RATE - FORCE_COMMIT_LAG
            while len(commit) < len(new) and new[len(commit)][0].end <= horizon:
                commit.append(new[len(commit)])
        return commit

    def _monotonic(self, word: Word) -> Word:
        """Committed times never go backwards (each hypothesis times its words anew)."""
        start = max(word.start, self._last_end)
        self._last_end = max(word.end, start)
        return Word(start, self._last_end, word.text)

    def _after_committed(self, words: list) -> int:
        """Index of the first word of `words` past the committed text. The hypothesis holds the
        committed words still in the buffer too (given as its start, or transcribed again); they are
        found by aligning text, not times."""
        committed = [key for key, _ in self._in_buffer]
        if not committed:
            return 0
        matcher = difflib.SequenceMatcher(a=committed, b=[word_key(w) for w, _ in words], autojunk=False)
        blocks = [b for b in matcher.get_matching_blocks() if b.size]
        return blocks[-1].b + blocks[-1].size if blocks else 0

    def _trim(self, segment_ends: list) -> None:
        """Past TRIM_SECONDS, cut the buffer at the last completed segment whose words are all
        committed, else after the committed words when the hypothesis has nothing after them for
        FORCE_COMMIT_LAG; past MAX_BUFFER_SECONDS, before the first uncommitted word whatever the segments.
        Committed words cut out of the buffer become the prompt for what follows."""
        size = len(self._buffer)
        if size <= TRIM_SECONDS * SAMPLE_RATE:
            return
        committed_end = self._settled[-1][0].end if self._settled else self._buffer_start / SAMPLE_RATE
        buffer_end = (self._buffer_start + size) / SAMPLE_RATE
        cuts = [e for e in segment_ends[:-1] if e <= committed_end + 1e-6]
        if cuts:
            cut = max(cuts)
        elif self._settled and not self._pending and buffer_end - committed_end >= FORCE_COMMIT_LAG:
            # the hypothesis ends with its committed words, long before the audio does: silence, or a model
            # that stalled there (tiny.en closed a window mid-sentence in faint noise, and every later window
            # over the same start did the same until the forced cut dropped 14 s of speech): the next
            # window starts after those words and hears the rest afresh
            cut = committed_end
        elif size > MAX_BUFFER_SECONDS * SAMPLE_RATE:
            cut = buffer_end - FORCE_COMMIT_LAG
            if self._pending:
                cut = min(cut, self._pending[0][0].start)
        else:
            return
        drop = int(cut * SAMPLE_RATE) - self._buffer_start
        if drop <= 0:
            return
        self._buffer = self._buffer[drop:]
        self._buffer_start += drop
        gone = sum(1 for w, _ in self._settled if w.end <= cut + 1e-6)
        self._settled = self._settled[gone:]
        gone = min(gone, len(self._in_buffer))
        for _, tokens in self._in_buffer[:gone]:
            self._history.extend(tokens)
        self._in_buffer = self._in_buffer[gone:]
