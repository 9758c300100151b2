"""Voxtral Mini 4B Realtime on onnxruntime: one token per 80 ms of audio (docs/voxtral.md).

A session is: the prompt [BOS] + [STREAMING_PAD] x (32 + n_d) prefilled against the first
1280 (n_d + 1) + 40 samples (behind 2.56 s of virtual silence), then one step per 80 ms: the
encoder turns 8 new mel frames into one audio embedding, which is added to the embedding of the
previous token, and the decoder's argmax is the next token. Token k of a session is stamped with
the 80 ms frame [k * 80, (k + 1) * 80) ms of that session's audio: the model's delay is already
taken out. After an end-of-sequence token the session restarts on the audio not yet transcribed.

The part of the prompt that sees only the left pad is the same in every session: bundles carry its
caches (the prompt-prefix snapshot, export/voxtral/prefix.py), and a session, fresh or restarted after
end-of-sequence, starts from them and prefills only the rest of the prompt.

Most steps emit padding. With `verify_steps` k > 1 a decoder call takes the step plus k - 1 drafted
padding tokens, at the positions whose audio is already encoded, and returns the logits of all k: the
tokens up to the first one that is not the draft are exactly what k single steps would give, and the
cache forgets the positions after it (a length reset). Right after a word boundary the next token is
text, so that call is a single step. Files verify by default; a live stream that has
fallen behind (CATCH_UP_TOKENS steps' audio waiting, or encoder_batch's if more) encodes and verifies
in batches to catch up.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from ..config import VoxtralConfig
from ..errors import BundleError, UnsupportedError
from ..features import StreamingLogMel, StreamingPadding
from ..options import StreamOptions
from ..stream import Stream, Update
from ..tokenizer import TextAssembler
from ..words import WordAssembler
from .base import Model, stream_segments
from .draft_policy import DraftPolicy
from .kv_cache import CachedGraph, SlidingKVCache, kv_names

ENCODER_OUTPUTS = ["audio_embeds", "conv1_state_out", "conv2_state_out"]
CATCH_UP_TOKENS = 8  # a live stream with this many steps' audio waiting (or more) encodes that many per call
CATCH_UP_VERIFY = 4  # ... and verifies at least this many drafted steps per decoder call
VERIFY_STEPS = 4  # steps per call for verify_steps=None where this machine has not measured the bundle


@dataclass(frozen=True)
class PrefixCaches:
    """The prompt-prefix snapshot, loaded (config.PromptPrefix; the KV tables memory-mapped)."""

    tokens: int  # prompt positions it covers
    encoder_kv: np.ndarray  # [2 x encoder layers, kv_heads, n, head_dim]: the encoder positions still visible
    conv: dict  # conv1_state, conv2_state
    decoder_kv: dict  # delay in ms -> [2 x decoder layers, kv_heads, n, head_dim]


class VoxtralRealtimeModel(Model):
    family = "voxtral_realtime"
    config_type = VoxtralConfig
    stream_fields = frozenset({"delay_ms", "encoder_batch", "verify_steps", "keyterms"})
    transcribe_fields = frozenset({"delay_ms", "encoder_batch", "verify_steps", "keyterms"})

    def _open(self) -> None:
        cfg = self.config
        # the KV outputs (present_* or, in npu bundles, new_*) are checked by CachedGraph
        self.encoder = self.session("audio_encoder_step", ["mel", "conv1_state", "conv2_state", "position_ids",
                                                           *kv_names(cfg.encoder.layers, "past")], ENCODER_OUTPUTS)
        self.decoder = self.session("decoder_step", ["inputs_embeds", "position_ids", "ada_scale",
                                                     *kv_names(cfg.decoder.layers, "past")], ["logits"])
        # graphs exported before 0.4 (and fixed-shape NPU graphs) give the last position's logits only
        self.verifies = "logits_to_keep" in {i.name for i in self.decoder.get_inputs()}
        self.conv_shapes = {i.name: tuple(i.shape) for i in self.encoder.get_inputs() if i.name.startswith("conv")}
        if not all(all(isinstance(d, int) for d in shape) for shape in self.conv_shapes.values()):
            raise BundleError(f"{self.bundle.root}: the encoder's conv states must have fixed shapes; re-export")
        scales = self.bundle.array(cfg.ada_scales, (len(cfg.delays_ms), cfg.decoder.layers, cfg.decoder.hidden))
        self.ada_scales = dict(zip(cfg.delays_ms, scales.astype(cfg.kv_dtype)))
        self.padding = StreamingPadding(cfg.samples_per_token, cfg.left_pad_tokens, cfg.buffer_tokens,
                                        cfg.front_end.n_fft, cfg.front_end.hop_length)
        self.prefix = self._prefix() if cfg.prefix else None

    @functools.cached_property
    def decoder_costs(self) -> dict[int, float] | None:
        """This machine's measured cost of decoder calls over M positions (voxedge/device_profile.py)."""
        from ..device_profile import decoder_costs

        return decoder_costs(self.bundle) if self.verifies else None

    def _prefix(self) -> PrefixCaches:
        cfg, spec = self.config, self.config.prefix
        enc, dec = cfg.encoder, cfg.decoder
        encoder_kv = self.bundle.array(spec.encoder_kv, (2 * enc.layers, enc.kv_heads, None, enc.head_dim), mapped=True)
        decoder_kv = self.bundle.array(spec.decoder_kv, (len(cfg.delays_ms), 2 * dec.layers, dec.kv_heads, None,
                                                         dec.head_dim), mapped=True)
        positions = spec.tokens * cfg.mel_frames_per_token // 2
        if encoder_kv.shape[2] != min(positions, enc.window - 1) or decoder_kv.shape[3] != min(spec.tokens, dec.window - 1):
            raise BundleError(f"{self.bundle.root}: the prompt-prefix snapshot does not hold the positions its "
                              f"{spec.tokens} tokens leave visible; re-export the bundle")
        conv = {name: self.bundle.array(getattr(spec, name), shape) for name, shape in self.conv_shapes.items()}
        return PrefixCaches(spec.tokens, encoder_kv, conv, dict(zip(cfg.delays_ms, decoder_kv)))

    def decoder_feeds(self, embeds: np.ndarray, first_position: int, ada_scale: np.ndarray, keep: int = 1) -> dict:
        """The decoder's inputs besides its KV: `embeds` [1, n, hidden] at positions first_position ..
        first_position + n - 1, asking for the logits of the last `keep` positions."""
        feeds = {
            "inputs_embeds": embeds,
            "position_ids": np.arange(first_position, first_position + embeds.shape[1], dtype=np.int64)[None],
            "ada_scale": ada_scale,
        }
        if self.verifies:
            feeds["logits_to_keep"] = np.array([keep], np.int64)
        return feeds

    def delay_tokens(self, delay_ms: int | None) -> int:
        """A delay in milliseconds (None: the bundle's default) as a number of 80 ms tokens."""
        cfg = self.config
        delay_ms = cfg.default_delay_ms if delay_ms is None else delay_ms
        if delay_ms not in cfg.delays_ms:
            shown = ", ".join(str(d) for d in sorted(cfg.delays_ms))
            raise UnsupportedError(f"delay {delay_ms} ms is not supported by this bundle; choose one of: {shown}")
        return delay_ms // cfg.ms_per_token

    def _stream_engine(self, options: StreamOptions, on_step, catch_up: bool = True) -> VoxtralSession:
        return VoxtralSession(self, self.delay_tokens(options.delay_ms), options.encoder_batch, on_step,
                              self.keyterm_processor(options.keyterms), verify_steps=options.verify_steps,
                              catch_up=catch_up)

    def _segments(self, source, options, info):
        stream = StreamOptions(delay_ms=options.delay_ms, encoder_batch=options.encoder_batch,
                               verify_steps=options.verify_steps, keyterms=options.keyterms)
        return stream_segments(Stream(self._stream_engine(stream, None, catch_up=False)), source)


class VoxtralSession:
    """One stream's state: caches, front end, clocks and pending text. Implements EngineStream.

    `on_step(token, logits, start_s, end_s)` sees every decoder step (the model's own logits), times in
    engine seconds. A keyterm `processor` (voxedge/keyterms.py) adds its bonuses before the argmax; it
    never touches the timing tokens, and a match that breaks is simply left behind (emitted text cannot
    be taken back here). `use_prefix=False` prefills the whole prompt even when the bundle has the
    prompt-prefix snapshot (the benchmarks' "before", the tests' comparison). `verify_steps` and
    `catch_up`: the module docstring; `verified` counts the drafted tokens accepted, `calls` the decoder
    calls after the prompt.
    """

    def __init__(self, model: VoxtralRealtimeModel, n_d: int, encoder_batch: int, on_step, processor=None,
                 use_prefix: bool = True, verify_steps: int = 1, catch_up: bool = True):
        cfg = model.config
        self.model, self.cfg, self.n_d = model, cfg, n_d
        self.ada_scale = model.ada_scales[n_d * cfg.ms_per_token]
        tokens = cfg.tokens
        self.prompt = np.array([tokens.bos] + [tokens.streaming_pad] * (cfg.left_pad_tokens + n_d))
        self.prefix = model.prefix if use_prefix else None
        self.encoder_batch = encoder_batch
        self.on_step = on_step
        self.processor = processor
        self.steps = self.resets = self.calls = self.verified = 0
        self.catch_up = catch_up
        self.draft = cfg.tokens.streaming_pad  # the token drafted after a step: most steps are padding
        self.catch_up_batch = max(CATCH_UP_TOKENS, encoder_batch)
        # a call verifies at most as many positions as the prompt prefill writes (the cache's step bound)
        self.verify_steps = min(verify_steps or VERIFY_STEPS, len(self.prompt)) if model.verifies else 1
        # with this machine's measured costs, the cheapest k per call: for verify_steps=None, and catching up
        self.policy = DraftPolicy(model.decoder_costs, len(self.prompt)) if model.decoder_costs else None
        self._auto = verify_steps is None
        enc_step = cfg.mel_frames_per_token // 2 * max(len(self.prompt), self.catch_up_batch)
        self._encoder = CachedGraph(model.encoder, SlidingKVCache.of(cfg.encoder, enc_step, cfg.kv_dtype), ENCODER_OUTPUTS)
        self._decoder = CachedGraph(model.decoder, SlidingKVCache.of(cfg.decoder, len(self.prompt), cfg.kv_dtype),
                                    ["logits"])
        self._words = WordAssembler()
        self._text = TextAssembler(model.tokens)
        self._start_session(origin=0)

    # -- session state --------------------------------------------------------------------------

    def _start_session(self, origin: int) -> None:
        """Fresh prompt, caches and clocks; the session's real audio begins at engine sample `origin`."""
        model, cfg, prefix = self.model, self.cfg, self.prefix
        left_pad = model.padding.left_pad
        if prefix is None:
            self._conv = {name: np.zeros(shape, cfg.kv_dtype) for name, shape in model.conv_shapes.items()}
            self._encoder.cache.length = self._decoder.cache.length = 0
            self._enc_pos = self._dec_pos = self._prompt_from = 0
        else:  # the caches as the prompt's first prefix.tokens positions leave them
            self._prompt_from = self._dec_pos = prefix.tokens
            self._enc_pos = prefix.tokens * cfg.mel_frames_per_token // 2
            self._encoder.restore(prefix.encoder_kv, self._enc_pos)
            self._decoder.restore(prefix.decoder_kv[self.n_d * cfg.ms_per_token], self._dec_pos)
            self._conv = {name: state.astype(cfg.kv_dtype) for name, state in prefix.conv.items()}
            left_pad -= prefix.tokens * cfg.mel_frames_per_token * cfg.front_end.hop_length  # their frames are done
        self._mel = StreamingLogMel(model.mel, left_pad=left_pad)
        self._frames = np.zeros((model.mel.n_mels, 0), np.float32)
        self._token = None  # previous token; None until the prompt is prefilled
        self._ended = False  # the model emitted end-of-sequence
        self._step = 0  # tokens produced in this session
        self._origin = origin
        self._fed = 0  # real samples given to this session
        self._history = np.zeros(0, np.float32)  # recent samples, for a restart after end-of-sequence
        self._history_start = 0  # session sample index of _history[0]
        self._finished = False  # finish() ran: the next audio starts a new session
        self._keyterm_state = self.processor.start() if self.processor else None

    # -- EngineStream ---------------------------------------------------------------------------

    def process(self, samples: np.ndarray) -> Update:
        if self._finished:
            self._start_session(self._origin + self._fed)
            self._text = TextAssembler(self.model.tokens)
        words: list = []
        # catch_up_batch steps' audio at a time: at most that much waits unconsumed beyond the model's own
        # lookahead, which bounds the history kept for restarts whatever size the caller feeds.
        step = self.cfg.samples_per_token * self.catch_up_batch
        for start in range(0, len(samples), step):
            words += self._consume(samples[start : start + step])
        return Update(words, self._open_words())

    def finish(self) -> Update:
        """Append the flush pad and step until the audio is used up (the last 80 ms position is not
        consumed, as in transformers' offline generate), or until end-of-sequence. Audio fed after
        this starts a new session."""
        words: list = []
        if self._fed or self._step:
            flush = np.zeros(self.model.padding.flush_pad(self._fed, self.n_d), np.float32)
            self._frames = np.concatenate([self._frames, self._mel.feed(flush)], axis=1)
            self._frames = self._frames[:, : self._frames.shape[1] - self.cfg.mel_frames_per_token]
            words += self._run(final=True)
        words += self._words.push(self._text.flush(), *self._times(self._step))  # a cut-off UTF-8 tail, if any
        self._finished = True  # the next audio starts a new session (kept as it is until then)
        return Update(words + self._words.flush())

    # -- the work -------------------------------------------------------------------------------

    def _open_words(self) -> list:
        pending = self._words.pending()
        return [pending] if pending else []

    def _consume(self, samples: np.ndarray) -> list:
        self._history = np.concatenate([self._history, samples])
        self._fed += len(samples)
        self._frames = np.concatenate([self._frames, self._mel.feed(samples)], axis=1)
        return self._run(final=False)

    def _run(self, final: bool) -> list:
        """Run every step the pending mel frames allow; returns completed words."""
        words = []
        per_token = self.cfg.mel_frames_per_token
        if self._token is None:
            rest = self.prompt[self._prompt_from :]
            if self._frames.shape[1] < per_token * len(rest):
                return words
            (logits,) = self._call_decoder(rest, self._encode(len(rest)), keep=1)
            words += self._step_with(logits[0])
            if self._ended:
                return words + self._after_end(final)
        while True:
            available = self._frames.shape[1] // per_token
            behind = self.catch_up and not final and available >= self.catch_up_batch
            batch = self.catch_up_batch if behind else self.encoder_batch
            n = min(batch, available) if final else batch * (available >= batch)
            if n == 0:
                break
            audio, done = self._encode(n), 0
            while done < n:
                new_words, accepted = self._verify(audio[:, done : done + self._draft_length(behind, n - done)])
                words += new_words
                done += accepted
                if self._ended:
                    return words + self._after_end(final)
        self._trim_history()
        return words

    def _draft_length(self, behind: bool, left: int) -> int:
        """Positions for the next call: one right after a word boundary (text follows it, never
        padding), else up to k over the audio already encoded: the policy's k where it applies,
        else verify_steps (at least CATCH_UP_VERIFY when catching up)."""
        if self._token == self.cfg.tokens.streaming_word:
            return 1
        if self.policy and (self._auto or behind):
            return min(self.policy.steps(self._token == self.draft), left)
        verify = max(self.verify_steps, CATCH_UP_VERIFY) if behind and self.model.verifies else self.verify_steps
        return min(verify, left)

    def _encode(self, n_tokens: int) -> np.ndarray:
        frames = self._frames[:, : n_tokens * self.cfg.mel_frames_per_token]
        self._frames = self._frames[:, frames.shape[1] :]
        n_conv = frames.shape[1] // 2
        audio, self._conv["conv1_state"], self._conv["conv2_state"] = self._encoder.run(
            {
                "mel": frames[None].astype(self.cfg.kv_dtype),
                **self._conv,
                "position_ids": np.arange(self._enc_pos, self._enc_pos + n_conv, dtype=np.int64)[None],
            },
            n_conv,
        )
        self._enc_pos += n_conv
        return audio

    def _verify(self, audio: np.ndarray) -> tuple[list, int]:
        """One decoder call over audio[:, :k]: the step after the previous token, then k - 1 drafted
        tokens. Returns the words completed and how many tokens were accepted."""
        k = audio.shape[1]
        ids = np.array([self._token] + [self.draft] * (k - 1))
        (logits,) = self._call_decoder(ids, audio, keep=k)
        self.calls += 1
        words, accepted = [], 0
        for row in logits:
            words += self._step_with(row)
            accepted += 1
            if self._ended or self._token != self.draft:
                break
        self.verified += accepted - 1
        rejected = k - accepted
        self._decoder.cache.length -= rejected  # the positions after the first token that is not the draft
        self._dec_pos -= rejected
        return words, accepted

    def _call_decoder(self, ids: np.ndarray, audio: np.ndarray, keep: int) -> list:
        """Run the decoder over `ids` (+ their audio embeddings): the logits of the last `keep` positions."""
        embeds = (self.model.embed(ids)[None] + audio).astype(self.cfg.kv_dtype)
        feeds = self.model.decoder_feeds(embeds, self._dec_pos, self.ada_scale, keep)
        self._dec_pos += len(ids)
        return self._decoder.run(feeds, len(ids))

    def _step_with(self, logits: np.ndarray) -> list:
        """The next token from its logits; returns the words it completed."""
        token = self._choose(logits)
        if self.policy and self._token not in (None, self.cfg.tokens.streaming_word):  # after it: single steps
            self.policy.observe(self._token == self.draft, token == self.draft)
        start, end = self._times(self._step)
        if self.on_step:
            self.on_step(token, logits, start, end)
        self._step += 1
        self.steps += 1
        return self._emit(token, start, end)

    def set_keyterms(self, terms) -> None:
        self.processor = self.model.keyterm_processor(terms)
        self._keyterm_state = self.processor.start() if self.processor else None

    def _choose(self, logits: np.ndarray) -> int:
        if self.processor is None:
            return int(np.argmax(logits))
        boosted = logits.copy()
        self.processor.apply(self._keyterm_state, boosted)
        token = int(np.argmax(boosted))
        self._keyterm_state, _ = self.processor.advance(self._keyterm_state, token)
        return token

    def _emit(self, token: int, start: float, end: float) -> list:
        tokens = self.cfg.tokens
        self._token = token
        if token == tokens.eos:
            self._ended = True
            return self._words.flush()
        if token == tokens.streaming_word:
            return self._words.boundary()
        return self._words.push(self._text.push(token), start, end)

    def _times(self, step: int) -> tuple[float, float]:
        """The 80 ms frame of a session's token, in engine seconds."""
        first = self._origin + step * self.cfg.samples_per_token
        return first / 16000, (first + self.cfg.samples_per_token) / 16000

    def _after_end(self, final: bool) -> list:
        """After end-of-sequence: at end of stream, stop; live, a new session on the audio from the
        frame after it."""
        if final:
            return []
        restart = self._step * self.cfg.samples_per_token
        pending = self._history[max(0, restart - self._history_start) :]
        self.resets += 1
        self._start_session(self._origin + restart)
        words = []
        for start in range(0, len(pending), self.cfg.samples_per_token):
            words += self._consume(pending[start : start + self.cfg.samples_per_token])
        return words

    def _trim_history(self) -> None:
        """Keep only audio a restart could still need: from the frame of the next token on."""
        keep_from = self._step * self.cfg.samples_per_token
        drop = keep_from - self._history_start
        if drop > 0:
            self._history = self._history[drop:]
            self._history_start = keep_from

