"""Greedy decoding of one 30 s Whisper window, with openai/whisper's logit rules (docs/whisper.md).

The rules, applied in this order to every step's logits, are those of openai/whisper's decoding.py
(CTranslate2 and faster-whisper implement the same): suppress non-speech and control tokens, suppress
a blank or end-of-text as the first token, and the timestamp rules: timestamps come in pairs and
never decrease, the first token is a timestamp no later than 1 s, and a timestamp is forced when all
timestamps together are likelier than any text token.

Tokens in, tokens out: times, words and segments are voxedge/engines/whisper_window.py's job.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..logits import GreedyTakeBack
from .kv_cache import CachedGraph, SlidingKVCache

NEG_INF = np.float32(-np.inf)


@dataclass(frozen=True)
class Decoded:
    tokens: list  # sampled tokens, end-of-text excluded
    avg_logprob: float
    no_speech_prob: float


def log_softmax(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float64)
    shifted = x - x.max()
    return shifted - np.log(np.exp(shifted).sum())


class WindowDecoder:
    """Per-caller decoding state (the self-attention cache) over a shared WhisperModel."""

    def __init__(self, model, on_step=None, processor=None):
        """`processor`: a logits processor (voxedge/logits.py), e.g. keyterms. It adjusts the logits
        before the rules, so that a suppressed token stays suppressed and timestamps stay paired,
        while the timestamp-mass rule weighs the adjusted text tokens; its take-backs re-decide."""
        cfg = model.config
        self.model = model
        self.on_step = on_step
        self.processor = processor
        self.max_positions = cfg.max_positions
        self.cache = SlidingKVCache.of(cfg.decoder, cfg.max_positions, initial=64)
        self.graph = CachedGraph(model.decoder, self.cache, ["logits"])
        tokens = cfg.tokens
        self.eot, self.ts_begin = tokens.eot, tokens.timestamp_begin
        self.no_timestamps, self.no_speech = tokens.no_timestamps, tokens.no_speech
        self.suppress = np.asarray(cfg.suppress_tokens, np.int64)
        self.begin_suppress = np.asarray(cfg.begin_suppress_tokens, np.int64)
        self.max_initial = cfg.max_initial_timestamp_index

    def decode(self, cross: dict, prompt: list, timestamps: bool = True) -> Decoded:
        """Greedy decoding after `prompt` over one window's cross-attention keys/values."""
        self.cache.length = 0
        logits = self._step(prompt, cross, 0)
        no_speech = float(np.exp(log_softmax(logits)[self.no_speech]))
        tokens, logprobs = [], []
        guard = GreedyTakeBack(self.processor) if self.processor is not None else None
        while len(tokens) < min(self.max_positions // 2, self.max_positions - len(prompt)):
            step = len(tokens)
            candidates = guard.candidates(step, logits) if guard is not None else logits.copy()
            filtered = self._filter(candidates, tokens, timestamps)  # after the bonuses: the rules have the last word
            token = int(np.argmax(filtered))
            if self.on_step:
                self.on_step(token, logits)
            if guard is not None:
                resume = guard.advance(step, token, logits, filtered[token] > logits[token],
                                       lambda: int(np.argmax(self._filter(logits.copy(), tokens, timestamps))))
                if resume is not None:  # a keyterm match broke: decide again where a bonus first made the choice
                    step, logits = resume
                    del tokens[step:], logprobs[step:]
                    self.cache.length = len(prompt) + step
                    continue
            logprobs.append(float(log_softmax(filtered)[token]))
            if token == self.eot:
                break
            tokens.append(token)
            logits = self._step([token], cross, len(prompt) + len(tokens) - 1)
        return Decoded(tokens, sum(logprobs) / (len(tokens) + 1), no_speech)

    def _step(self, ids: list, cross: dict, position: int) -> np.ndarray:
        feeds = {
            "inputs_embeds": self.model.embed(ids)[None],
            "position_ids": np.arange(position, position + len(ids), dtype=np.int64)[None],
            **cross,
        }
        return self.graph.run(feeds, len(ids))[0][0]

    def _filter(self, logits: np.ndarray, tokens: list, timestamps: bool) -> np.ndarray:
        logits[self.suppress] = NEG_INF
        if not tokens:
            logits[self.begin_suppress] = NEG_INF
        if timestamps:
            self._timestamp_rules(logits, tokens)
        return logits

    def _timestamp_rules(self, logits: np.ndarray, tokens: list) -> None:
        begin = self.ts_begin
        logits[self.no_timestamps] = NEG_INF
        last_was_ts = len(tokens) >= 1 and tokens[-1] >= begin
        penultimate_was_ts = len(tokens) < 2 or tokens[-2] >= begin
        if last_was_ts:
            if penultimate_was_ts:
                logits[begin:] = NEG_INF  # a pair just closed: text (or end-of-text) next
            else:
                logits[: self.eot] = NEG_INF  # an open timestamp: another timestamp or end-of-text
        stamps = [t for t in tokens if t >= begin]
        if stamps:  # never decrease; a closing timestamp may repeat the opening one, nothing else may
            logits[begin : stamps[-1] + (0 if last_was_ts and not penultimate_was_ts else 1)] = NEG_INF
        if not tokens:
            logits[:begin] = NEG_INF
            logits[begin + self.max_initial + 1 :] = NEG_INF
        logprobs = log_softmax(logits)
        stamp_mass = np.logaddexp.reduce(logprobs[begin:])
        if stamp_mass > logprobs[:begin].max():
            logits[:begin] = NEG_INF
