"""Beam search and sampling over one Whisper window, as CTranslate2 runs them for faster-whisper.

Both work on a WindowDecoder (voxedge/engines/whisper_decoding.py): `decoder.filter` applies the
logit rules to one hypothesis's logits, `decoder.run(row, ids, ...)` feeds a hypothesis's decoder
row, `decoder.reorder(parents)` makes rows follow their hypotheses; a keyterm processor's state
travels with each hypothesis, and what it takes back is taken from the hypothesis' score. Each returns the chosen tokens
(end-of-text excluded) and their summed log-probability (end-of-text included).

Beam search (CTranslate2's BeamSearch): the 2 * beam_size best continuations of all beams are
ranked by summed log-probability; each of the first beam_size that ends the text (or reaches the
length limit) is set aside as a finished hypothesis and replaced by the next candidate that does not
end it. The search stops once round(beam_size * patience) hypotheses have finished (with
length_penalty 0: once the best beam has finished), and the finished hypothesis with the highest
logprob / length ** length_penalty wins.

Sampling (CTranslate2's random sampler, faster-whisper's best_of): `best_of` independent samples
from softmax(log-probabilities / temperature) over the whole vocabulary; the likeliest by the same
ranking wins. Random numbers come from the caller's numpy Generator (seeded: reproducible).
"""

from __future__ import annotations

import numpy as np


def log_softmax(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float64)
    shifted = x - x.max()
    return shifted - np.log(np.exp(shifted).sum())


def logsumexp(x: np.ndarray) -> float:
    """log(sum(exp(x))): what log_softmax subtracts, for when one entry's log-probability is all that is
    needed (the exponentials in x's own precision, summed in float64: 8x faster on Whisper's vocabulary)."""
    peak = x.max()
    if not np.isfinite(peak):
        return float(peak)
    return float(peak) + float(np.log(np.exp(x - peak).sum(dtype=np.float64)))


def rank(tokens: list, logprob: float, length_penalty: float) -> float:
    """A finished hypothesis's score, as CTranslate2 ranks them: logprob / length ** length_penalty."""
    return logprob / max(len(tokens), 1) ** length_penalty


def beam_search(decoder, cross, logits, start: int, budget: int, search, timestamps: bool) -> tuple[list, float]:
    size, eot = search.beam_size, decoder.eot
    max_finished = round(size * search.patience)
    beams = [([], 0.0, decoder.start_state())]  # (tokens, summed log-probability, processor state)
    rows = [logits]  # the logits that follow each beam; the first step expands one beam
    finished, best_finished_first = [], False
    for step in range(budget):
        last = step + 1 == budget
        scores = np.concatenate([decoder.logprobs(row, tokens, state, timestamps) + score
                                 for (tokens, score, state), row in zip(beams, rows)])
        vocab = len(rows[0])
        top = np.argpartition(-scores, 2 * size - 1)[: 2 * size]
        top = top[np.argsort(-scores[top], kind="stable")]
        candidates = [(int(i) // vocab, int(i) % vocab, float(scores[i])) for i in top]
        chosen, secondary = [], size
        for k in range(size):
            beam, token, score = candidates[k]
            pick = k
            if token == eot or last:
                best_finished_first |= k == 0
                tokens, state = beams[beam][0], beams[beam][2]
                finished.append((tokens + ([] if token == eot else [token]), score + decoder.advance(state, token)[1]))
                for j in range(secondary, 2 * size):  # the next candidate that goes on takes its place
                    if candidates[j][1] != eot:
                        pick, secondary = j, j + 1
                        break
            chosen.append(candidates[pick])
        done = best_finished_first and finished if search.length_penalty == 0 else len(finished) >= max_finished
        if last or done:
            break
        decoder.reorder([beam for beam, _, _ in chosen])
        beams = [_continued(decoder, beams[beam], token, score) for beam, token, score in chosen]
        rows = [decoder.run(i, [token], cross, start + step) for i, (_, token, _) in enumerate(chosen)]
    return max(finished, key=lambda f: rank(f[0], f[1], search.length_penalty))


def _continued(decoder, beam: tuple, token: int, score: float) -> tuple:
    tokens, _, state = beam
    state, delta = decoder.advance(state, token)
    return tokens + [token], score + delta, state


def sample(decoder, cross, logits, start: int, budget: int, search, rng, timestamps: bool) -> tuple[list, float]:
    count = search.best_of
    decoder.reorder([0] * count)
    tokens, scores = [[] for _ in range(count)], [0.0] * count
    states = [decoder.start_state()] * count
    rows, alive = [logits] * count, list(range(count))
    for step in range(budget):
        for i in list(alive):
            logprobs = decoder.logprobs(rows[i], tokens[i], states[i], timestamps)
            weights = np.exp((logprobs - logprobs.max()) / search.temperature)
            cumulative = np.cumsum(weights)
            token = min(int(np.searchsorted(cumulative, rng.random() * cumulative[-1], side="right")), len(weights) - 1)
            states[i], delta = decoder.advance(states[i], token)
            scores[i] += float(logprobs[token]) + delta
            if token == decoder.eot:
                alive.remove(i)
                continue
            tokens[i].append(token)
            if step + 1 == budget:
                alive.remove(i)
            else:
                rows[i] = decoder.run(i, [token], cross, start + step)
        if not alive:
            break
    best = max(range(count), key=lambda i: rank(tokens[i], scores[i], search.length_penalty))
    return tokens[best], scores[best]
