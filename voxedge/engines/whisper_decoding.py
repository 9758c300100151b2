"""Decoding one 30 s Whisper window, with openai/whisper's logit rules (docs/whisper.md).

The rules, applied in this order to every step's logits, are those of openai/whisper's decoding.py
(CTranslate2 and faster-whisper implement the same): suppress non-speech and control tokens, suppress
a blank or end-of-text as the first token, and the timestamp rules: timestamps come in pairs and
never decrease, the first token is a timestamp no later than 1 s, and a timestamp is forced when all
timestamps together are likelier than any text token.

Tokens are picked greedily here, or by beam search or sampling (voxedge/engines/whisper_search.py,
CTranslate2's algorithms, which faster-whisper runs). Each hypothesis keeps its own self-attention
cache (a decoder "row"); the graph runs one row at a time. A logits processor (keyterms,
voxedge/logits.py) adjusts every step's logits before the rules: greedy decoding takes a broken
match's bonus back by deciding again, beam search and sampling by the score. Tokens in, tokens out: times, words and
segments are voxedge/engines/whisper_window.py's job.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..logits import GreedyTakeBack
from .kv_cache import CachedGraph, SlidingKVCache
from .whisper_search import beam_search, log_softmax, logsumexp, sample

NEG_INF = np.float32(-np.inf)
STOP_CHECK_TOKENS = 8  # greedy tokens between two questions to WindowDecoder.stop


@dataclass(frozen=True)
class Search:
    """How tokens are picked at one temperature (faster-whisper's meanings): greedy when
    temperature == 0 and beam_size == 1, beam search when beam_size > 1, else `best_of` samples."""

    beam_size: int = 1
    patience: float = 1.0
    length_penalty: float = 1.0
    temperature: float = 0.0
    best_of: int = 1


GREEDY = Search()


@dataclass(frozen=True)
class Decoded:
    tokens: list  # the chosen hypothesis, end-of-text excluded
    avg_logprob: float  # its summed log-probability (end-of-text included) / (len(tokens) + 1)
    no_speech_prob: float  # p(<|nospeech|>) after <|startoftranscript|>
    # greedy with WindowDecoder.alignment: the alignment heads' scores [heads, rows, frames] of the start
    # sequence's positions and then each token's (the row of a position predicts the token after it)
    alignment: np.ndarray | None = None


class WindowDecoder:
    """Per-caller decoding state (the self-attention caches) over a shared WhisperModel."""

    def __init__(self, model, on_step=None, processor=None, alignment: bool = False):
        """`processor`: a logits processor (voxedge/logits.py), e.g. keyterms. It adjusts the logits
        before the rules, so that a suppressed token stays suppressed and timestamps stay paired,
        while the timestamp-mass rule weighs the adjusted text tokens. `alignment`: greedy decoding
        keeps the alignment heads' scores of its own positions (`Decoded.alignment`; live word times
        without a second pass), for a bundle whose decoder has that output."""
        cfg = model.config
        self.model = model
        self.on_step = on_step  # sees (token, logits) at each greedy step
        self.processor = processor
        self.max_positions = cfg.max_positions
        self.rows: list[tuple[SlidingKVCache, CachedGraph]] = []
        tokens = cfg.tokens
        self.eot, self.sot, self.ts_begin = tokens.eot, tokens.sot, tokens.timestamp_begin
        self.no_timestamps, self.no_speech = tokens.no_timestamps, tokens.no_speech
        self.suppress = np.asarray(cfg.suppress_tokens, np.int64)
        self.begin_suppress = np.asarray(cfg.begin_suppress_tokens, np.int64)
        self.max_initial = cfg.max_initial_timestamp_index
        # greedy: (tokens, forced) -> True to end the decoding there, asked every STOP_CHECK_TOKENS decoded
        # tokens (a live window stops once its text loops: WindowTranscriber)
        self.stop = None
        self.alignment = alignment
        self._scores: list | None = None  # while a greedy decoding keeps them: [(position, scores)] of row 0

    def decode(self, cross: dict, prompt: list, timestamps: bool = True, search: Search = GREEDY,
               rng: np.random.Generator | None = None, prefix: list = ()) -> Decoded:
        """Decode after `prompt` ([<|startofprev|>, previous text...,] the start sequence) over one
        window's cross-attention keys/values. `rng` draws the samples when search.temperature > 0.
        `prefix` (greedy only): tokens the text is known to start with (live: its committed segments),
        teacher-forced in one call with the prompt; they begin the returned tokens, and the average
        log-probability is that of the tokens decoded after them."""
        if prefix and (search.temperature > 0 or search.beam_size > 1):
            raise ValueError("a forced prefix is for greedy decoding only")
        # CTranslate2's length limit: half the context, and the context minus the prompt before its last token
        budget = min(self.max_positions // 2, self.max_positions - (len(prompt) - 1))
        # a prefix leaves room for one decoded token: a live window that looped to the limit on noise
        # forced all of it after a full prompt, one position past the context
        prefix = list(prefix)[: budget - 1]
        greedy = search.temperature == 0 and search.beam_size == 1
        self._scores = [] if self.alignment and greedy else None
        logits, no_speech = self.prefill(cross, [*prompt, *prefix])
        start = len(prompt)
        if search.temperature > 0:
            tokens, logprob = sample(self, cross, logits, start, budget, search, rng, timestamps)
        elif search.beam_size > 1:
            tokens, logprob = beam_search(self, cross, logits, start, budget, search, timestamps)
        else:
            tokens, logprob = self._greedy(cross, logits, start, budget, timestamps, list(prefix))
        alignment = self._kept_scores(prompt.index(self.sot), start + len(tokens)) if greedy else None
        return Decoded(tokens, logprob / (len(tokens) - len(prefix) + 1), no_speech, alignment)

    def prefill(self, cross: dict, prompt: list) -> tuple[np.ndarray, float]:
        """Row 0 restarted on `prompt`: the logits after its last token, and p(no speech) from the
        logits after <|startoftranscript|> (the graph gives the last position's logits only, so the
        prompt runs in two calls when the start sequence has language and task tokens)."""
        self._ensure_rows(1)
        self.rows[0][0].length = 0
        cut = prompt.index(self.sot) + 1
        logits = self.run(0, prompt[:cut], cross, 0)
        no_speech = float(np.exp(log_softmax(logits)[self.no_speech]))
        if cut < len(prompt):
            logits = self.run(0, prompt[cut:], cross, cut)
        return logits, no_speech

    def run(self, row: int, ids: list, cross: dict, position: int) -> np.ndarray:
        """Logits after feeding `ids` at `position` to row `row` (its cache grows by len(ids))."""
        feeds = {
            "inputs_embeds": self.model.embed(ids)[None],
            "position_ids": np.arange(position, position + len(ids), dtype=np.int64)[None],
            **cross,
        }
        outputs = self.rows[row][1].run(feeds, len(ids))
        if self._scores is not None and row == 0:
            self._scores.append((position, outputs[1][0]))
        return outputs[0][0]

    def reorder(self, parents: list[int]) -> None:
        """Row i continues what row parents[i] held. Rows are handed over, and a row's cache is
        copied only when several new rows continue the same one."""
        self._ensure_rows(len(parents))
        old = self.rows
        kept = dict.fromkeys(parents)  # each parent's row goes, uncopied, to its first child
        spare = [old[j] for j in range(len(old)) if j not in kept]
        new, taken = [], set()
        for parent in parents:
            if parent in taken:
                row = spare.pop()
                old[parent][1].pull()  # KV held on a device comes to the host first
                row[0].copy_from(old[parent][0])
            else:
                row = old[parent]
                taken.add(parent)
            new.append(row)
        self.rows = new + spare

    def filter(self, logits: np.ndarray, tokens: list, timestamps: bool) -> np.ndarray:
        """The rules, applied in place to the logits that follow `tokens`."""
        logits[self.suppress] = NEG_INF
        if not tokens:
            logits[self.begin_suppress] = NEG_INF
        if timestamps:
            self._timestamp_rules(logits, tokens)
        return logits

    def start_state(self):
        """The processor's state before the first token (None without a processor)."""
        return self.processor.start() if self.processor is not None else None

    def logprobs(self, logits: np.ndarray, tokens: list, state, timestamps: bool) -> np.ndarray:
        """Log-probabilities of the token after `tokens` (processor state `state`): the processor's
        adjustment, then the rules."""
        logits = logits.copy()
        if self.processor is not None:
            self.processor.apply(state, logits)
        return log_softmax(self.filter(logits, tokens, timestamps))

    def advance(self, state, token: int) -> tuple:
        """(the processor's state after `token`, what it adds to the hypothesis' score)."""
        return (None, 0.0) if self.processor is None else self.processor.advance(state, token)

    @property
    def graph(self) -> CachedGraph:
        """The first row's graph, greedy decoding's only one (its KV binding, its time in onnxruntime)."""
        self._ensure_rows(1)
        return self.rows[0][1]

    # -- internals -------------------------------------------------------------------------------

    def _ensure_rows(self, n: int) -> None:
        cfg = self.model.config
        outputs = ["logits", "alignment_scores"] if self.alignment else ["logits"]
        while len(self.rows) < n:
            cache = SlidingKVCache.of(cfg.decoder, cfg.max_positions, initial=64)
            self.rows.append((cache, CachedGraph(self.model.decoder, cache, outputs)))

    def _kept_scores(self, first: int, end: int) -> np.ndarray | None:
        """The kept scores of positions first .. end - 1 (a position run again after a take-back: its
        last run's), up to the first that was not run (the last token of a decoding stopped at a loop)."""
        scores, self._scores = self._scores, None
        if not scores:
            return None
        heads, _, frames = scores[0][1].shape
        rows, seen = np.empty((heads, end - first, frames), np.float32), np.zeros(end - first + 1, bool)
        for position, chunk in scores:
            lo, hi = max(position, first), min(position + chunk.shape[1], end)
            if lo < hi:
                rows[:, lo - first : hi - first] = chunk[:, lo - position : hi - position]
                seen[lo - first : hi - first] = True
        return rows[:, : int(np.argmin(seen))]

    def _greedy(self, cross, logits, start: int, budget: int, timestamps: bool, tokens: list) -> tuple[list, float]:
        """Tokens after `start` prompt positions: `tokens` (a forced prefix, already run) and those decoded."""
        forced, logprobs = len(tokens), []
        guard = GreedyTakeBack(self.processor) if self.processor is not None else None
        while len(tokens) < budget:
            step = len(tokens) - forced  # the guard counts decoded steps
            candidates = logits.copy()
            if guard is not None:
                guard.boost(step, candidates, logits)
            filtered = self.filter(candidates, tokens, timestamps)  # after the bonuses: the rules have the last word
            token = int(np.argmax(filtered))
            if self.on_step:
                self.on_step(token, logits)
            if guard is not None:
                resume = guard.advance(step, token, logits, filtered[token] > logits[token],
                                       lambda s, earlier: int(np.argmax(self.filter(earlier.copy(), tokens[:s], timestamps))))
                if resume is not None:  # a keyterm match broke: decide again where a bonus first made the choice
                    step, logits = resume
                    del tokens[forced + step :], logprobs[step:]
                    self.rows[0][0].length = start + forced + step
                    continue
            logprobs.append(float(filtered[token]) - logsumexp(filtered))
            if token == self.eot:
                break
            tokens.append(token)
            if self.stop is not None and (len(tokens) - forced) % STOP_CHECK_TOKENS == 0 and self.stop(tokens, forced):
                break
            if len(tokens) < budget:
                logits = self.run(0, [token], cross, start + len(tokens) - 1)
        return tokens, sum(logprobs)

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
        if logsumexp(logits[begin:]) > logits[:begin].max():  # the timestamps together are likelier than any text token
            logits[:begin] = NEG_INF
