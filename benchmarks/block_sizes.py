"""What larger 4-bit blocks cost in accuracy, on real weights: Whisper base's decoder linears quantized to
4 bits in blocks of 32, 64 and 128 values, against the same bundle with 8-bit and float32 decoders.

    python -m benchmarks blocks          (or voxedge bench blocks)

Real Voxtral weights are not on hand; Whisper base's are (multilingual, 74 M parameters), so its decoder
stands in as the proxy docs/voxtral.md names. The quantized bundles share the encoder and the LM head
(8 bits) and differ only in their decoder's linears; fp32 is the reference. Scored with `voxedge eval`'s clips and figures
(benchmarks/evaluate.py): WER and CER on the English sentences and recordings and the sentences in six
more languages, and the share of the fp32 bundle's words each reproduces. The speed of the block sizes
at Voxtral's real size is the voxtral suite's (`--presets int4,int4-b64,int4-b128`).
"""

from __future__ import annotations

from pathlib import Path

PRESETS = ("fp32", "int8", "int4", "int4-b64", "int4-b128")
CACHE = Path(__file__).parent / ".cache"


def checkpoint():
    from export.whisper.ct2_checkpoint import Ct2Checkpoint
    from voxedge.catalog import CATALOG

    entry = CATALOG["whisper-base"]
    folder, parts = entry.weights.locate()
    return Ct2Checkpoint(folder, parts, entry.checkpoint, entry.weights.label())


def bundle(preset: str, ckpt) -> Path:
    """Whisper base exported with `preset` (built once into benchmarks/.cache)."""
    from export.stages import Stages
    from export.whisper import write_bundle

    out = CACHE / f"whisper-base-{preset}"
    if (out / "manifest.json").exists():
        return out
    out.mkdir(parents=True, exist_ok=True)
    write_bundle(ckpt, out, preset, Stages(), ckpt.generation)
    return out


def run(repeats: int = 1) -> dict:
    """`repeats` is unused: the figures are counts of words, not times."""
    from benchmarks.corpus import MULTILINGUAL
    from export.quantize import PRESETS as FORMATS

    from .evaluate import evaluate, table

    ckpt = checkpoint()
    bundles = {preset: bundle(preset, ckpt) for preset in PRESETS}
    results = evaluate(list(bundles.values()), languages=[code for code in MULTILINGUAL if code != "en"])
    for preset, path in bundles.items():
        decoder = FORMATS[preset]["decoder"]
        results["bundles"][str(path)].update(decoder_format=decoder.label,
                                             decoder_bytes_per_weight=decoder.bytes_per_weight,
                                             decoder_weight_error=weight_error(ckpt, decoder))
    return {"model": "openai/whisper-base", **results, "table": table(results)}


def weight_error(ckpt, fmt) -> float | None:
    """The decoder graph's linears' quantization error, ||W - Q(W)|| / ||W|| over all of them (None: float
    weights). The cross-attention keys and values are projected in the encoder graph, with its format."""
    import numpy as np

    from export.quantize import quantize_blockwise
    from voxedge.engines.embedding import dequantize

    if not fmt.bits:
        return None
    error = total = 0.0
    for name in ckpt.names():
        weight = ckpt(name)
        if (not name.startswith("model.decoder.layers.") or weight.ndim != 2
                or any(cross in name for cross in ("encoder_attn.k_proj", "encoder_attn.v_proj"))):
            continue
        packed, scales = quantize_blockwise(weight, fmt)
        restored = dequantize(packed.reshape(len(weight), -1), scales, fmt.bits, fmt.block_size)[:, : weight.shape[1]]
        error += float(np.square(restored - weight).sum())
        total += float(np.square(weight).sum())
    return round((error / total) ** 0.5, 5)
