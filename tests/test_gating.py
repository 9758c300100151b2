"""Silero VAD in front of an engine (voxedge/gating.py) and utterances (voxedge/stream.py), with a
scripted engine whose words say exactly which audio it was given: skipped silence keeps its place on
the clock, each speech chunk is one utterance, and nothing is decoded from silence."""

import numpy as np
import pytest

from tests.conftest import SENTENCES, synthesize
from voxedge.audio import load_audio
from voxedge.gating import SpeechOnly
from voxedge.options import StreamOptions, VadOptions
from voxedge.stream import Stream, Update
from voxedge.transcript import Word
from voxedge.vad import VadGate, speech_timestamps

RATE = 16000
LIVE = VadOptions(min_silence_duration_ms=800, speech_pad_ms=200)


class Echo:
    """An engine that turns every 0.1 s of audio it gets into a word "w@T" (T: its own engine time)
    and finalizes them at `finish` (one session per utterance)."""

    def __init__(self):
        self.steps = self.resets = 0
        self.fed = 0
        self.sessions = []
        self._open = []

    def process(self, samples):
        start = self.fed
        self.fed += len(samples)
        for t in range(-(-start // 1600) * 1600, self.fed, 1600):
            self._open.append(Word(t / RATE, (t + 1600) / RATE, f" w@{t / RATE:.1f}"))
        self.steps += 1
        return Update([], list(self._open))

    def finish(self):
        words, self._open = self._open, []
        self.sessions.append(self.fed)
        return Update(words)


@pytest.fixture(scope="module")
def vad(bundles):
    import voxedge

    return voxedge.load(bundles["int8"]).vad


@pytest.fixture(scope="module")
def placed(speech_dir):
    """60 s: digital silence with two sentences at 10 s and 40 s."""
    audio = np.zeros(60 * RATE, np.float32)
    for i, offset in enumerate((10, 40)):
        sentence = load_audio(synthesize(SENTENCES[i], speech_dir / f"gate_{i}.wav"))
        audio[offset * RATE : offset * RATE + len(sentence)] = sentence
    return audio


def run(stream, audio, block):
    events = [e for start in range(0, len(audio), block) for e in stream.feed(audio[start : start + block])]
    return events + stream.close()


@pytest.mark.parametrize("block", [160, 1600, 48000])
def test_each_speech_chunk_is_one_utterance_on_the_right_clock(vad, placed, block):
    chunks = speech_timestamps(vad, placed, LIVE)
    assert len(chunks) == 2
    engine = Echo()
    gated = SpeechOnly(engine, VadGate(vad, LIVE))
    stream = Stream(gated)
    events = run(stream, placed, block)
    utterances = [e for e in events if e.kind == "utterance"]
    assert len(utterances) == 2 == stream.stats.utterances
    assert gated.sessions == len(engine.sessions) == 2  # one engine session per speech chunk
    for utterance, (start, end) in zip(utterances, chunks):
        # the first word sits at the chunk's start in audio time: the skipped silence kept its duration
        assert utterance.start == pytest.approx(start / RATE, abs=0.1)
        # speech is fed as it comes, so up to the gate's hangover of silence follows each chunk
        assert end / RATE - 0.1 <= utterance.end <= end / RATE + LIVE.min_silence_duration_ms / 1000 + 0.2
    decoded = engine.fed / RATE
    assert stream.stats.samples_skipped + engine.fed == len(placed)
    assert decoded < 0.25 * len(placed) / RATE, decoded  # silence is not decoded
    assert stream.stats.samples_dropped == 0


def test_digital_silence_gives_nothing(vad):
    engine = Echo()
    stream = Stream(SpeechOnly(engine, VadGate(vad, LIVE)))
    assert run(stream, np.zeros(30 * RATE, np.float32), 4000) == []
    assert engine.fed == 0 and stream.stats.samples_skipped == 30 * RATE


class Talker(Echo):
    """An engine whose words are final at once: one " x" for every 0.1 s of its own audio that is loud."""

    def __init__(self):
        super().__init__()
        self._audio = np.zeros(0, np.float32)

    def process(self, samples):
        start = self.fed
        self.fed += len(samples)
        self._audio = np.concatenate([self._audio, samples])
        loud = [t for t in range(-(-start // 1600) * 1600, self.fed - 1600 + 1, 1600)
                if np.abs(self._audio[t : t + 1600]).max() > 0.1]
        return Update([Word(t / RATE, (t + 1600) / RATE, " x") for t in loud])


def test_without_vad_an_utterance_ends_after_the_endpoint_silence():
    audio = np.zeros(10 * RATE, np.float32)
    audio[1 * RATE : 2 * RATE] = 0.5
    audio[6 * RATE : 7 * RATE] = 0.5
    events = run(Stream(Talker(), endpoint=0.8), audio, 1600)
    utterances = [(e.start, e.end) for e in events if e.kind == "utterance"]
    assert utterances == [(1.0, 2.0), (6.0, 7.0)]
    index = [e.kind for e in events].index("utterance")
    assert events[index - 1].end == 2.0  # the first closed once 0.8 s of silence had passed, not before


@pytest.mark.parametrize("pause", [1.0, 3.0])
def test_gated_a_short_pause_stays_in_the_session_and_still_ends_the_utterance(vad, speech_dir, pause):
    """The live gate ends the engine's session only after 2 s of silence (a live Whisper buffer keeps the
    audio before the next words); utterances close after the endpoint silence either way."""
    first, second = (load_audio(synthesize(SENTENCES[i], speech_dir / f"gate_{i}.wav")) for i in (0, 1))
    audio = np.concatenate([first, np.zeros(int(pause * RATE), np.float32), second, np.zeros(3 * RATE, np.float32)])
    engine = Talker()
    stream = Stream(SpeechOnly(engine, VadGate(vad, StreamOptions().vad_options)), endpoint=0.8)
    utterances = [e for e in run(stream, audio, 1600) if e.kind == "utterance"]
    assert len(utterances) == 2
    onset = len(first) / RATE + pause + np.argmax(np.abs(second) > 0.1) / RATE
    assert utterances[1].start == pytest.approx(onset, abs=0.15)
    # one session across the short pause (ended by the end of speech), two across the long one
    assert len(engine.sessions) == (1 if pause < 2 else 2)
