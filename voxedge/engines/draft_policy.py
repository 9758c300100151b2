"""How many steps a Voxtral decoder call verifies: the k that makes a token cheapest here (docs/voxtral.md).

A call over k positions costs cost(k), relative to a single step: measured on this machine, for this
bundle, by `voxedge bench --device --bundle` (voxedge/device_profile.py). It yields E(k) = 1 + p + ... +
p^(k-1) tokens on average, where p is the chance that a step is the draft (padding): each token that
is the draft lets the next position count. p is the share of the stream's steps that were the draft,
starting from the padding runs of real speech (3.7 steps on average, docs/voxtral.md). The call takes
the measured k with the least cost(k) / E(k).
"""

from __future__ import annotations

PRIOR_RUN = 3.7  # average padding run of real speech: a run ends with chance 1 / 3.7 per step
PRIOR_STEPS = 20  # the prior weighs as much as this many observed steps


def expected_tokens(k: int, p: float) -> float:
    """Tokens a call over k positions yields when each step after the draft is the draft with chance p."""
    return sum(p**i for i in range(k))


class DraftPolicy:
    def __init__(self, costs: dict[int, float], limit: int):
        """`costs`: positions per call -> cost relative to one position; `limit`: the most positions a call
        may take (the session's bound)."""
        self.costs = {k: c for k, c in costs.items() if 1 <= k <= limit} or {1: 1.0}
        self._steps = float(PRIOR_STEPS)
        self._drafts = PRIOR_STEPS * (1 - 1 / PRIOR_RUN)

    @property
    def pad_chance(self) -> float:
        return self._drafts / self._steps

    def observe(self, is_draft: bool) -> None:
        """One more step of the stream: was its token the draft?"""
        self._steps += 1
        self._drafts += is_draft

    @property
    def steps(self) -> int:
        p = self.pad_chance
        return min(self.costs, key=lambda k: self.costs[k] / expected_tokens(k, p))
