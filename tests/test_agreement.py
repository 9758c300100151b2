"""LocalAgreement's rules on scripted hypotheses: what is committed, when, and what is cut from the buffer."""

from dataclasses import dataclass

import numpy as np

from voxedge.agreement import FORCE_COMMIT_LAG, LocalAgreement
from voxedge.transcript import Word

SR = 16000


@dataclass
class Hyp:
    words: list
    segment_ends: list


class Script:
    """A `hypothesize` that replays hypotheses written as "word@start-end ..." (engine seconds), and
    records what it was asked."""

    def __init__(self, *hypotheses, ends=None):
        self.hypotheses = list(hypotheses)
        self.ends = ends or {}
        self.calls = []

    def __call__(self, audio, prompt, offset, settled, final):
        i = len(self.calls)
        self.calls.append((len(audio), list(prompt), offset, texts(w for w, _ in settled)))
        text = self.hypotheses[min(i, len(self.hypotheses) - 1)]
        words = []
        for item in text.split():
            word, times = item.split("@")
            start, end = map(float, times.split("-"))
            words.append((Word(start, end, " " + word), [hash(word) % 1000]))
        return Hyp(words, self.ends.get(i, [words[-1][0].end] if words else []))


def texts(words):
    return [w.text.strip() for w in words]


def test_words_are_committed_when_two_hypotheses_agree_from_the_start():
    script = Script("the@0-0.2", "the@0-0.2 cat@0.2-0.5", "the@0-0.2 cat@0.2-0.5 sat@0.5-0.8",
                    "the@0-0.2 cat@0.2-0.5 sat@0.5-0.8")
    la = LocalAgreement(script, SR, 100)
    first = la.process(np.zeros(SR, np.float32))
    assert first.final == [] and texts(first.partial) == ["the"]
    second = la.process(np.zeros(SR, np.float32))
    assert texts(second.final) == ["the"] and texts(second.partial) == ["cat"]
    third = la.process(np.zeros(SR, np.float32))
    assert texts(third.final) == ["cat"] and texts(third.partial) == ["sat"]
    assert texts(la.finish().final) == ["sat"]  # the end of audio commits the rest
    assert [c[0] for c in script.calls] == [SR, 2 * SR, 3 * SR, 3 * SR]


def test_a_changed_word_stops_the_commit_and_committed_words_never_repeat():
    script = Script("a@0-0.1 bee@0.1-0.3", "a@0-0.1 be@0.1-0.3 see@0.3-0.5", "a@0-0.1 be@0.1-0.3 see@0.3-0.5")
    la = LocalAgreement(script, SR, 100)
    la.process(np.zeros(SR, np.float32))
    assert texts(la.process(np.zeros(SR, np.float32)).final) == ["a"]  # "bee" vs "be": only "a" agrees
    assert texts(la.process(np.zeros(SR, np.float32)).final) == ["be", "see"]  # "a" is not committed again


def test_agreement_ignores_case_and_punctuation_and_times_never_go_back():
    script = Script("Hello,@0.5-1.0", "hello@0.4-0.9 world@0.9-1.2", "hello@0.4-0.9 world.@0.8-1.3")
    la = LocalAgreement(script, SR, 100)
    la.process(np.zeros(SR, np.float32))
    hello = la.process(np.zeros(SR, np.float32)).final
    world = la.process(np.zeros(SR, np.float32)).final
    assert texts(hello) == ["hello"] and texts(world) == ["world."]
    assert world[0].start >= hello[0].end  # 0.8 was moved up to the end of "hello"


def test_feed_size_does_not_change_when_hypotheses_are_asked_for():
    for chunk in (1, 999, SR, 5 * SR):
        script = Script("x@0-1")
        la = LocalAgreement(script, SR, 100)
        audio = np.zeros(5 * SR, np.float32)
        for start in range(0, len(audio), chunk):
            la.process(audio[start : start + chunk])
        assert [c[0] for c in script.calls] == [SR * k for k in range(1, 6)], chunk


def test_the_buffer_is_cut_at_a_committed_segment_end_and_cut_words_become_the_prompt():
    # every hypothesis the same: two segments, the first ending at 8 s; past 15 s of buffer it is cut
    hyp = "one@1-2 two@3-4 three@9-10"
    script = Script(hyp, ends={i: [8.0, 10.0] for i in range(40)})
    la = LocalAgreement(script, SR, 100)
    for _ in range(17):
        la.process(np.zeros(SR, np.float32))
    assert [c[2] for c in script.calls[:16]] == [0.0] * 16
    buffered, prompt, offset, _ = script.calls[16]
    assert offset == 8.0 and buffered == 9 * SR  # the first segment's audio is gone ...
    assert len(prompt) == 2  # ... and its two committed words are the prompt now


def test_without_agreement_for_too_long_old_words_are_forced_out():
    # every hypothesis changes its last words, and no segment ever completes
    hypotheses = [" ".join(f"w{k}v{i}@{k}-{k + 0.5}" for k in range(i + 1)) for i in range(40)]
    script = Script(*hypotheses, ends={i: [float(i + 1)] for i in range(40)})
    la = LocalAgreement(script, SR, 100)
    committed = []
    for _ in range(30):
        committed += la.process(np.zeros(SR, np.float32)).final
    assert committed, "nothing was forced out of a 30 s buffer"
    assert max(w.end for w in committed) <= 30 - FORCE_COMMIT_LAG + 0.5
    assert max(c[0] for c in script.calls) <= 26 * SR  # the buffer stays bounded


def test_the_next_hypothesis_is_told_the_committed_words_still_in_the_buffer():
    hyp = "one@1-2 two@3-4 three@9-10"
    script = Script("one@1-2", hyp, ends={i: [8.0, 10.0] for i in range(1, 40)})
    la = LocalAgreement(script, SR, 100)
    for _ in range(17):
        la.process(np.zeros(SR, np.float32))
    assert [c[3] for c in script.calls[:3]] == [[], [], ["one"]]  # "one" agreed at the second hypothesis
    assert script.calls[3][3] == ["one", "two", "three"]
    assert script.calls[16][3] == ["three"]  # the buffer was cut at 8 s: "one" and "two" are the prompt now
    la.finish()
    la.process(np.zeros(SR, np.float32))
    assert script.calls[-1][3] == []  # a new buffer after the end of the audio


def test_a_hypothesis_that_stops_at_its_committed_words_moves_the_buffer_past_them():
    # every hypothesis ends at 4 s in one segment (tiny.en closing a window mid-sentence in faint noise):
    # past 15 s of buffer the next window starts after the committed words, and no audio is dropped
    script = Script("one@1-2 two@3-4", ends={i: [4.0] for i in range(40)})
    la = LocalAgreement(script, SR, 100)
    for _ in range(17):
        la.process(np.zeros(SR, np.float32))
    offsets = [c[2] for c in script.calls]
    assert offsets[:16] == [0.0] * 16 and offsets[16] == 4.0  # was: 0.0 until 25 s, then 21.0
    assert script.calls[16][0] == 13 * SR  # the buffer holds everything after 4 s


def test_words_piled_at_one_instant_are_never_committed():
    # two words in a row of no duration are no speech (the alignment piles there the words that no
    # audio is under): neither agreement nor the end of the stream commits them; a lone word of no
    # duration is speech
    piled = "a@0-0.5 is@0.5-0.5 b@0.6-0.9 fail@0.9-0.9 again@0.9-0.9 c@1.0-1.2"
    la = LocalAgreement(Script(piled, piled, piled + " fail@1.98-1.98 better@1.98-1.98"), SR, 100)
    assert texts(la.process(np.zeros(SR, np.float32)).partial) == ["a", "is", "b", "c"]
    assert texts(la.process(np.zeros(SR, np.float32)).final) == ["a", "is", "b", "c"]  # agreed
    assert la.finish().final == [] and la.steps == 3  # the stream's end: a pile at its last frame
    la = LocalAgreement(Script("a@0-0.5 b@0.6-0.9 fail@1.98-1.98"), 4 * SR, 100)  # a lone one at the end
    la.process(np.zeros(2 * SR, np.float32))
    assert texts(la.finish().final) == ["a", "b", "fail"]
