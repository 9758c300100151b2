"""`voxedge serve` tests: a real server on 127.0.0.1 (ports chosen by the system), real Whisper tiny.en
weights, real recordings and espeak-ng speech with known words, and the protocols' own client libraries
(wyoming, openai, aiohttp, a headless Chromium) as the peers."""

import asyncio
import concurrent.futures
import contextlib
import threading

import numpy as np
import pytest

pytest.importorskip("aiohttp", reason="the server extra is needed: pip install -e '.[server]'")
pytest.importorskip("wyoming", reason="the server extra is needed: pip install -e '.[server]'")

from tests.conftest import asset, synthesize  # noqa: E402
from benchmarks.corpus import BECKETT, SENTENCES  # noqa: E402
from voxedge.serve.adapter import Engine  # noqa: E402
from voxedge.serve.server import ServeConfig, Server  # noqa: E402

TOKEN = "test-token-0123456789abcdef"


@pytest.fixture(scope="session")
def engine(whisper_bundles):
    return Engine.load(whisper_bundles["int8"])


@contextlib.contextmanager
def running(engine, **settings):
    """A server on its own event-loop thread, listening on free loopback ports, stopped afterwards."""
    config = ServeConfig(**{"wyoming": ("127.0.0.1", 0), "http": ("127.0.0.1", 0), "max_lag_s": 120.0, **settings})
    loop = asyncio.new_event_loop()
    server = Server(engine, config)
    started = concurrent.futures.Future()

    def main():
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(server.start())
        except BaseException as exc:  # handed to the test
            started.set_exception(exc)
            return
        started.set_result(None)
        loop.run_forever()

    thread = threading.Thread(target=main, daemon=True)
    thread.start()
    started.result(30)
    server.loop = loop
    try:
        yield server
    finally:
        asyncio.run_coroutine_threadsafe(server.stop(), loop).result(60)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(30)
        loop.close()


def http_url(server, path="") -> str:
    host, port = server.addresses["http"]
    return f"http://{host}:{port}{path}"


def ws_url(server, query="") -> str:
    host, port = server.addresses["http"]
    return f"ws://{host}:{port}/v1/live{query}"


def int16(path):
    """A sound file as int16 [frames, channels] at its own rate."""
    import soundfile

    samples, rate = soundfile.read(path, dtype="int16", always_2d=True)
    return samples, rate


@pytest.fixture(scope="session")
def beckett():
    """(int16 [frames, 1] at 16 kHz, known text): a real recording."""
    pcm, rate = int16(asset("beckett.wav"))
    assert rate == 16000
    return pcm, BECKETT


@pytest.fixture(scope="session")
def espeak_22k(speech_dir):
    """(int16 [frames, 1] at 22.05 kHz, known text): espeak-ng speech at its native rate (two sentences
    that tiny.en hears well: it mishears some others even from a file, which would test the model, not the server)."""
    text = " ".join((SENTENCES[3], SENTENCES[5]))
    pcm, rate = int16(synthesize(text, speech_dir / "serve_two_sentences.wav"))
    assert rate == 22050
    return pcm, text


def stereo(pcm: np.ndarray) -> np.ndarray:
    """Two channels that differ (the right one quieter), so a wrong channel layout would garble the speech."""
    return np.concatenate([pcm, (pcm // 2)], axis=1)
