"""Whisper's graphs for NPUs (`--target npu`, docs/hardware.md): fixed shapes and standard ops only.

encoder:      the default one on 30 s windows (standard ops)
decoder_step: one token per call; self-attention over a fixed 448-slot cache (StaticKV: an attention
              mask input, the new K/V returned for the runtime to write), so nothing in the graph
              depends on the sequence length. The prompt is fed token by token.

Weights: fp32, or int8 = QDQ with 8-bit weights and 16-bit activations calibrated on real recordings
(`write_quantized`, export/npu_quantize.py).
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import numpy as np

from ..bundle_writer import write_manifest
from ..checkpoint import ExportError
from ..layers import StaticKV
from ..npu_quantize import LABEL, quantize_graph, spread
from .graphs import N_FRAMES
from .graphs import build_decoder as build_default_decoder
from .graphs import build_encoder as build_default_encoder

__all__ = ["build_decoder", "build_encoder", "write_quantized"]
CALIBRATION = ("two_cities.wav", "beckett.wav")


def build_encoder(path, ckpt, cfg: dict, fmt, progress=None):
    return build_default_encoder(path, ckpt, cfg, fmt, progress, frames=N_FRAMES)


def build_decoder(path, ckpt, cfg: dict, fmt, head_fmt, progress=None):
    kv = StaticKV(capacity=cfg["max_target_positions"], positions=1)
    g = build_default_decoder(path, ckpt, cfg, fmt, head_fmt, progress, kv=kv, frames=N_FRAMES)
    kv.describe(g, sliced={"inputs_embeds": 1, "position_ids": 1})
    return g


def write_quantized(ckpt, out: Path, stage, generation: dict, write_bundle) -> dict:
    """The int8 npu bundle: the float npu bundle is built in a scratch directory, run on the calibration
    recordings, and its graphs quantized into `out` (export/npu_quantize.py). The token embedding, read
    by the runtime, is stored in float16 beside them."""
    with tempfile.TemporaryDirectory(prefix="voxedge-npu-float-") as scratch:
        scratch = Path(scratch)
        float_manifest = write_bundle(ckpt, scratch, "fp32", stage, generation, "npu")
        with stage("calibration on real recordings"):
            samples = calibration_samples(scratch, calibration_recordings())
        with stage(f"QDQ quantization ({LABEL})"):
            for graph in ("encoder", "decoder_step"):
                quantize_graph(scratch / f"{graph}.onnx", out / f"{graph}.onnx", spread(samples[graph]))
        model = dict(float_manifest["model"])
        embedding = model["embedding"]
        table = np.memmap(scratch / embedding["file"], np.float32, "r", embedding["offset"],
                          (embedding["vocab"], embedding["hidden"]))
        table.astype(np.float16).tofile(out / "token_embedding.bin")
        model["embedding"] = {**embedding, "format": "fp16", "file": "token_embedding.bin", "offset": 0}
        for name in ("mel_filters.npy", "tokenizer.npz", "silero_vad.onnx"):
            if (scratch / name).exists():
                shutil.copyfile(scratch / name, out / name)
    graphs = {name: {"file": f"{name}.onnx", "quantization": LABEL} for name in ("encoder", "decoder_step")}
    graphs["decoder_step"]["lm_head_quantization"] = LABEL
    return write_manifest(out, float_manifest["family"], float_manifest["source"], "int8", graphs, model)


def calibration_recordings() -> list[str]:
    """The real recordings the ranges are calibrated on (moonshine-voice ships them)."""
    from .offline import recording

    paths = [recording(name) for name in CALIBRATION]
    if not all(paths):
        raise ExportError(f"calibrating the int8 npu bundle needs the recordings {', '.join(CALIBRATION)} of "
                          "moonshine-voice: pip install --no-deps moonshine-voice")
    return paths


def calibration_samples(bundle: Path, recordings: list[str]) -> dict:
    """Feeds of both graphs while the float bundle transcribes the recordings window by window: every
    encoder window, and every fourth decoder step (the whole cache is in each one)."""
    import voxedge
    from voxedge.audio import load_audio
    from voxedge.engines.whisper_decoding import WindowDecoder

    model = voxedge.load(bundle)
    frames = model.config.window_frames
    samples = {"encoder": [], "decoder_step": []}
    for path in recordings:
        mel = model.features(load_audio(path))
        for start in range(0, mel.shape[1], frames):
            window = np.zeros((mel.shape[0], frames), np.float32)
            window[:, : min(frames, mel.shape[1] - start)] = mel[:, start : start + frames]
            samples["encoder"].append({"mel": window[None]})
            decoder = WindowDecoder(model)
            decoder.graph.session = _Recorder(decoder.graph.session, samples["decoder_step"], every=4)
            decoder.decode(model.encode(window), list(model.config.sot_sequence))
    return samples


class _Recorder:
    """A session that keeps a copy of every `every`-th call's feeds (the cross-attention arrays, the
    same for a whole window, are kept by reference)."""

    def __init__(self, session, sink: list, every: int):
        self._session, self._sink, self._every, self._calls = session, sink, every, 0

    def run(self, names, feeds):
        if self._calls % self._every == 0:
            self._sink.append({k: v if k.startswith("cross_") else np.array(v) for k, v in feeds.items()})
        self._calls += 1
        return self._session.run(names, feeds)

    def __getattr__(self, name):
        return getattr(self._session, name)
