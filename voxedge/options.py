"""Every knob voxedge has, in frozen records with their defaults and units (as openai/whisper's
`DecodingOptions`). The API, the CLI and the server all build the same records, and each engine says
which fields it supports: a field a family does not support, set to anything but its default,
raises `UnsupportedError` naming it.

    model.transcribe("a.wav", language="fr", beam_size=5)          # fields as keywords
    model.transcribe("a.wav", TranscribeOptions(language="fr"))     # or a record
    model.stream(delay_ms=960, vad=True)
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import os
from dataclasses import dataclass, field

from .errors import OptionError, UnsupportedError


# Short names users may type; anything else is passed to onnxruntime as written.
PROVIDER_ALIASES = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
    "trt-rtx": "NvTensorRTRTXExecutionProvider",
    "coreml": "CoreMLExecutionProvider",
    "qnn": "QNNExecutionProvider",
    "openvino": "OpenVINOExecutionProvider",
    "directml": "DmlExecutionProvider",
    "dml": "DmlExecutionProvider",
    "webgpu": "WebGpuExecutionProvider",
}


def provider_name(name: str) -> str:
    """The onnxruntime name of a provider typed as a short name or in full."""
    return PROVIDER_ALIASES.get(name.strip().lower(), name.strip())


@dataclass(frozen=True)
class RuntimeOptions:
    """How graphs run (docs/hardware.md).

    `providers`: execution providers in priority order, CPU always the last resort; short names
    ("qnn") or onnxruntime's ("QNNExecutionProvider"), each optionally with its options, spelled as on
    the command line: "qnn:soc_model=60,htp_performance_mode=burst,openvino:device_type=NPU" (a
    `key=value` without a provider continues the one before). `provider_options` gives the same as
    {provider: {key: value}}. The key `device` (cpu, gpu or npu) is voxedge's: it picks which of a
    plugin provider's devices to use. `strict`: fail instead of running any node on the CPU provider
    when an accelerator was asked for. `session_config`: onnxruntime session config entries, e.g.
    {"ep.context_enable": "1"} to save compiled QNN context binaries. Stored normalized: full names,
    options as sorted pairs.
    """

    providers: tuple[str, ...] = ("cpu",)
    threads: int | None = None  # intra-op threads; None = one per core
    provider_options: tuple = ()  # ((full name, ((key, value), ...)), ...) once normalized
    strict: bool = False
    session_config: tuple = ()  # ((key, value), ...) once normalized

    def __post_init__(self):
        _check_int(self, "threads", 1, 4 * (os.cpu_count() or 1), optional=True)
        config = self.session_config.items() if isinstance(self.session_config, dict) else self.session_config
        try:
            object.__setattr__(self, "session_config", tuple(sorted((str(k), _option_value(v)) for k, v in config)))
        except (TypeError, ValueError):
            raise OptionError(f"session_config must map onnxruntime config keys to values, got "
                              f"{self.session_config!r:.200}") from None
        if not isinstance(self.strict, bool):
            raise OptionError(f"strict must be True or False, got {self.strict!r}")
        entries = self.providers.split(",") if isinstance(self.providers, str) else self.providers
        if isinstance(entries, (bytes, dict)) or not all(isinstance(p, str) and p.strip() for p in entries):
            raise OptionError(f"providers must be names such as 'cpu' or 'cuda', got {self.providers!r}")
        names, options = _parse_providers(entries)
        given = self.provider_options
        if isinstance(given, dict):
            given = given.items()
        try:
            for name, values in given:
                values = values.items() if isinstance(values, dict) else values
                options.setdefault(provider_name(name), {}).update((str(k), _option_value(v)) for k, v in values)
        except (TypeError, ValueError, AttributeError):
            raise OptionError("provider_options must map provider names to {option: value} dicts, got "
                              f"{self.provider_options!r:.200}") from None
        object.__setattr__(self, "providers", tuple(names))
        object.__setattr__(self, "provider_options", tuple(sorted((n, tuple(sorted(o.items()))) for n, o in options.items())))

    def options_for(self, provider: str) -> dict[str, str]:
        """The options given for one provider (by any of its names)."""
        full = provider_name(provider)
        return next((dict(o) for name, o in self.provider_options if name == full), {})


def _parse_providers(entries) -> tuple[list[str], dict]:
    """["qnn:soc_model=60", "htp_performance_mode=burst", "cpu"] -> (names, {name: {key: value}})."""
    names, options, current = [], {}, None
    for entry in (e.strip() for e in entries):
        colon, equals = entry.find(":"), entry.find("=")
        if equals != -1 and (colon == -1 or equals < colon):  # "key=value": belongs to the provider before
            if current is None:
                raise OptionError(f"provider option {entry!r} comes before any provider name; write e.g. qnn:{entry}")
            pairs = [entry]
        else:
            current, _, rest = entry.partition(":")
            current = provider_name(current)
            if not current:
                raise OptionError(f"provider entry {entry!r} has no provider name")
            if current not in names:
                names.append(current)
            pairs = [rest] if rest else []
        for pair in pairs:
            key, sep, value = pair.partition("=")
            if not sep or not key.strip():
                raise OptionError(f"provider option {pair!r} must be written key=value")
            options.setdefault(current, {})[key.strip()] = value.strip()
    return names, options


def _option_value(value) -> str:
    """onnxruntime takes every provider option as a string."""
    if isinstance(value, bool):
        return "1" if value else "0"
    if not isinstance(value, (str, numbers.Number)):
        raise ValueError(value)
    return str(value)


@dataclass(frozen=True)
class Keyterm:
    """A word or phrase the transcript should get right, and how hard to push for it (logit units per
    token; 4 measured best on Whisper, docs/keyterms.md)."""

    text: str
    weight: float = 4.0

    def __post_init__(self):
        if not isinstance(self.text, str) or not self.text.strip():
            raise OptionError(f"a keyterm is a non-empty string, got {self.text!r}")
        if isinstance(self.weight, bool) or not isinstance(self.weight, numbers.Real) or not math.isfinite(self.weight):
            raise OptionError(f"a keyterm's weight is a finite number, got {self.weight!r}")
        object.__setattr__(self, "text", self.text.strip())
        object.__setattr__(self, "weight", float(self.weight))


@dataclass(frozen=True)
class VadOptions:
    """Silero VAD, with faster-whisper's `VadOptions` meanings and defaults (docs/vad.md)."""

    threshold: float = 0.5  # a 32 ms window whose speech probability is at least this is speech
    neg_threshold: float | None = None  # below which it is silence again (None: max(threshold - 0.15, 0.01))
    min_speech_duration_ms: int = 0
    max_speech_duration_s: float = float("inf")
    min_silence_duration_ms: int = 2000
    speech_pad_ms: int = 400

    def __post_init__(self):
        for name in ("threshold", "neg_threshold"):
            value = getattr(self, name)
            if not (value is None and name == "neg_threshold") and (
                    isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0.0 <= value <= 1.0):
                raise OptionError(f"VadOptions.{name} must be a probability from 0 to 1, got {value!r}")
        for name in ("min_speech_duration_ms", "min_silence_duration_ms", "speech_pad_ms"):
            _check_int(self, name, 0, 3_600_000)
        if isinstance(self.max_speech_duration_s, bool) or not isinstance(self.max_speech_duration_s, numbers.Real) \
                or not self.max_speech_duration_s > 0:
            raise OptionError(f"VadOptions.max_speech_duration_s must be positive, got {self.max_speech_duration_s!r}")


FASTER_WHISPER_TEMPERATURES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)  # faster-whisper's (and openai's) fallback ladder


@dataclass(frozen=True)
class _Common:
    """Fields shared by files and live streams."""

    language: str | None = None  # None: detected (multilingual Whisper) or the model's only language
    task: str = "transcribe"  # or "translate" (to English; multilingual Whisper)
    delay_ms: int | None = None  # Voxtral: None = the bundle's default delay
    keyterms: tuple[Keyterm, ...] = ()

    def __post_init__(self):
        if self.task not in ("transcribe", "translate"):
            raise OptionError(f"task must be 'transcribe' or 'translate', not {self.task!r}")
        if self.language is not None and not isinstance(self.language, str):
            raise OptionError(f"language must be a language code such as 'en', or None to detect; got {self.language!r}")
        _check_int(self, "delay_ms", 0, 10_000, optional=True)
        if isinstance(self.keyterms, str) or not isinstance(self.keyterms, (list, tuple, set, frozenset)):
            raise OptionError(f"keyterms must be a list of strings or voxedge.Keyterm records, got {self.keyterms!r}")
        terms = tuple(Keyterm(t) if isinstance(t, str) else t for t in self.keyterms)
        if not all(isinstance(t, Keyterm) for t in terms):
            raise OptionError("keyterms must be non-empty strings or voxedge.Keyterm records")
        object.__setattr__(self, "keyterms", terms)


@dataclass(frozen=True)
class TranscribeOptions(_Common):
    """Files and arrays. Decoding fields have faster-whisper's meanings and defaults."""

    encoder_batch: int = 4  # Voxtral: 80 ms steps encoded per call
    # Voxtral: steps per decoder call, the step and drafted padding (docs/voxtral.md); None: chosen per call
    # from this machine's measured costs (`voxedge bench --device --bundle`) and the stream's padding, else 4
    verify_steps: int | None = None
    # Whisper decoding (docs/whisper.md). voxedge's defaults are greedy, without fallback, for speed;
    # beam_size=5 and temperature=FASTER_WHISPER_TEMPERATURES are faster-whisper's defaults.
    beam_size: int = 1  # beams at temperature 0
    patience: float = 1.0  # beam search ends when round(beam_size * patience) hypotheses have finished
    length_penalty: float = 1.0  # hypotheses rank by sum(log p) / length ** length_penalty
    temperature: tuple[float, ...] = (0.0,)  # tried in turn while a window fails the thresholds below
    best_of: int = 5  # samples drawn at a temperature above 0; the likeliest is kept
    compression_ratio_threshold: float | None = 2.4  # text whose zlib ratio is above this failed (repetitive)
    log_prob_threshold: float | None = -1.0  # text whose average log-probability is below this failed
    no_speech_threshold: float | None = 0.6  # a failed window with no-speech above this is silence: skipped
    keyterm_route: str = "boost"  # Whisper: "boost" (in the decode loop), "prompt" (as hotwords) or "both"
    initial_prompt: str | tuple[int, ...] | None = None  # text (or token ids) before the first window
    condition_on_previous_text: bool = True  # each window is prompted with the text before it
    prompt_reset_on_temperature: float = 0.5  # a window decoded hotter than this is not a prompt
    seed: int = 0  # sampling at temperatures above 0 is random, from this seed: the same call, the same text
    vad_filter: bool = False  # transcribe only what Silero VAD calls speech (faster-whisper's vad_filter)
    vad_options: VadOptions = field(default_factory=VadOptions)

    def __post_init__(self):
        super().__post_init__()
        _check_int(self, "encoder_batch", 1, 64)
        _check_int(self, "verify_steps", 1, 32, optional=True)
        _check_int(self, "beam_size", 1, 64)
        _check_int(self, "best_of", 1, 64)
        _check_int(self, "seed", 0, 2**63 - 1)
        if self.keyterm_route not in ("boost", "prompt", "both"):
            raise OptionError(f"keyterm_route must be 'boost', 'prompt' or 'both', not {self.keyterm_route!r}")
        temperature = self.temperature
        if isinstance(temperature, numbers.Real) and not isinstance(temperature, bool):
            temperature = (temperature,)
        if not isinstance(temperature, (tuple, list)) or not temperature or not all(
                _real(t) and 0.0 <= t <= 100.0 for t in temperature):
            raise OptionError(f"temperature must be a number from 0 to 100 or a non-empty sequence of them, "
                              f"got {self.temperature!r}")
        object.__setattr__(self, "temperature", tuple(float(t) for t in temperature))
        _check_real(self, "patience", low=0.0, strict=True)
        _check_real(self, "length_penalty")
        _check_real(self, "prompt_reset_on_temperature")
        for name in ("compression_ratio_threshold", "log_prob_threshold", "no_speech_threshold"):
            _check_real(self, name, optional=True)
        object.__setattr__(self, "initial_prompt", _prompt(self.initial_prompt))


@dataclass(frozen=True)
class StreamOptions(_Common):
    """Live streams."""

    encoder_batch: int = 1  # Voxtral: > 1 is cheaper per step and (n - 1) x 80 ms later
    verify_steps: int | None = 1  # Voxtral: steps per decoder call (TranscribeOptions.verify_steps)
    step_ms: int = 1000  # Whisper: audio between two hypotheses
    # skip audio that Silero VAD calls silence. None: the family's default, on for Whisper where the
    # bundle has a VAD (without it, room noise sends live Whisper into loops: docs/vad.md), off for
    # Voxtral (trained to stream, it hears silence as it comes)
    vad: bool | None = None
    # the engine's session ends after `min_silence_duration_ms` of silence (2 s: shorter pauses stay in
    # one live buffer, docs/vad.md), with 200 ms of padding kept around speech
    vad_options: VadOptions = field(default_factory=lambda: VadOptions(speech_pad_ms=200))
    endpoint_ms: int = 800  # silence after the last word that closes an utterance (gated or not)

    def __post_init__(self):
        super().__post_init__()
        _check_int(self, "encoder_batch", 1, 64)
        _check_int(self, "verify_steps", 1, 32, optional=True)
        _check_int(self, "step_ms", 80, 30_000)
        _check_int(self, "endpoint_ms", 80, 600_000)
        if self.vad not in (None, True, False):
            raise OptionError(f"vad must be True, False or None (the family's default), not {self.vad!r}")


def build(cls, options, fields: dict, supported: frozenset[str], family: str):
    """`options` (a record of `cls` or None) with `fields` applied, checked against what the family
    supports. Every mistake a caller can make becomes a VoxedgeError."""
    if options is None:
        options = cls()
    elif not isinstance(options, cls):
        raise OptionError(f"expected a {cls.__name__} (or keyword options), got {type(options).__name__} {options!r}")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(fields) - names)
    if unknown:
        raise UnsupportedError(f"unknown option {unknown[0]!r}; {cls.__name__} has: {', '.join(sorted(names))}")
    try:
        options = dataclasses.replace(options, **fields)
    except (TypeError, ValueError) as exc:
        raise OptionError(f"invalid option: {exc}") from None
    defaults = cls()
    for name in sorted(names - supported):
        if getattr(options, name) != getattr(defaults, name):
            raise UnsupportedError(f"option {name!r} does not apply to {family} models; they take: "
                                   f"{', '.join(sorted(supported & names)) or 'none'}")
    return options


def _real(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and value == value


def _check_real(record, name: str, low: float = -1e9, strict: bool = False, optional: bool = False) -> None:
    value = getattr(record, name)
    if value is None and optional:
        return
    if not _real(value) or not (value > low if strict else value >= low) or value > 1e9:
        bound = f"above {low}" if strict else "a finite number"
        raise OptionError(f"{name} must be {bound}{' or None' if optional else ''}, got {value!r}")
    object.__setattr__(record, name, float(value))


def _prompt(prompt):
    """initial_prompt: text, or token ids (as faster-whisper takes), stored as a tuple."""
    if prompt is None or isinstance(prompt, str):
        return prompt
    try:
        ids = tuple(prompt)
    except TypeError:
        ids = None
    if ids is None or not all(isinstance(t, numbers.Integral) and not isinstance(t, bool) and t >= 0 for t in ids):
        raise OptionError(f"initial_prompt must be text or a sequence of token ids, got {prompt!r:.80}")
    return tuple(int(t) for t in ids)


def _check_int(record, name: str, low: int, high: int, optional: bool = False) -> None:
    value = getattr(record, name)
    if value is None and optional:
        return
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or not low <= value <= high:
        raise OptionError(f"{name} must be a whole number from {low} to {high}, got {value!r}")
    object.__setattr__(record, name, int(value))
