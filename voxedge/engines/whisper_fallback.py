"""Temperature fallback for one Whisper window, the no-speech rule, and the prompt the file loop keeps:
faster-whisper's `generate_with_fallback` and `generate_segments` rules (openai/whisper's).

A window is decoded at each temperature in turn (0: greedy or beam search; above 0: `best_of`
samples) until the text passes: it fails when it compresses too well (zlib ratio above
compression_ratio_threshold: repetitive) or is too unlikely (average log-probability below
log_prob_threshold), unless no-speech is likely (above no_speech_threshold) with that low
log-probability: then it is silence, which is not retried. If every temperature fails, the likeliest
attempt among those that did not repeat themselves (or among all) is kept. A window is skipped as
silent when no-speech is above no_speech_threshold, unless its text's average log-probability is
above log_prob_threshold.
"""

from __future__ import annotations

import collections
import dataclasses
import zlib
from dataclasses import dataclass

from .whisper_decoding import Decoded, Search


LOOP_PERIODS = 3  # live: a text that ends in this many repetitions of one piece is cut after the first (cut_loop)


@dataclass(frozen=True)
class Decoding:
    """How a window is decoded; the defaults are greedy without fallback (voxedge's default)."""

    searches: tuple[Search, ...] = (Search(),)  # one per temperature, tried in turn
    compression_ratio_threshold: float | None = 2.4
    log_prob_threshold: float | None = -1.0
    no_speech_threshold: float | None = 0.6
    seed: int = 0

    @classmethod
    def of(cls, options) -> Decoding:
        """From a TranscribeOptions record (faster-whisper's meanings)."""
        searches = tuple(
            Search(1, options.patience, options.length_penalty, t, options.best_of) if t > 0
            else Search(options.beam_size, options.patience, options.length_penalty)
            for t in options.temperature)
        return cls(searches, options.compression_ratio_threshold, options.log_prob_threshold,
                   options.no_speech_threshold, options.seed)


@dataclass(frozen=True)
class Attempt:
    decoded: Decoded
    temperature: float
    compression_ratio: float


def compression_ratio(text: str) -> float:
    data = text.encode("utf-8")
    return len(data) / len(zlib.compress(data))


def decode_with_fallback(decoder, cross: dict, prompt: list, decoding: Decoding, rng, table, prefix=()) -> Attempt:
    """The first attempt that passes, or the best of those that failed. `table` decodes text; `prefix`:
    WindowDecoder.decode's."""
    attempts, not_repetitive = [], []
    for search in decoding.searches:
        decoded = decoder.decode(cross, prompt, search=search, rng=rng, prefix=prefix)
        text = table.decode([t for t in decoded.tokens if t < decoder.eot]).strip()
        attempt = Attempt(decoded, search.temperature, compression_ratio(text))
        attempts.append(attempt)
        failed = False
        if decoding.compression_ratio_threshold is not None:
            if attempt.compression_ratio > decoding.compression_ratio_threshold:
                failed = True
            else:
                not_repetitive.append(attempt)
        if decoding.log_prob_threshold is not None and decoded.avg_logprob < decoding.log_prob_threshold:
            failed = not no_speech_likely(decoded, decoding)
        if not failed:
            return attempt
    best = max(not_repetitive or attempts, key=lambda a: a.decoded.avg_logprob)
    # the last temperature tried is what decides whether the prompt is reset
    return dataclasses.replace(best, temperature=decoding.searches[-1].temperature)


def cut_loop(tokens: list, start: int, ts_begin: int, table, threshold: float | None) -> list:
    """Live windows decode once, without the fallback that would retry a repetitive text: where the
    window's text fails the compression test and ends in a loop (its text tokens periodic over at least
    LOOP_PERIODS periods up to the end), `tokens` up to the end of the loop's first period, but never
    fewer than `start` (a forced prefix: committed text). Otherwise `tokens` unchanged. The later periods
    are the model repeating itself, not the speech. The prefix counts for the loop: a window that
    decoded one more period after a prefix holding the others grew the committed loop by a period
    every other step."""
    where = [i for i in range(len(tokens)) if tokens[i] < ts_begin]
    text = [tokens[i] for i in where]
    if threshold is None or compression_ratio(table.decode(text)) <= threshold:
        return tokens
    loop = None  # (where it starts, its period), the earliest start
    for period in range(1, len(text) // LOOP_PERIODS + 1):
        first = len(text)  # the periodic tail text[first:], each token equal to the one a period before
        while first > period and text[first - 1] == text[first - 1 - period]:
            first -= 1
        begin = first - period
        if len(text) - begin >= LOOP_PERIODS * period and (loop is None or begin < loop[0]):
            loop = (begin, period)
    return tokens if loop is None else tokens[: max(where[sum(loop) - 1] + 1, start)]


def ends_in_loop(tokens: list, start: int, ts_begin: int, table, threshold: float | None) -> bool:
    """Whether cut_loop would cut `tokens`."""
    return len(cut_loop(tokens, start, ts_begin, table, threshold)) < len(tokens)


def is_silent(decoded: Decoded, decoding: Decoding) -> bool:
    """openai/whisper's no-speech rule: no-speech likely, and the text not likely enough to keep."""
    if decoding.no_speech_threshold is None or decoded.no_speech_prob <= decoding.no_speech_threshold:
        return False
    return decoding.log_prob_threshold is None or decoded.avg_logprob <= decoding.log_prob_threshold


def no_speech_likely(decoded: Decoded, decoding: Decoding) -> bool:
    """No-speech above its threshold, whatever the text's probability."""
    return decoding.no_speech_threshold is not None and decoded.no_speech_prob > decoding.no_speech_threshold


class PreviousText:
    """The tokens that prompt the next window of a file (faster-whisper's all_tokens[prompt_reset_since:]):
    the initial prompt, then each window's segments with text, forgotten after a window when
    condition_on_previous_text is off or the window needed a temperature above prompt_reset_on_temperature.
    A window skipped as silent changes nothing."""

    def __init__(self, size: int, initial=(), condition: bool = True, reset_above: float = 0.5):
        self.tokens = collections.deque(initial, maxlen=size)
        self.condition, self.reset_above = condition, reset_above

    def add(self, hypothesis, table) -> None:
        if hypothesis.silent:
            return
        for segment in hypothesis.segments:
            if segment.start != segment.end and table.decode(segment.tokens).strip():
                self.tokens.extend(segment.tokens)
        if not self.condition or hypothesis.temperature > self.reset_above:
            self.tokens.clear()
