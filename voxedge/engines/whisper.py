"""Whisper on onnxruntime: files in 30 s windows, seeking by the last timestamp (docs/whisper.md).

Files follow openai/whisper's long-form algorithm, as faster-whisper does: log-mel of the whole file
(computed block by block, in two passes: the first finds the maximum the features are scaled by), a
window at `seek`, decoding with timestamps conditioned on the previous text, the window's complete
segments kept, and the next window starting where the last complete one ended. Live streams run
LocalAgreement (voxedge/agreement.py) over the same window transcriber.
"""

from __future__ import annotations

import warnings

import numpy as np

from ..agreement import LocalAgreement
from ..audio import SAMPLE_RATE
from ..config import WhisperConfig
from ..errors import OptionError
from ..transcript import Segment
from . import whisper_language
from .base import Model
from .kv_cache import kv_names
from .whisper_decoding import WindowDecoder
from .whisper_fallback import Decoding, PreviousText
from .whisper_window import TIME_PRECISION, WindowTranscriber, settled_prefix


class WhisperModel(Model):
    family = "whisper"
    config_type = WhisperConfig
    stream_fields = frozenset({"step_ms", "keyterms", "language", "task"})
    transcribe_fields = frozenset({
        "keyterms", "keyterm_route", "language", "task", "beam_size", "patience", "length_penalty", "temperature",
        "best_of", "compression_ratio_threshold", "log_prob_threshold", "no_speech_threshold", "initial_prompt",
        "condition_on_previous_text", "prompt_reset_on_temperature", "seed"})

    def _open(self) -> None:
        cfg = self.config
        cross = [f"cross_{kind}.{i}" for i in range(cfg.decoder.layers) for kind in ("key", "value")]
        self.encoder = self.session("encoder", ["mel"], cross)
        self.decoder = self.session("decoder_step", ["inputs_embeds", "position_ids", *cross,
                                                     *kv_names(cfg.decoder.layers, "past")], ["logits"])
        self._cross_names = [o.name for o in self.encoder.get_outputs()]
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
        the maximum taken over the whole signal; returns only the frames covering real audio."""
        return self.mel(np.pad(audio, (0, self.mel.hop_length)))[:, :-1]

    def encode(self, window: np.ndarray) -> dict:
        """One window of mel frames (zero-padded to 30 s, as the references do) -> cross-attention K/V."""
        frames = self.config.window_frames
        padded = np.zeros((window.shape[0], frames), np.float32)
        padded[:, : min(window.shape[1], frames)] = window[:, :frames]
        return dict(zip(self._cross_names, self.encoder.run(None, {"mel": padded[None]})))

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
                                   task=options.task)
        return LocalAgreement(_LiveWindow(self, window), SAMPLE_RATE * options.step_ms // 1000,
                              self.config.max_positions // 2)


class _LiveWindow:
    """LocalAgreement's `hypothesize` for Whisper: a buffer of audio -> its hypothesis. The segments of
    the previous hypothesis whose words are committed and still in the buffer are not decoded again:
    their tokens (with their timestamps) are forced as the start of the text (`settled_prefix`), and
    only what follows is decoded."""

    def __init__(self, model: WhisperModel, window: WindowTranscriber):
        self.model, self.window = model, window
        self._last, self._last_offset = None, 0.0

    def __call__(self, audio, prompt, offset, settled):
        prefix = []
        if self._last is not None:
            shift = round((offset - self._last_offset) / TIME_PRECISION)
            prefix = settled_prefix(self._last.segments, settled, shift, self.window.ts_begin, self.model.tokens)
        self._last, self._last_offset = self.window(self.model.features(audio), prompt, offset, prefix), offset
        return self._last

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
