"""The live WebSocket (/v1/live), with aiohttp's client as the peer."""

import asyncio
import json

import aiohttp
import pytest

from benchmarks.serve_clients import websocket_client
from tests.serve.conftest import TOKEN, running, ws_url
from voxedge.bench.wer import corpus_wer

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
    assert kinds[-1] == "done" and set(kinds[:-1]) <= {"partial", "final"}
    assert "partial" in kinds and kinds.index("partial") < len(kinds) - 1
    assert "".join(result.chunks).strip() == result.text
    assert corpus_wer([text], [result.text]) <= LIVE_WER
    finals = [data for _, kind, data in result.events if kind == "final"]
    assert all(f["start"] <= f["end"] and "".join(w["text"] for w in f["words"]) == f["text"] for f in finals)
    assert [f["start"] for f in finals] == sorted(f["start"] for f in finals)


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
