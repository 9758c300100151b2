"""The seam between a decode loop and what adjusts its logits (keyterm boosting today).

A processor is shared by every hypothesis of a decode; what it remembers about one hypothesis is a
small immutable `state` that the loop keeps next to the hypothesis, so greedy decoding (one state)
and beam search (one per beam, copied freely) use it the same way:

    state = proc.start()
    for each step:
        proc.apply(state, logits)                     # in place, before the model's own rules
        token = choose(logits)
        state, score_delta = proc.advance(state, token)

`score_delta` is what a beam search adds to the hypothesis' score besides the token's log
probability: a bonus taken back when a keyterm match breaks. Greedy decoding has no other
hypothesis to fall back on, so it takes a bonus back by deciding again (`GreedyTakeBack`).
"""

from __future__ import annotations

from typing import Callable, Hashable, Protocol

import numpy as np

MAX_TAKE_BACKS = 16  # per decode: each one re-runs the steps of a broken match


class LogitsProcessor(Protocol):
    def start(self) -> Hashable: ...

    def apply(self, state: Hashable, logits: np.ndarray) -> None: ...

    def advance(self, state: Hashable, token: int) -> tuple[Hashable, float]: ...

    def pending(self, state: Hashable) -> float:
        """The bonus collected so far that a later token may take back (0 when none)."""


class GreedyTakeBack:
    """A processor in greedy decoding, with its take-back made real.

    A token chosen only because of a bonus (the choice without bonuses differs) is tentative. When
    a later token takes the bonus back (a keyterm match breaks), decoding resumes at the first
    tentative choice since the match began, with that token's bonus refused at that step, so a
    false start costs a few re-run steps instead of a wrong word. The steps of the match in progress
    that got a bonus keep their logits; which of them were tentative is asked only when the match
    breaks, so a match that goes on costs no second look at its steps.
    """

    def __init__(self, processor: LogitsProcessor, max_take_backs: int = MAX_TAKE_BACKS):
        self.processor = processor
        self.states = [processor.start()]  # before each step
        self.boosted: dict[int, tuple] = {}  # step -> (its logits, the token chosen with a bonus), in the match
        self.refused: dict[int, set[int]] = {}  # step -> tokens whose bonus is refused there
        self.left = max_take_backs

    def boost(self, step: int, candidates: np.ndarray, logits: np.ndarray) -> None:
        """Add to `candidates` (a copy of `step`'s `logits`, which the loop makes anyway) the
        bonuses the state gives, but not those refused at that step."""
        self.processor.apply(self.states[step], candidates)
        refused = self.refused.get(step)
        if refused:
            candidates[list(refused)] = logits[list(refused)]

    def advance(self, step: int, token: int, logits: np.ndarray, boosted: bool,
                unboosted_choice: Callable[[int, np.ndarray], int]) -> tuple[int, np.ndarray] | None:
        """Record the choice of `token` at `step` from `logits` (`boosted`: it had a bonus;
        `unboosted_choice(step, logits)`: what that step would choose without bonuses). When it takes
        back a bonus that tentative choices earned: (step to resume from, its logits)."""
        state, correction = self.processor.advance(self.states[step], token)
        if correction < 0 and self.left > 0:
            first = next((s for s, (earlier, chosen) in sorted(self.boosted.items())
                          if unboosted_choice(s, earlier) != chosen), None)
            if first is not None:
                first_logits, first_token = self.boosted[first]
                self.left -= 1
                self.refused = {s: tokens for s, tokens in self.refused.items() if s <= first}
                self.refused.setdefault(first, set()).add(first_token)
                del self.states[first + 1 :]
                self.boosted = {}
                return first, first_logits
        if boosted:
            self.boosted[step] = (logits, token)
        self.states.append(state)
        if self.processor.pending(state) == 0:
            self.boosted = {}  # a complete term or no match: nothing before can be taken back
        return None
