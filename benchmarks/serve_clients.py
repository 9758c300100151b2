"""Live clients of `voxedge serve` that keep time: a Wyoming peer (the `wyoming` library's own TCP client)
and a WebSocket client (aiohttp). The tests and the load benchmark both drive the server with them.

Each streams 16-bit PCM in blocks, paced at `speed` times real time (0: as fast as it can), reads
the server's events concurrently and returns a `ClientResult` with the arrival time of each.
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field

import numpy as np

BLOCK_SECONDS = 0.1


@dataclass
class ClientResult:
    protocol: str
    text: str = ""  # the transcript the server gave at the end
    chunks: list = field(default_factory=list)  # final texts in arrival order (joined: the transcript)
    events: list = field(default_factory=list)  # (seconds since the first audio was sent, type, data)
    stop_sent: float | None = None  # when the client said the audio ended (same clock)
    audio_seconds: float = 0.0
    speed: float = 1.0
    dropped_samples: int = 0
    error: str | None = None

    def first_text(self) -> float | None:
        """Seconds from the first audio sent to the first text received (partial or final)."""
        return next((t for t, kind, data in self.events if kind in TEXT_EVENTS and data.get("text")), None)

    def final_latencies(self) -> list[float]:
        """Per final text: arrival time minus the time its last word's audio had been sent."""
        if not self.speed:
            return []
        return [t - data["end"] / self.speed for t, kind, data in self.events
                if kind in FINAL_EVENTS and data.get("text") and "end" in data]

    def done_latency(self) -> float | None:
        """Seconds from the end of the audio to the whole transcript."""
        done = next((t for t, kind, _ in self.events if kind in DONE_EVENTS), None)
        return None if done is None or self.stop_sent is None else done - self.stop_sent

    def kept_up(self, slack_s: float = 5.0) -> bool:
        """Nothing dropped, and the transcript came within `slack_s` of the end of the audio."""
        done = self.done_latency()
        return self.error is None and not self.dropped_samples and done is not None and done <= slack_s


TEXT_EVENTS = ("transcript-chunk", "partial", "final")
FINAL_EVENTS = ("transcript-chunk", "final")
DONE_EVENTS = ("transcript", "done")


def blocks(pcm: np.ndarray, rate: int):
    """int16 [frames, channels] -> interleaved little-endian byte blocks of BLOCK_SECONDS."""
    step = int(rate * BLOCK_SECONDS)
    for start in range(0, len(pcm), step):
        yield pcm[start : start + step].astype("<i2").tobytes()


async def _paced(pcm, rate, speed, send, clock):
    """Send the blocks at `speed` x real time (as a microphone would), or at once if speed is 0."""
    for i, block in enumerate(blocks(pcm, rate)):
        if speed:
            delay = i * BLOCK_SECONDS / speed - clock()
            if delay > 0:
                await asyncio.sleep(delay)
        await send(block)


async def wyoming_client(host: str, port: int, pcm: np.ndarray, rate: int, *, speed: float = 1.0,
                         language: str | None = None, timeout: float = 120.0) -> ClientResult:
    from wyoming.asr import Transcribe
    from wyoming.audio import AudioChunk, AudioStart, AudioStop
    from wyoming.client import AsyncTcpClient

    channels = pcm.shape[1]
    result = ClientResult("wyoming", audio_seconds=len(pcm) / rate, speed=speed)
    async with AsyncTcpClient(host, port) as client:
        t0 = time.perf_counter()
        clock = lambda: time.perf_counter() - t0  # noqa: E731

        async def send(block):
            await client.write_event(AudioChunk(rate=rate, width=2, channels=channels, audio=block).event())

        async def receive():
            while True:
                event = await client.read_event()
                if event is None:
                    result.error = result.error or "the server closed the connection"
                    return
                result.events.append((clock(), event.type, event.data))
                if event.type == "transcript-chunk":
                    result.chunks.append(event.data["text"])
                elif event.type == "voxedge-dropped":
                    result.dropped_samples += event.data["samples"]
                elif event.type == "transcript":
                    result.text = event.data["text"]
                elif event.type == "error":
                    result.error = event.data["text"]
                    return
                elif event.type == "transcript-stop":
                    return

        reader = asyncio.create_task(receive())
        await client.write_event(Transcribe(language=language).event())
        await client.write_event(AudioStart(rate=rate, width=2, channels=channels).event())
        await _paced(pcm, rate, speed, send, clock)
        await client.write_event(AudioStop().event())
        result.stop_sent = clock()
        await asyncio.wait_for(reader, timeout)
    return result


async def websocket_client(url: str, pcm: np.ndarray, rate: int, *, speed: float = 1.0, language: str | None = None,
                           timeout: float = 120.0) -> ClientResult:
    import aiohttp

    result = ClientResult("websocket", audio_seconds=len(pcm) / rate, speed=speed)
    async with aiohttp.ClientSession() as http, http.ws_connect(url) as ws:
        ready = json.loads((await ws.receive(timeout)).data)
        if ready.get("type") != "ready":
            result.error = ready.get("message", str(ready))
            return result
        await ws.send_json({"type": "start", "sample_rate": rate, "encoding": "s16le", "channels": pcm.shape[1],
                            "language": language})
        t0 = time.perf_counter()
        clock = lambda: time.perf_counter() - t0  # noqa: E731

        async def receive():
            async for message in ws:
                if message.type != aiohttp.WSMsgType.TEXT:
                    break
                data = json.loads(message.data)
                result.events.append((clock(), data["type"], data))
                if data["type"] == "final":
                    result.chunks.append(data["text"])
                elif data["type"] == "dropped":
                    result.dropped_samples += data["samples"]
                elif data["type"] == "error":
                    result.error = data["message"]
                    return
                elif data["type"] == "done":
                    result.text = data["text"]
                    return
            result.error = result.error or "the server closed the connection"

        reader = asyncio.create_task(receive())
        await _paced(pcm, rate, speed, ws.send_bytes, clock)
        await ws.send_json({"type": "stop"})
        result.stop_sent = clock()
        await asyncio.wait_for(reader, timeout)
    return result
