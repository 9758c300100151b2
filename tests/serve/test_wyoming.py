"""Wyoming, with the `wyoming` library's own async TCP client as Home Assistant's stand-in."""

import asyncio

import pytest
from wyoming.asr import Transcribe
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.client import AsyncTcpClient
from wyoming.info import Describe, Info

from benchmarks.serve_clients import wyoming_client
from tests.serve.conftest import running, stereo
from benchmarks.wer import corpus_wer

LIVE_WER = 0.15  # the live path's corpus WER is 0.076 (docs/performance.md); one clip varies more


@pytest.fixture(scope="module")
def server(engine):
    with running(engine) as server:
        yield server


def test_describe_announces_a_streaming_asr_program(server, engine):
    async def describe():
        async with AsyncTcpClient(*server.addresses["wyoming"]) as client:
            await client.write_event(Describe().event())
            return Info.from_event(await client.read_event())

    info = asyncio.run(describe())
    (program,) = info.asr
    assert program.supports_transcript_streaming and program.installed
    assert [m.name for m in program.models] == [engine.name]
    assert program.models[0].languages == ["en"]  # tiny.en


def check_transcript(result, text):
    assert result.error is None and result.dropped_samples == 0
    kinds = [kind for _, kind, _ in result.events]
    assert kinds[0] == "transcript-start" and kinds[-2:] == ["transcript", "transcript-stop"]
    assert set(kinds[1:-2]) == {"transcript-chunk"}
    assert "".join(result.chunks).strip() == result.text  # chunks are appended
    wer = corpus_wer([text], [result.text])
    print(f"{result.text!r} WER {wer:.3f}")
    assert wer <= LIVE_WER


def test_two_clients_at_once_16_khz_mono_and_22_khz_stereo(server, beckett, espeak_22k):
    """Each client gets its own stream on the one model; the stereo channels differ, so a wrong layout
    would garble the speech."""
    async def both():
        return await asyncio.gather(
            wyoming_client(*server.addresses["wyoming"], beckett[0], 16000, speed=0, language="en"),
            wyoming_client(*server.addresses["wyoming"], stereo(espeak_22k[0]), 22050, speed=0))

    mono, two_channels = asyncio.run(both())
    check_transcript(mono, beckett[1])
    check_transcript(two_channels, espeak_22k[1])
    assert not server.sessions  # both slots were given back


def test_chunks_arrive_while_the_audio_is_still_coming(server, beckett):
    """Sent at real time, as a microphone does: text comes back before the client has finished sending."""
    pcm, text = beckett
    result = asyncio.run(wyoming_client(*server.addresses["wyoming"], pcm, 16000, speed=1.0))
    chunk_times = [t for t, kind, _ in result.events if kind == "transcript-chunk"]
    print(f"first chunk after {chunk_times[0]:.2f} s, audio ended at {result.stop_sent:.2f} s")
    assert chunk_times[0] < result.stop_sent
    assert corpus_wer([text], [result.text]) <= LIVE_WER
    # every chunk says which audio it covers, in order
    ends = [data["end"] for _, kind, data in result.events if kind == "transcript-chunk"]
    assert ends == sorted(ends) and 0 < ends[-1] <= len(pcm) / 16000 + 0.5


def test_one_connection_carries_transcriptions_one_after_another(server, beckett):
    words = beckett[0][: 3 * 16000]  # "Ever tried, ever failed."

    async def twice():
        texts = []
        async with AsyncTcpClient(*server.addresses["wyoming"]) as client:
            for _ in range(2):
                await client.write_event(AudioStart(rate=16000, width=2, channels=1).event())
                await client.write_event(AudioChunk(rate=16000, width=2, channels=1, audio=words.tobytes()).event())
                await client.write_event(AudioStop().event())
                while (event := await client.read_event()).type != "transcript-stop":
                    if event.type == "transcript":
                        texts.append(event.data["text"])
        return texts

    first, second = asyncio.run(twice())
    assert first == second and corpus_wer(["Ever tried. Ever failed."], [first]) <= 0.25  # each a fresh stream


def test_audio_stop_without_audio_gets_an_empty_transcript(server):
    async def no_audio():
        async with AsyncTcpClient(*server.addresses["wyoming"]) as client:
            await client.write_event(Transcribe(language="en").event())
            await client.write_event(AudioStop().event())
            return [await client.read_event() for _ in range(3)]

    events = asyncio.run(no_audio())
    assert [e.type for e in events] == ["transcript-start", "transcript", "transcript-stop"]
    assert events[1].data["text"] == ""
