"""Transcript writers: exact expected text for timestamps, rounding and escaping."""

import json

import pytest

from voxedge.transcript import Segment, Transcript, Word
from voxedge.writers import format_timestamp, render, to_json


def to_srt(segments):
    return render(Transcript(tuple(segments), 0.0), "srt")


def to_vtt(segments):
    return render(Transcript(tuple(segments), 0.0), "vtt")


def to_txt(segments):
    return render(Transcript(tuple(segments), 0.0), "txt")


@pytest.mark.parametrize(
    "seconds, srt, vtt",
    [
        (0.0, "00:00:00,000", "00:00:00.000"),
        (1.2344, "00:00:01,234", "00:00:01.234"),
        (1.2346, "00:00:01,235", "00:00:01.235"),
        (59.9996, "00:01:00,000", "00:01:00.000"),  # rounding carries into minutes
        (3599.9999, "01:00:00,000", "01:00:00.000"),  # ... and into hours
        (3723.5, "01:02:03,500", "01:02:03.500"),
        (100 * 3600 + 1.25, "100:00:01,250", "100:00:01.250"),  # hours grow past two digits
    ],
)
def test_timestamps(seconds, srt, vtt):
    assert format_timestamp(seconds, ",") == srt
    assert format_timestamp(seconds) == vtt


def test_negative_timestamps_are_a_bug_not_a_string():
    with pytest.raises(ValueError, match="cannot be negative"):
        format_timestamp(-0.001)


SEGMENTS = (
    Segment(0.0, 2.5, " Hello world.", (Word(0.0, 1.0, " Hello"), Word(1.2, 2.5, " world."))),
    Segment(2.5, 3661.25, " Fish & chips <b>now</b> --> later", ()),
    Segment(3661.25, 3662.0, "  ", ()),  # blank segments produce no cue
    Segment(3662.0, 3663.0, " Two\n\nlines", ()),
)


def test_srt():
    assert to_srt(SEGMENTS) == (
        "1\n00:00:00,000 --> 00:00:02,500\nHello world.\n"
        "\n"
        "2\n00:00:02,500 --> 01:01:01,250\nFish & chips <b>now</b> --> later\n"
        "\n"
        "3\n01:01:02,000 --> 01:01:03,000\nTwo\nlines\n"
    )


def test_vtt_escapes_markup():
    assert to_vtt(SEGMENTS) == (
        "WEBVTT\n"
        "\n00:00:00.000 --> 00:00:02.500\nHello world.\n"
        "\n00:00:02.500 --> 01:01:01.250\nFish &amp; chips &lt;b&gt;now&lt;/b&gt; --&gt; later\n"
        "\n01:01:02.000 --> 01:01:03.000\nTwo\nlines\n"
    )


def test_txt():
    assert to_txt(SEGMENTS) == "Hello world.\nFish & chips <b>now</b> --> later\nTwo\nlines\n"


def test_json_shape_of_the_cli_contract():
    transcript = Transcript(SEGMENTS[:1], duration=2.71828, language="en", language_probability=0.987654)
    assert json.loads(to_json(transcript)) == {
        "text": "Hello world.",
        "language": "en",
        "language_probability": 0.9877,
        "duration": 2.718,
        "segments": [
            {
                "start": 0.0,
                "end": 2.5,
                "text": " Hello world.",
                "words": [{"start": 0.0, "end": 1.0, "text": " Hello"}, {"start": 1.2, "end": 2.5, "text": " world."}],
            }
        ],
    }
    assert "\n" not in to_json(transcript)  # one object per line when several files are printed
    assert to_json(Transcript((Segment(0, 1, " Grüße"),), 1.0)) == (
        '{"text": "Grüße", "language": null, "language_probability": null, "duration": 1.0, "segments": '
        '[{"start": 0, "end": 1, "text": " Grüße", "words": []}]}'
    )


def test_render_dispatch():
    transcript = Transcript(SEGMENTS[:1], duration=2.5)
    assert render(transcript, "txt") == "Hello world.\n"
    assert render(transcript, "json").endswith("}\n")
    with pytest.raises(ValueError, match="unknown format"):
        render(transcript, "docx")
