"""The manifest's `model` section, parsed once at load time into frozen per-family records.

Engines read typed attributes, never string keys: a missing or mistyped entry is found here, before any
graph is opened, and reported as a `BundleError` that names the key (docs/bundle.md lists them).
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import BundleError

_MAX = 1 << 40  # a bound for sizes and offsets: anything larger is corruption, not a model
_REQUIRED = object()


class Section:
    """Typed reads from one JSON object of the manifest; errors name the key's full path."""

    def __init__(self, data, where: str):
        if not isinstance(data, dict):
            raise BundleError(f"manifest entry {where!r} must be an object, got {type(data).__name__}")
        self.data, self.where = data, where

    def _get(self, key: str, default):
        if key not in self.data:
            if default is _REQUIRED:
                raise BundleError(f"the manifest has no {self.where}.{key} entry; re-export the bundle")
            return default
        return self.data[key]

    def _bad(self, key: str, expected: str):
        return BundleError(f"manifest entry {self.where}.{key} must be {expected}, got {self.data[key]!r:.80}")

    def integer(self, key: str, low: int = 0, high: int = _MAX, default=None) -> int:
        value = self._get(key, _REQUIRED if default is None else default)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise self._bad(key, f"a whole number from {low} to {high}")
        return value

    def optional_int(self, key: str, low: int = 0, high: int = _MAX) -> int | None:
        return None if self.data.get(key) is None else self.integer(key, low, high)

    def number(self, key: str) -> float:
        value = self._get(key, _REQUIRED)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
            raise self._bad(key, "a number")
        return float(value)

    def text(self, key: str, choices=None, default=_REQUIRED) -> str:
        value = self._get(key, default)
        if not isinstance(value, str) or "\x00" in value or (choices and value not in choices):
            raise self._bad(key, f"one of {', '.join(choices)}" if choices else "a string")
        return value

    def integers(self, key: str, default=_REQUIRED) -> tuple[int, ...]:
        value = self._get(key, default)
        if not isinstance(value, list) or not all(isinstance(v, int) and not isinstance(v, bool) and 0 <= v < _MAX
                                                  for v in value):
            raise self._bad(key, "a list of whole numbers")
        return tuple(value)

    def section(self, key: str) -> Section:
        return Section(self._get(key, _REQUIRED), f"{self.where}.{key}")

    def optional_section(self, key: str) -> Section | None:
        return None if self.data.get(key) is None else self.section(key)


@dataclass(frozen=True)
class EmbeddingSpec:
    """Where the token embedding (the tied LM head) lies in a graph's weight file."""

    file: str
    format: str  # fp32 | fp16 | int8 | int4
    vocab: int
    hidden: int
    offset: int
    scales_offset: int | None = None  # quantized formats
    block_size: int | None = None

    @classmethod
    def parse(cls, s: Section) -> EmbeddingSpec:
        fmt = s.text("format", ("fp32", "fp16", "int8", "int4"))
        quantized = fmt in ("int8", "int4")
        spec = cls(s.text("file"), fmt, s.integer("vocab", 1), s.integer("hidden", 1), s.integer("offset"),
                   s.integer("scales_offset") if quantized else None, s.integer("block_size", 1) if quantized else None)
        if quantized and spec.hidden % spec.block_size:
            raise BundleError(f"{s.where}: hidden size {spec.hidden} is not a multiple of block_size {spec.block_size}")
        return spec


@dataclass(frozen=True)
class FrontEnd:
    """The log-mel front end's parameters and filter bank file."""

    n_mels: int
    n_fft: int
    hop_length: int
    mel_filters: str
    log_mel_max: float | None  # a fixed ceiling (Voxtral: causal); None = each window's maximum (Whisper)

    @classmethod
    def parse(cls, s: Section) -> FrontEnd:
        n_fft = s.integer("n_fft", 16, 1 << 16)
        return cls(s.integer("n_mels", 1, 1024), n_fft, s.integer("hop_length", 1, n_fft), s.text("mel_filters"),
                   None if s.data.get("log_mel_max") is None else s.number("log_mel_max"))


@dataclass(frozen=True)
class Attention:
    layers: int
    heads: int
    head_dim: int
    hidden: int
    kv_heads: int
    window: int  # positions a query attends to (its own included)

    @classmethod
    def parse(cls, s: Section, window_key: str = "window") -> Attention:
        heads = s.integer("heads", 1, 4096)
        return cls(s.integer("layers", 1, 4096), heads, s.integer("head_dim", 1, 4096), s.integer("hidden", 1),
                   s.integer("kv_heads", 1, heads, default=heads), s.integer(window_key, 2, _MAX))


class TokenIds:
    """Special token ids: each field is a whole number the manifest's `tokens` entry must hold."""

    @classmethod
    def parse(cls, s: Section):
        return cls(*(s.integer(name) for name in cls.__dataclass_fields__))


@dataclass(frozen=True)
class WhisperTokens(TokenIds):
    eot: int
    sot: int
    sot_prev: int
    sot_lm: int
    transcribe: int
    translate: int
    no_timestamps: int
    timestamp_begin: int
    no_speech: int


@dataclass(frozen=True)
class WhisperConfig:
    front_end: FrontEnd
    window_frames: int  # mel frames per 30 s window
    tokenizer: str
    tokens: WhisperTokens
    sot_sequence: tuple[int, ...]
    languages: dict  # language code -> token id; empty for English-only models
    suppress_tokens: tuple[int, ...]
    begin_suppress_tokens: tuple[int, ...]
    max_initial_timestamp_index: int
    decoder: Attention
    vocab: int
    embedding: EmbeddingSpec

    @classmethod
    def parse(cls, model: dict) -> WhisperConfig:
        s = Section(model, "model")
        decoder = s.section("decoder")
        languages = s.optional_section("languages")
        parsed_languages = {code: languages.integer(code) for code in languages.data} if languages else {}
        return cls(
            FrontEnd.parse(s), s.integer("window_frames", 2, 1 << 20), s.text("tokenizer"),
            WhisperTokens.parse(s.section("tokens")), s.integers("sot_sequence"), parsed_languages,
            s.integers("suppress_tokens"), s.integers("begin_suppress_tokens"), s.integer("max_initial_timestamp_index"),
            Attention.parse(decoder, "max_positions"), decoder.integer("vocab", 1), EmbeddingSpec.parse(s.section("embedding")),
        )

    @property
    def max_positions(self) -> int:
        return self.decoder.window


@dataclass(frozen=True)
class VoxtralTokens(TokenIds):
    bos: int
    eos: int
    streaming_pad: int
    streaming_word: int


@dataclass(frozen=True)
class VoxtralConfig:
    front_end: FrontEnd
    samples_per_token: int
    mel_frames_per_token: int
    ms_per_token: int
    left_pad_tokens: int
    buffer_tokens: int
    delays_ms: tuple[int, ...]
    default_delay_ms: int
    ada_scales: str
    tokenizer: str
    tokens: VoxtralTokens
    kv_dtype: str
    encoder: Attention
    decoder: Attention
    vocab: int
    embedding: EmbeddingSpec

    @classmethod
    def parse(cls, model: dict) -> VoxtralConfig:
        s = Section(model, "model")
        decoder = s.section("decoder")
        config = cls(
            FrontEnd.parse(s), s.integer("samples_per_token", 1), s.integer("mel_frames_per_token", 2),
            s.integer("ms_per_token", 1), s.integer("left_pad_tokens"), s.integer("buffer_tokens"), s.integers("delays_ms"),
            s.integer("default_delay_ms"), s.text("ada_scales"), s.text("tokenizer"), VoxtralTokens.parse(s.section("tokens")),
            s.text("kv_dtype", ("float32", "float16")), Attention.parse(s.section("encoder")), Attention.parse(decoder),
            decoder.integer("vocab", 1), EmbeddingSpec.parse(s.section("embedding")),
        )
        if config.default_delay_ms not in config.delays_ms:
            raise BundleError(f"model.default_delay_ms {config.default_delay_ms} is not among model.delays_ms")
        if config.front_end.log_mel_max is None:
            raise BundleError("the manifest has no model.log_mel_max entry; re-export the bundle")
        if config.mel_frames_per_token % 2:
            raise BundleError("model.mel_frames_per_token must be even (the encoder's stem halves the frame rate)")
        return config
