"""Voxtral Mini 4B Realtime checkpoint -> voxedge bundle."""

from __future__ import annotations

import gc
import json
from pathlib import Path

import numpy as np

from ..bundle_writer import extend_manifest, write_manifest
from ..checkpoint import Checkpoint, ExportError
from ..mel import slaney_mel_filters
from ..quantize import PRESETS, check_shapes
from ..validation import check, compare
from ..vad import copy_vad
from . import npu_graphs, reference, validate
from .delay import SUPPORTED_DELAYS_MS, ada_scales
from .graphs import SHARED_KV, build_decoder, build_encoder
from .tokenizer import read_tekken, text_encoder

FAMILY = "voxtral_realtime"


def export(ckpt: Checkpoint, out: Path, preset: str, stage, sample_audio: np.ndarray | None = None,
           target: str = "cpu") -> dict:
    """Build the bundle in `out` and validate it; returns the manifest. `stage(label)` is a context
    manager for progress reporting and `stage.bar(items, label)` wraps long loops."""
    text = ckpt.config["text_config"]
    _check(ckpt.config, preset)
    _, special, tekken_audio = read_tekken(ckpt.file("tekken.json"), text["vocab_size"])
    delay_ms = int(tekken_audio.get("transcription_delay_ms", 480))
    clip = validate.sample_clip() if sample_audio is None else sample_audio

    # The torch reference runs first and is freed before any graph is built: the checkpoint is never
    # in memory twice.
    with stage("reference run (transformers)"):
        model = reference.load_model(ckpt.root)
        expected = reference.generate(model, clip, delay_ms, special["bos"], special["streaming_pad"])
        del model
        gc.collect()

    write_bundle(ckpt, out, preset, stage, target=target)
    with stage("validation against transformers"):
        report = compare(expected, validate.run_bundle(out, clip, delay_ms), special["eos"])
        report.update(delay_ms=delay_ms, clip_seconds=len(clip) / 16000,
                      clip="--sample-audio" if sample_audio is not None else "built-in synthetic signal")
        (out / "validation.json").write_text(json.dumps(report, indent=1) + "\n")
        manifest = extend_manifest(out, validation="validation.json")
        check(report, preset)
    return manifest


def write_bundle(ckpt, out: Path, preset: str, stage, kv=SHARED_KV, target: str = "cpu") -> dict:
    """Graphs, tables and manifest, without validation (the benchmarks call this on random weights).
    `kv` is the encoder's attention/KV-cache scheme (the benchmarks compare schemes); `target` "npu"
    builds the fixed-shape graphs of export/voxtral/npu_graphs.py instead."""
    cfg = ckpt.config
    _check(cfg, preset)
    text, audio = cfg["text_config"], cfg["audio_config"]
    formats = PRESETS[preset]
    table, special, tekken_audio = read_tekken(ckpt.file("tekken.json"), text["vocab_size"])
    delay_ms = int(tekken_audio.get("transcription_delay_ms", 480))
    npu = target == "npu"
    with stage("audio encoder graph"):
        if npu:
            npu_graphs.build_encoder(out / "audio_encoder_step.onnx", ckpt, cfg, formats["encoder"], formats["adapter"],
                                     stage.bar).save()
        else:
            build_encoder(out / "audio_encoder_step.onnx", ckpt, cfg, formats["encoder"], formats["adapter"], stage.bar,
                          kv).save()
    with stage("decoder graph"):
        decoder = (npu_graphs.build_decoder if npu else build_decoder)(
            out / "decoder_step.onnx", ckpt, cfg, formats["decoder"], formats["lm_head"], stage.bar)
        decoder.save()
    with stage("tables"):
        np.save(out / "mel_filters.npy", slaney_mel_filters(audio["num_mel_bins"]))
        np.save(out / "ada_scales.npy", ada_scales(ckpt, SUPPORTED_DELAYS_MS, text["hidden_size"], text["num_hidden_layers"]))
        np.savez(out / "tokenizer.npz", **table.arrays())
        vad = copy_vad(out, stage.stream)

    graphs = {
        "audio_encoder_step": {"file": "audio_encoder_step.onnx", "quantization": formats["encoder"].label,
                               "adapter_quantization": formats["adapter"].label},
        "decoder_step": {"file": "decoder_step.onnx", "quantization": formats["decoder"].label,
                         "lm_head_quantization": formats["lm_head"].label},
    }
    model_cfg = _model_config(cfg, tekken_audio, special, delay_ms, formats, decoder.locations, preset)
    model_cfg["vad"] = vad
    model_cfg["text_encoder"] = text_encoder(ckpt.file("tekken.json"))
    model_cfg["target"] = target  # which accelerators the graphs are made for (docs/hardware.md)
    source = {"checkpoint": ckpt.source, "revision": ckpt.revision, "model_type": cfg["model_type"]}
    return write_manifest(out, FAMILY, source, preset, graphs, model_cfg)


def _check(cfg: dict, preset: str) -> None:
    text, audio = cfg["text_config"], cfg["audio_config"]
    check_shapes(preset, {"encoder": audio["head_dim"], "decoder": text["head_dim"]}, text["hidden_size"])


def _model_config(cfg, tekken_audio, special, delay_ms, formats, locations, preset) -> dict:
    text, audio = cfg["text_config"], cfg["audio_config"]
    if tekken_audio.get("sampling_rate", 16000) != 16000:
        raise ExportError("only 16 kHz Voxtral checkpoints are supported")
    samples_per_token = int(16000 / tekken_audio["frame_rate"])
    head = formats["lm_head"]
    if head.bits:
        embedding = {"format": head.label, "offset": locations["lm_head.qweight"][0],
                     "scales_offset": locations["lm_head.scales"][0], "block_size": head.block_size}
    else:
        embedding = {"format": head.label, "offset": locations["lm_head.weight"][0]}
    embedding.update(file="decoder_step.onnx.data", vocab=text["vocab_size"], hidden=text["hidden_size"])
    return {
        "n_mels": audio["num_mel_bins"],
        "n_fft": tekken_audio["audio_encoding_config"]["window_size"],
        "hop_length": tekken_audio["audio_encoding_config"]["hop_length"],
        "log_mel_max": 1.5,  # global_log_mel_max of the real checkpoint's feature extractor
        "mel_filters": "mel_filters.npy",
        "samples_per_token": samples_per_token,
        "mel_frames_per_token": cfg["audio_length_per_tok"],
        "ms_per_token": 1000 * samples_per_token // 16000,
        "left_pad_tokens": tekken_audio["streaming_n_left_pad_tokens"],
        "buffer_tokens": 10,  # mistral-common OFFLINE_STREAMING_BUFFER_TOKENS
        "delays_ms": list(SUPPORTED_DELAYS_MS),
        "default_delay_ms": delay_ms,
        "ada_scales": "ada_scales.npy",
        "tokenizer": "tokenizer.npz",
        "tokens": special,
        "kv_dtype": "float16" if preset == "fp16" else "float32",
        "encoder": {"layers": audio["num_hidden_layers"], "heads": audio["num_attention_heads"],
                    "head_dim": audio["head_dim"], "hidden": audio["hidden_size"], "window": audio["sliding_window"]},
        "decoder": {"layers": text["num_hidden_layers"], "heads": text["num_attention_heads"],
                    "kv_heads": text["num_key_value_heads"], "head_dim": text["head_dim"],
                    "hidden": text["hidden_size"], "window": text["sliding_window"], "vocab": text["vocab_size"]},
        "embedding": embedding,
    }
