"""Whisper checkpoint (transformers layout) -> voxedge bundle."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ..bundle_writer import extend_manifest, write_manifest
from ..checkpoint import Checkpoint, ExportError
from ..mel import slaney_mel_filters
from ..quantize import PRESETS, check_shapes
from ..validation import check, compare
from ..vad import copy_vad
from . import graphs, npu_graphs
from .graphs import N_FRAMES
from .tokenizer import read_encoding, read_tokenizer

FAMILY = "whisper"
BUILDERS = {"cpu": graphs, "npu": npu_graphs}  # --target: the module with build_encoder and build_decoder


def export(ckpt: Checkpoint, out: Path, preset: str, stage, sample_audio: np.ndarray | None = None,
           target: str = "cpu") -> dict:
    """Build the bundle in `out` and validate it against transformers; returns the manifest."""
    from . import reference  # torch and transformers: only here, write_bundle needs neither

    generation = json.loads(ckpt.file("generation_config.json").read_text())
    clip = _validation_clip(sample_audio)
    with stage("reference run (transformers)"):
        features, expected_tokens, expected_logits = reference.generate(ckpt.root, clip)
    manifest = write_bundle(ckpt, out, preset, stage, generation, target)
    with stage("validation against transformers"):
        report = compare((expected_tokens, expected_logits), _run_bundle(out, features), manifest["model"]["tokens"]["eot"])
        report.update(reference=f"transformers {reference.version()}: greedy generate() in float32 on the same features",
                      clip_seconds=min(len(clip), 30 * 16000) / 16000,
                      clip="--sample-audio" if sample_audio is not None else "built-in synthetic signal")
        manifest = record_validation(out, report)
        check(report, preset)
    return manifest


def write_bundle(ckpt: Checkpoint, out: Path, preset: str, stage, generation: dict, target: str = "cpu") -> dict:
    """Graphs, tables and manifest, without validation (needs numpy and onnx only). `generation` is the
    checkpoint's generation config: suppression lists, initial timestamp limit, alignment heads.
    `target`: "cpu" (the default graphs) or "npu" (fixed shapes, standard ops: export/whisper/npu_graphs.py)."""
    cfg = ckpt.config
    if target == "npu" and preset == "int8":
        return npu_graphs.write_quantized(ckpt, out, stage, generation, write_bundle)
    builders = BUILDERS[target]
    check_shapes(preset, {"decoder": cfg["d_model"] // cfg["decoder_attention_heads"]}, cfg["d_model"])
    formats = PRESETS[preset]
    table, special, languages = read_tokenizer(ckpt.file("tokenizer.json"), cfg["vocab_size"])
    pattern, merges = read_encoding(ckpt.file("tokenizer.json"))
    with stage("encoder graph"):
        builders.build_encoder(out / "encoder.onnx", ckpt, cfg, formats["encoder"], stage.bar).save()
    with stage("decoder graph"):
        decoder = builders.build_decoder(out / "decoder_step.onnx", ckpt, cfg, formats["decoder"], formats["lm_head"],
                                         stage.bar)
        decoder.save()
    with stage("tables"):
        np.save(out / "mel_filters.npy", slaney_mel_filters(cfg["num_mel_bins"]))
        np.savez(out / "tokenizer.npz", **table.arrays())
        vad = copy_vad(out, stage.stream)
        np.save(out / "tokenizer_merges.npy", merges)

    graphs = {
        "encoder": {"file": "encoder.onnx", "quantization": formats["encoder"].label},
        "decoder_step": {"file": "decoder_step.onnx", "quantization": formats["decoder"].label,
                         "lm_head_quantization": formats["lm_head"].label},
    }
    model_cfg = _model_config(cfg, generation, special, languages, formats, decoder.locations)
    model_cfg["vad"] = vad
    model_cfg["text_encoder"] = {"algorithm": "merges", "pattern": pattern, "merges": "tokenizer_merges.npy"}
    model_cfg["target"] = target  # which accelerators the graphs are made for (docs/hardware.md)
    source = {"checkpoint": ckpt.source, "revision": ckpt.revision, "model_type": cfg["model_type"]}
    if ckpt.weights:
        source["weights"] = ckpt.weights
    return write_manifest(out, FAMILY, source, preset, graphs, model_cfg)


def record_validation(out: Path, report: dict) -> dict:
    """Store what validated the bundle as validation.json and list it in the manifest."""
    (out / "validation.json").write_text(json.dumps(report, indent=1) + "\n")
    return extend_manifest(out, validation="validation.json")


def _validation_clip(sample_audio):
    if sample_audio is not None:
        return sample_audio
    from ..voxtral.validate import sample_clip

    return sample_clip()


def _run_bundle(out: Path, features: np.ndarray):
    """voxedge's runtime on transformers' own features for the window: greedy, no timestamps."""
    import voxedge
    from voxedge.engines.whisper_decoding import WindowDecoder

    model = voxedge.load(out)
    tokens, logits = [], []
    decoder = WindowDecoder(model, on_step=lambda token, lg: (tokens.append(token), logits.append(lg)))
    decoder.decode(model.encode(features), [*model.config.sot_sequence, model.config.tokens.no_timestamps],
                   timestamps=False)
    return tokens, np.stack(logits)


def _model_config(cfg, generation, special, languages, formats, locations) -> dict:
    if special["no_speech"] is None:
        raise ExportError("the tokenizer has no <|nospeech|>/<|nocaptions|> token")
    multilingual = bool(languages) and cfg["vocab_size"] >= 51865
    sot_sequence = [special["sot"]] + ([languages["en"], special["transcribe"]] if multilingual else [])
    # faster-whisper's default suppression: the checkpoint's non-speech list plus control tokens
    suppress = sorted(set(generation.get("suppress_tokens", [])) | {special[k] for k in (
        "transcribe", "translate", "sot", "sot_prev", "sot_lm", "no_speech")})
    head = formats["lm_head"]
    embedding = {"format": head.label, "file": "decoder_step.onnx.data", "vocab": cfg["vocab_size"], "hidden": cfg["d_model"]}
    if head.bits:
        embedding.update(offset=locations["lm_head.qweight"][0], scales_offset=locations["lm_head.scales"][0],
                         block_size=head.block_size)
    else:
        embedding.update(offset=locations["lm_head.weight"][0])
    return {
        "n_mels": cfg["num_mel_bins"],
        "n_fft": 400,
        "hop_length": 160,
        "window_frames": N_FRAMES,
        "mel_filters": "mel_filters.npy",
        "tokenizer": "tokenizer.npz",
        "tokens": special,
        "sot_sequence": sot_sequence,
        "languages": languages if multilingual else {},
        "suppress_tokens": suppress,
        "begin_suppress_tokens": generation.get("begin_suppress_tokens", [220, special["eot"]]),
        "max_initial_timestamp_index": generation.get("max_initial_timestamp_index", 50),
        # cross-attention heads that follow the alignment of text to audio (word timestamps), when known
        "alignment_heads": generation.get("alignment_heads"),
        "decoder": {"layers": cfg["decoder_layers"], "heads": cfg["decoder_attention_heads"],
                    "head_dim": cfg["d_model"] // cfg["decoder_attention_heads"], "hidden": cfg["d_model"],
                    "max_positions": cfg["max_target_positions"], "vocab": cfg["vocab_size"]},
        "embedding": embedding,
    }
