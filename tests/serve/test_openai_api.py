"""The OpenAI-compatible endpoints, called with the official `openai` client pointed at the local server."""

import re

import pytest

openai = pytest.importorskip("openai")

from tests.conftest import asset  # noqa: E402
from tests.serve.conftest import TOKEN, http_url, running  # noqa: E402
from benchmarks.corpus import BECKETT, TWO_CITIES  # noqa: E402
from benchmarks.wer import corpus_wer  # noqa: E402

FILE_WER = 0.1  # tiny.en int8 on these two recordings: 0.0-0.05


@pytest.fixture(scope="module")
def server(engine):
    with running(engine, token=TOKEN) as server:
        yield server


@pytest.fixture(scope="module")
def client(server):
    return openai.OpenAI(base_url=http_url(server, "/v1"), api_key=TOKEN, max_retries=0, timeout=120)


def transcribe(client, name, **options):
    with open(asset(name), "rb") as f:
        return client.audio.transcriptions.create(model="whisper-1", file=f, **options)


def test_models_lists_the_loaded_model_then_the_catalog(client, engine):
    from voxedge.catalog import CATALOG

    models = list(client.models.list())
    assert models[0].id == engine.name and models[0].loaded
    assert {m.id for m in models[1:]} == set(CATALOG) - {engine.name} and not any(m.loaded for m in models[1:])


def test_json_matches_the_known_text_of_real_recordings(client):
    texts = [transcribe(client, "two_cities.wav").text, transcribe(client, "beckett.wav", language="en").text]
    wer = corpus_wer([TWO_CITIES, BECKETT], texts)
    print(f"WER {wer:.3f}: {texts}")
    assert wer <= FILE_WER


def test_text_srt_and_vtt(client):
    text = transcribe(client, "two_cities.wav", response_format="text")
    srt = transcribe(client, "two_cities.wav", response_format="srt")
    vtt = transcribe(client, "two_cities.wav", response_format="vtt")
    assert isinstance(text, str) and corpus_wer([TWO_CITIES], [text]) <= FILE_WER
    # a cue: its number, its times, then one or two wrapped lines of text
    cues = re.findall(r"(\d+)\n(\d\d:\d\d:\d\d,\d{3}) --> (\d\d:\d\d:\d\d,\d{3})\n(.+?)\n(?:\n|$)", srt, re.S)
    assert [int(c[0]) for c in cues] == list(range(1, len(cues) + 1)) and len(cues) >= 2
    assert [c[1] for c in cues] == sorted(c[1] for c in cues)
    assert " ".join(c[3].replace("\n", " ") for c in cues) == text.strip()
    assert vtt.startswith("WEBVTT\n") and vtt.count(" --> ") == len(cues)


def test_verbose_json_with_word_and_segment_timestamps(client):
    result = transcribe(client, "beckett.wav", response_format="verbose_json",
                        timestamp_granularities=["word", "segment"])
    assert result.language == "english" and result.duration == pytest.approx(9.96, abs=0.01)
    assert corpus_wer([BECKETT], [result.text]) <= FILE_WER
    words = result.words
    assert " ".join(w.word for w in words) == result.text
    assert all(0 <= w.start <= w.end <= result.duration + 0.05 for w in words)
    assert [w.start for w in words] == sorted(w.start for w in words)
    segments = result.segments
    assert "".join(s.text for s in segments).strip() == result.text and segments[0].start == 0.0
    only_words = transcribe(client, "beckett.wav", response_format="verbose_json", timestamp_granularities=["word"])
    assert only_words.segments is None and only_words.words


def test_refusals_reach_the_client_as_errors(client, server, engine):
    with pytest.raises(openai.BadRequestError, match="response_format"):
        transcribe(client, "beckett.wav", response_format="docx")
    with pytest.raises(openai.BadRequestError, match="verbose_json"):
        transcribe(client, "beckett.wav", timestamp_granularities=["word"])
    with pytest.raises(openai.BadRequestError, match="language 'de'"):
        transcribe(client, "beckett.wav", language="de")
    if "initial_prompt" not in engine.model.transcribe_fields:  # said, not ignored, while the family has none
        with pytest.raises(openai.BadRequestError, match="initial_prompt"):
            transcribe(client, "beckett.wav", prompt="Samuel Beckett")
    with pytest.raises(openai.BadRequestError, match="cannot decode"):
        client.audio.transcriptions.create(model="whisper-1", file=("x.wav", b"RIFF\x00\x00\x00\x00WAVEjunk"))
    wrong = openai.OpenAI(base_url=http_url(server, "/v1"), api_key="not-the-token", max_retries=0)
    with pytest.raises(openai.AuthenticationError, match="token"):
        wrong.models.list()
