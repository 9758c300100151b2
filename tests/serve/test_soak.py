"""A bounded soak: `voxedge serve` in its own process, round after round of four concurrent live clients
(two Wyoming, two WebSocket) streaming a real recording as fast as the server takes it. Every client
gets its own right transcript, and once warm the server's memory stays flat: a session that left
anything behind (its audio, its encoder output: megabytes each) would show within a few rounds. The
long soak, at real time, is `python -m benchmarks.serve_load --soak-minutes 30` (docs/performance.md)."""

import asyncio

import pytest

from benchmarks.serve_load import ServerProcess
from benchmarks.wer import corpus_wer

pytest.importorskip("psutil")
ROUNDS, WARM_UP = 5, 2
PROTOCOLS = ("wyoming", "websocket", "wyoming", "websocket")


@pytest.mark.slow
def test_memory_stays_flat_round_after_round(whisper_bundles, beckett):
    pcm, text = beckett
    server = ServerProcess(whisper_bundles["int8"])
    resident = []
    try:
        async def one_round():
            return await asyncio.gather(*(server.client(protocol, pcm, 16000, speed=0) for protocol in PROTOCOLS))

        for _ in range(ROUNDS):
            results = asyncio.run(asyncio.wait_for(one_round(), 300))
            assert all(r.error is None for r in results)
            assert corpus_wer([text] * len(results), [r.text for r in results]) <= 0.15
            resident.append(round(server.resident_mb(), 1))
    finally:
        server.stop()
    print("resident MB after each round:", resident)
    assert max(resident[WARM_UP:]) - resident[WARM_UP - 1] < 20
