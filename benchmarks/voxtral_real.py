"""Voxtral Mini 4B Realtime at its real size (random weights) through voxedge's engine, against the
memory-bandwidth floor measured in the same process.

    voxedge bench voxtral [--presets int4,int8]      (or python -m benchmarks.voxtral_real)

Per preset, in a fresh process: load the bundle, first-token latency (the prompt's prefill, from the
bundle's prompt-prefix snapshot and, for comparison, over the whole prompt), then
in five rounds (`--rounds`), each with its own bandwidth measurement: steady 80 ms steps with the encoder KV
window full (750 frames) and a 30 s decoder context (375 tokens), split into encoder, decoder and
everything outside onnxruntime; the encoder with 4 and 8 steps per call; decoder calls over 1, 2, 4 and
8 positions; and the straightforward concat-KV encoder for comparison. Medians over the rounds are reported. Bundles are built
once into benchmarks/.cache (int4 3.3 GB, int8 5 GB on disk).

    python -m benchmarks.voxtral_real --first-token BUNDLE     (any Voxtral bundle, e.g. a tiny one)
    python -m benchmarks.voxtral_real --verify-cost BUNDLE

measure only the first-token latency, with and without the snapshot, or only the cost of decoder calls
over 1, 2, 4 and 8 positions (verifying drafted steps, docs/voxtral.md).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from voxedge.bench.verify_cost import CONTEXT, verify_cost

CACHE = Path(__file__).parent / ".cache"
STEPS = 24  # measured steps per setting (medians reported)
FILE_SECONDS = 10  # audio transcribed with and without verification


def concat_encoder_path(bundle: Path) -> Path:
    """The concat-KV encoder baseline, beside the bundle (a bundle holds only the files its manifest lists)."""
    return bundle.with_name(bundle.name + "-concat") / "audio_encoder_concat.onnx"


def build(preset: str) -> Path:
    """The real-size bundle for `preset` (built once), plus the concat-KV encoder baseline beside it."""
    from export.stages import Stages
    from export.quantize import PRESETS
    from export.voxtral import write_bundle
    from export.voxtral.graphs import build_encoder

    from .concat_kv import ConcatKV
    from .random_voxtral import RandomCheckpoint

    out = CACHE / f"voxtral-real-{preset}"
    concat = concat_encoder_path(out)
    if (out / "manifest.json").exists() and concat.exists():
        return out
    out.mkdir(parents=True, exist_ok=True)
    concat.parent.mkdir(exist_ok=True)
    ckpt = RandomCheckpoint(CACHE / "random-checkpoint")
    stages = Stages()
    write_bundle(ckpt, out, preset, stages)
    with stages("concat-KV encoder baseline"):
        formats = PRESETS[preset]
        build_encoder(concat, ckpt, ckpt.config, formats["encoder"], formats["adapter"],
                      stages.bar, ConcatKV(ckpt.config["audio_config"]["head_dim"])).save()
    return out


def measure(bundle: Path, rounds: int = 5) -> dict:
    """Median figures over `rounds`; each round measures the bandwidth next to its own steps."""
    import voxedge
    from voxedge.bench.bandwidth import read_bandwidth
    from voxedge.bench.device import machine
    from benchmarks.floor import step_bytes

    start = time.perf_counter()
    model = voxedge.load(bundle, verify=False)
    result = {"preset": model.bundle.manifest["quantization"], "machine": machine(),
              "bundle_gb": round(model.bundle.size_bytes() / 1e9, 2), "load_s": round(time.perf_counter() - start, 1),
              "resident_after_load_gb": round(_resident_gb(), 2), "rounds": rounds}
    audio = (0.1 * np.random.default_rng(0).standard_normal(16000 * 60)).astype(np.float32)
    result.update(first_token_ms(model, audio))

    samples = []
    for _ in range(rounds):
        row = {"bandwidth_gb_s": read_bandwidth(0.5, repeats=3), **steady_steps(model, audio, 1)}
        row.update({f"encoder_ms_batch_{b}": steady_steps(model, audio, b)["encoder_ms"] for b in (4, 8)})
        row["concat_encoder_ms"] = concat_encoder_ms(bundle, model)
        samples.append(row)
    median = {key: round(float(np.median([r[key] for r in samples])), 3) for key in samples[0]}
    bandwidth = median.pop("bandwidth_gb_s")
    result.update(bandwidth_gb_s=round(bandwidth, 1), **{k: v for k, v in median.items() if not k.startswith("encoder_ms_b")})
    result["encoder_ms_per_step_by_batch"] = {1: median["encoder_ms"], 4: median["encoder_ms_batch_4"],
                                              8: median["encoder_ms_batch_8"]}
    floor = step_bytes(result["preset"], CONTEXT)
    result["floor_ms"] = {k: round(v / bandwidth / 1e6, 1) for k, v in floor.items()}
    result["ratio_to_floor"] = {
        "decoder": round(result["decoder_ms"] / result["floor_ms"]["decoder"], 2),
        "encoder": round(result["encoder_ms"] / result["floor_ms"]["encoder"], 2),
        "step": round(result["step_ms"] / result["floor_ms"]["total"], 2),
    }
    # each round against its own bandwidth: the decoder's ratio must hold in every round, not only the median's
    result["decoder_ratio_to_floor_by_round"] = [
        round(r["decoder_ms"] * r["bandwidth_gb_s"] * 1e6 / floor["decoder"], 2) for r in samples]
    # what each ratio is made of: an outlier round shows whether the decoder or the bandwidth reading moved
    result["decoder_ms_by_round"] = [round(r["decoder_ms"], 1) for r in samples]
    result["bandwidth_gb_s_by_round"] = [round(r["bandwidth_gb_s"], 1) for r in samples]
    batches = result["encoder_ms_per_step_by_batch"]
    best = min(batches, key=batches.get)
    result["encoder_speedup_vs_concat"] = round(result["concat_encoder_ms"] / batches[best], 2)
    result["encoder_speedup_vs_concat_batch"] = best
    result["decoder_call_cost_by_positions"] = verify_cost(model)
    result["file_verification"] = file_verification(model, audio[: 16000 * FILE_SECONDS],
                                                    result["decoder_call_cost_by_positions"])
    result["resident_at_end_gb"] = round(_resident_gb(), 2)
    result["peak_rss_gb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)
    return result


def first_token_ms(model, audio: np.ndarray, rounds: int = 7) -> dict:
    """Median milliseconds from opening a 480 ms stream to its first token, the audio for it fed at once:
    starting from the bundle's prompt-prefix snapshot, and prefilling the whole prompt."""
    from voxedge.engines.voxtral_realtime import VoxtralSession
    from voxedge.stream import Stream

    chunk = audio[: model.padding.first_chunk(6)]
    result = {}
    for name, use_prefix in (("first_token_ms", True), ("first_token_ms_full_prefill", False)):
        if use_prefix and model.prefix is None:
            continue
        times = []
        for _ in range(rounds):
            first = []
            start = time.perf_counter()
            Stream(VoxtralSession(model, 6, 1, lambda *_: first.append(time.perf_counter()), use_prefix=use_prefix)).feed(chunk)
            times.append(first[0] - start)
        result[name] = round(float(np.median(times)) * 1e3, 2)
    return result


def file_verification(model, audio: np.ndarray, costs: dict, repeats: int = 3) -> dict:
    """File transcription with verification (verify_steps=None: k chosen per call from `costs`, the
    bundle's decoder_call_cost_by_positions, voxedge/engines/draft_policy.py) against single steps, at equal
    tokens: the decoder's time per token both ways, alternating, medians. Random weights do not emit
    padding, so the token they emit most is drafted instead (as in tests/voxtral/test_verify.py): the
    acceptance is what that token's runs give, reported beside the speed-up."""
    import collections

    from voxedge.options import StreamOptions
    from voxedge.stream import Stream

    def decode(verify_steps, draft=None):
        tokens = []
        engine = model._stream_engine(StreamOptions(delay_ms=480, encoder_batch=4, verify_steps=verify_steps),
                                      lambda token, *_: tokens.append(token), catch_up=False)
        if draft is not None:
            engine.draft = draft
        stream = Stream(engine)
        stream.feed(audio)
        stream.close()
        return tokens, engine, engine._decoder.seconds / engine.steps

    single, _, _ = decode(1)
    draft = collections.Counter(single).most_common(1)[0][0]
    model.decoder_costs = {m: row["ratio"] for m, row in costs.items()}  # as `bench --device` keeps them
    times = {"single": [], "verified": []}
    for _ in range(repeats):
        times["single"].append(decode(1, draft)[2])
        tokens, engine, seconds = decode(None, draft)
        times["verified"].append(seconds)
    single_ms, verified_ms = (float(np.median(times[k])) * 1e3 for k in ("single", "verified"))
    return {"seconds": round(len(audio) / 16000, 1), "steps": engine.steps,
            "draft_share": round(single.count(draft) / len(single), 3),
            "tokens_per_call": round((engine.calls + engine.verified) / engine.calls, 2),
            "draft_after_draft": round(engine.policy.after_draft.value, 3),
            "draft_after_other": round(engine.policy.after_other.value, 3),
            "same_tokens": round(float(np.mean([a == b for a, b in zip(tokens, single)])), 4),
            "decoder_ms_per_token": {"single": round(single_ms, 2), "verified": round(verified_ms, 2)},
            "decoder_speedup": round(single_ms / verified_ms, 2),
            "projected_at_speech_padding": projected_speedup(model.decoder_costs)}


def projected_speedup(costs: dict, steps: int = 200_000) -> dict:
    """What the measured costs give at real speech's padding, which random weights do not emit: the
    policy's calls over a token sequence drawn with the priors' chances (padding after padding 0.73, after
    text 0.5; docs/voxtral.md), decoder cost per token against single steps."""
    from voxedge.engines.draft_policy import PRIOR_AFTER_DRAFT, PRIOR_AFTER_OTHER, DraftPolicy

    rng = np.random.default_rng(0)
    draws = rng.random(steps)
    policy = DraftPolicy(costs, 32)
    position = cost = calls = 0
    previous_is_draft = True
    while position < steps:
        k = policy.steps(previous_is_draft)
        accepted = 0
        while accepted < k and position < steps:  # the first token, then each one after the draft
            previous_is_draft = draws[position] < (PRIOR_AFTER_DRAFT if previous_is_draft else PRIOR_AFTER_OTHER)
            position += 1
            accepted += 1
            if not previous_is_draft:
                break
        cost += policy.costs[k]
        calls += 1
    return {"draft_after_draft": round(PRIOR_AFTER_DRAFT, 3), "draft_after_other": PRIOR_AFTER_OTHER,
            "tokens_per_call": round(steps / calls, 2), "decoder_speedup": round(steps / cost, 2)}


def _resident_gb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize() / 2**30


def steady_steps(model, audio: np.ndarray, encoder_batch: int) -> dict:
    """Median per-80-ms-step costs with both caches at the benchmark's context (values are random:
    the cost of attention depends on how many positions there are, not on what they hold)."""
    stream = model.stream(delay_ms=480, encoder_batch=encoder_batch)
    chunk = model.padding.first_chunk(6)
    stream.feed(audio[:chunk])  # the prefill
    enc, dec = stream.engine._encoder, stream.engine._decoder
    for cache, length in ((enc.cache, model.config.encoder.window - 1), (dec.cache, CONTEXT)):
        cache.reserve(length - cache.length)  # grow the buffers, then pretend they are that full
        cache.length = length
    walls, encs, decs = [], [], []
    block = 1280 * encoder_batch
    position = chunk
    for _ in range(max(STEPS // encoder_batch, 3)):
        e0, d0, t0 = enc.seconds, dec.seconds, time.perf_counter()
        stream.feed(audio[position : position + block])
        walls.append((time.perf_counter() - t0) / encoder_batch)
        encs.append((enc.seconds - e0) / encoder_batch)
        decs.append((dec.seconds - d0) / encoder_batch)
        position += block
        dec.cache.length = CONTEXT  # the encoder cache compacts on its own, as in a live stream
    outside = [w - e - d for w, e, d in zip(walls, encs, decs)]  # per step, then the median
    step, e, d, out = (float(np.median(x)) * 1e3 for x in (walls, encs, decs, outside))
    return {"step_ms": step, "encoder_ms": e, "decoder_ms": d, "outside_onnxruntime_ms": out,
            "outside_onnxruntime_share": out / step}


def concat_encoder_ms(bundle: Path, model) -> float:
    """One 80 ms step of the concat-KV encoder at a full window: past in, grown present out, trimmed."""
    from voxedge.options import RuntimeOptions
    from voxedge.runtime import create_session

    from .concat_kv import window_mask

    cfg = model.config.encoder
    session = create_session(concat_encoder_path(bundle), RuntimeOptions())
    keep = cfg.window - 1
    past = [np.zeros((1, cfg.heads, keep, cfg.head_dim), np.float32) for _ in range(2 * cfg.layers)]
    names = [f"past_{kind}.{i}" for i in range(cfg.layers) for kind in ("key", "value")]
    outputs = [o.name for o in session.get_outputs()]
    conv1, conv2 = np.zeros((1, 128, 2), np.float32), np.zeros((1, cfg.hidden, 1), np.float32)
    mel = np.zeros((1, 128, 8), np.float32)
    times, position = [], 10_000
    for _ in range(STEPS):
        positions = np.arange(position, position + 4)
        feeds = {"mel": mel, "conv1_state": conv1, "conv2_state": conv2, "position_ids": positions[None],
                 "attention_mask": window_mask(positions, np.arange(position - keep, position + 4), cfg.window),
                 **dict(zip(names, past))}
        start = time.perf_counter()
        result = dict(zip(outputs, session.run(None, feeds)))
        past = [result[n.replace("past", "present")][:, :, -keep:] for n in names]
        times.append(time.perf_counter() - start)
        position += 4
    return float(np.median(times)) * 1e3


def run(presets, out: Path | None = None, rounds: int = 5) -> list[dict]:
    results = []
    for preset in presets:
        bundle = build(preset)
        # a fresh process per preset: its peak RSS and caches are its own
        output = subprocess.run([sys.executable, "-m", "benchmarks.voxtral_real", "--measure", str(bundle),
                                 "--rounds", str(rounds)], check=True, capture_output=True, text=True).stdout
        results.append(json.loads(output))
        print(json.dumps(results[-1]), file=sys.stderr)
    return results


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--presets", default="int4,int8")
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--rounds", type=int, default=5, help="rounds of steady steps, each with its own bandwidth")
    parser.add_argument("--first-token", type=Path, metavar="BUNDLE", help="only the first-token latency of BUNDLE")
    parser.add_argument("--verify-cost", type=Path, metavar="BUNDLE",
                        help="only the cost of decoder calls over 1, 2, 4 and 8 positions in BUNDLE")
    args = parser.parse_args(argv)
    bundle = args.first_token or args.verify_cost
    if bundle:
        import voxedge
        from voxedge.bench.device import machine

        model = voxedge.load(bundle, verify=False)
        result = {"bundle": str(bundle), "preset": model.bundle.manifest["quantization"], "machine": machine()}
        if args.first_token:
            audio = (0.1 * np.random.default_rng(0).standard_normal(16000 * 2)).astype(np.float32)
            result.update(first_token_ms(model, audio, rounds=21))
        else:
            result["decoder_call_cost_by_positions"] = verify_cost(model)
        print(json.dumps(result, indent=1))
        return
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    print(json.dumps(measure(args.measure, args.rounds) if args.measure else run(args.presets.split(","), rounds=args.rounds),
                     indent=1))


if __name__ == "__main__":
    main()
