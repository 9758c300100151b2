"""Voxtral Mini 4B Realtime on onnxruntime: one token per 80 ms of audio (docs/voxtral.md).

A session is: the prompt [BOS] + [STREAMING_PAD] x (32 + n_d) prefilled against the first
1280 (n_d + 1) + 40 samples (behind 2.56 s of virtual silence), then one step per 80 ms: the
encoder turns 8 new mel frames into one audio embedding, which is added to the embedding of the
previous token, and the decoder's argmax is the next token. Token k of a session is stamped with
the 80 ms frame [k * 80, (k + 1) * 80) ms of that session's audio: the model's delay is already
taken out. After an end-of-sequence token the session restarts on the audio not yet transcribed.
"""

from __future__ import annotations

import numpy as np

from ..audio import load_audio
from ..features import LogMelSpectrogram, StreamingLogMel, StreamingPadding, delay_tokens
from ..runtime import create_session
from ..stream import Stream
from ..tokenizer import TextAssembler, TokenTable
from ..transcript import Event
from ..words import SegmentBuilder, WordAssembler
from .embedding import EmbeddingTable
from .kv_cache import CachedGraph, SlidingKVCache

FILE_CHUNK = 16000  # transcribe() feeds files a second at a time, so segments come out as decided


class VoxtralRealtimeModel:
    """A loaded bundle. Immutable and shareable between threads; each stream owns its state."""

    family = "voxtral_realtime"

    def __init__(self, bundle, options):
        cfg = bundle.config
        self.bundle, self.config, self.options = bundle, cfg, options
        self.encoder = create_session(bundle.graph_path("audio_encoder_step"), options)
        self.decoder = create_session(bundle.graph_path("decoder_step"), options)
        self.embed = EmbeddingTable(bundle.path(cfg["embedding"]["file"]), cfg["embedding"])
        self.tokens = TokenTable.load(bundle.path(cfg["tokenizer"]))
        self.special = cfg["tokens"]
        self.mel = LogMelSpectrogram(bundle.array(cfg["mel_filters"]), cfg["n_fft"], cfg["hop_length"], cfg["log_mel_max"])
        self.padding = StreamingPadding(cfg["samples_per_token"], cfg["left_pad_tokens"], cfg["buffer_tokens"],
                                        cfg["n_fft"], cfg["hop_length"])
        self.ada_scales = dict(zip(cfg["delays_ms"], bundle.array(cfg["ada_scales"])))
        self.default_delay_ms = cfg["default_delay_ms"]
        self.kv_dtype = np.dtype(cfg["kv_dtype"])

    def stream(self, delay_ms: int | None = None, *, encoder_batch: int = 1, on_step=None) -> VoxtralStream:
        """A live session. `encoder_batch` > 1 encodes that many 80 ms steps per call: cheaper per
        step, (encoder_batch - 1) x 80 ms later. `on_step(token, logits, start_s, end_s)` sees every step."""
        return VoxtralStream(self, self.default_delay_ms if delay_ms is None else delay_ms, encoder_batch, on_step)

    def transcribe(self, audio, *, sample_rate: int | None = None, delay_ms: int | None = None, encoder_batch: int = 4):
        """Segments of a file or array, yielded as they are decided."""
        samples = load_audio(audio, sample_rate)
        stream = self.stream(delay_ms, encoder_batch=encoder_batch)
        segments = SegmentBuilder()
        for start in range(0, len(samples), FILE_CHUNK):
            for event in stream.feed(samples[start : start + FILE_CHUNK]):
                if event.kind == "final":
                    yield from segments.add(event.words)
        for event in stream.close():
            if event.kind == "final":
                yield from segments.add(event.words)
        yield from segments.flush()


class VoxtralStream(Stream):
    def __init__(self, model: VoxtralRealtimeModel, delay_ms: int, encoder_batch: int, on_step):
        super().__init__()
        cfg, special = model.config, model.special
        self.model = model
        self.delay_ms = delay_ms
        self.n_d = delay_tokens(delay_ms, cfg["delays_ms"], cfg["ms_per_token"])
        self.ada_scale = model.ada_scales[delay_ms].astype(model.kv_dtype)
        self.prompt = np.array([special["bos"]] + [special["streaming_pad"]] * (cfg["left_pad_tokens"] + self.n_d))
        self.encoder_batch = max(1, int(encoder_batch))
        self.on_step = on_step
        self.frames_per_token = cfg["mel_frames_per_token"]
        self.samples_per_token = cfg["samples_per_token"]
        enc, dec = cfg["encoder"], cfg["decoder"]
        conv_per_token = self.frames_per_token // 2
        enc_cache = SlidingKVCache(enc["layers"], enc["heads"], enc["head_dim"], enc["window"],
                                   conv_per_token * max(len(self.prompt), self.encoder_batch), model.kv_dtype)
        dec_cache = SlidingKVCache(dec["layers"], dec["kv_heads"], dec["head_dim"], dec["window"], len(self.prompt),
                                   model.kv_dtype)
        self._encoder = CachedGraph(model.encoder, enc_cache, ["audio_embeds", "conv1_state_out", "conv2_state_out"])
        self._decoder = CachedGraph(model.decoder, dec_cache, ["logits"])
        self._words = WordAssembler()
        self._text = TextAssembler(model.tokens)
        self._start_session(origin=0)

    # -- session state --------------------------------------------------------------------------

    def _start_session(self, origin: int) -> None:
        """Fresh prompt, caches and clocks; the session's real audio begins at engine sample `origin`."""
        model, enc = self.model, self.model.config["encoder"]
        self._mel = StreamingLogMel(model.mel, left_pad=model.padding.left_pad)
        self._frames = np.zeros((model.mel.n_mels, 0), np.float32)
        self._conv1 = np.zeros((1, model.mel.n_mels, 2), model.kv_dtype)
        self._conv2 = np.zeros((1, enc["hidden"], 1), model.kv_dtype)
        self._encoder.cache.length = self._decoder.cache.length = 0
        self._enc_pos = self._dec_pos = 0
        self._token = None  # previous token; None until the prompt is prefilled
        self._ended = False  # the model emitted end-of-sequence
        self._step = 0  # tokens produced in this session
        self._origin = origin
        self._fed = 0  # real samples given to this session
        self._history = np.zeros(0, np.float32)  # recent samples, for a restart after end-of-sequence
        self._history_start = 0  # session sample index of _history[0]

    # -- Stream interface -----------------------------------------------------------------------

    def _process(self, samples: np.ndarray) -> list[Event]:
        words: list = []
        before = self._words.pending()
        # A token's worth at a time: at most one token of audio waits unconsumed beyond the model's own
        # lookahead, which bounds the history kept for restarts whatever size the caller feeds.
        for start in range(0, len(samples), self.samples_per_token):
            words += self._consume(samples[start : start + self.samples_per_token])
        return self._events(words, before)

    def _finish(self) -> list[Event]:
        """Append the flush pad and step until the audio is used up (the last 80 ms position is not
        consumed, as in transformers' offline generate), or until end-of-sequence."""
        before = self._words.pending()
        words: list = []
        if self._fed or self._step:
            flush = np.zeros(self.model.padding.flush_pad(self._fed, self.n_d), np.float32)
            self._frames = np.concatenate([self._frames, self._mel.feed(flush)], axis=1)
            self._frames = self._frames[:, : self._frames.shape[1] - self.frames_per_token]
            words += self._run(final=True)
        words += self._words.push(self._text.flush(), *self._times(self._step))  # a cut-off UTF-8 tail, if any
        return self._events(words + self._words.flush(), before, final=True)

    # -- the work -------------------------------------------------------------------------------

    def _consume(self, samples: np.ndarray) -> list:
        self._history = np.concatenate([self._history, samples])
        self._fed += len(samples)
        self._frames = np.concatenate([self._frames, self._mel.feed(samples)], axis=1)
        return self._run(final=False)

    def _run(self, final: bool) -> list:
        """Run every step the pending mel frames allow; returns completed words."""
        words = []
        per_token = self.frames_per_token
        if self._token is None:
            if self._frames.shape[1] < per_token * len(self.prompt):
                return words
            words += self._decode(self.prompt, self._encode(len(self.prompt)))
            if self._ended:
                return words + self._after_end(final)
        while True:
            available = self._frames.shape[1] // per_token
            n = min(self.encoder_batch, available) if final else self.encoder_batch * (available >= self.encoder_batch)
            if n == 0:
                break
            audio = self._encode(n)
            for i in range(n):
                words += self._decode(np.array([self._token]), audio[:, i : i + 1])
                if self._ended:
                    return words + self._after_end(final)
        self._trim_history()
        return words

    def _encode(self, n_tokens: int) -> np.ndarray:
        frames = self._frames[:, : n_tokens * self.frames_per_token]
        self._frames = self._frames[:, frames.shape[1] :]
        n_conv = frames.shape[1] // 2
        audio, self._conv1, self._conv2 = self._encoder.run(
            {
                "mel": frames[None].astype(self.model.kv_dtype),
                "conv1_state": self._conv1,
                "conv2_state": self._conv2,
                "position_ids": np.arange(self._enc_pos, self._enc_pos + n_conv, dtype=np.int64)[None],
            },
            n_conv,
        )
        self._enc_pos += n_conv
        return audio

    def _decode(self, ids: np.ndarray, audio: np.ndarray) -> list:
        """One decoder call (the prefill or a step); returns the words its token completed."""
        embeds = (self.model.embed(ids)[None] + audio).astype(self.model.kv_dtype)
        (logits,) = self._decoder.run(
            {
                "inputs_embeds": embeds,
                "position_ids": np.arange(self._dec_pos, self._dec_pos + len(ids), dtype=np.int64)[None],
                "ada_scale": self.ada_scale,
            },
            len(ids),
        )
        self._dec_pos += len(ids)
        token = int(np.argmax(logits[0]))
        start, end = self._times(self._step)
        if self.on_step:
            self.on_step(token, logits[0], start, end)
        self._step += 1
        self.stats.steps += 1
        return self._emit(token, start, end)

    def _emit(self, token: int, start: float, end: float) -> list:
        special = self.model.special
        self._token = token
        if token == special["eos"]:
            self._ended = True
            return self._words.flush()
        if token == special["streaming_word"]:
            return self._words.boundary()
        return self._words.push(self._text.push(token), start, end)

    def _times(self, step: int) -> tuple[float, float]:
        first = self._origin + step * self.samples_per_token
        return self.clock.seconds(first), self.clock.seconds(first + self.samples_per_token)

    def _after_end(self, final: bool) -> list:
        """After end-of-sequence: at end of stream, stop; live, a new session on the audio from the
        frame after it."""
        if final:
            return []
        restart = self._step * self.samples_per_token
        pending = self._history[max(0, restart - self._history_start) :]
        self.stats.resets += 1
        self._start_session(self._origin + restart)
        words = []
        for start in range(0, len(pending), self.samples_per_token):
            words += self._consume(pending[start : start + self.samples_per_token])
        return words

    def _trim_history(self) -> None:
        """Keep only audio a restart could still need: from the frame of the next token on."""
        keep_from = self._step * self.samples_per_token
        drop = keep_from - self._history_start
        if drop > 0:
            self._history = self._history[drop:]
            self._history_start = keep_from

    def _events(self, words: list, before, final: bool = False) -> list[Event]:
        events = []
        if words:
            text = "".join(w.text for w in words)
            events.append(Event("final", text, words[0].start, words[-1].end, tuple(words)))
        pending = None if final else self._words.pending()
        if pending != before and pending is not None:
            events.append(Event("partial", pending.text, pending.start, pending.end, (pending,)))
        return events
