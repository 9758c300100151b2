"""voxedge/keyterms.py: the boosting automaton on scripted token sequences, and against a brute-force
reference of what it promises (credit = completed terms + the partial match, found by searching
suffixes rather than following fail links)."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from voxedge.errors import OptionError
from voxedge.keyterms import COOL, ROOT, KeytermBoost, joining_pieces
from voxedge.logits import GreedyTakeBack
from voxedge.options import Keyterm
from voxedge.tokenizer import TokenTable

VOCAB = 8


def bonuses(proc, state) -> np.ndarray:
    logits = np.zeros(VOCAB, np.float32)
    proc.apply(state, logits)
    return logits


def run(proc, tokens):
    """[(bonus the chosen token got, correction)] along a token sequence, and the final state."""
    state, steps = proc.start(), []
    for token in tokens:
        bonus = float(bonuses(proc, state)[token])
        state, correction = proc.advance(state, token)
        steps.append((bonus, correction))
    return steps, state


def credit(proc, tokens) -> float:
    return sum(b + c for b, c in run(proc, tokens)[0])


class Reference:
    """The promised semantics, by brute force: the partial match is the longest suffix of what was
    decoded since the last complete term that is a prefix of some term; a complete term banks its
    bonus, and once one completes on the current path, a break starts afresh from the breaking token."""

    def __init__(self, terms, at_start=()):
        # a sequence that may begin only at the start follows an invisible token 0 that begins the text
        terms = [*terms, *[((0, *seq), w) for seq, w in at_start]]
        self.weight = {}
        for seq, w in terms:
            for i in range(1, len(seq) + 1):
                self.weight[seq[:i]] = max(self.weight.get(seq[:i], -math.inf), w)
        self.weight.update({(0,): 0.0} if at_start else {})
        self.complete = {seq for seq, _ in terms}

    def score(self, prefix) -> float:
        return sum(self.weight[prefix[:i]] for i in range(1, len(prefix) + 1))

    def deepest_complete(self, prefix) -> float:
        complete = [prefix[:i] for i in range(1, len(prefix) + 1) if prefix[:i] in self.complete]
        return max([self.score(p) for p in complete], default=0.0)

    def start(self):
        begin = (0,) if (0,) in self.weight else ()
        # partial match, banked credit, banked within the match, text since reset, a term just completed
        return begin, 0.0, 0.0, begin, False

    def step(self, state, token):
        """(next state, bonus the token earns: none right after a complete term)."""
        cur, banked, in_cur, text, cool = state
        text = text + (token,)
        if cur + (token,) in self.weight:
            cur = cur + (token,)
        else:
            text = text if in_cur == 0 else (token,)
            cur = next((text[i:] for i in range(len(text)) if text[i:] in self.weight), ())
            in_cur = self.deepest_complete(cur)
            banked += in_cur
        bonus = self.weight[cur] if cur and not cool else 0.0
        cool = False
        if cur in self.complete:
            banked += self.score(cur) - in_cur
            in_cur = self.score(cur)
            if not any(len(p) > len(cur) and p[: len(cur)] == cur for p in self.weight):
                cur, in_cur, text, cool = (), 0.0, (), True
        return (cur, banked, in_cur, text, cool), bonus

    def credit(self, state) -> float:
        cur, banked, in_cur, _, _ = state
        return banked + self.score(cur) - in_cur


def test_a_term_is_boosted_token_by_token_and_keeps_its_bonus():
    proc = KeytermBoost([((1, 2, 3), 1.5)])
    state = proc.start()
    assert bonuses(proc, state).tolist() == [0, 1.5, 0, 0, 0, 0, 0, 0]  # only the first token at first
    state, correction = proc.advance(state, 1)
    assert correction == 0 and bonuses(proc, state)[2] == 1.5 and bonuses(proc, state)[1] == 1.5
    steps, state = run(proc, [1, 2, 3])
    assert steps == [(1.5, 0.0)] * 3 and state == COOL
    assert credit(proc, [1, 2, 3, 4, 5]) == 4.5


def test_a_broken_match_gives_its_bonus_back_and_can_restart_at_once():
    proc = KeytermBoost([((1, 2, 3), 1.0)])
    steps, state = run(proc, [1, 2, 5])
    assert steps == [(1.0, 0.0), (1.0, 0.0), (0.0, -2.0)] and state == ROOT
    steps, _ = run(proc, [1, 2, 1, 2, 3])  # breaks on the second 1, which starts the term again
    assert steps[2] == (1.0, -2.0) and credit(proc, [1, 2, 1, 2, 3]) == 3.0


def test_a_match_backs_off_to_the_longest_suffix_that_starts_a_term():
    proc = KeytermBoost([((1, 1, 2), 1.0)])
    steps, _ = run(proc, [1, 1, 1, 2])  # 1 1 | 1: the last two 1s are still a partial match
    assert steps[2] == (1.0, -1.0) and credit(proc, [1, 1, 1]) == 2.0
    assert credit(proc, [1, 1, 1, 2]) == 3.0


def test_overlapping_terms_do_not_share_tokens():
    proc = KeytermBoost([((1, 2, 3), 1.0), ((3, 4), 1.0), ((2, 3, 4, 5), 1.0)])
    assert credit(proc, [1, 2, 3, 4]) == 3.0  # 1 2 3 completes; its 3 does not start 3 4
    assert credit(proc, [1, 2, 4]) == 0.0
    steps, _ = run(proc, [1, 2, 3])
    # on 3 after 1 2, both 1 2 3 (complete) and 2 3 (partial of 2 3 4 5) match: the complete one wins
    assert steps[-1] == (1.0, 0.0)
    assert credit(proc, [6, 2, 3, 4, 5]) == 4.0


def test_a_complete_term_gets_no_bonus_for_the_next_token():
    proc = KeytermBoost([((1, 2), 1.0), ((3,), 1.0)])
    steps, _ = run(proc, [1, 2, 1, 2, 3, 3, 4, 1])
    assert [b for b, _ in steps] == [1, 1, 0, 1, 0, 0, 0, 1]
    # the model alone may still begin (and complete) a term there: the correction credits it
    assert sum(c for _, c in steps) == 3.0 and credit(proc, [1, 2, 1, 2, 3, 3]) == 6.0


def test_spellings_without_a_space_begin_only_at_the_start():
    proc = KeytermBoost([((5, 1), 1.0)], at_start=[((1, 2), 1.0)])
    assert bonuses(proc, proc.start())[[1, 5]].tolist() == [1.0, 1.0]
    assert credit(proc, [1, 2]) == 2.0
    _, state = run(proc, [4])
    assert bonuses(proc, state)[[1, 5]].tolist() == [0.0, 1.0]
    assert credit(proc, [4, 1, 2]) == 0.0 and credit(proc, [5, 1, 2]) == 2.0


def test_a_term_that_is_a_prefix_of_another_is_kept_when_the_longer_one_breaks():
    proc = KeytermBoost([((1, 2), 1.0), ((1, 2, 3, 4), 2.0)])
    # shared tokens take the larger weight; 1 2 is complete, so breaking after 1 2 3 loses only the 3
    assert credit(proc, [1, 2]) == 4.0
    steps, state = run(proc, [1, 2, 3, 6])
    assert [b for b, _ in steps] == [2.0, 2.0, 2.0, 0.0] and steps[-1][1] == -2.0
    assert credit(proc, [1, 2, 3, 6]) == 4.0 and credit(proc, [1, 2, 3, 4]) == 8.0
    assert bonuses(proc, run(proc, [1, 2])[1])[[3, 1]].tolist() == [2.0, 2.0]  # grow, or start afresh


def test_a_complete_term_is_not_glued_into_a_longer_word():
    # 6 and 7 stand for pieces that begin with a letter ("ing"), 5 for one that begins a word (" in")
    proc = KeytermBoost([((1, 2), 1.0), ((1, 2, 7, 4), 1.0), ((3,), 1.0)], skip={0}, joining={6, 7})

    def ruled_out(tokens) -> list[int]:
        return np.flatnonzero(bonuses(proc, run(proc, tokens)[1]) == -np.inf).tolist()

    assert ruled_out([]) == ruled_out([1]) == ruled_out([5]) == []  # no term complete
    assert ruled_out([3]) == ruled_out([3, 0]) == [6, 7]  # a timing token does not end the word
    assert ruled_out([1, 2]) == [6]  # 7 may still grow 1 2 into the longer term
    assert ruled_out([3, 5]) == []  # a new word began


def test_joining_pieces_are_letters_of_spaced_scripts_and_digits():
    pieces = ["ing", " in", "4", "über", "Ωμέγα", "мир", "的", "がく", "한", "'s", "-", "", "x"]
    table = TokenTable.from_pieces([p.encode() for p in pieces] + [b"\xc3"], [False] * 12 + [True, False])
    assert [pieces[i] for i in joining_pieces(table)] == ["ing", "4", "über", "Ωμέγα", "мир"]


def test_skipped_tokens_are_never_boosted_and_pass_through_a_match():
    proc = KeytermBoost([((1, 2, 3), 3.0), ((2, 1), 3.0)], skip={0, 7})
    state = proc.start()
    for token in [1, 0, 7, 2, 0, 3]:
        logits = np.arange(VOCAB, dtype=np.float32)
        proc.apply(state, logits)
        assert logits[0] == 0 and logits[7] == 7
        state, correction = proc.advance(state, token)
        assert correction == 0
    assert credit(proc, [1, 0, 7, 2, 0, 3]) == 9.0
    with pytest.raises(ValueError, match="must not touch"):
        KeytermBoost([((1, 7), 1.0)], skip={7})


def test_no_terms_leave_logits_bit_identical():
    proc = KeytermBoost([])
    logits = np.random.default_rng(0).standard_normal(51864).astype(np.float32)
    logits[5] = -np.inf
    before = logits.copy()
    state = proc.start()
    for token in [3, 4, 5]:
        proc.apply(state, logits)
        state, correction = proc.advance(state, token)
        assert correction == 0
    assert logits.tobytes() == before.tobytes()


def test_terms_are_tokenized_in_every_spelling():
    seen = []

    def encode(text):
        seen.append(text)
        return [ord(c) % VOCAB for c in text]

    KeytermBoost.from_terms(["kubectl", Keyterm("Siobhan", 4.0)], encode)
    assert sorted(seen) == sorted(["kubectl", " kubectl", "Kubectl", " Kubectl", "Siobhan", " Siobhan"])
    for bad in (["  "], ["x", 3], "Siobhan", None):
        with pytest.raises(OptionError):
            KeytermBoost.from_terms(bad, encode)
    for text, weight in (("  ", 4.0), ("x", float("nan")), ("x", "2")):  # the record refuses them itself
        with pytest.raises(OptionError):
            Keyterm(text, weight)


terms_strategy = st.lists(
    st.tuples(st.lists(st.integers(1, 5), min_size=1, max_size=4).map(tuple), st.sampled_from([0.5, 1.0, 2.0])),
    min_size=1, max_size=5)


@settings(max_examples=300, deadline=None)
@given(terms=terms_strategy, at_start=terms_strategy | st.just([]), tokens=st.lists(st.integers(1, 6), max_size=30))
def test_the_automaton_keeps_its_promise(terms, at_start, tokens):
    proc, ref = KeytermBoost(terms, at_start), Reference(terms, at_start)
    state, expected, total = proc.start(), ref.start(), 0.0
    for token in tokens:
        seen = bonuses(proc, state)
        for candidate in range(1, VOCAB):  # every token's bonus is the one the reference gives it
            assert seen[candidate] == pytest.approx(ref.step(expected, candidate)[1], abs=1e-6)
        state, correction = proc.advance(state, token)
        expected, _ = ref.step(expected, token)
        total += float(seen[token]) + correction
        assert total == pytest.approx(ref.credit(expected), abs=1e-5)


def greedy(model, processor, steps, asked=None, **guard_options):
    """A greedy loop over a scripted model (prefix -> logits), as the Whisper decoder runs it;
    `asked` collects the steps whose choice without bonuses the take-back asks for."""
    guard, tokens, take_backs = GreedyTakeBack(processor, **guard_options), [], 0
    asked = [] if asked is None else asked
    while len(tokens) < steps:
        step, logits = len(tokens), model(tuple(tokens))
        boosted = logits.copy()
        guard.boost(step, boosted, logits)
        token = int(np.argmax(boosted))
        resume = guard.advance(step, token, logits, boosted[token] > logits[token], lambda s, earlier: asked.append(s) or int(np.argmax(earlier)))
        if resume is not None:
            step, resumed_logits = resume
            del tokens[step:]
            assert resumed_logits.tobytes() == model(tuple(tokens)).tobytes()
            take_backs += 1
            continue
        tokens.append(token)
    return tokens, take_backs


def scripted(table):
    """prefix -> logits: the listed scores, -5 for every other token."""
    def model(prefix):
        logits = np.full(VOCAB, -5.0, np.float32)
        for token, value in table.get(prefix, {}).items():
            logits[token] = value
        return logits
    return model


def test_greedy_decoding_takes_a_false_start_back():
    model = scripted({(): {5: 1.0, 1: 0.0}, (1,): {6: 5.0, 2: 0.0}, (5,): {6: 3.0}, (5, 6): {7: 1.0}})
    proc = KeytermBoost([((1, 2, 3), 2.0)])
    assert greedy(model, proc, 3) == ([5, 6, 7], 1)  # 1 won by its bonus alone; the audio wanted 6 next
    assert greedy(model, proc, 2, max_take_backs=0) == ([1, 6], 0)  # boosting without take-back


def test_greedy_decoding_keeps_a_term_the_model_finds_plausible():
    model = scripted({(): {5: 1.0, 1: 0.5}, (1,): {6: 1.0, 2: 0.0}, (1, 2): {7: 1.5, 3: 0.0}})
    asked = []
    assert greedy(model, KeytermBoost([((1, 2, 3), 2.0)]), 3, asked) == ([1, 2, 3], 0)
    assert asked == []  # a match that completes is never looked at again


def test_a_broken_match_asks_its_steps_in_order_until_the_first_tentative_one():
    # 1 is the model's own choice, 2 and 3 won by their bonuses, then 6 breaks the match
    model = scripted({(): {1: 3.0}, (1,): {6: 1.0, 2: 0.0}, (1, 2): {6: 1.0, 3: 0.0}, (1, 2, 3): {6: 9.0},
                      (1, 6): {7: 1.0}, (1, 6, 7): {5: 1.0}})
    asked = []
    assert greedy(model, KeytermBoost([((1, 2, 3, 4), 2.0)]), 4, asked) == ([1, 6, 7, 5], 1)
    assert asked == [0, 1]  # the first tentative step is 1: decoding resumed there


def test_greedy_decoding_keeps_the_models_own_choice_when_a_match_breaks():
    model = scripted({(): {1: 3.0}, (1,): {6: 5.0, 2: 0.0}, (1, 6): {7: 1.0}})
    assert greedy(model, KeytermBoost([((1, 2, 3), 2.0)]), 3) == ([1, 6, 7], 0)
