"""Whisper on onnxruntime: files in 30 s windows, seeking by the last timestamp (docs/whisper.md).

Files follow openai/whisper's long-form algorithm, as faster-whisper does: log-mel of the whole
file, a window at `seek`, greedy decoding with timestamps conditioned on the previous text, the
window's complete segments kept, and the next window starting where the last complete one ended.
Word times are interpolated within each segment by token count (Whisper gives segment times only).
"""

from __future__ import annotations

import collections
import functools
import zlib

import numpy as np

from ..audio import SAMPLE_RATE, load_audio
from ..errors import OptionError
from ..features import LogMelSpectrogram
from ..keyterms import KeytermBoost, as_keyterms
from ..runtime import create_session
from ..tokenizer import TextAssembler, TokenTable
from ..transcript import Segment, Word
from ..words import WordAssembler
from .embedding import EmbeddingTable
from .whisper_decoding import WindowDecoder, split_segments

TIME_PRECISION = 0.02  # seconds per timestamp token
FRAMES_PER_TIMESTAMP = 2  # mel frames (10 ms) per timestamp step
NO_SPEECH_THRESHOLD = 0.6  # skip a window when no-speech is this likely ...
LOGPROB_THRESHOLD = -1.0  # ... and the decoded text this unlikely (openai/whisper's defaults)
KEYTERM_ROUTES = ("boost", "prompt", "both")  # logits processor, previous-text prompt, or both
COMPRESSION_RATIO_THRESHOLD = 2.4  # text that compresses better repeats itself (openai/whisper's default)


class WhisperModel:
    """A loaded bundle: immutable and shareable; decoding state lives in each call or stream."""

    family = "whisper"

    def __init__(self, bundle, options):
        cfg = bundle.config
        self.bundle, self.config, self.options = bundle, cfg, options
        self.encoder = create_session(bundle.graph_path("encoder"), options)
        self.decoder = create_session(bundle.graph_path("decoder_step"), options)
        self.embed = EmbeddingTable(bundle.path(cfg["embedding"]["file"]), cfg["embedding"])
        self.tokens = TokenTable.load(bundle.path(cfg["tokenizer"]))
        self.special = cfg["tokens"]
        self.mel = LogMelSpectrogram(bundle.array(cfg["mel_filters"]), cfg["n_fft"], cfg["hop_length"])
        self.window_frames = cfg["window_frames"]
        self.sot_sequence = list(cfg["sot_sequence"])

    # -- building blocks shared by files and streams ------------------------------------------------

    def features(self, audio: np.ndarray) -> np.ndarray:
        """Log-mel of a whole signal as openai/faster-whisper compute it: 160 zeros appended, the
        maximum taken over the whole signal; returns only the frames covering real audio."""
        mel = self.mel(np.pad(audio, (0, self.mel.hop_length)))
        return mel[:, :-1]

    def encode(self, window: np.ndarray) -> dict:
        """One window of mel frames (zero-padded to 30 s, as the references do) -> cross-attention K/V."""
        padded = np.zeros((window.shape[0], self.window_frames), np.float32)
        padded[:, : min(window.shape[1], self.window_frames)] = window[:, : self.window_frames]
        outputs = self.encoder.run(None, {"mel": padded[None]})
        return dict(zip((o.name for o in self.encoder.get_outputs()), outputs))

    @functools.cached_property
    def text_encoder(self):
        """Text -> token ids (for keyterms), built on first use."""
        from ..bpe import BytePairEncoder

        return BytePairEncoder.from_bundle(self.bundle, self.tokens)

    def keyterms(self, terms, route: str = "boost") -> tuple:
        """(logits processor or None, prompt tokens) for keyterms, by route: boosting in the decode
        loop, or the terms in the previous-text prompt as faster-whisper's `hotwords`."""
        if route not in KEYTERM_ROUTES:
            raise OptionError(f"keyterm_route must be one of {', '.join(KEYTERM_ROUTES)}, not {route!r}")
        terms = as_keyterms(terms)
        if not terms:
            return None, []
        encode = self.text_encoder.encode
        processor = KeytermBoost.for_family(self.family, self.special, terms, encode) if route != "prompt" else None
        hotwords = encode(" " + ", ".join(term.text for term in terms)) if route != "boost" else []
        return processor, hotwords

    def prompt(self, previous_tokens, hotwords=()) -> list:
        """<|startofprev|> hotwords previous-text, at most half the context, then the start sequence."""
        budget = self.config["decoder"]["max_positions"] // 2 - 1
        hotwords = list(hotwords)[:budget]
        keep = budget - len(hotwords)
        context = hotwords + (list(previous_tokens)[-keep:] if keep else [])
        return ([self.special["sot_prev"], *context] if context else []) + self.sot_sequence

    def timed_words(self, start: float, end: float, tokens: list) -> list[tuple[Word, list]]:
        """(word, its token ids) for a segment's tokens, times spread evenly over [start, end] by token.

        A segment without a single letter or digit (" . . ." is what tiny models hallucinate on faint
        noise) has no words."""
        tokens = [t for t in tokens if t < self.special["timestamp_begin"]]
        if not any(c.isalnum() for c in self.tokens.decode(tokens)):
            return []
        step = (end - start) / max(len(tokens), 1)
        words, assembler, text, pending = [], WordAssembler(), TextAssembler(self.tokens), []
        pieces = [(text.push(t), t, start + i * step, start + (i + 1) * step) for i, t in enumerate(tokens)]
        for piece, token, piece_start, piece_end in pieces + [(text.flush(), None, end, end)]:
            done = assembler.push(piece, piece_start, piece_end)
            if done:
                words.append((done[0], pending))
                pending = []
            if token is not None:
                pending.append(token)
        words += [(word, pending) for word in assembler.flush()]
        return words

    def segment(self, start: float, end: float, tokens: list) -> Segment | None:
        words = tuple(word for word, _ in self.timed_words(start, end, tokens))
        text = "".join(w.text for w in words)
        return Segment(start, end, text, words) if text.strip() else None

    @staticmethod
    def is_silence(result) -> bool:
        return result.no_speech_prob > NO_SPEECH_THRESHOLD and result.avg_logprob < LOGPROB_THRESHOLD

    def repeats_itself(self, result) -> bool:
        """openai/whisper's hallucination test: the window's text compresses too well."""
        text = self.tokens.decode(result.tokens).encode("utf-8")
        return bool(text) and len(text) / len(zlib.compress(text)) > COMPRESSION_RATIO_THRESHOLD

    # -- public ---------------------------------------------------------------------------------

    def transcribe(self, audio, *, sample_rate: int | None = None, condition_on_previous_text: bool = True,
                   on_step=None, keyterms=(), keyterm_route: str = "boost"):
        """Segments of a file or array, yielded window by window. `keyterms`: strings or `Keyterm`s
        the transcript should get right, by `keyterm_route` (see `keyterms`)."""
        processor, hotwords = self.keyterms(keyterms, keyterm_route)
        samples = load_audio(audio, sample_rate)
        features = self.features(samples)
        decoder = WindowDecoder(self, on_step, processor)
        plain = WindowDecoder(self, on_step) if processor is not None else None
        content = features.shape[1]
        seek, history = 0, collections.deque(maxlen=self.config["decoder"]["max_positions"] // 2)
        while seek < content:
            size = min(self.window_frames, content - seek)
            cross, prompt = self.encode(features[:, seek : seek + size]), self.prompt(history, hotwords)
            result = decoder.decode(cross, prompt)
            if plain is not None and self.repeats_itself(result):
                result = plain.decode(cross, prompt)  # the bonuses sent the window into a loop: without them
            offset = seek * self.mel.hop_length / SAMPLE_RATE
            if self.is_silence(result):
                seek += size
                continue
            pieces, last, done = split_segments(result.tokens, self.special["timestamp_begin"])
            for start, end, tokens in pieces:
                end_time = offset + (size * self.mel.hop_length / SAMPLE_RATE if end is None else end * TIME_PRECISION)
                segment = self.segment(offset + start * TIME_PRECISION, end_time, tokens)
                if segment:
                    yield segment
                if condition_on_previous_text:
                    history += tokens
            seek += size if done else last * FRAMES_PER_TIMESTAMP

    def stream(self, *, step_ms: int = 1000, on_step=None):
        """Live transcription: LocalAgreement-2 over a growing buffer, re-decoded every `step_ms`."""
        from .whisper_stream import WhisperStream

        return WhisperStream(self, step_ms, on_step)
