"""Word timestamps by cross-attention alignment (voxedge/engines/whisper_alignment.py), scored against
faster-whisper's `word_timestamps=True` on the same weights, against where words placed in silence
really are, and its parts against dtw-python, scipy and faster-whisper's own word splitting."""

import difflib
import subprocess
import shutil
import warnings

import numpy as np
import pytest
import soundfile
import soxr
from dtw import dtw as reference_dtw, symmetric1
from faster_whisper import WhisperModel as FasterWhisper
from faster_whisper.tokenizer import Tokenizer as FasterWhisperTokenizer
from faster_whisper.transcribe import merge_punctuations as reference_merge
from scipy.ndimage import median_filter as reference_median_filter
from tokenizers import Tokenizer

import voxedge
from export.stages import Stages
from export.whisper import write_bundle
from export.whisper.ct2_checkpoint import Ct2Checkpoint
from voxedge.agreement import word_key
from voxedge.engines.whisper_alignment import (APPEND_PUNCTUATIONS, PREPEND_PUNCTUATIONS, WordTiming, dtw,
                                               median_filter, merge_punctuations, split_words)

PLACED = ["Monday", "yellow", "garden", "seven", "window", "coffee", "river", "pencil", "orange", "purple",
          "music", "table"]
TOLERANCE = 0.2  # seconds; why, in test_words_placed_in_silence_are_found_where_they_are


def build(out, model_dir, parts=None, alignment=True):
    """A float32 bundle of CTranslate2 weights, built torch-free; without the alignment output when the
    checkpoint's alignment heads are withheld (as bundles exported before word alignment)."""
    ckpt = Ct2Checkpoint(model_dir, parts)
    generation = dict(ckpt.generation)
    if not alignment:
        generation.pop("alignment_heads")
    out.mkdir(exist_ok=True)
    write_bundle(ckpt, out, "fp32", Stages(None), generation)
    return out


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, ct2_dir):
    return voxedge.load(build(tmp_path_factory.mktemp("tiny-fp32"), ct2_dir))


@pytest.fixture(scope="module")
def base(tmp_path_factory, base_ct2_dir):
    return voxedge.load(build(tmp_path_factory.mktemp("base-fp32"), base_ct2_dir))


@pytest.fixture(scope="module")
def placed_words(speech_dir):
    """Single words spoken by espeak-ng, placed in silence at known times: (16 kHz audio, [(word,
    start, end)]) where start and end bound the word's audible samples (10 ms frames within 40 dB of
    the word's loudest)."""
    rng = np.random.default_rng(1)
    audio, truth, at = np.zeros(16000 * 16, np.float32), [], 0.5
    for i, word in enumerate(PLACED):
        path = speech_dir / f"placed_{i}.wav"
        subprocess.run([shutil.which("espeak-ng"), "-v", "en-us", "-w", str(path), word], check=True)
        samples, rate = soundfile.read(path, dtype="float32")
        samples = soxr.resample(samples, rate, 16000)
        frames = samples[: len(samples) // 160 * 160].reshape(-1, 160)
        rms = np.sqrt((frames**2).mean(axis=1))
        audible = np.flatnonzero(rms > rms.max() * 0.01)
        first, last = audible[0] * 160, (audible[-1] + 1) * 160
        begin = int(at * 16000) - first
        audio[begin : begin + len(samples)] += samples
        truth.append((word, at, at + (last - first) / 16000))
        at += (last - first) / 16000 + rng.uniform(0.2, 0.8)  # a pause of 0.2 to 0.8 s before the next word
    return audio, truth


def words_of(segments) -> list:
    return [w for s in segments for w in s.words]


def faster_whisper(model_dir):
    # one thread: CTranslate2's default (4) spins on a loaded 2-core machine and runs 10x slower
    return FasterWhisper(str(model_dir), device="cpu", compute_type="float32", cpu_threads=1)


def faster_whisper_words(model, audio, **options) -> list:
    segments, _ = model.transcribe(audio, beam_size=1, temperature=0.0, vad_filter=False, word_timestamps=True,
                                   **options)
    return words_of(segments)


def compare(ours: dict, theirs: dict):
    """Per clip the same words; returns |start difference|, |end difference| over all words."""
    starts, ends = [], []
    for name in ours:
        assert [w.text for w in ours[name]] == [w.word for w in theirs[name]], name
        starts += [abs(a.start - b.start) for a, b in zip(ours[name], theirs[name])]
        ends += [abs(a.end - b.end) for a, b in zip(ours[name], theirs[name])]
    return np.array(starts), np.array(ends)


@pytest.fixture(scope="module")
def clips(corpus, placed_words):
    return {name: audio for name, audio, _ in corpus} | {"placed words": placed_words[0]}


@pytest.fixture(scope="module")
def tiny_segments(tiny, clips):
    return {name: list(tiny.transcribe(audio, sample_rate=16000)) for name, audio in clips.items()}


def report(model: str, starts, ends) -> None:
    print(f"{model}, {len(starts)} words: |start - faster-whisper| median {np.median(starts):.3f} s, max "
          f"{starts.max():.2f} s; |end - faster-whisper| median {np.median(ends):.3f} s, max {ends.max():.2f} s")


def test_tiny_word_times_match_faster_whisper(tiny_segments, ct2_dir, clips):
    theirs = faster_whisper(ct2_dir)
    starts, ends = compare({name: words_of(segments) for name, segments in tiny_segments.items()},
                           {name: faster_whisper_words(theirs, audio) for name, audio in clips.items()})
    report("tiny.en", starts, ends)
    assert np.median(starts) <= 0.02 and np.median(ends) <= 0.02
    assert np.mean(np.concatenate([starts, ends]) <= 0.021) > 0.95  # and nearly every word to the frame


def test_base_word_times_match_faster_whisper(base, base_ct2_dir, clips):
    # multilingual base, English as the bundle's start sequence says; the clips but the longest recording
    chosen = {name: audio for name, audio in clips.items() if name != "two_cities"}
    theirs = faster_whisper(base_ct2_dir)
    starts, ends = compare({name: words_of(base.transcribe(audio, sample_rate=16000)) for name, audio in chosen.items()},
                           {name: faster_whisper_words(theirs, audio, language="en") for name, audio in chosen.items()})
    report("base", starts, ends)
    assert np.median(starts) <= 0.02 and np.median(ends) <= 0.02
    assert np.mean(np.concatenate([starts, ends]) <= 0.021) > 0.95


def test_words_placed_in_silence_are_found_where_they_are(base, tiny_segments, placed_words):
    # Tolerance: 0.2 s is 10 of the encoder's 20 ms frames. The attention is median-filtered over 7
    # frames (140 ms), and Whisper's own timestamps snap to 20 ms: a word edge cannot be expected closer.
    # Dynamic time warping has no state for silence: a pause goes to the word after it (openai/whisper and
    # faster-whisper behave alike; faster-whisper's rules cap the damage at twice the median word
    # length). So a word's end must be where its audio ends; its start may come early, into the pause,
    # never after its audio starts and never into the word before.
    audio, truth = placed_words
    words = words_of(base.transcribe(audio, sample_rate=16000))
    assert [word_key(w) for w in words] == [w.lower() for w, _, _ in truth]
    previous_end = 0.0
    for word, (_, start, end) in zip(words, truth):
        assert abs(word.end - end) <= TOLERANCE, (word, start, end)
        assert previous_end - TOLERANCE <= word.start <= start + TOLERANCE, (word, start, end)
        previous_end = end
    ends = [abs(w.end - end) for w, (_, _, end) in zip(words, truth)]
    tiny_words = words_of(tiny_segments["placed words"])
    tiny_ends = [abs(w.end - end) for w, (_, _, end) in zip(tiny_words, truth)]
    print(f"word ends against the audio: base median {np.median(ends):.3f} s, max {max(ends):.2f} s; "
          f"tiny.en median {np.median(tiny_ends):.3f} s, max {max(tiny_ends):.2f} s")


def test_live_words_are_aligned_too(tiny, ct2_dir, corpus):
    # LocalAgreement commits words from hypotheses over a growing buffer (cut past 15 s): each is aligned
    # in its own window, so times may differ from the file's by a frame or two, not by the interpolation's
    # 0.2-0.5 s.
    audio = corpus[0][1][: 20 * 16000]
    stream = tiny.stream(vad=False)  # one buffer, cut past 15 s
    events = [e for i in range(0, len(audio), 1600) for e in stream.feed(audio[i : i + 1600])] + stream.close()
    live = [w for e in events if e.kind == "final" for w in e.words]
    theirs = faster_whisper_words(faster_whisper(ct2_dir), audio)
    matcher = difflib.SequenceMatcher(a=[word_key(w) for w in live],
                                      b=[w.word.strip().lower().strip(",.") for w in theirs], autojunk=False)
    pairs = [(live[b.a + k], theirs[b.b + k]) for b in matcher.get_matching_blocks() for k in range(b.size)]
    assert len(pairs) >= 0.9 * len(theirs)
    differences = np.abs([[a.start - b.start, a.end - b.end] for a, b in pairs])
    print(f"live, {len(pairs)} words: |time - faster-whisper's file time| median {np.median(differences):.3f} s, "
          f"90th percentile {np.percentile(differences, 90):.3f} s")
    assert np.median(differences) <= 0.02 and np.percentile(differences, 90) <= 0.1
    starts = [w.start for w in live]
    assert starts == sorted(starts) and all(w.start <= w.end for w in live)


def test_live_words_are_timed_by_the_decodings_own_attention(tiny, corpus, monkeypatch):
    # A live window's greedy decoding keeps the alignment heads' scores of its positions, so its words are
    # timed without the second, teacher-forced pass that files make (whose context lacks the previous
    # text). Same words; times as the pass gives them, to a frame or two.
    from voxedge.engines.whisper_alignment import CrossAttentionAligner
    from voxedge.engines.whisper_decoding import WindowDecoder

    audio = corpus[0][1][: 20 * 16000]
    passes = []
    aligned_by_pass = CrossAttentionAligner.token_times
    monkeypatch.setattr(CrossAttentionAligner, "token_times", lambda *a: passes.append(1) or aligned_by_pass(*a))

    def live_words():
        stream = tiny.stream(vad=False)
        events = [e for i in range(0, len(audio), 1600) for e in stream.feed(audio[i : i + 1600])] + stream.close()
        return [w for e in events if e.kind == "final" for w in e.words], stream.stats.steps

    own, steps = live_words()
    assert steps > 10 and not passes  # no window needed the pass
    monkeypatch.setattr(WindowDecoder, "_kept_scores", lambda self, first, end: None)  # as before: the pass
    by_pass, _ = live_words()
    assert len(passes) >= steps - 2  # a window without text has no words to time
    assert [w.text for w in own] == [w.text for w in by_pass] and len(own) > 30
    differences = np.abs([[a.start - b.start, a.end - b.end] for a, b in zip(own, by_pass)])
    print(f"{len(own)} live words, the decoding's attention against the pass: median {np.median(differences):.3f} s, "
          f"90th percentile {np.percentile(differences, 90):.3f} s, largest {differences.max():.2f} s")
    assert np.median(differences) <= 0.02 and np.percentile(differences, 90) <= 0.06


def test_kept_scores_are_each_positions_last_run_up_to_the_first_not_run(tiny):
    from voxedge.engines.whisper_decoding import WindowDecoder

    decoder = WindowDecoder(tiny, alignment=True)
    chunk = lambda value, n: np.full((2, n, 3), value, np.float32)  # [heads, positions, frames]
    # prompt 0..4, then positions 5.. ; a take-back ran 7 again; position 9 (the last token) never ran
    decoder._scores = [(0, chunk(0, 5)), (5, chunk(1, 3)), (7, chunk(2, 1)), (8, chunk(3, 1))]
    rows = decoder._kept_scores(3, 10)
    assert rows.shape == (2, 6, 3) and rows[0, :, 0].tolist() == [0, 0, 1, 1, 2, 3]
    assert decoder._scores is None  # the next prefill does not keep any until a greedy decoding asks


def test_word_times_are_ordered_and_inside_their_segment(tiny_segments):
    for name, segments in tiny_segments.items():
        previous = 0.0
        for segment in segments:
            assert segment.words, name
            assert segment.start <= segment.words[0].start and segment.words[-1].end <= segment.end, (name, segment)
            for word in segment.words:
                assert previous <= word.start <= word.end, (name, word)
                previous = word.end


def test_bundle_without_the_alignment_output_interpolates(tmp_path, ct2_dir, corpus, tiny, tiny_segments):
    with pytest.warns(UserWarning, match="no alignment_scores output.*spread evenly"):
        old = voxedge.load(build(tmp_path / "no-alignment", ct2_dir, alignment=False))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert voxedge.load(tiny.bundle.root).aligns_words and not old.aligns_words  # no warning for that one
    audio = corpus[1][1]
    segments = list(old.transcribe(audio, sample_rate=16000))
    aligned = words_of(tiny_segments[corpus[1][0]])
    assert [w.text for s in segments for w in s.words] == [w.text for w in aligned]  # the same words
    for segment in segments:  # their times spread over the segment by token
        assert segment.words[0].start == segment.start and segment.words[-1].end == pytest.approx(segment.end)


# -- the parts, against reference implementations --------------------------------------------------


def test_dtw_takes_the_path_dtw_python_takes():
    rng = np.random.default_rng(0)
    for rows, cols in ((1, 12), (12, 1), (7, 9), (40, 600), (150, 1500)):
        cost = -rng.random((rows, cols))
        reference = reference_dtw(cost, step_pattern=symmetric1)  # cost matrix in, openai's three steps
        path = dtw(cost)
        assert np.array_equal(path[0], reference.index1) and np.array_equal(path[1], reference.index2)


def test_median_filter_is_scipys_with_mirrored_edges():
    rng = np.random.default_rng(0)
    for frames in (4, 7, 8, 1500):
        x = rng.standard_normal((3, 5, frames)).astype(np.float32)
        x[0, 0, : frames // 2] = 1.0  # ties
        assert np.array_equal(median_filter(x, 7), reference_median_filter(x, size=(1, 1, 7), mode="mirror"))
    short = rng.standard_normal((2, 3, 3)).astype(np.float32)
    assert np.array_equal(median_filter(short, 7), short)  # too short to filter, as openai/whisper leaves it


def test_words_split_and_merge_as_faster_whisper_splits_and_merges(tiny, ct2_dir):
    theirs = FasterWhisperTokenizer(Tokenizer.from_file(str(ct2_dir / "tokenizer.json")), multilingual=False)
    texts = [' "Hello," she said - (quietly) - "it\'s 3.14, U.S.A.!" Ça va? Über-cool…', " a  b", " ¿Qué? ¡Sí!"]
    for text in texts:
        tokens = theirs.encode(text)
        ours = split_words(tiny.tokens, tokens)
        reference = theirs.split_to_word_tokens(tokens)
        assert [w for w, _ in ours] == reference[0] and [t for _, t in ours] == reference[1]
        timings = [WordTiming(w, t, float(i), i + 1.0) for i, (w, t) in enumerate(ours)]
        alignment = [dict(word=w, tokens=t, start=float(i), end=i + 1.0) for i, (w, t) in enumerate(ours)]
        merge_punctuations(timings)
        reference_merge(alignment, PREPEND_PUNCTUATIONS, APPEND_PUNCTUATIONS)
        assert [(t.text, t.tokens, t.start, t.end) for t in timings] == \
            [(a["word"], a["tokens"], a["start"], a["end"]) for a in alignment]


def test_languages_without_spaces_split_per_character_as_faster_whisper_does(base, base_ct2_dir):
    from voxedge.engines.whisper_window import WindowTranscriber

    window = WindowTranscriber(base)
    languages, sot = base.config.languages, base.config.sot_sequence
    assert not window.per_character(sot)  # English, the bundle's start sequence
    for code, text in (("ja", " 今日はいい天気ですね。散歩に行きましょう！"), ("zh", " 我们明天去公园吧。")):
        assert window.per_character([sot[0], languages[code], sot[2]])
        theirs = FasterWhisperTokenizer(Tokenizer.from_file(str(base_ct2_dir / "tokenizer.json")), multilingual=True,
                                        task="transcribe", language=code)
        tokens = theirs.encode(text)
        ours = split_words(base.tokens, tokens, per_character=True)
        assert ([w for w, _ in ours], [t for _, t in ours]) == tuple(theirs.split_to_word_tokens(tokens))
        assert len(ours) > 5 and any(len(t) > 1 for _, t in ours)  # some characters span several tokens

