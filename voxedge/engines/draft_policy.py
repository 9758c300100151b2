"""How many steps a Voxtral decoder call verifies: the k that makes a token cheapest here (docs/voxtral.md).

A call over k positions costs cost(k), relative to a single step: measured on this machine, for this
bundle, by `voxedge bench --device --bundle` (voxedge/device_profile.py). Its first token is always
kept; each drafted position counts while the token before it was the draft (padding). So a call yields
E(k) = 1 + q + q b + ... + q b^(k-2) tokens, where q is the chance that the call's first token is the
draft, given the token before the call, and b the chance that the draft follows the draft. The policy
counts both in the stream itself: b after the draft, and a (the q after any other token; right after
`[STREAMING_WORD]` calls are single steps and nothing is counted). They start from real speech's
statistics (docs/voxtral.md): padding runs of 3.7 steps (b = 0.73), and half of the text tokens
followed by padding (a = 0.5). Each call takes the measured k with the least cost(k) / E(k).
"""

from __future__ import annotations

PRIOR_AFTER_DRAFT = 1 - 1 / 3.7  # b: padding runs of real speech average 3.7 steps
PRIOR_AFTER_OTHER = 0.5  # a: about half of the text tokens are followed by padding
PRIOR_STEPS = 20  # each prior weighs as much as this many observed steps


def expected_tokens(k: int, first: float, rest: float) -> float:
    """Tokens a call over k positions yields when its first token is the draft with chance `first` and
    each later one, after the draft, with chance `rest`."""
    return 1 + first * sum(rest**i for i in range(k - 1))


class _Rate:
    def __init__(self, prior: float):
        self.seen, self.drafts = float(PRIOR_STEPS), PRIOR_STEPS * prior

    @property
    def value(self) -> float:
        return self.drafts / self.seen

    def add(self, is_draft: bool) -> None:
        self.seen += 1
        self.drafts += is_draft


class DraftPolicy:
    def __init__(self, costs: dict[int, float], limit: int):
        """`costs`: positions per call -> cost relative to one position; `limit`: the most positions a call
        may take (the session's bound)."""
        self.costs = {k: c for k, c in costs.items() if 1 <= k <= limit} or {1: 1.0}
        self.after_draft, self.after_other = _Rate(PRIOR_AFTER_DRAFT), _Rate(PRIOR_AFTER_OTHER)

    def observe(self, previous_is_draft: bool, is_draft: bool) -> None:
        """One more step of the stream: was the token before it the draft, and was it?"""
        (self.after_draft if previous_is_draft else self.after_other).add(is_draft)

    def steps(self, previous_is_draft: bool) -> int:
        """The k for a call whose first position follows the draft (or another token)."""
        rest = self.after_draft.value
        first = rest if previous_is_draft else self.after_other.value
        return min(self.costs, key=lambda k: self.costs[k] / expected_tokens(k, first, rest))
