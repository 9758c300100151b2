"""Keyterm boosting: a logits processor (voxedge/logits.py) that pushes the decoder toward words it
is told to expect, as sherpa-onnx's contextual biasing does (docs/keyterms.md).

Every term is tokenized in its spellings (capitalised or not; with a leading space, as a word
inside the text, and without, as the first word of a decode); the token sequences form a prefix
tree with Aho-Corasick fail links. A decoding state is a node of the tree (an int). At every step
`apply` adds a term's weight to the logits of the tokens that extend the current partial match or
start a new one; `advance` moves to the next node and returns the score correction for beam
search, keeping this invariant:

    bonuses added to the chosen tokens + corrections == bonus of the terms completed so far
                                                        + bonus of the partial match in progress

So the correction is 0 while a match goes on or completes, and minus the bonus collected so far
when it breaks (the match backs off along its fail link: a suffix of what was decoded that starts a
term keeps its share). A completed term keeps its bonus, and its tokens do not start another match;
a term that is a prefix of a longer one is complete and may still grow into the longer one.

Three rules keep greedy decoding sane (all measured on Whisper, docs/keyterms.md): spellings
without the leading space begin only at the start of a decode (their first tokens are word pieces,
"k" of "kubectl", "g" of "gRPC", that boosted everywhere glue onto any word); the token right after a
complete term gets no bonus (else a term may follow itself forever: "Niamh Niamh Niamh ..."); and a
complete term is a whole word: a piece that would glue letters or digits onto it is ruled out
(boosted " Elastic" + "search", the model went on with "ing"), unless it continues a longer term.
Tokens in `skip` (e.g. Voxtral's timing tokens) are never boosted and pass through a match unseen.
"""

from __future__ import annotations

import unicodedata
from collections import deque

import numpy as np

from .errors import OptionError
from .options import Keyterm

# The states without a partial match: inside the text, at the start of a decode, right after a
# complete term (see the rules above).
ROOT, START, COOL = 0, 1, 2
# Scripts whose words are written apart: their letters glued onto a complete term make another word
# (not so in Chinese, Japanese or Korean, where words and particles follow without a space).
WORD_SPACED = ("LATIN", "GREEK", "CYRILLIC")
# The tokens by which a family's decoder keeps time: never boosted, and transparent to a match (a
# Voxtral word may be cut by padding while its audio arrives).
TIMING_TOKENS = {"voxtral_realtime": ("eos", "streaming_pad", "streaming_word"), "whisper": ()}


def as_keyterms(terms) -> tuple[Keyterm, ...]:
    """Strings or `Keyterm`s -> `Keyterm`s (checked by the record); OptionError on anything unusable."""
    if isinstance(terms, str) or not isinstance(terms, (list, tuple, set, frozenset)):
        raise OptionError(f"keyterms must be a list of strings or Keyterms, got {terms!r}")
    checked = tuple(Keyterm(term) if isinstance(term, str) else term for term in terms)
    if not all(isinstance(term, Keyterm) for term in checked):
        raise OptionError(f"a keyterm is a non-empty string or a Keyterm, got {terms!r}")
    return checked


def joining_pieces(table) -> list[int]:
    """Ids of the pieces that begin with a letter of an alphabet that writes words apart (Latin,
    Greek, Cyrillic) or a digit: glued onto a complete term they make another word."""
    ids = []
    for token in range(len(table)):
        first = table.piece(token)[:4].decode("utf-8", errors="replace")[:1]
        if first.isdigit() or (first.isalpha() and unicodedata.name(first, "").startswith(WORD_SPACED)):
            ids.append(token)
    return ids


class KeytermBoost:
    def __init__(self, sequences, at_start=(), skip=(), joining=()):
        """`sequences`: [(token ids, weight per token)] that may begin anywhere, `at_start` those that
        may begin only at the start; a token shared by several terms gets the largest of their
        weights. `skip`: token ids never boosted, never part of a term. `joining`: the ids of pieces
        that would join a complete term into a longer word (letters without a space before them)."""
        self.skip = frozenset(int(t) for t in skip)
        self._children: list[dict[int, int]] = [{}, {}, {}]
        self._parent, self._weight, self._end = [ROOT] * 3, [0.0] * 3, [False] * 3
        for root, group in ((ROOT, sequences), (START, at_start)):
            for tokens, weight in group:
                self._insert(root, [int(t) for t in tokens], float(weight))
        self._score, self._base = self._scores()
        self._pot = [s - b for s, b in zip(self._score, self._base)]
        self._extra = self._transitions(self._fail_links())
        root = self._children[ROOT]
        self._root_ids = np.fromiter(root, np.int64, len(root))
        self._root_bonus = np.array([self._weight[n] for n in root.values()], np.float32)
        self._extra_arrays = [self._corrections(extra) for extra in self._extra]
        joining = np.asarray(sorted(set(int(t) for t in joining)), np.int64)
        # after a complete term: what may not follow (a term that a longer one extends is a state of its own)
        self._closed = {COOL: joining, **{node: np.setdiff1d(joining, list(self._children[node]))
                                          for node in range(COOL + 1, len(self._children))
                                          if self._end[node] and self._children[node]}}

    @classmethod
    def from_terms(cls, terms, encode, skip=(), joining=()) -> KeytermBoost:
        """Terms (strings or `Keyterm`s) tokenized by `encode` (text -> ids) in every spelling."""
        inside, first = [], []
        for term in as_keyterms(terms):
            for spelling in {term.text, term.text[0].upper() + term.text[1:]}:
                inside.append((encode(" " + spelling), term.weight))
                first.append((encode(spelling), term.weight))
        return cls(inside, first, skip, joining)

    @classmethod
    def for_family(cls, family: str, special: dict, terms, encode, joining=()) -> KeytermBoost:
        """The processor for a bundle of `family` whose manifest names `special` token ids
        (`joining`: its `joining_pieces`)."""
        return cls.from_terms(terms, encode, skip={special[name] for name in TIMING_TOKENS[family]},
                              joining=joining)

    # -- the processor ----------------------------------------------------------------------------

    def start(self) -> int:
        return START

    def apply(self, state: int, logits: np.ndarray) -> None:
        """Add to each token's logit the bonus it would earn from `state` (in place)."""
        if state != COOL:
            logits[self._root_ids] += self._root_bonus
        ids, bonus = self._extra_arrays[state]
        logits[ids] += bonus
        closed = self._closed.get(state)
        if closed is not None:
            logits[closed] = -np.inf

    def advance(self, state: int, token: int) -> tuple[int, float]:
        """(next state, score correction) after `token`; see the module's invariant."""
        if token in self.skip:
            return state, 0.0
        node = self._extra[state].get(token)
        if node is None:
            node = self._children[ROOT].get(token, ROOT)
        gained = self._score[node] - (self._base[state] if self._parent[node] == state else 0.0)
        correction = gained - self._pot[state] - (self._weight[node] if state != COOL else 0.0)
        if self._end[node] and not self._children[node]:
            node = COOL  # a complete term that nothing extends: start afresh
        return node, correction

    def pending(self, state: int) -> float:
        """The bonus of the partial match in progress: what a break takes back."""
        return self._pot[state]

    # -- building ---------------------------------------------------------------------------------

    def _insert(self, root: int, tokens: list[int], weight: float) -> None:
        if not tokens:
            return
        if self.skip.intersection(tokens):
            raise ValueError(f"a term's tokens {tokens} include a token the processor must not touch")
        node = root
        for token in tokens:
            child = self._children[node].get(token)
            if child is None:
                child = len(self._children)
                self._children[node][token] = child
                self._children.append({})
                self._parent.append(node)
                self._weight.append(weight)
                self._end.append(False)
            self._weight[child] = max(self._weight[child], weight)
            node = child
        self._end[node] = True

    def _scores(self) -> tuple[list[float], list[float]]:
        """Bonus of the path to each node, and of its last complete term (parents precede children)."""
        score, base = [0.0] * 3, [0.0] * 3
        for node in range(3, len(self._children)):
            parent = self._parent[node]
            score.append(score[parent] + self._weight[node])
            base.append(score[node] if self._end[node] else base[parent])
        return score, base

    def _fail_links(self) -> list[int]:
        """Aho-Corasick: the node of the longest proper suffix of a node's path that is in the tree.
        A suffix begins inside the text, so it lies below ROOT; START is a child of ROOT here, as if
        a decode began with an invisible token."""
        fail = [ROOT] * len(self._children)
        queue = deque([*self._children[ROOT].values(), START])
        while queue:
            node = queue.popleft()
            for token, child in self._children[node].items():
                f = fail[node]
                while f != ROOT and token not in self._children[f]:
                    f = fail[f]
                target = self._children[f].get(token, ROOT)
                fail[child] = target if target != child else ROOT
                queue.append(child)
        return fail

    def _transitions(self, fail: list[int]) -> list[dict[int, int]]:
        """Per node, the tokens that lead somewhere other than where they lead from the root: its
        children, then those of its fail chain. After a complete term only its children count: its
        tokens are used up."""
        extra = [{} for _ in self._children]
        for node in range(START, len(self._children)):
            extra[node].update(self._children[node])
            f = fail[node] if self._base[node] == 0 else ROOT
            while f != ROOT:
                for token, child in self._children[f].items():
                    extra[node].setdefault(token, child)
                f = fail[f]
        return extra

    def _corrections(self, extra: dict[int, int]) -> tuple[np.ndarray, np.ndarray]:
        """What `apply` adds on top of the root's bonuses for a node's own transitions."""
        root = self._children[ROOT]
        ids = np.fromiter(extra, np.int64, len(extra))
        bonus = [self._weight[node] - (self._weight[root[t]] if t in root else 0.0) for t, node in extra.items()]
        return ids, np.asarray(bonus, np.float32)
