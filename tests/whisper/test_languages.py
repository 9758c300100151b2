"""Multilingual Whisper base against faster-whisper on the same weights (float32 on both sides) and the
same espeak-ng clips in seven languages: the detected language and its probability, transcripts with a
forced language, translation, the live stream's language, the languages refused, the CLI."""

import json

import numpy as np
import pytest
from faster_whisper import WhisperModel as FasterWhisper

import voxedge
from benchmarks.corpus import MULTILINGUAL
from benchmarks.wer import corpus_wer
from tests.conftest import synthesize
from voxedge.audio import load_audio
from voxedge.engines import whisper_window
from voxedge.errors import OptionError, UnsupportedError


@pytest.fixture(scope="module")
def base(prepared):
    return voxedge.load(prepared("whisper-base-fp32"))


@pytest.fixture(scope="module")
def peer(base_ct2_dir):
    return FasterWhisper(str(base_ct2_dir), device="cpu", compute_type="float32")


@pytest.fixture(scope="module")
def clips(speech_dir):
    """[(language, 16 kHz audio, text)]"""
    return [(language, load_audio(synthesize(text, speech_dir / f"lang_{language}.wav", voice, speed)), text)
            for language, (voice, speed, text) in MULTILINGUAL.items()]


def text_of(segments) -> str:
    return "".join(s.text for s in segments)


def theirs(peer, audio, **options):
    segments, info = peer.transcribe(audio, beam_size=1, temperature=0.0, vad_filter=False, **options)
    return text_of(segments), info


def test_detected_language_probability_and_text_match_faster_whisper(base, peer, clips):
    ours_texts, their_texts, detected = [], [], []
    for language, audio, text in clips:
        ours = base.transcribe(audio, sample_rate=16000)
        ours_texts.append(text_of(ours))
        their_text, info = theirs(peer, audio)
        their_texts.append(their_text)
        detected.append(ours.info.language)
        assert ours.info.language == info.language, language
        assert ours.info.language_probability == pytest.approx(info.language_probability, abs=1e-3), language
        print(f"{language}: detected {ours.info.language} p={ours.info.language_probability:.3f} "
              f"(faster-whisper p={info.language_probability:.3f}): {ours_texts[-1]!r}")
    assert detected == list(MULTILINGUAL)  # each clip is recognised as its own language
    references = [text for _, _, text in clips]
    ours_wer, their_wer = corpus_wer(references, ours_texts), corpus_wer(references, their_texts)
    print(f"corpus WER over {len(clips)} languages: voxedge {ours_wer:.4f}, faster-whisper {their_wer:.4f}")
    assert ours_wer <= their_wer + 0.005


def test_forced_language_and_translation_match_faster_whisper(base, peer, clips):
    german = next(audio for language, audio, _ in clips if language == "de")
    for options in ({"language": "de"}, {"language": "de", "task": "translate"}, {"language": "es"}):
        ours = base.transcribe(german, sample_rate=16000, **options)
        their_text, _ = theirs(peer, german, **options)
        assert text_of(ours) == their_text, options
        assert ours.info.language == options["language"] and ours.info.language_probability is None
    assert "train" in text_of(base.transcribe(german, sample_rate=16000, task="translate"))  # "Der Zug"


def test_a_language_the_model_does_not_have_is_refused(base, prepared, clips):
    audio = clips[0][1]
    with pytest.raises(OptionError, match="unknown language 'xx': this model knows .*de, el, en"):
        base.transcribe(audio, sample_rate=16000, language="xx")
    with pytest.raises(OptionError, match="unknown language"):
        base.stream(language="xx")
    english_only = voxedge.load(prepared("whisper-tiny.en"))
    assert english_only.transcribe(audio, sample_rate=16000, language="en").info.language == "en"
    for options in ({"language": "fr"}, {"task": "translate"}):
        with pytest.raises(UnsupportedError, match="English-only"):
            english_only.transcribe(audio, sample_rate=16000, **options)
        with pytest.raises(UnsupportedError, match="English-only"):
            english_only.stream(**options)


def stream_text(model, audio, **options) -> str:
    stream = model.stream(**options)
    events = [e for i in range(0, len(audio), 4000) for e in stream.feed(audio[i : i + 4000])] + stream.close()
    return "".join(e.text for e in events if e.kind == "final")


def test_live_streams_detect_the_language_once_or_take_it(base, clips):
    """A stream without a language detects it on its first window of 2 s with speech (1 s of silence
    first here, which must not decide it) and keeps it; its text is as good as the file's."""
    chosen = [c for c in clips if c[0] in ("de", "es")]
    references = [text for _, _, text in chosen]
    silence = np.zeros(16000, np.float32)
    files = [text_of(base.transcribe(audio, sample_rate=16000)) for _, audio, _ in chosen]
    detected = [stream_text(base, np.concatenate([silence, audio])) for _, audio, _ in chosen]
    given = [stream_text(base, audio, language=language) for language, audio, _ in chosen]
    file_wer, detected_wer, given_wer = (corpus_wer(references, t) for t in (files, detected, given))
    print(f"WER: files {file_wer:.3f}, live detecting {detected_wer:.3f}, live told the language {given_wer:.3f}")
    assert detected_wer <= file_wer + 0.1 and given_wer <= file_wer + 0.1


def test_an_utterance_too_short_to_detect_on_is_detected_at_its_end(base, clips, monkeypatch):
    """With VAD (a Whisper stream's default) a 2 s pause ends the buffer: an utterance that ends before
    a window was long enough to detect on is detected on its last window, not lost."""
    monkeypatch.setattr(whisper_window, "LIVE_DETECTION_SECONDS", 60.0)  # no window is ever long enough
    chosen = [c for c in clips if c[0] in ("de", "es")]
    references = [text for _, _, text in chosen]
    files = [text_of(base.transcribe(audio, sample_rate=16000)) for _, audio, _ in chosen]
    live = [stream_text(base, audio) for _, audio, _ in chosen]
    print(f"WER: files {corpus_wer(references, files):.3f}, live detecting at each utterance's end "
          f"{corpus_wer(references, live):.3f}")
    assert corpus_wer(references, live) <= corpus_wer(references, files) + 0.1


def test_cli_reports_and_takes_the_language(base, clips, tmp_path, capsys):
    import soundfile

    from voxedge.cli import main

    path = tmp_path / "de.wav"
    soundfile.write(path, next(audio for language, audio, _ in clips if language == "de"), 16000)
    bundle = str(base.bundle.root)
    assert main(["transcribe", str(path), "--bundle", bundle, "--format", "json"]) == 0
    result = json.loads(capsys.readouterr().out)
    api = base.transcribe(str(path))
    assert (result["language"], result["language_probability"]) == (api.info.language, pytest.approx(
        api.info.language_probability, abs=1e-4)) and api.info.language == "de"
    assert main(["transcribe", str(path), "--bundle", bundle, "--language", "de", "--task", "translate"]) == 0
    assert capsys.readouterr().out.strip() == text_of(base.transcribe(str(path), language="de", task="translate")).strip()
    assert main(["transcribe", str(path), "--bundle", bundle, "--language", "xx"]) == 1
    err = capsys.readouterr().err
    assert "voxedge: error: unknown language 'xx'" in err and "Traceback" not in err
