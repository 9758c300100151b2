"""A bounded soak: `voxedge serve` in its own process, four live clients (Wyoming and WebSocket) streaming
a real recording session after session for a minute; the server's memory must stay flat. The long
soak is `python -m benchmarks.serve_load --soak-minutes 30` (docs/performance.md)."""

import asyncio

import pytest

from benchmarks.serve_load import ServerProcess, soak
from tests.serve.conftest import beckett  # noqa: F401  (the fixture)

pytest.importorskip("psutil")


@pytest.mark.slow
def test_memory_stays_flat_over_many_sessions(whisper_bundles, beckett):  # noqa: F811
    pcm, text = beckett
    server = ServerProcess(whisper_bundles["int8"])
    try:
        result = asyncio.run(soak(server, (pcm, 16000, text), minutes=1.0, clients=4, sample_every_s=4.0))
    finally:
        server.stop()
    print("soak:", {k: v for k, v in result.items() if k != "samples"}, result["samples"])
    assert not result["errors"] and result["sessions"] >= 16
    assert result["growth_after_warmup_mb"] < 20
