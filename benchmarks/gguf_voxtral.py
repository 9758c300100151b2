"""The voxtral suite's random real-size Voxtral Realtime weights as the GGUF CrispASR loads (arch `voxtral4b`).

    python -m benchmarks.gguf_voxtral q4_k|q4_0|q8_0|f16 OUT.gguf

CrispASR converts the Hugging Face checkpoint with `models/convert-voxtral4b-to-gguf.py` (F16) and then
quantizes with `crispasr-quantize`; neither tool ships in the PyPI wheel. This writes the same file in one
pass from `benchmarks.random_voxtral.RandomCheckpoint` (the very tensors the voxedge bundles of the
voxtral suite are exported from, seeded per name), so both runtimes time the same weights:

- tensor names and metadata keys: the ones `voxtral4b_load_model` reads (src/voxtral4b.cpp), as the
  converter writes them; the Tekken vocabulary as its blob of (uint16 length, bytes) per rank, stored as
  a float32 tensor, with the mel filters and the Hann window;
- types: the converter keeps biases, norms, the adaptive-norm projections and 1-D tensors in float32
  and writes the rest as float16; crispasr-quantize then quantizes the 2-D weights whose name has
  "weight" and no "norm" (token embedding included) to the target type, falling back from Q4_K to Q4_0
  where a row does not tile 256 values. The quantized values start from the float16-rounded weights, as
  they would from the F16 file.
"""

from __future__ import annotations

import argparse
import base64
import json
import re
import struct
from pathlib import Path

import numpy as np

from .ggml_quant import BLOCK_SIZE, GGML_TYPES, Quantizer

ARCH = "voxtral4b"
QUANTS = ("q4_k", "q4_0", "q8_0", "f16")
_DIRECT = {
    "audio_tower.embedder.conv1.weight": "audio.conv.1.weight", "audio_tower.embedder.conv1.bias": "audio.conv.1.bias",
    "audio_tower.embedder.conv2.weight": "audio.conv.2.weight", "audio_tower.embedder.conv2.bias": "audio.conv.2.bias",
    "audio_tower.norm.weight": "audio.ln_post.weight", "multi_modal_projector.linear_1.weight": "proj1.weight",
    "multi_modal_projector.linear_2.weight": "proj2.weight", "language_model.model.embed_tokens.weight": "token_embd.weight",
    "language_model.model.norm.weight": "output_norm.weight",
}
_AUDIO = {"self_attn_layer_norm": "attn_norm", "final_layer_norm": "ffn_norm", "self_attn.q_proj": "attn_q",
          "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v", "self_attn.o_proj": "attn_out",
          "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down"}
_LLM = {"input_layernorm": "attn_norm", "post_attention_layernorm": "ffn_norm", "self_attn.q_proj": "attn_q",
        "self_attn.k_proj": "attn_k", "self_attn.v_proj": "attn_v", "self_attn.o_proj": "attn_output",
        "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down",
        "ada_rms_norm.linear1": "ada_norm_down", "ada_rms_norm.linear2": "ada_norm_up"}
_LAYER = re.compile(r"(audio_tower|language_model\.model)\.layers\.(\d+)\.(.+)\.(weight|bias)$")


def gguf_name(hf: str) -> str:
    if hf in _DIRECT:
        return _DIRECT[hf]
    stack, layer, part, leaf = _LAYER.match(hf).groups()
    if stack == "audio_tower":
        return f"audio.blk.{layer}.{_AUDIO[part]}.{leaf}"
    return f"blk.{layer}.{_LLM[part]}.{leaf}"


def tensor_type(name: str, shape: tuple, quant: str) -> str:
    if name.endswith(".bias") or "norm" in name or "ln_post" in name or len(shape) <= 1:
        return "f32"
    if quant == "f16" or len(shape) != 2 or "weight" not in name:
        return "f16"
    if shape[-1] % BLOCK_SIZE[quant]:  # crispasr_row_fit
        return "q4_0" if quant == "q4_k" and shape[-1] % BLOCK_SIZE["q4_0"] == 0 else "f16"
    return quant


def _metadata(writer, cfg: dict, tekken: dict) -> None:
    audio, text = cfg["audio_config"], cfg["text_config"]
    u32 = {
        "sample_rate": 16000, "n_mels": audio["num_mel_bins"], "n_fft": 400, "win_length": 400, "hop_length": 160,
        "audio.n_layers": audio["num_hidden_layers"], "audio.d_model": audio["hidden_size"],
        "audio.n_heads": audio["num_attention_heads"], "audio.head_dim": audio["head_dim"],
        "audio.ff_dim": audio["intermediate_size"], "audio.max_pos": 1500, "audio.sliding_window": audio["sliding_window"],
        "proj.in_dim": audio["hidden_size"] * cfg["downsample_factor"], "proj.out_dim": text["hidden_size"],
        "proj.frame_stack": cfg["downsample_factor"], "llm.n_layers": text["num_hidden_layers"],
        "llm.d_model": text["hidden_size"], "llm.n_heads": text["num_attention_heads"],
        "llm.n_kv_heads": text["num_key_value_heads"], "llm.head_dim": text["head_dim"],
        "llm.ff_dim": text["intermediate_size"], "llm.vocab_size": text["vocab_size"], "llm.max_pos": 131072,
        "llm.sliding_window": text["sliding_window"], "llm.ada_norm_dim": 32, "audio_token_id": 24,
    }
    for key, value in u32.items():
        writer.add_uint32(f"{ARCH}.{key}", int(value))
    writer.add_float32(f"{ARCH}.audio.rope_theta", float(audio["rope_parameters"]["rope_theta"]))
    writer.add_float32(f"{ARCH}.llm.rope_theta", float(text["rope_parameters"]["rope_theta"]))
    writer.add_float32(f"{ARCH}.llm.rms_norm_eps", float(text["rms_norm_eps"]))
    writer.add_bool(f"{ARCH}.llm.tied_embeddings", True)
    specials = [s["token_str"] for s in tekken["special_tokens"]]
    writer.add_string("tokenizer.tekken.pattern", tekken["config"]["pattern"])
    writer.add_array("tokenizer.tekken.specials", specials)
    writer.add_uint32("tokenizer.tekken.n_specials", len(specials))
    writer.add_uint32("tokenizer.tekken.n_vocab", len(tekken["vocab"]))


def _tables(tekken: dict, n_mels: int) -> dict[str, np.ndarray]:
    from export.mel import slaney_mel_filters as _mel_filters

    blob = b"".join(struct.pack("<H", len(raw)) + raw
                    for raw in (base64.b64decode(entry["token_bytes"]) for entry in tekken["vocab"]))
    n = np.arange(400)
    return {"tokenizer.tekken.vocab_tensor": np.frombuffer(blob, np.uint8).astype(np.float32),
            "audio.mel_filters": np.ascontiguousarray(_mel_filters(n_mels), np.float32),  # [201, n_mels]
            "audio.mel_window": (0.5 - 0.5 * np.cos(2 * np.pi * n / 400)).astype(np.float32)}  # periodic Hann


def write_gguf(ckpt, out, quant: str, threads: int = 2) -> Path:
    """`ckpt`: a checkpoint callable by Hugging Face tensor name (RandomCheckpoint), one tensor at a time."""
    import gguf

    if quant not in QUANTS:
        raise ValueError(f"unknown type {quant!r}: choose from {', '.join(QUANTS)}")
    tekken = json.loads(ckpt.file("tekken.json").read_text(encoding="utf-8"))
    tables = _tables(tekken, ckpt.config["audio_config"]["num_mel_bins"])
    quantizer = Quantizer("crispasr")
    shapes = ckpt.tensors()
    hf_names = sorted(shapes)
    plan = [(name, table.shape, "f32") for name, table in tables.items()]
    plan += [(gguf_name(hf), shapes[hf], None) for hf in hf_names]
    plan = [(name, shape, kind or tensor_type(name, shape, quant)) for name, shape, kind in plan]

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    writer = gguf.GGUFWriter(str(tmp), arch=ARCH)
    _metadata(writer, ckpt.config, tekken)
    for name, shape, kind in plan:
        writer.add_tensor_info(name, shape, np.float32, quantizer.nbytes(kind, shape),
                               raw_dtype=gguf.GGMLQuantizationType(GGML_TYPES[kind]))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    sources = [tables[name] for name in tables] + [hf for hf in hf_names]
    for (name, shape, kind), source in zip(plan, sources):
        values = source if isinstance(source, np.ndarray) else ckpt(source)
        if kind != "f32":
            values = values.astype(np.float16).astype(np.float32)  # the F16 file's values
        writer.write_tensor_data(quantizer(values, kind, threads))
        del values
    writer.close()
    tmp.rename(out)
    return out


def main(argv=None) -> None:
    from .random_voxtral import RandomCheckpoint
    from .voxtral_real import CACHE

    parser = argparse.ArgumentParser(prog="python -m benchmarks.gguf_voxtral", description=__doc__.split("\n\n")[0])
    parser.add_argument("quant", choices=QUANTS)
    parser.add_argument("out", type=Path)
    args = parser.parse_args(argv)
    print(write_gguf(RandomCheckpoint(CACHE / "random-checkpoint"), args.out, args.quant))


if __name__ == "__main__":
    main()
