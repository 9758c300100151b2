"""From timed text pieces to words, and from words to segments.

A word starts at a piece whose text begins with whitespace (Tekken and Whisper pieces carry the
space in front of a word) or after an explicit word-boundary token; it is complete when the next
word starts or the stream ends. Its time spans its pieces' frames. Scripts written without spaces
(Chinese, Japanese) would make one endless "word", so a word is also closed after MAX_WORD_SECONDS.
"""

from __future__ import annotations

from .transcript import Segment, Word

SENTENCE_END = (".", "?", "!", "。", "？", "！")
MAX_WORD_SECONDS = 2.0


class WordAssembler:
    def __init__(self):
        self._text = ""
        self._start = self._end = 0.0
        self._boundary = True  # the next piece starts a new word

    def boundary(self) -> list[Word]:
        """An explicit word boundary (e.g. Voxtral's [STREAMING_WORD]): completes the current word."""
        self._boundary = True
        return self.flush()

    def push(self, text: str, start: float, end: float) -> list[Word]:
        """Add a decoded piece spanning [start, end); returns the word it completed, if any."""
        if not text:
            return []
        done = []
        if self._text and (self._boundary or text[:1].isspace() or end - self._start > MAX_WORD_SECONDS):
            done = self.flush()
        if not self._text:
            self._start = start
        self._text += text
        self._end = end
        self._boundary = False
        return done

    def pending(self) -> Word | None:
        """The word in progress: it may still grow."""
        return Word(self._start, self._end, self._text) if self._text.strip() else None

    def flush(self) -> list[Word]:
        word = self.pending()
        self._text = ""
        return [word] if word else []


class SegmentBuilder:
    """Groups final words into segments: at sentence ends, at pauses, and at a maximum length."""

    def __init__(self, pause: float = 1.0, max_seconds: float = 30.0):
        self.pause, self.max_seconds = pause, max_seconds
        self._words: list[Word] = []

    def add(self, words) -> list[Segment]:
        done = []
        for word in words:
            if self._words and (
                word.start - self._words[-1].end >= self.pause or word.end - self._words[0].start > self.max_seconds
            ):
                done += self.flush()
            self._words.append(word)
            if word.text.rstrip().endswith(SENTENCE_END):
                done += self.flush()
        return done

    def flush(self) -> list[Segment]:
        if not self._words:
            return []
        words, self._words = tuple(self._words), []
        return [Segment(words[0].start, words[-1].end, "".join(w.text for w in words), words)]
