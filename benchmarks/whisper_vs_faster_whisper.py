"""Whisper: voxedge against faster-whisper on the same weights and the same clips, measured in one run
with the same threads, the two systems alternating and medians reported:

- tiny.en, int8 and fp32: real-time factor (compute seconds per audio second) and corpus WER with
  greedy decoding (voxedge's default), and with faster-whisper's defaults (beam 5, temperature
  fallback) on both sides; voxedge's live stream;
- whisper-base (multilingual, int8): the language detected in espeak-ng clips of seven languages and
  its probability, WER and RTF, greedy and with faster-whisper's defaults.

    python -m benchmarks whisper          # about 15 minutes on a quiet 2-core machine
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

CACHE = Path(__file__).parent / ".cache"


def _espeak(items: list, texts) -> list:
    """[(audio, text)] for (text, voice, speed) spoken by espeak-ng; none when it is not installed."""
    from voxedge.audio import load_audio

    clips = []
    if shutil.which("espeak-ng"):
        with tempfile.TemporaryDirectory() as tmp:
            for i, (text, voice, speed) in enumerate(texts):
                path = f"{tmp}/{i}.wav"
                subprocess.run(["espeak-ng", "-v", voice, "-s", str(speed), "-w", path, text], check=True)
                clips.append((load_audio(path), text))
    return items + clips


def corpus() -> list:
    """[(audio, reference text)]: the two real recordings, and espeak-ng sentences when it is installed."""
    from export.whisper.offline import recording
    from voxedge.audio import load_audio
    from benchmarks.corpus import RECORDINGS, SENTENCES

    items = [(load_audio(recording(name)), text) for name, text in RECORDINGS.items()]
    return _espeak(items, [(text, "en-us", 160) for text in SENTENCES])


def multilingual_corpus() -> list:
    """[(language, audio, text)] in seven languages (benchmarks/corpus.py MULTILINGUAL)."""
    from benchmarks.corpus import MULTILINGUAL

    clips = _espeak([], [(text, voice, speed) for voice, speed, text in MULTILINGUAL.values()])
    return [(language, audio, text) for language, (audio, text) in zip(MULTILINGUAL, clips)]


def cached_bundle(preset: str) -> Path:
    """A tiny.en bundle built from the shipped weights (once, then kept in benchmarks/.cache)."""
    from export.whisper.offline import main as build_offline

    bundle = CACHE / f"whisper-tiny.en-{preset}"
    if not (bundle / "manifest.json").exists() or not _aligns_words(bundle):
        assert build_offline([str(bundle), "--quant", preset, "--force"]) == 0
    return bundle


def run(repeats: int = 3) -> dict:
    from faster_whisper import WhisperModel as FasterWhisper

    import voxedge
    from export.whisper.offline import shipped_model_dir
    from voxedge.options import FASTER_WHISPER_TEMPERATURES

    clips = corpus()
    threads = os.cpu_count()
    result = {"clips": len(clips), "audio_seconds": round(sum(len(a) for a, _ in clips) / 16000, 1), "threads": threads}
    for preset, compute_type in (("int8", "int8"), ("fp32", "float32")):
        ours = voxedge.load(cached_bundle(preset), threads=threads)
        theirs = FasterWhisper(str(shipped_model_dir()), device="cpu", compute_type=compute_type, cpu_threads=threads)
        result[preset] = side_by_side(ours, theirs, clips, repeats, beam_size=1, temperature=(0.0,))
        result[preset]["faster_whisper_defaults"] = side_by_side(
            ours, theirs, clips, repeats, beam_size=5, temperature=FASTER_WHISPER_TEMPERATURES)
    result["int8"]["voxedge_live"] = _live(CACHE / "whisper-tiny.en-int8", clips)
    result["base_multilingual"] = multilingual(repeats, threads)
    return result


def _aligns_words(bundle) -> bool:
    """False for a cached bundle built before word alignment (it would be measured interpolating)."""
    import onnx

    graph = onnx.load(bundle / "decoder_step.onnx", load_external_data=False).graph
    return any(o.name == "alignment_scores" for o in graph.output)


def side_by_side(ours, theirs, clips, repeats: int, languages=None, **options) -> dict:
    """RTF (median of `repeats` runs over all clips, the systems alternating) and corpus WER of both.
    `languages`: each clip's, given to both (so that WER measures transcription alone)."""
    from benchmarks.wer import corpus_wer

    fw_options = {**options, "temperature": list(options["temperature"])}
    systems = {
        "voxedge": lambda audio, **extra: "".join(s.text for s in ours.transcribe(audio, sample_rate=16000, **options, **extra)),
        "faster_whisper": lambda audio, **extra: "".join(s.text for s in theirs.transcribe(
            audio, vad_filter=False, **fw_options, **extra)[0]),
    }
    given = [{"language": language} for language in languages] if languages else [{}] * len(clips)
    audio_seconds = sum(len(audio) for audio, _ in clips) / 16000
    times = {name: [] for name in systems}
    texts = {}
    for _ in range(repeats):
        for name, transcribe in systems.items():  # alternating, so machine noise hits both alike
            start = time.perf_counter()
            texts[name] = [transcribe(audio, **extra) for (audio, _), extra in zip(clips, given)]
            times[name].append(time.perf_counter() - start)
    references = [text for _, text in clips]
    row = {name: {"rtf": round(float(np.median(t)) / audio_seconds, 4), "wer": round(corpus_wer(references, texts[name]), 4)}
           for name, t in times.items()}
    row["rtf_ratio_voxedge_over_faster_whisper"] = round(row["voxedge"]["rtf"] / row["faster_whisper"]["rtf"], 2)
    row["identical_texts"] = sum(a == b for a, b in zip(texts["voxedge"], texts["faster_whisper"]))
    return row


def multilingual(repeats: int, threads: int) -> dict:
    """whisper-base int8 (the catalog's default) against faster-whisper int8 on the same CTranslate2 weights."""
    from faster_whisper import WhisperModel as FasterWhisper

    import voxedge
    from voxedge import catalog
    from voxedge.options import FASTER_WHISPER_TEMPERATURES

    os.environ["VOXEDGE_HOME"] = str(CACHE / "home")
    ours = voxedge.load(catalog.prepare("whisper-base", progress=False), threads=threads)
    theirs = FasterWhisper(str(_base_ct2_dir()), device="cpu", compute_type="int8", cpu_threads=threads)
    clips = multilingual_corpus()
    detection = {}
    for language, audio, _ in clips:
        info = ours.transcribe(audio, sample_rate=16000).info
        _, their_info = theirs.transcribe(audio, beam_size=1, vad_filter=False)
        detection[language] = {"voxedge": [info.language, round(info.language_probability, 4)],
                               "faster_whisper": [their_info.language, round(their_info.language_probability, 4)]}
    result = {"clips": len(clips), "audio_seconds": round(sum(len(a) for _, a, _ in clips) / 16000, 1),
              "same_language_decisions": sum(d["voxedge"][0] == d["faster_whisper"][0] for d in detection.values()),
              "detection": detection}
    pairs, languages = [(audio, text) for _, audio, text in clips], [language for language, _, _ in clips]
    result["greedy"] = side_by_side(ours, theirs, pairs, repeats, languages, beam_size=1, temperature=(0.0,))
    result["faster_whisper_defaults"] = side_by_side(ours, theirs, pairs, repeats, languages, beam_size=5,
                                                     temperature=FASTER_WHISPER_TEMPERATURES)
    return result


def _base_ct2_dir() -> Path:
    """whisper-base in faster-whisper's layout: the shipped parts concatenated into model.bin."""
    from voxedge.catalog import BASE

    out = CACHE / "whisper-base-ct2"
    if not (out / "model.bin").exists():
        folder, parts = BASE.locate()
        out.mkdir(parents=True, exist_ok=True)
        for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
            shutil.copyfile(folder / name, out / name)
        with open(out / "model.bin.partial", "wb") as f:
            for part in parts:
                f.write(part.read_bytes())
        os.replace(out / "model.bin.partial", out / "model.bin")
    return out


def _live(bundle, clips) -> dict:
    import voxedge
    from benchmarks.wer import corpus_wer

    model = voxedge.load(bundle)
    start, texts = time.perf_counter(), []
    for audio, _ in clips:
        stream = model.stream()
        events = [e for i in range(0, len(audio), 1600) for e in stream.feed(audio[i : i + 1600])] + stream.close()
        texts.append("".join(e.text for e in events if e.kind == "final"))
    audio_seconds = sum(len(a) for a, _ in clips) / 16000
    return {"rtf": round((time.perf_counter() - start) / audio_seconds, 4),
            "wer": round(corpus_wer([t for _, t in clips], texts), 4)}


if __name__ == "__main__":
    print(run())
