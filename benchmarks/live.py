"""Live transcription's cost: Whisper tiny.en's live stream (gated by VAD, its default, and without)
against its file path, their WER in faint room noise, and what Silero VAD saves on a mostly silent
stream (both families; with the VAD's own cost apart), in CPU seconds per audio second, measured in
one run.

    python -m benchmarks live

CPU time (`time.process_time`, all threads of this process) is what a device pays, and it moves less
than wall time when other work shares the machine; the real-time factor (wall time / audio duration)
is reported beside it for the Whisper streams. The Voxtral figure uses the tiny random model: what VAD
saves is the share of audio never decoded, whatever the model's size.
"""

from __future__ import annotations

import os
import tempfile
import time

import numpy as np

SILENT_MINUTES = 10  # the mostly silent stream: speech at a few places in 10 minutes of room noise


def run(repeats: int = 3) -> dict:
    import voxedge
    from benchmarks.corpus import RECORDINGS
    from benchmarks.wer import corpus_wer
    from export.whisper.offline import recording
    from voxedge.audio import load_audio

    with tempfile.TemporaryDirectory() as home:
        os.environ["VOXEDGE_HOME"] = home
        whisper = voxedge.load("whisper-tiny.en")
        clips = [(load_audio(recording(name)), text) for name, text in RECORDINGS.items()]
        result = {"whisper_tiny_en": _live_vs_file(whisper, clips, repeats, corpus_wer),
                  "whisper_tiny_en_in_room_noise": _in_room_noise(whisper, clips, corpus_wer)}
        speech = clips[0][0]
        result["vad_whisper_tiny_en"] = _vad_saving(whisper, speech)
        result["vad_voxtral_tiny"] = _vad_saving(_tiny_voxtral(home), speech)
    return result


def _live_vs_file(model, clips, repeats: int, corpus_wer) -> dict:
    """Live (the default stream: gated by VAD), live without VAD, and files, alternating, medians."""
    seconds = sum(len(audio) for audio, _ in clips) / 16000
    texts = [text for _, text in clips]
    paths = _paths(model)
    times = {name: [] for name in paths}  # (CPU seconds, wall seconds) of each repeat
    outputs = {}
    for _ in range(repeats):
        for name, path in paths.items():
            cpu, wall = time.process_time(), time.perf_counter()
            out = [path(audio) for audio, _ in clips]
            times[name].append((time.process_time() - cpu, time.perf_counter() - wall))
            outputs[name] = out
    result = {"audio_seconds": round(seconds, 1)}
    for name in paths:
        cpu, wall = np.median(times[name], axis=0) / seconds
        result |= {f"{name}_cpu_per_audio_second": round(float(cpu), 3), f"{name}_rtf": round(float(wall), 3),
                   f"{name}_wer": round(corpus_wer(texts, outputs[name]), 4)}
    return result


def _in_room_noise(model, clips, corpus_wer) -> dict:
    """The recordings with faint room noise (-54 dBFS) from 5 s before to 5 s after each: live WER with
    the default stream (gated by VAD), without VAD, and the file's."""
    rng, noisy = np.random.default_rng(0), []
    for speech, _ in clips:
        audio = (0.002 * rng.standard_normal(len(speech) + 10 * 16000)).astype(np.float32)
        audio[5 * 16000 : 5 * 16000 + len(speech)] += speech
        noisy.append(audio)
    texts = [text for _, text in clips]
    return {f"{name}_wer": round(corpus_wer(texts, [path(audio) for audio in noisy]), 4)
            for name, path in _paths(model).items()}


def _paths(model) -> dict:
    """audio -> text, by the default live stream (gated by VAD), a live stream without VAD, and files."""
    return {"live": lambda audio: _stream_text(model.stream(), audio),
            "live_without_vad": lambda audio: _stream_text(model.stream(vad=False), audio),
            "file": lambda audio: "".join(s.text for s in model.transcribe(audio, sample_rate=16000))}


def _vad_saving(model, speech: np.ndarray) -> dict:
    """CPU of a stream of SILENT_MINUTES of faint noise with the speech at three places, with and without
    VAD: the share it costs with VAD is what the issue's target (under 25%) is about."""
    from voxedge.vad import VadGate

    rng = np.random.default_rng(0)
    audio = (0.003 * rng.standard_normal(SILENT_MINUTES * 60 * 16000)).astype(np.float32)
    for minute in (1, 4, 8):
        audio[minute * 60 * 16000 : minute * 60 * 16000 + len(speech)] += speech
    costs, streams = {}, {}
    for vad in (False, True):
        streams[vad] = model.stream(vad=vad)
        costs[vad] = _cpu_to_feed(streams[vad], audio)
    ungated, gated = streams[False], streams[True]
    vad_alone = _cpu_to_feed(VadGate(model.vad), audio)  # what the gate itself costs
    return {"minutes": SILENT_MINUTES, "speech_share": round(3 * len(speech) / len(audio), 3),
            "cpu_seconds_without_vad": round(costs[False], 1), "cpu_seconds_with_vad": round(costs[True], 1),
            "cpu_with_vad_share": round(costs[True] / costs[False], 3), "decoded_share_with_vad": round(1 - gated.stats.samples_skipped / len(audio), 3),
            "cpu_seconds_of_the_vad_alone": round(vad_alone, 1),
            # the engine's own share: what a model whose cost dwarfs the VAD's (the real 4B Voxtral) would pay
            "cpu_with_vad_share_besides_the_vad": round((costs[True] - vad_alone) / costs[False], 3),
            # what a model's own costs make of the share: its steps both ways, and the sessions that each
            # start again (Voxtral: a prompt prefill each; docs/performance.md projects the real 4B's share)
            "steps_without_vad": ungated.stats.steps, "steps_with_vad": gated.stats.steps,
            "sessions_with_vad": gated.engine.sessions}  # SpeechOnly's count (voxedge/gating.py)


def _cpu_to_feed(target, audio: np.ndarray) -> float:
    """CPU seconds to feed `audio` to a stream or a VadGate in 100 ms blocks and close it."""
    start = time.process_time()
    for i in range(0, len(audio), 1600):
        target.feed(audio[i : i + 1600])
    target.close()
    return time.process_time() - start


def _tiny_voxtral(home: str):
    """The tiny random Voxtral model, exported without validation (speed does not depend on the values)."""
    from pathlib import Path

    import voxedge
    from export.checkpoint import Checkpoint
    from export.stages import Stages
    from export.voxtral import tiny, write_bundle

    ckpt = Checkpoint(tiny.build(Path(home) / "voxtral-ckpt"), "tiny")
    out = Path(home) / "voxtral-int8"
    out.mkdir()
    write_bundle(ckpt, out, "int8", Stages())
    return voxedge.load(out)


def _stream_text(stream, audio) -> str:
    events = [e for i in range(0, len(audio), 1600) for e in stream.feed(audio[i : i + 1600])] + stream.close()
    return "".join(e.text for e in events if e.kind == "final")
