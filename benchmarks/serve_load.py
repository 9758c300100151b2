"""`voxedge serve` under load: 1, 4 and 8 live clients at once (Wyoming and WebSocket) on one model, each
streaming a real recording at real time, as microphones do; then a soak of several clients, session
after session, with the server's resident memory sampled.

    python -m benchmarks.serve_load [--bundle DIR] [--clients 1,4,8] [--soak-minutes 30]
    voxedge bench serve                    (the same, with a 5-minute soak)

Per client: time to the first text, final-text latency (arrival minus the moment the audio of its
last word had been sent), the time from the end of the audio to the whole transcript, the audio the
server dropped (and told the client about), whether it kept up, and WER against the known text.
The server runs as its own process, so its memory is measured alone.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
import time

import numpy as np

from benchmarks.serve_clients import websocket_client, wyoming_client

CLIP = "two_cities.wav"  # 44 s, 48 kHz: a real recording with a known text
STAGGER_S = 0.25  # clients start a little apart, as people do


class ServerProcess:
    """`voxedge serve` on free loopback ports, in its own process."""

    def __init__(self, bundle, *extra):
        self.process = subprocess.Popen(
            [sys.executable, "-m", "voxedge.cli", "serve", "--bundle", str(bundle), "--http", "127.0.0.1:0",
             "--wyoming", "tcp://127.0.0.1:0", "--max-clients", "16", *extra],
            stderr=subprocess.PIPE, text=True)
        lines = []
        while "Wyoming" not in "".join(lines):
            line = self.process.stderr.readline()
            if not line:
                raise RuntimeError("voxedge serve did not start:\n" + "".join(lines))
            lines.append(line)
        text = "".join(lines)
        self.http = re.search(r"http://([\d.]+):(\d+)/\n", text).groups()
        self.wyoming = re.search(r"tcp://([\d.]+):(\d+)", text).groups()

    def resident_mb(self) -> float:
        import psutil

        return psutil.Process(self.process.pid).memory_info().rss / 2**20

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(30)

    async def client(self, protocol: str, pcm, rate: int, delay: float = 0.0, speed: float = 1.0):
        await asyncio.sleep(delay)
        if protocol == "wyoming":
            return await wyoming_client(self.wyoming[0], int(self.wyoming[1]), pcm, rate, speed=speed, timeout=600)
        return await websocket_client(f"ws://{self.http[0]}:{self.http[1]}/v1/live", pcm, rate, speed=speed, timeout=600)


def recording():
    import soundfile

    from export.whisper.offline import recording as shipped
    from benchmarks.corpus import RECORDINGS

    pcm, rate = soundfile.read(shipped(CLIP), dtype="int16", always_2d=True)
    return pcm, rate, RECORDINGS[CLIP]


def summarize(results, reference: str) -> dict:
    from benchmarks.wer import corpus_wer

    def pct(values, q):
        return round(float(np.percentile(values, q)), 2) if values else None

    latencies = [x for r in results for x in r.final_latencies()]
    first = [r.first_text() for r in results if r.first_text() is not None]
    return {
        "clients": len(results),
        "kept_up": sum(r.kept_up() for r in results),
        "first_text_s": {"p50": pct(first, 50), "max": pct(first, 100)},
        "final_latency_s": {"p50": pct(latencies, 50), "p95": pct(latencies, 95)},
        "end_to_transcript_s": {"p50": pct([r.done_latency() for r in results if r.done_latency() is not None], 50),
                                "max": pct([r.done_latency() for r in results if r.done_latency() is not None], 100)},
        "dropped_s": round(sum(r.dropped_samples for r in results) / 16000, 1),
        "told_of_drops": sum(any(k in ("dropped", "voxedge-dropped") for _, k, _ in r.events) for r in results),
        "errors": [r.error for r in results if r.error],
        "wer": round(corpus_wer([reference] * len(results), [r.text for r in results]), 4),
        "per_client": [{"first_text_s": r.first_text() and round(r.first_text(), 2),
                        "final_p50_s": pct(r.final_latencies(), 50), "final_p95_s": pct(r.final_latencies(), 95),
                        "dropped_s": round(r.dropped_samples / 16000, 1), "kept_up": r.kept_up()} for r in results],
    }


async def load_round(server: ServerProcess, protocol: str, n: int, clip) -> dict:
    pcm, rate, reference = clip
    load_before = os.getloadavg()[0]  # other work on the machine shares its cores: say how much there was
    results = await asyncio.gather(*(server.client(protocol, pcm, rate, i * STAGGER_S) for i in range(n)))
    return {**summarize(results, reference), "load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)]}


async def soak(server: ServerProcess, clip, minutes: float, clients: int = 4, sample_every_s: float = 30.0,
               speed: float = 1.0) -> dict:
    """`clients` clients (half Wyoming, half WebSocket), each streaming session after session at `speed`
    x real time (0: as fast as the server takes it); the server's resident memory is sampled every
    `sample_every_s`."""
    pcm, rate, reference = clip
    deadline = time.monotonic() + minutes * 60
    samples, sessions, errors, dropped = [], [0], [], [0]

    async def client(i):
        protocol = "wyoming" if i % 2 else "websocket"
        while time.monotonic() < deadline:
            result = await server.client(protocol, pcm, rate, speed=speed)
            sessions[0] += 1
            dropped[0] += result.dropped_samples
            if result.error:
                errors.append(result.error)

    async def sample():
        start = time.monotonic()
        while time.monotonic() < deadline:
            samples.append((round((time.monotonic() - start) / 60, 2), round(server.resident_mb(), 1)))
            await asyncio.sleep(sample_every_s)

    await asyncio.gather(sample(), *(client(i) for i in range(clients)))
    rss = [mb for _, mb in samples]
    settled = rss[len(rss) // 4:] or rss  # after the first quarter: the allocators have warmed up
    return {"minutes": minutes, "clients": clients, "sessions": sessions[0], "errors": errors,
            "dropped_s": round(dropped[0] / 16000, 1), "resident_mb_first": rss[0], "resident_mb_last": rss[-1],
            "resident_mb_max": max(rss), "growth_after_warmup_mb": round(max(settled) - settled[0], 1),
            "samples": samples}


def run(repeats: int = 1, *, bundle=None, counts=(1, 4, 8), soak_minutes: float = 5.0) -> dict:
    """`voxedge bench serve`: the load rounds, then the soak (`repeats` is unused: each round is long)."""
    if bundle is None:
        from benchmarks.whisper_vs_faster_whisper import cached_bundle

        bundle = cached_bundle("int8")
    clip = recording()
    server = ServerProcess(bundle)
    try:
        result = {"cores": os.cpu_count(), "clip_seconds": round(len(clip[0]) / clip[1], 1),
                  "resident_mb_idle": round(server.resident_mb(), 1), "rounds": {}}
        for protocol in ("wyoming", "websocket"):
            for n in counts:
                print(f"serve_load: {n} {protocol} client(s) ...", file=sys.stderr, flush=True)
                result["rounds"][f"{protocol}-{n}"] = asyncio.run(load_round(server, protocol, n, clip))
        if soak_minutes:
            print(f"serve_load: {soak_minutes} minute soak ...", file=sys.stderr, flush=True)
            result["soak"] = asyncio.run(soak(server, clip, soak_minutes))
    finally:
        server.stop()
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bundle", help="a bundle directory (default: tiny.en int8, built once)")
    parser.add_argument("--clients", default="1,4,8", help="concurrent clients per round (default: 1,4,8)")
    parser.add_argument("--soak-minutes", type=float, default=5.0)
    args = parser.parse_args()
    print(json.dumps(run(bundle=args.bundle, counts=[int(n) for n in args.clients.split(",")],
                         soak_minutes=args.soak_minutes), indent=1))
