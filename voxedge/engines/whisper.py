"""Whisper on onnxruntime: files in 30 s windows, seeking by the last timestamp (docs/whisper.md).

Files follow openai/whisper's long-form algorithm, as faster-whisper does: log-mel of the whole file
(computed block by block, in two passes: the first finds the maximum the features are scaled by), a
window at `seek`, decoding with timestamps conditioned on the previous text, the window's complete
segments kept, and the next window starting where the last complete one ended. Live streams run
LocalAgreement (voxedge/agreement.py) over the same window transcriber.
"""

from __future__ import annotations

import functools
import warnings

import numpy as np

from ..agreement import LocalAgreement
from ..audio import SAMPLE_RATE
from ..config import WhisperConfig
from ..errors import OptionError
from ..features import BufferLogMel
from ..transcript import Segment
from . import whisper_language
from .base import Model
from .kv_cache import kv_names
from .whisper_decoding import WindowDecoder
from .whisper_fallback import Decoding, PreviousText
from .whisper_window import TIME_PRECISION, WindowTranscriber, settled_prefix

ENCODER_FRAMES = "frames"  # the name of the encoder's input length (export/whisper/graphs.py)
# Live windows (whisper.cpp's audio_ctx), in 10 ms mel frames: the buffer's audio plus a margin, in whole
# seconds, at least MIN_CONTEXT_FRAMES (shorter, tiny.en repeated itself: docs/whisper.md).
MIN_CONTEXT_FRAMES = 1000
CONTEXT_MARGIN_FRAMES = 100
CONTEXT_STEP_FRAMES = 100


class WhisperModel(Model):
    family = "whisper"
    config_type = WhisperConfig
    # live windows re-decoded over room noise loop on it and commit the loop (docs/vad.md): gated by default
    vad_by_default = True
    stream_fields = frozenset({"step_ms", "keyterms", "language", "task"})
    transcribe_fields = frozenset({
        "keyterms", "keyterm_route", "language", "task", "beam_size", "patience", "length_penalty", "temperature",
        "best_of", "compression_ratio_threshold", "log_prob_threshold", "no_speech_threshold", "initial_prompt",
        "condition_on_previous_text", "prompt_reset_on_temperature", "seed"})

    def _open(self) -> None:
        cfg = self.config
        cross = [f"cross_{kind}.{i}" for i in range(cfg.decoder.layers) for kind in ("key", "value")]
        # files: 30 s windows, optimized as a fixed-shape graph (the same values as before windows could be shorter)
        self.encoder = self.session("encoder", ["mel"], cross, dims={ENCODER_FRAMES: cfg.window_frames})
        self.decoder = self.session("decoder_step", ["inputs_embeds", "position_ids", *cross,
                                                     *kv_names(cfg.decoder.layers, "past")], ["logits"])
        self._cross_names = [o.name for o in self.encoder.get_outputs()]
        # windows shorter than 30 s (live steps): bundles exported since 0.4.1, whose audio length is a named dimension
        audio_positions = next(i.shape[2] for i in self.decoder.get_inputs() if i.name == cross[0])
        self.short_windows = isinstance(audio_positions, str)
        # word times by cross-attention alignment (docs/whisper.md); without the output they are interpolated
        self.aligns_words = "alignment_scores" in {o.name for o in self.decoder.get_outputs()}
        if not self.aligns_words and self.bundle.manifest["model"].get("target", "cpu") == "cpu":  # npu: by design
            warnings.warn(f"{self.bundle.root}: this bundle's decoder has no alignment_scores output (exported before "
                          "word alignment, or from a checkpoint without alignment heads): word times are spread evenly "
                          "over each segment. Re-export it for aligned word times (a model by name: `voxedge models "
                          "prepare NAME --force`).", stacklevel=4)  # voxedge.load()'s caller

    # -- building blocks shared by files and streams ------------------------------------------------

    def features(self, audio: np.ndarray) -> np.ndarray:
        """Log-mel of a whole (short) signal as openai/faster-whisper compute it: 160 zeros appended,
        the maximum taken over the whole signal; returns only the frames covering real audio (a live
        buffer: `BufferLogMel`, the same frames computed once)."""
        return self.mel(np.pad(audio, (0, self.mel.hop_length)))[:, :-1]

    @functools.cached_property
    def short_encoder(self):
        """The encoder for windows of any even length up to 30 s (live steps), opened on first use."""
        return self.session("encoder", ["mel"], self._cross_names)

    def encode(self, window: np.ndarray, frames: int | None = None) -> dict:
        """One window of mel frames, zero-padded to `frames` (default: 30 s, as the references do;
        shorter ones need `short_windows`) -> cross-attention K/V."""
        full = self.config.window_frames
        frames = frames or full
        padded = np.zeros((window.shape[0], frames), np.float32)
        padded[:, : min(window.shape[1], frames)] = window[:, :frames]
        encoder = self.encoder if frames == full else self.short_encoder
        return dict(zip(self._cross_names, encoder.run(None, {"mel": padded[None]})))

    def prompt(self, previous_tokens, hotwords=(), start_sequence=None) -> list:
        """The decoder's prompt: <|startofprev|>, hotwords, previous text (together at most half the
        context, as faster-whisper), then the start sequence (default: the bundle's, English)."""
        budget = self.config.max_positions // 2 - 1
        hotwords = list(hotwords)[:budget]
        keep = budget - len(hotwords)
        context = hotwords + (list(previous_tokens)[-keep:] if keep else [])
        return ([self.config.tokens.sot_prev, *context] if context else []) + list(start_sequence or self.config.sot_sequence)

    def prompt_tokens(self, initial_prompt) -> tuple[int, ...]:
        """`initial_prompt` (TranscribeOptions) as token ids: text is encoded as faster-whisper does
        (" " + text.strip()); ids must be text or timestamp tokens."""
        if initial_prompt is None:
            return ()
        if isinstance(initial_prompt, str):
            return tuple(self.text_encoder.encode(" " + initial_prompt.strip()))
        tokens = self.config.tokens
        bad = [t for t in initial_prompt if not (t < tokens.eot or tokens.timestamp_begin <= t < self.config.vocab)]
        if bad:
            raise OptionError(f"initial_prompt: {bad[0]} is not a text or timestamp token of this model "
                              f"(text tokens are 0..{tokens.eot - 1})")
        return initial_prompt

    def keyterms(self, terms, route: str = "boost") -> tuple:
        """(logits processor or None, hotword tokens) for keyterms, by route: boosting in the decode
        loop, the terms in the previous-text prompt (faster-whisper's `hotwords`), or both."""
        from ..keyterms import as_keyterms

        if route not in ("boost", "prompt", "both"):
            raise OptionError(f"keyterm_route must be 'boost', 'prompt' or 'both', not {route!r}")
        terms = as_keyterms(terms)
        if not terms:
            return None, []
        processor = self.keyterm_processor(terms) if route != "prompt" else None
        hotwords = self.text_encoder.encode(" " + ", ".join(term.text for term in terms)) if route != "boost" else []
        return processor, hotwords

    # -- Model -----------------------------------------------------------------------------------

    def _language(self, source, options):
        """The language asked for, or detected on the first 30 s as faster-whisper does."""
        whisper_language.check(self.config, options.language, options.task)
        if not self.config.languages:  # an English-only model
            return "en", None
        if options.language is not None:
            return options.language, None
        logits, _ = WindowDecoder(self).prefill(self.encode(_first_window(self, source)), [self.config.tokens.sot])
        return whisper_language.detect(logits, self.config.languages)

    def _segments(self, source, options, info):
        """Segments of a file, window by window, in bounded memory."""
        window = WindowTranscriber(self, None, *self.keyterms(options.keyterms, options.keyterm_route),
                                   decoding=Decoding.of(options), language=info.language, task=options.task)
        history = PreviousText(self.config.max_positions // 2, self.prompt_tokens(options.initial_prompt),
                               options.condition_on_previous_text, options.prompt_reset_on_temperature)
        frames = _FileFrames(self, source)
        seek_seconds = self.mel.hop_length / SAMPLE_RATE
        while (mel := frames.window(self.config.window_frames)).shape[1]:
            hypothesis = window(mel, history.tokens, frames.start * seek_seconds)
            for segment in hypothesis.segments:
                if segment.words:
                    yield Segment(segment.start, segment.end, "".join(w.text for w, _ in segment.words),
                                  tuple(w for w, _ in segment.words))
            history.add(hypothesis, self.tokens)
            frames.advance(hypothesis.seek)

    def _stream_engine(self, options, on_step) -> LocalAgreement:
        window = WindowTranscriber(self, on_step, *self.keyterms(options.keyterms), language=options.language,
                                   task=options.task, live=True)
        return LocalAgreement(_LiveWindow(self, window), SAMPLE_RATE * options.step_ms // 1000,
                              self.config.max_positions // 2)


class _LiveWindow:
    """LocalAgreement's `hypothesize` for Whisper: a buffer of audio -> its hypothesis. The segments of
    the previous hypothesis whose words are committed and still in the buffer are not decoded again:
    their tokens (with their timestamps) are forced as the start of the text (`settled_prefix`), and
    only what follows is decoded. The encoder sees a window cut to the buffer (`context`), not 30 s."""

    def __init__(self, model: WhisperModel, window: WindowTranscriber):
        self.model, self.window = model, window
        self._features = BufferLogMel(model.mel)  # = model.features(buffer), each frame computed once
        self._last, self._last_offset = None, 0.0
        # the encoder for them opened now rather than at the first step
        self._short_windows = model.short_windows and model.short_encoder is not None

    def __call__(self, audio, prompt, offset, settled, final):
        prefix = []
        if self._last is not None:
            shift = round((offset - self._last_offset) / TIME_PRECISION)
            prefix = settled_prefix(self._last.segments, settled, shift, self.window.ts_begin, self.model.tokens)
        mel = self._features(audio, round(offset * SAMPLE_RATE))
        self._last = self.window(mel, prompt, offset, prefix, self.context(mel.shape[1]), final=final)
        self._last_offset = offset
        return self._last

    def context(self, frames: int) -> int | None:
        """The window the encoder sees for `frames` of audio (module constants); None (30 s) for a
        bundle whose encoder takes 30 s only."""
        if not self._short_windows:
            return None
        step = CONTEXT_STEP_FRAMES
        return min(max(-(-(frames + CONTEXT_MARGIN_FRAMES) // step) * step, MIN_CONTEXT_FRAMES),
                   self.model.config.window_frames)

    def set_keyterms(self, terms) -> None:
        self.window.use_keyterms(*self.model.keyterms(terms))


class _FileFrames:
    """A file's log-mel frames, scaled by the maximum over the whole file (a first pass finds it), and
    served window by window from a buffer that never holds much more than one window."""

    def __init__(self, model: WhisperModel, source):
        self.mel = model.mel
        ceiling = max(float(chunk.max(initial=-np.inf)) for chunk in self.mel.signal_frames(source.blocks()))
        # the last frame (centred on the appended zeros) counts for the maximum but is not content
        self._chunks = (self.mel.normalize(c, ceiling) for c in self.mel.signal_frames(source.blocks()))
        self._buffer = np.zeros((self.mel.n_mels, 0), np.float32)
        self._exhausted = False
        self.start = 0  # frame index of the buffer's first frame

    def window(self, size: int) -> np.ndarray:
        """Up to `size` content frames from `start` on."""
        while self._buffer.shape[1] <= size and not self._exhausted:
            chunk = next(self._chunks, None)
            if chunk is None:
                self._exhausted = True
                self._buffer = self._buffer[:, :-1]  # drop the frame past the content
            else:
                self._buffer = np.concatenate([self._buffer, chunk], axis=1)
        return self._buffer[:, :size]

    def advance(self, frames: int) -> None:
        self._buffer = self._buffer[:, frames:]
        self.start += frames


def _first_window(model: WhisperModel, source) -> np.ndarray:
    """The mel frames faster-whisper detects the language on: the first 30 s of the whole file's
    features (scaled by the file's maximum); a shorter file's include the frame past its content."""
    mel = model.mel
    ceiling = max(float(chunk.max(initial=-np.inf)) for chunk in mel.signal_frames(source.blocks()))
    first = next(mel.signal_frames(source.blocks(), model.config.window_frames))
    return mel.normalize(first, ceiling)
