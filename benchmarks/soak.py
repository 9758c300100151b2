"""Soak: hours of live audio through the live path (LiveStream: ring buffer, worker thread, engine),
pushed faster than real time, with resident memory and per-step latency recorded every 10 minutes.

    python -m benchmarks.soak BUNDLE [--hours 2]
"""

from __future__ import annotations

import argparse
import json
import threading
import time

import numpy as np

WINDOW_S = 600  # one row of figures per 10 minutes of audio


def resident_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4096 / 2**20


def run(bundle, hours: float = 2.0) -> dict:
    import voxedge

    model = voxedge.load(bundle)
    stamps = []
    stream = model.stream(on_step=lambda *_: stamps.append(time.perf_counter()))
    live = voxedge.LiveStream(stream, buffer_seconds=30)
    seconds = int(hours * 3600)
    rows, events = [], [0]

    def consume():
        for _ in live.events():
            events[0] += 1

    consumer = threading.Thread(target=consume)
    consumer.start()
    rng = np.random.default_rng(0)
    t = np.arange(16000) / 16000
    start, mark = time.perf_counter(), 0
    for second in range(seconds):
        while live.ring.available > 16000 * 5:  # the test's producer waits; voxedge's push never does
            time.sleep(0.005)
        tone = 0.2 * np.sin(2 * np.pi * (150 + 7 * (second % 53)) * t) * (second % 9 > 2)
        live.push((tone + 0.02 * rng.standard_normal(16000)).astype(np.float32))
        if (second + 1) % WINDOW_S == 0:
            gaps = np.diff(stamps[mark:]) * 1e3
            mark = len(stamps) - 1
            rows.append({"audio_minutes": (second + 1) // 60, "resident_mb": round(resident_mb(), 1),
                         "step_ms_p50": round(float(np.median(gaps)), 2),
                         "step_ms_p99": round(float(np.percentile(gaps, 99)), 2)})
    live.close()
    consumer.join()
    return {"hours": hours, "steps": len(stamps), "events": events[0], "dropped_samples": live.ring.dropped,
            "wall_seconds": round(time.perf_counter() - start, 1), "windows": rows}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("bundle")
    parser.add_argument("--hours", type=float, default=2.0)
    args = parser.parse_args()
    print(json.dumps(run(args.bundle, args.hours), indent=1))
