"""One Whisper window -> a hypothesis: its segments with timed words, and where the next window starts.

Both the file loop (voxedge/engines/whisper.py) and live LocalAgreement (voxedge/agreement.py) see
Whisper only through `WindowTranscriber`: mel frames of at most 30 s, the tokens of the text before
them, and the window's start time in, a `Hypothesis` out. The rules that turn tokens into times live
here once: timestamp pairs cut segments (openai/whisper's seek rule), a segment without a closing
timestamp ends where the window's audio ends, and words are timed by cross-attention alignment
(voxedge/engines/whisper_alignment.py) as faster-whisper's `word_timestamps=True` does: segment
bounds move to their words, and the next window starts at the last word's end. A bundle whose decoder
has no `alignment_scores` output (exported before word alignment) spreads word times evenly over each
segment by token instead, and seeks by timestamps alone.
"""

from __future__ import annotations

import dataclasses
import functools
import string
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from ..transcript import Word
from .whisper_alignment import (WITHOUT_SPACES, CrossAttentionAligner, SegmentTimes, WordTiming, assign_to_segments,
                                decoded_token_times, merge_punctuations, split_words, window_words)
from . import whisper_language
from .whisper_decoding import WindowDecoder
from .whisper_fallback import Decoding, cut_loop, decode_with_fallback, ends_in_loop, is_silent, no_speech_likely

TIME_PRECISION = 0.02  # seconds per timestamp token
FRAMES_PER_TIMESTAMP = 2  # mel frames (10 ms) per timestamp step
# live, an unknown language is fixed on the first window this long with speech (or on an utterance's last
# window): on 2-3 s windows base took espeak-ng German for Hebrew, Spanish for Thai (docs/whisper.md)
LIVE_DETECTION_SECONDS = 4.0
COMPRESSION_RATIO_THRESHOLD = 2.4  # keyterms: text that compresses better repeats itself (openai/whisper's default)


@dataclass(frozen=True)
class TimedSegment:
    start: float
    end: float
    tokens: list  # its tokens, timestamps included: what conditions the next window
    words: list  # [(Word, its token ids)]; empty for a segment without letters or digits


class Span(NamedTuple):
    """A segment as the timestamps cut it: seconds, its text tokens, and all its tokens."""

    start: float
    end: float
    text: list
    tokens: list


@dataclass(frozen=True)
class Hypothesis:
    segments: list  # [TimedSegment]
    seek: int  # mel frames of this window that are done: the next window starts there
    temperature: float = 0.0  # the temperature its text was decoded at (the last one tried, if all failed)
    silent: bool = False  # skipped by the no-speech rule

    @property
    def words(self) -> list:
        return [w for s in self.segments for w in s.words]

    @property
    def segment_ends(self) -> list:
        return [s.end for s in self.segments]


class WindowTranscriber:
    """Per-caller state (the decoder's and the aligner's caches, the sampling generator, the language)
    over a shared WhisperModel. `language` None on a multilingual model: each window detects its own
    until one at least LIVE_DETECTION_SECONDS long (or the last of its buffer) has speech (no-speech
    below the threshold); that language is then kept, and windows before it give no text (files detect
    beforehand and pass it).
    Keyterms (`WhisperModel.keyterms`) come as a logits `processor` and/or `hotwords` placed in the prompt."""

    def __init__(self, model, on_step=None, processor=None, hotwords=(), decoding: Decoding = Decoding(),
                 language: str | None = None, task: str = "transcribe", live: bool = False):
        whisper_language.check(model.config, language, task)
        self.model = model
        own_scores = live and model.aligns_words  # live words are timed without a second pass (token_times)
        self.decoder = WindowDecoder(model, on_step, alignment=own_scores)
        self.aligner = CrossAttentionAligner(model) if model.aligns_words else None
        self.plain = WindowDecoder(model, on_step, alignment=own_scores)  # the repetition fallback, without keyterms
        self.use_keyterms(processor, hotwords)
        self.decoding = decoding
        self.rng = np.random.default_rng(decoding.seed)
        self.language = language if model.config.languages else "en"
        self.language_probability = None
        self.task = task
        self.live = live  # a live window's text that ends in a loop is cut (cut_loop)
        if live:  # and its decoding stops there: the later periods would be cut anyway (no reference back
            # to this object: a cycle would keep the decoders' caches alive until the collector runs)
            self.decoder.stop = self.plain.stop = functools.partial(
                ends_in_loop, ts_begin=model.config.tokens.timestamp_begin, table=model.tokens,
                threshold=decoding.compression_ratio_threshold)
        self.ts_begin = model.config.tokens.timestamp_begin
        self.frame_seconds = model.mel.hop_length / 16000
        self._last_speech = 0.0  # end of the last word timed: faster-whisper's pause rule looks back to it

    def use_keyterms(self, processor, hotwords=()) -> None:
        self.decoder.processor = processor
        self.hotwords = list(hotwords)

    def __call__(self, mel: np.ndarray, previous_tokens, offset: float, prefix=(),
                 frames: int | None = None, final: bool = False) -> Hypothesis:
        """`mel`: [n_mels, frames <= 3000], the window's content; `previous_tokens`: the text before it;
        `offset`: the window's start in seconds; `prefix`: decoded tokens (timestamps included) the
        window's text is known to start with (live: `settled_prefix`), forced instead of decoded;
        `frames`: the window the encoder sees (WhisperModel.encode; default 30 s); `final`: live, no more
        audio will come to this window's buffer (an unknown language is detected on it, however short)."""
        size = mel.shape[1]
        if self.language is None:
            frames = None  # detected on 30 s: on 10 s windows base took German for Hebrew, Spanish for Thai
        cross = self.model.encode(mel, frames)
        if self.language is None and not self._detect(cross, size, final):
            return Hypothesis([], size, silent=True)
        sot_sequence = whisper_language.start_sequence(self.model.config, self.language, self.task)
        prompt = self.model.prompt(previous_tokens, self.hotwords, sot_sequence)
        table = self.model.tokens
        attempt = decode_with_fallback(self.decoder, cross, prompt, self.decoding, self.rng, table, prefix)
        if self.decoder.processor is not None and attempt.compression_ratio > COMPRESSION_RATIO_THRESHOLD:
            # the bonuses sent the window into a loop: without them
            attempt = decode_with_fallback(self.plain, cross, prompt, self.decoding, self.rng, table, prefix)
        decoded = attempt.decoded
        silent = is_silent(decoded, self.decoding)
        if frames is not None and not silent and no_speech_likely(decoded, self.decoding):
            # a window shorter than 30 s that may be silence but keeps its text is decided on 30 s, as the
            # model was trained: on 10 s of digital silence the shorter ones heard " you" (docs/whisper.md)
            return self(mel, previous_tokens, offset, prefix, final=final)
        if silent:
            return Hypothesis([], size, attempt.temperature, silent=True)
        if self.live:  # LocalAgreement would commit a loop that two hypotheses share
            decoded = dataclasses.replace(decoded, tokens=cut_loop(decoded.tokens, len(prefix), self.ts_begin, table,
                                                                   self.decoding.compression_ratio_threshold))
        pieces, last, done = split_segments(decoded.tokens, self.ts_begin)
        # a window whose last segment ends at 0.00 would never advance: then it is done as a whole
        seek = size if done or not last else last * FRAMES_PER_TIMESTAMP
        window_end = offset + size * self.frame_seconds
        spans = [Span(offset + start * TIME_PRECISION, window_end if end is None else offset + end * TIME_PRECISION,
                      [t for t in tokens if t < self.ts_begin], tokens) for start, end, tokens in pieces]
        text = [t for span in spans for t in span.text]
        per_character = self.per_character(sot_sequence)
        times = self.token_times(cross, sot_sequence, decoded, text, size)
        if times is None:
            return Hypothesis([TimedSegment(s.start, s.end, s.tokens,
                                            self.timed_words(s.start, s.end, s.text, per_character)) for s in spans],
                              seek, attempt.temperature)
        segments, last_end = self.aligned_segments(spans, times, offset, window_end, per_character)
        if not single_timestamp_ending(decoded.tokens, self.ts_begin) and last_end > offset:
            # As faster-whisper with word timestamps, the next window starts where the last word ended, but
            # never past the last closing timestamp: when the text repeats itself the path can match the
            # window's last words to a later repetition, and seeking there would skip speech.
            seek = min(seek, round(last_end / self.frame_seconds) - round(offset / self.frame_seconds))
        return Hypothesis(segments, max(1, seek), attempt.temperature)

    def token_times(self, cross: dict, sot_sequence, decoded, text: list, frames: int) -> np.ndarray | None:
        """The window's token times (CrossAttentionAligner.token_times), from the decoding's own scores
        where it kept them (live), else by the alignment pass; None without alignment."""
        if self.aligner is None:
            return None
        if decoded.alignment is not None:
            times = decoded_token_times(decoded.alignment, len(sot_sequence), decoded.tokens, len(text),
                                        self.ts_begin, frames)
            if times is not None:
                return times
        return self.aligner.token_times(cross, sot_sequence, text, frames)

    def _detect(self, cross: dict, size: int, final: bool) -> bool:
        """Live: detect this window's language; keep it when the window has speech and is long enough or
        the last of its buffer (an utterance shorter than LIVE_DETECTION_SECONDS is not lost)."""
        logits, no_speech = self.decoder.prefill(cross, [self.decoder.sot])
        threshold = self.decoding.no_speech_threshold
        too_short = size * self.frame_seconds < LIVE_DETECTION_SECONDS and not final
        if too_short or (threshold is not None and no_speech > threshold):
            return False
        self.language, self.language_probability = whisper_language.detect(logits, self.model.config.languages)
        return True

    def per_character(self, sot_sequence) -> bool:
        """Whether the language the start sequence names is written without spaces between words."""
        return any(self.model.config.languages.get(code) in sot_sequence for code in WITHOUT_SPACES)

    def aligned_segments(self, spans: list, times: np.ndarray, offset: float, window_end: float,
                         per_character: bool = False) -> tuple[list, float]:
        """Segments with their words timed by `times` (the window's token times), as faster-whisper's
        add_word_timestamps; then kept in order: word times never decrease, stay inside the window, and
        each segment spans its words. Returns the segments and where the last word (else segment) ends."""
        table = self.model.tokens
        words = split_words(table, [t for s in spans for t in s.text], per_character)
        timed, median, longest = window_words(words, times)
        bounds = [SegmentTimes(s.start, s.end) for s in spans]
        words_by_segment, self._last_speech = assign_to_segments(
            timed, [(b, len(s.text)) for b, s in zip(bounds, spans)], offset, median, longest,
            min(self._last_speech, offset))
        last_end = next((w.end for words in reversed(words_by_segment) for w in reversed(words)), spans[-1].end)
        segments, floor = [], offset
        for bound, span, words in zip(bounds, spans, words_by_segment):
            kept = []
            for w in words:
                start = min(max(w.start, floor), window_end)
                floor = min(max(w.end, start), window_end)
                kept.append((Word(start, floor, w.text), w.tokens))
            if not any(c.isalnum() for c in table.decode(span.text)):
                kept = []  # " . . ." (faint noise): no words, as in timed_words
            start, end = bound.start, bound.end
            if kept:
                start, end = min(start, kept[0][0].start), max(end, kept[-1][0].end)
            segments.append(TimedSegment(start, end, span.tokens, kept))
        return segments, last_end

    def timed_words(self, start: float, end: float, tokens: list, per_character: bool = False) -> list[tuple[Word, list]]:
        """(word, its token ids) for a segment's text tokens, times spread evenly over [start, end] by
        token: for bundles without the alignment output. A segment without a single letter or digit
        (" . . ." is what tiny models hallucinate on faint noise) has no words."""
        table = self.model.tokens
        if not any(c.isalnum() for c in table.decode(tokens)):
            return []
        words = [WordTiming(text, group, start, end) for text, group in split_words(table, tokens, per_character)]
        merge_punctuations(words)
        step = (end - start) / max(len(tokens), 1)
        timed, first = [], 0
        for w in words:
            if w.text:
                timed.append((Word(start + first * step, start + (first + len(w.tokens)) * step, w.text), w.tokens))
            first += len(w.tokens)
        return timed


def settled_prefix(segments: list, settled: list, shift: int, ts_begin: int, table) -> list:
    """Live: the decoded tokens of a window that `settled` (consecutive words of the window, from a
    segment's first) holds, timestamps moved `shift` steps earlier (the buffer lost that much audio in
    front): what the next window over the same audio is known to start with. A segment counts once two
    of its words are settled: forced alone, a segment's first word (often one hallucinated where speech
    starts) steered the words after it. What closes the prefix (a closing timestamp, punctuation) is
    left to the model: it was decided on less audio. Empty when a segment's words are not exactly its
    text tokens, or `settled` does not open a segment (then the window is decoded whole). `table`
    decodes tokens."""
    first = next((i for i, s in enumerate(segments) if s.words and s.words[0] == settled[0]), None) if settled else None
    tokens, left = [], list(settled)
    for segment in segments[first:] if first is not None else ():
        text = [t for t in segment.tokens if t < ts_begin]
        taken = segment.words[: len(left)]
        if taken != left[: len(taken)] or len(taken) < min(2, len(segment.words)):
            break
        if [t for _, word in segment.words for t in word] != text:
            return []
        left = left[len(taken) :]
        moved = [max(ts_begin, t - shift) if t >= ts_begin else t for t in segment.tokens]
        tokens += moved if len(taken) == len(segment.words) else moved[:1] + text[: sum(len(w) for _, w in taken)]
    while tokens and (tokens[-1] >= ts_begin or not table.decode(tokens[-1:]).strip(string.punctuation + " ")):
        tokens.pop()  # the closing timestamp, then punctuation
    return tokens


def single_timestamp_ending(tokens: list, ts_begin: int) -> bool:
    """The window's text ended with a lone timestamp: no speech after it."""
    return len(tokens) >= 2 and tokens[-2] < ts_begin <= tokens[-1]


def split_segments(tokens: list, ts_begin: int) -> tuple[list, int | None, bool]:
    """Cut a window's tokens at timestamp pairs: ([(start_pos, end_pos, tokens)], last_pos, done).

    Positions are timestamp indices (0.02 s each). `done` is True when the window ended with a lone
    timestamp (no speech after it) or had no timestamp pairs; otherwise `last_pos` is where the last
    complete segment ended and the next window should start (openai/whisper's seek rule).
    """
    single_ending = single_timestamp_ending(tokens, ts_begin)
    cuts = [i for i in range(1, len(tokens)) if tokens[i] >= ts_begin and tokens[i - 1] >= ts_begin]
    if not cuts:
        stamps = [t - ts_begin for t in tokens if t >= ts_begin]
        end = stamps[-1] if stamps and stamps[-1] != 0 else None
        return [(0, end, tokens)], None, True
    if single_ending:
        cuts.append(len(tokens))
    segments, last = [], 0
    for cut in cuts:
        piece = tokens[last:cut]
        segments.append((piece[0] - ts_begin, piece[-1] - ts_begin, piece))
        last = cut
    return segments, tokens[last - 1] - ts_begin, single_ending
