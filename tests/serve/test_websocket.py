"""The live WebSocket (/v1/live), with aiohttp's client as the peer."""

import asyncio
import json

import aiohttp
import pytest

from benchmarks.serve_clients import websocket_client
from tests.serve.conftest import TOKEN, running, ws_url
from benchmarks.wer import corpus_wer

LIVE_WER = 0.15


@pytest.fixture(scope="module")
def server(engine):
    with running(engine, token=TOKEN) as server:
        yield server


def test_partial_and_final_events_then_done(server, beckett):
    pcm, text = beckett
    result = asyncio.run(websocket_client(ws_url(server, f"?token={TOKEN}"), pcm, 16000, speed=0))
    assert result.error is None and result.dropped_samples == 0
    kinds = [kind for _, kind, _ in result.events]
    assert kinds[-1] == "done" and set(kinds[:-1]) <= {"partial", "final", "utterance"}
    assert "utterance" in kinds  # the end of audio closes the last utterance
    assert "partial" in kinds and kinds.index("partial") < len(kinds) - 1
    assert "".join(result.chunks).strip() == result.text
    assert corpus_wer([text], [result.text]) <= LIVE_WER
    finals = [data for _, kind, data in result.events if kind == "final"]
    assert all(f["start"] <= f["end"] and "".join(w["text"] for w in f["words"]) == f["text"] for f in finals)
    assert [f["start"] for f in finals] == sorted(f["start"] for f in finals)
    # sent as fast as the socket takes it: the audio waits, and every message says how much
    backlogs = [data["backlog"] for _, kind, data in result.events if kind != "done"]
    assert max(backlogs) > 1.0 and backlogs[-1] == 0.0


def test_without_the_token_the_socket_says_so_and_closes(server):
    async def attempt(query):
        async with aiohttp.ClientSession() as http, http.ws_connect(ws_url(server, query)) as ws:
            first = json.loads((await ws.receive(10)).data)
            if first["type"] == "error":
                await ws.receive(10)  # the close frame
            return first, ws.close_code

    for query in ("", "?token=wrong-token-0123456789"):
        message, code = asyncio.run(attempt(query))
        assert message["type"] == "error" and message["code"] == "unauthorized" and "token" in message["message"]
        assert code == 4401
    message, _ = asyncio.run(attempt(f"?token={TOKEN}"))
    assert message["type"] == "ready" and message["languages"] == ["en"]


def test_past_max_clients_a_new_stream_is_refused_and_the_running_one_is_not(engine):
    from wyoming.audio import AudioStart
    from wyoming.client import AsyncTcpClient

    async def scenario(server):
        async with aiohttp.ClientSession() as http, http.ws_connect(ws_url(server)) as first:
            await first.receive(10)
            await first.send_json({"type": "start", "sample_rate": 16000})
            async with http.ws_connect(ws_url(server)) as second:
                await second.receive(10)
                await second.send_json({"type": "start", "sample_rate": 16000})
                refused = json.loads((await second.receive(10)).data)
                await second.receive(10)
            async with AsyncTcpClient(*server.addresses["wyoming"]) as peer:
                await peer.write_event(AudioStart(rate=16000, width=2, channels=1).event())
                wyoming_refusal = await peer.read_event()
            await first.send_json({"type": "stop"})
            done = json.loads((await first.receive(30)).data)
        return refused, second.close_code, wyoming_refusal, done

    with running(engine, max_clients=1) as server:
        refused, code, wyoming_refusal, done = asyncio.run(scenario(server))
    assert refused["code"] == "busy" and "1 live-client slots" in refused["message"] and code == 1013
    assert wyoming_refusal.type == "error" and wyoming_refusal.data["code"] == "busy"
    assert done == {"type": "done", "text": ""}  # the first stream was not disturbed
