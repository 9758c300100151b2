"""The accuracy of bundles in one command: `voxedge eval BUNDLE...` (python -m benchmarks.evaluate).

For each bundle: WER and CER on the audio with known words that ships offline (benchmarks/corpus.py: two
real recordings and espeak-ng's English sentences; with --languages, espeak-ng's sentences in those
languages too) and its real-time factor. Bundles of one model (the same family and vocabulary) are compared
with the most precise of them (fp32, fp16, int8, int4, in that order): the share of the words of its
transcripts that they reproduce and, for Voxtral, the share of its decoder tokens. With --reference, the
reference implementation's figures on the same clips, from the same normalized texts: transformers'
generate() on a Voxtral checkpoint directory, faster-whisper on a Whisper CTranslate2 directory.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

PRECISION = ("fp32", "fp16", "int8", "int4")


def clips(languages=(), limit: int | None = None) -> list:
    """[(language, audio, reference text)]: the sentences first (a few seconds each), then the recordings;
    the first `limit` of them."""
    from .whisper_vs_faster_whisper import corpus, multilingual_corpus

    english = [("en", audio, text) for audio, text in corpus()]
    english = english[2:] + english[:2]  # corpus() starts with the two recordings
    return (english + [item for item in multilingual_corpus() if item[0] in languages and item[0] != "en"])[:limit]


def transcribe(model, corpus) -> dict:
    """Texts (and for Voxtral, decoder tokens) of `model` on every clip, and its real-time factor."""
    texts, tokens, seconds = [], [], 0.0
    multilingual = model.family == "whisper" and bool(model.config.languages)
    for language, audio, _ in corpus:
        start = time.perf_counter()
        options = {"language": language} if multilingual else {}
        texts.append("".join(s.text for s in model.transcribe(audio, sample_rate=16000, **options)))
        seconds += time.perf_counter() - start
        if model.family == "voxtral_realtime":  # the same decoding as transcribe(), its tokens recorded
            steps = []
            stream = model.stream(encoder_batch=4, verify_steps=4, on_step=lambda token, *_: steps.append(token))
            for at in range(0, len(audio), 1280):  # at the pace of live audio: no catch-up batches
                stream.feed(audio[at : at + 1280])
            stream.close()
            tokens.append(steps)
    return {"texts": texts, "tokens": tokens, "rtf": seconds / _seconds(corpus)}


def reference(path: Path, model, corpus) -> list[str]:
    """The reference implementation's texts on the clips (transformers for Voxtral, faster-whisper for Whisper)."""
    if model.family == "voxtral_realtime":
        from export.voxtral.reference import generate, load_model

        hf = load_model(path)
        delay = model.config.default_delay_ms
        texts = [model.tokens.decode(generate(hf, audio, delay)[0]) for _, audio, _ in corpus]
    else:
        from faster_whisper import WhisperModel

        fw = WhisperModel(str(path), device="cpu", compute_type="float32")
        multilingual = bool(model.config.languages)
        # voxedge's defaults: greedy, no temperature fallback, words aligned (their times steer long-form seeking)
        texts = ["".join(s.text for s in fw.transcribe(audio, beam_size=1, temperature=0.0, word_timestamps=True,
                                                          language=language if multilingual else None)[0])
                 for language, audio, _ in corpus]
    return texts


def scores(texts, corpus) -> dict:
    from .wer import corpus_wer, normalize
    import jiwer

    references = [text for _, _, text in corpus]
    cer = jiwer.cer([normalize(r) for r in references], [normalize(t) for t in texts])
    return {"wer": round(corpus_wer(references, texts), 4), "cer": round(cer, 4)}


def agreement(ours: dict, best: dict) -> dict:
    """How much of the most precise bundle's output another reproduces."""
    from .wer import corpus_wer

    out = {"word_agreement": round(1 - corpus_wer(best["texts"], ours["texts"]), 4)}
    if ours["tokens"]:
        pairs = [(a, b) for mine, theirs in zip(ours["tokens"], best["tokens"]) for a, b in zip(mine, theirs)]
        out["token_agreement"] = round(float(np.mean([a == b for a, b in pairs])), 4)
    return out


def evaluate(bundles, reference_dir: Path | None = None, languages=(), limit: int | None = None) -> dict:
    import voxedge

    corpus = clips(languages, limit)
    if not corpus:
        raise SystemExit("voxedge: error: no audio to evaluate on (the real recordings come with `make dev`)")
    models = {str(path): voxedge.load(path) for path in bundles}
    runs = {name: transcribe(model, corpus) for name, model in models.items()}
    results = {"clips": len(corpus), "audio_seconds": round(_seconds(corpus), 1),
               "bundles": {}}
    for name, model in models.items():
        peers = [n for n, m in models.items() if m.family == model.family and len(m.tokens) == len(model.tokens)]
        best = min(peers, key=lambda n: _rank(models[n]))
        row = {"preset": _preset(model), **scores(runs[name]["texts"], corpus), "rtf": round(runs[name]["rtf"], 3)}
        if best != name:
            row["compared_with"] = best
            row.update(agreement(runs[name], runs[best]))
        results["bundles"][name] = row
    if reference_dir is not None:
        first = next(iter(models.values()))
        results["reference"] = {"path": str(reference_dir), **scores(reference(reference_dir, first, corpus), corpus)}
    return results


def _seconds(corpus) -> float:
    return sum(len(audio) for _, audio, _ in corpus) / 16000


def _preset(model) -> str:
    return str(model.bundle.manifest.get("quantization") or "unknown")


def _rank(model) -> int:
    preset = _preset(model)
    return PRECISION.index(preset) if preset in PRECISION else len(PRECISION)


def table(results: dict) -> str:
    lines = [f"{results['clips']} clips, {results['audio_seconds']} s of audio", "",
             "| bundle | preset | WER | CER | RTF | words agreeing | tokens agreeing |", "|---|---|---|---|---|---|---|"]
    for name, row in results["bundles"].items():
        lines.append(f"| {name} | {row['preset']} | {row['wer']:.3f} | {row['cer']:.3f} | {row['rtf']:.3f} | "
                     f"{row.get('word_agreement', '')} | {row.get('token_agreement', '')} |")
    if "reference" in results:
        ref = results["reference"]
        lines.append(f"| reference: {ref['path']} | | {ref['wer']:.3f} | {ref['cer']:.3f} | | | |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="voxedge eval", description=__doc__.split("\n\n")[0])
    parser.add_argument("bundles", nargs="+", metavar="BUNDLE", help="bundle directories or model names")
    parser.add_argument("--reference", type=Path, help="a Voxtral checkpoint (transformers) or Whisper CTranslate2 "
                        "directory whose figures to show beside the bundles'")
    parser.add_argument("--languages", default="", help="also espeak-ng sentences in these languages, e.g. de,fr,es")
    parser.add_argument("--limit", type=int, help="only the first N clips (the sentences come first)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args(argv)
    if args.limit is not None and args.limit < 1:
        parser.error("--limit must be at least 1")
    from voxedge.errors import VoxedgeError

    languages = [code for code in args.languages.split(",") if code]
    try:
        results = evaluate(args.bundles, args.reference, languages, args.limit)
    except VoxedgeError as exc:
        print(f"voxedge: error: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(results, indent=1) if args.json else table(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
