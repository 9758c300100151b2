"""Word timestamps from cross-attention, as openai/whisper (timing.py) and faster-whisper compute them.

After a window is decoded, the decoder reads the window's text once more, teacher-forced after the
start sequence and <|notimestamps|> (the bundle's decoder_step graph, its `alignment_scores` output:
the alignment heads' cross-attention scores). Per head, the scores become attention over the window's
audio frames (softmax), standardized over the tokens and median-filtered over time; the heads' mean
is the token x frame matrix in which dynamic time warping finds the cheapest monotonic path. A
token's time is the first frame the path gives it; a word spans its tokens (docs/whisper.md). A live
window skips the second reading: its greedy decoding kept the same scores of its own positions
(`decoded_token_times`).

Words are split and times tidied as faster-whisper does, so that both give the same words and times on
the same weights (tests/whisper/test_alignment.py): words split at spaces and punctuation, over-long
words at sentence ends and after pauses clamped, punctuation merged into the word next to it, and the
segment's own timestamps preferred when its first or last word runs far past them.
"""

from __future__ import annotations

import string
from dataclasses import dataclass

import numpy as np

from .kv_cache import CachedGraph, SlidingKVCache

MEDIAN_FILTER_WIDTH = 7  # encoder frames (openai/whisper's and faster-whisper's default)
FRAME_SECONDS = 0.02  # one encoder frame: two 10 ms mel frames
PREPEND_PUNCTUATIONS = "\"'“¿([{-"  # merged into the word that follows (faster-whisper's defaults)
APPEND_PUNCTUATIONS = "\"'.。,，!！?？:：”)]}、"  # merged into the word before
SENTENCE_END_MARKS = ".。!！?？"
WITHOUT_SPACES = ("zh", "ja", "th", "lo", "my", "yue")  # languages whose words faster-whisper splits per character
MAX_MEDIAN_WORD_SECONDS = 0.7  # the typical word duration over-long words are clamped by is at most this
ROW_CHUNK = 32  # rows median-filtered at once: the seven shifted copies stay in cache


@dataclass
class WordTiming:
    """A word of a window, its tokens, and its time in seconds (mutable while the rules tidy it)."""

    text: str
    tokens: list
    start: float
    end: float


# -- the alignment pass ---------------------------------------------------------------------------


class CrossAttentionAligner:
    """Per-caller state (a KV cache of its own) over a shared WhisperModel whose decoder_step graph has
    the `alignment_scores` output."""

    def __init__(self, model):
        cfg = model.config
        self.model = model
        self.cache = SlidingKVCache.of(cfg.decoder, cfg.max_positions, initial=64)
        self.graph = CachedGraph(model.decoder, self.cache, ["alignment_scores"])
        self.no_timestamps, self.eot = cfg.tokens.no_timestamps, cfg.tokens.eot

    def token_times(self, cross: dict, sot_sequence, text_tokens: list, frames: int) -> np.ndarray | None:
        """Seconds from the window's start at which each of `text_tokens` begins, then where the last one
        ends (len(text_tokens) + 1 values, non-decreasing); None when the window has no audio frame
        (`frames`: the window's mel frames with content) or no text."""
        if frames // 2 < 1 or not text_tokens:
            return None
        tokens = [*sot_sequence, self.no_timestamps, *text_tokens, self.eot]
        self.cache.length = 0
        feeds = {"inputs_embeds": self.model.embed(tokens)[None],
                 "position_ids": np.arange(len(tokens), dtype=np.int64)[None], **cross}
        scores = self.graph.run(feeds, len(tokens))[0][0]
        # the rows that predict the text tokens and <|endoftext|>: from <|notimestamps|> to the last text token
        n_sot = len(sot_sequence)
        return token_times(scores, np.arange(n_sot, n_sot + len(text_tokens) + 1), frames)


def decoded_token_times(scores: np.ndarray, n_sot: int, tokens: list, n_text: int, ts_begin: int,
                        frames: int) -> np.ndarray | None:
    """Live: token_times from the decoding's own scores (Decoded.alignment: the rows of the start
    sequence's n_sot positions, then of each decoded token) for the first `n_text` text tokens of
    `tokens`, the timestamps between them passed over; None when the scores stop short of them. The
    previous text is in their context here, unlike in the separate pass: on the benchmark recordings
    the committed words' times were the same in the median, 20-48 ms apart at the 90th percentile."""
    text = [i for i, t in enumerate(tokens) if t < ts_begin][:n_text]
    if frames // 2 < 1 or not text or scores.shape[1] < n_sot + text[-1] + 1:
        return None
    rows = [n_sot - 1 + i for i in text] + [n_sot + text[-1]]  # each text token's, then what follows the last
    return token_times(scores[:, : n_sot + text[-1] + 1], np.array(rows), frames)


def token_times(scores: np.ndarray, rows: np.ndarray, frames: int) -> np.ndarray:
    """openai/whisper's find_alignment on the scores [heads, positions, 1500]: `rows` are the positions
    that predict each text token, then the one that predicts what ends the text; the time each text
    token starts, and the end of the last. Scores are standardized over all the positions given."""
    weights = scores[:, :, : frames // 2].astype(np.float32)
    weights = np.exp(weights - weights.max(axis=-1, keepdims=True))
    weights /= weights.sum(axis=-1, keepdims=True)
    mean = weights.mean(axis=-2, keepdims=True)
    std = weights.std(axis=-2, keepdims=True)
    rows = (weights[:, rows] - mean) / np.maximum(std, np.finfo(np.float32).tiny)
    matrix = median_filter(rows, MEDIAN_FILTER_WIDTH).mean(axis=0)
    text_index, time_index = dtw(-matrix.astype(np.float64))
    jumps = np.diff(text_index, prepend=-1).astype(bool)  # the first frame of each token
    return time_index[jumps] * FRAME_SECONDS


def median_filter(x: np.ndarray, width: int) -> np.ndarray:
    """The median of `width` (7) neighbours along the last axis, the edges mirrored (numpy's "reflect",
    as openai/whisper and CTranslate2 pad); left as is when the axis is too short to mirror."""
    pad = width // 2
    if x.shape[-1] <= pad:
        return x
    if width != 7:
        raise ValueError("only the width Whisper uses (7) has a sorting network here")
    padded = np.pad(x, [(0, 0)] * (x.ndim - 1) + [(pad, pad)], mode="reflect")
    rows = padded.reshape(-1, padded.shape[-1])
    n = x.shape[-1]
    out = np.empty((rows.shape[0], n), x.dtype)
    for first in range(0, rows.shape[0], ROW_CHUNK):
        chunk = rows[first : first + ROW_CHUNK]
        out[first : first + ROW_CHUNK] = _median_of_7([chunk[:, k : k + n] for k in range(7)])
    return out.reshape(x.shape)


def _median_of_7(v: list) -> np.ndarray:
    """Elementwise median of seven arrays: a selection network of 13 compare-exchanges (Paeth's), in
    numpy, 10x faster than np.median over sliding windows."""
    def exchange(a, b):
        v[a], v[b] = np.minimum(v[a], v[b]), np.maximum(v[a], v[b])

    exchange(0, 5), exchange(0, 3), exchange(1, 6), exchange(2, 4)
    v[1] = np.maximum(v[0], v[1])
    exchange(3, 5), exchange(2, 6)
    v[3] = np.minimum(np.maximum(v[2], v[3]), v[6])
    v[4] = np.minimum(v[4], v[5])
    exchange(1, 4)
    return np.minimum(np.maximum(v[1], v[3]), v[4])


def dtw(cost: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """openai/whisper's dynamic time warping: the cheapest path through `cost` [n, m] from its first
    cell to its last, each move one row down, one column right, or both; ties broken as openai does
    (diagonal, then down, then right). Returns the path's (row indices, column indices).

    Row by row, the recurrence within a row, acc[j] = cost[j] + min(above[j], acc[j - 1]), is a running
    minimum over prefix sums: numpy does each row at once (n Python iterations, not n * m)."""
    n, m = cost.shape
    acc = np.full((n + 1, m + 1), np.inf)
    acc[0, 0] = 0.0
    trace = np.empty((n + 1, m + 1), np.int8)
    for i in range(1, n + 1):
        diagonal, up = acc[i - 1, :-1], acc[i - 1, 1:]
        sums = np.cumsum(cost[i - 1])
        before = np.concatenate(([0.0], sums[:-1]))
        acc[i, 1:] = sums + np.minimum.accumulate(np.minimum(diagonal, up) - before)
        left = acc[i, :-1]
        trace[i, 1:] = np.where((diagonal < up) & (diagonal < left), 0, np.where((up < diagonal) & (up < left), 1, 2))
    trace[0, :], trace[:, 0] = 2, 1
    rows, cols = [], []
    i, j = n, m
    while i > 0 or j > 0:
        rows.append(i - 1)
        cols.append(j - 1)
        move = trace[i, j]
        i, j = (i - 1, j - 1) if move == 0 else (i - 1, j) if move == 1 else (i, j - 1)
    return np.array(rows[::-1]), np.array(cols[::-1])


# -- words ------------------------------------------------------------------------------------------


def split_words(table, tokens: list, per_character: bool = False) -> list[tuple[str, list]]:
    """faster-whisper's split_to_word_tokens: [(text, tokens)]. Tokens first group into whole characters;
    a group starting with a space, or that is punctuation, starts a word. `per_character`: every group
    is a word (the languages in WITHOUT_SPACES)."""
    full = table.decode(tokens)
    pieces, current, offset = [], [], 0
    for token in tokens:
        current.append(token)
        text = table.decode(current)
        bad = text.find("\ufffd")
        if bad < 0 or (offset + bad < len(full) and full[offset + bad] == "\ufffd"):
            pieces.append((text, current))
            current, offset = [], offset + len(text)
    if per_character:
        return pieces
    words = []
    for text, group in pieces:
        # faster-whisper tests `in string.punctuation`, a substring test: "" and runs such as "()" count too
        if not words or text.startswith(" ") or text.strip() in string.punctuation or table.special[group[0]]:
            words.append((text, list(group)))
        else:
            words[-1] = (words[-1][0] + text, words[-1][1] + group)
    return words


def merge_punctuations(words: list[WordTiming]) -> None:
    """openai/whisper's merge_punctuations, in place: opening punctuation joins the word after it,
    closing punctuation the word before; a merged word is left empty (text "" and no tokens) and keeps
    the times of the word it joined."""
    i = len(words) - 2
    j = len(words) - 1
    while i >= 0:
        previous, following = words[i], words[j]
        if previous.text.startswith(" ") and previous.text.strip() in PREPEND_PUNCTUATIONS:
            following.text, following.tokens = previous.text + following.text, previous.tokens + following.tokens
            previous.text, previous.tokens = "", []
        else:
            j = i
        i -= 1
    i, j = 0, 1
    while j < len(words):
        previous, following = words[i], words[j]
        if not previous.text.endswith(" ") and following.text in APPEND_PUNCTUATIONS:
            previous.text, previous.tokens = previous.text + following.text, previous.tokens + following.tokens
            following.text, following.tokens = "", []
        else:
            i = j
        j += 1


def window_words(words: list[tuple[str, list]], times: np.ndarray) -> tuple[list[WordTiming], float, float]:
    """A window's words timed by its token times (window seconds), as faster-whisper's find_alignment
    and the first half of its add_word_timestamps: over-long words at sentence ends clamped to twice
    the median word duration, punctuation merged. Returns (words, median duration, max duration)."""
    bounds = np.cumsum([0] + [len(tokens) for _, tokens in words])
    timed = [WordTiming(text, tokens, float(times[a]), float(times[b]))
             for (text, tokens), a, b in zip(words, bounds[:-1], bounds[1:])]
    durations = np.array([w.end - w.start for w in timed])
    durations = durations[durations.nonzero()]
    median = min(MAX_MEDIAN_WORD_SECONDS, float(np.median(durations))) if len(durations) else 0.0
    longest = 2 * median
    if len(durations):
        for i in range(1, len(timed)):
            if timed[i].end - timed[i].start > longest:
                if timed[i].text in SENTENCE_END_MARKS:
                    timed[i].end = timed[i].start + longest
                elif timed[i - 1].text in SENTENCE_END_MARKS:
                    timed[i].start = timed[i].end - longest
    merge_punctuations(timed)
    return timed, median, longest


@dataclass
class SegmentTimes:
    """A segment's times (seconds), moved by its words as faster-whisper moves them."""

    start: float
    end: float


def assign_to_segments(timed: list[WordTiming], segments: list[tuple[SegmentTimes, int]], offset: float,
                       median: float, longest: float, last_speech: float) -> tuple[list[list[WordTiming]], float]:
    """The second half of faster-whisper's add_word_timestamps: words handed to their segments
    ([(times, number of text tokens)]) by token count, in audio seconds (rounded to 10 ms), the first
    words after a pause kept from running long, and each segment's start and end moved to its words
    unless a word runs far past them. Returns the words of each segment and the end of the last speech."""
    out, index = [], 0
    for times, n_tokens in segments:
        words, saved = [], 0
        while index < len(timed) and saved < n_tokens:
            timing = timed[index]
            if timing.text:
                words.append(WordTiming(timing.text, timing.tokens, round(offset + timing.start, 2),
                                        round(offset + timing.end, 2)))
            saved += len(timing.tokens)
            index += 1
        if words:
            first = words[0]
            if first.end - last_speech > median * 4 and (
                    first.end - first.start > longest or (len(words) > 1 and words[1].end - first.start > longest * 2)):
                if len(words) > 1 and words[1].end - words[1].start > longest:
                    boundary = max(words[1].end / 2, words[1].end - longest)
                    first.end = words[1].start = boundary
                first.start = max(0, first.end - longest)
            if times.start < first.end and times.start - 0.5 > first.start:
                first.start = max(0, min(first.end - median, times.start))
            else:
                times.start = first.start
            last = words[-1]
            if times.end > last.start and times.end + 0.5 < last.end:
                last.end = max(last.start + median, times.end)
            else:
                times.end = last.end
            last_speech = times.end
        out.append(words)
    return out, last_speech
