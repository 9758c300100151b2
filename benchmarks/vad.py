"""Silero VAD's cost: CPU seconds per second of audio, voxedge against faster-whisper on the same graph
and audio, in file mode (`speech_timestamps`) and live (`VadGate` fed 10 ms and 100 ms blocks).

    python -m benchmarks.vad [--minutes 10] [--repeats 5] [--out benchmarks/results/vad.json]

The audio is a mostly silent stream: the two real recordings placed once each in `--minutes` of
low background noise. CPU time is process time (all threads), so the fraction of real time is what
the VAD takes from a device's cores. These figures are the "VAD on" overhead to add to the engine's
cost over the speech alone when reporting the CPU a live stream saves; the benchmark also reports
the share of the stream a gated live engine would decode.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from benchmarks.figures import emit

RATE = 16000


def mostly_silent(minutes: float) -> tuple[np.ndarray, float]:
    """`minutes` of faint noise with two_cities.wav and beckett.wav in it; returns (audio, their seconds)."""
    from export.whisper.offline import recording
    from voxedge.audio import load_audio

    audio = (0.002 * np.random.default_rng(0).standard_normal(int(minutes * 60 * RATE))).astype(np.float32)
    speech = [load_audio(recording(name)) for name in ("two_cities.wav", "beckett.wav")]
    for fraction, clip in zip((0.2, 0.7), speech):
        at = int(fraction * len(audio))
        audio[at:at + len(clip)] += clip[: len(audio) - at]
    return audio, sum(len(c) for c in speech) / RATE


def cpu_seconds(action, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.process_time()
        action()
        times.append(time.process_time() - start)
    return float(np.median(times))


def live(vad, audio, block: int, options=None) -> int:
    """Run a gate over `audio` in `block`s; returns how many samples a gated stream hands its engine:
    from each speech_start's index to the audio fed when its speech_end is reported (the engine is
    fed until the gate is sure the speech is over)."""
    from voxedge.vad import VadGate

    gate, decoded, start = VadGate(vad, options), 0, None
    for begin in range(0, len(audio) + block, block):
        events = gate.feed(audio[begin:begin + block]) if begin < len(audio) else gate.close()
        for kind, index in events:
            if kind == "speech_start":
                start = index
            else:
                decoded += min(begin + block, len(audio)) - start
    return decoded


def run(minutes: float = 10.0, repeats: int = 5) -> dict:
    from faster_whisper.vad import get_speech_timestamps

    from export.vad import copy_vad
    from voxedge.options import VadOptions
    from voxedge.vad import SileroVad, speech_timestamps

    audio, recording_seconds = mostly_silent(minutes)
    seconds = len(audio) / RATE
    with tempfile.TemporaryDirectory() as tmp:
        entry = copy_vad(Path(tmp))
        vad = SileroVad(Path(tmp) / entry["file"])
    chunks = speech_timestamps(vad, audio)
    assert chunks == [(c["start"], c["end"]) for c in get_speech_timestamps(audio)]
    systems = {
        "voxedge_file": lambda: speech_timestamps(vad, audio),
        "faster_whisper_file": lambda: get_speech_timestamps(audio),
        "voxedge_live_10ms": lambda: live(vad, audio, RATE // 100),
        "voxedge_live_100ms": lambda: live(vad, audio, RATE // 10),
    }
    result = {"audio_seconds": round(seconds, 1), "recordings_seconds": round(recording_seconds, 1),
              "vad_chunks": len(chunks), "kept_seconds": round(sum(e - s for s, e in chunks) / RATE, 1)}
    for name, action in systems.items():
        cpu = cpu_seconds(action, repeats)
        result[name] = {"cpu_ms_per_audio_second": round(1000 * cpu / seconds, 3),
                        "fraction_of_real_time": round(cpu / seconds, 5)}
    # the share of the stream a VAD-gated live engine would decode (100 ms feeds)
    for label, options in (("defaults", VadOptions()), ("min_silence_800ms", VadOptions(min_silence_duration_ms=800))):
        result[f"live_engine_audio_fraction_{label}"] = round(live(vad, audio, RATE // 10, options) / len(audio), 4)
    return result


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.vad", description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, help="also write the figures to this JSON file")
    args = parser.parse_args(argv)
    return emit(run(args.minutes, args.repeats), args.out)


if __name__ == "__main__":
    raise SystemExit(main())
