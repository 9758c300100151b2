"""The engine contract: what a model family implements, and what every family gets from here.

A family subclasses `Model` and provides (docs/architecture.md has the whole contract):

- class attributes `family` (the manifest's family), `config_type` (its record in voxedge/config.py),
  `stream_fields` and `transcribe_fields` (the option fields it supports), and `vad_by_default`
  (whether its live streams skip what Silero VAD calls silence unless told otherwise);
- `_open()`: its graphs (through `self.session`) and family tables;
- `_stream_engine(options, on_step)`: one stream's state, an `EngineStream` (voxedge/stream.py);
- `_segments(source, options, info)`: file transcription (`stream_segments` streams the file);
- optionally `_language(source, options)` (the default: the language asked for).

It gets: the bundle and its parsed config, the token and embedding tables, the front end, sessions
checked against the inputs and outputs it needs, option records checked against what it supports,
audio opened (and refused) at call time, and the `Stream` wrapper that maps times and counts drops.
"""

from __future__ import annotations

import dataclasses
import functools

from ..audio import SAMPLE_RATE, open_audio
from ..errors import BundleError
from ..features import LogMelSpectrogram
from ..gating import SpeechOnly
from ..options import StreamOptions, TranscribeOptions, build
from ..runtime import create_session
from ..speech_chunks import SpeechChunks
from ..stream import Stream
from ..tokenizer import TokenTable
from ..transcript import Transcription, TranscriptionInfo
from ..words import SegmentBuilder
from .embedding import EmbeddingTable

FILE_CHUNK = SAMPLE_RATE  # files are streamed a second at a time, so segments come out as decided
# options every family supports: the stream wrapper and the VAD do the work
COMMON_STREAM_FIELDS = frozenset({"vad", "vad_options", "endpoint_ms"})
COMMON_TRANSCRIBE_FIELDS = frozenset({"vad_filter", "vad_options"})


class Model:
    """A loaded bundle: immutable and shareable between threads; each stream or call owns its state."""

    family: str
    config_type: type
    stream_fields: frozenset = frozenset()
    transcribe_fields: frozenset = frozenset()
    vad_by_default: bool = False

    def __init__(self, bundle, runtime):
        self.bundle, self.runtime = bundle, runtime
        self.config = cfg = self.config_type.parse(bundle.model_section)
        self.tokens = TokenTable.load(bundle.path(cfg.tokenizer))
        if len(self.tokens) != cfg.vocab:
            raise BundleError(f"{bundle.root}: the token table has {len(self.tokens)} entries, the model {cfg.vocab}")
        self.embed = EmbeddingTable(bundle.path(cfg.embedding.file), cfg.embedding)
        fe = cfg.front_end
        filters = bundle.array(fe.mel_filters, (fe.n_fft // 2 + 1, fe.n_mels))
        self.mel = LogMelSpectrogram(filters, fe.n_fft, fe.hop_length, fe.log_mel_max)
        self._open()

    @property
    def name(self) -> str:
        return f"{self.bundle.manifest.get('name') or self.bundle.root} ({self.family})"

    def session(self, graph: str, inputs, outputs, dims=None):
        """An onnxruntime session for one of the bundle's graphs, refused unless it has the named
        inputs and outputs (a graph swapped for another, or from another export, is caught here);
        `dims`: named input dimensions fixed (runtime.create_session)."""
        session = create_session(self.bundle.graph_bytes(graph), self.runtime, data_dir=self.bundle.root,
                                 label=self.bundle.graph_path(graph), dims=dims)
        have_in = {i.name for i in session.get_inputs()}
        have_out = {o.name for o in session.get_outputs()}
        missing = sorted(set(inputs) - have_in) + sorted(set(outputs) - have_out)
        if missing:
            raise BundleError(f"{self.bundle.root}: graph {graph!r} lacks {', '.join(missing[:4])}: it is not the "
                              f"{graph} graph this {self.family} engine needs; re-export the bundle")
        return session

    # -- public ---------------------------------------------------------------------------------

    @functools.cached_property
    def text_encoder(self):
        """Text -> token ids, from the bundle's tables (voxedge/bpe.py); built on first use."""
        from ..bpe import BytePairEncoder

        return BytePairEncoder.from_bundle(self.bundle, self.tokens)

    def keyterm_processor(self, terms):
        """The logits processor boosting `terms` (Keyterm records) in this family's decoder, or None."""
        if not terms:
            return None
        from ..keyterms import KeytermBoost

        return KeytermBoost.for_family(self.family, dataclasses.asdict(self.config.tokens), terms,
                                       self.text_encoder.encode, self._joining_pieces)

    @functools.cached_property
    def _joining_pieces(self) -> list[int]:
        from ..keyterms import joining_pieces

        return joining_pieces(self.tokens)

    @functools.cached_property
    def vad(self):
        """The bundle's Silero VAD (voxedge/vad.py); UnsupportedError when it has none."""
        from ..vad import SileroVad

        return SileroVad.from_bundle(self.bundle)

    def live_vad(self, asked: bool | None) -> bool:
        """Whether a stream gates its audio by VAD: as asked, or by default where the family wants it
        (`vad_by_default`) and the bundle has a VAD."""
        if asked is not None:
            return asked
        return self.vad_by_default and bool(self.bundle.model_section.get("vad"))

    def transcribe(self, audio, options: TranscribeOptions | None = None, *, sample_rate: int | None = None,
                   **fields) -> Transcription:
        """Segments of a file, an array (give its `sample_rate`) or PCM bytes, yielded as they are
        decided. Options: a TranscribeOptions record and/or its fields as keywords. With `vad_filter`
        only the speech Silero VAD finds is transcribed, and times are mapped back (faster-whisper's)."""
        options = build(TranscribeOptions, options, fields, self.transcribe_fields | COMMON_TRANSCRIBE_FIELDS,
                        self.family)
        source = open_audio(audio, sample_rate)
        chunks = SpeechChunks.find(self.vad, source, options.vad_options) if options.vad_filter else None
        speech = chunks.only_speech(source) if chunks else source
        language, probability = self._language(speech, options) if speech.duration else (options.language, None)
        info = TranscriptionInfo(source.duration, language, probability, self.name,
                                 speech.duration if chunks else None)
        segments = self._segments(speech, options, info) if speech.duration else iter(())
        return Transcription((chunks.restore(s) for s in segments) if chunks else segments, info)

    def stream(self, options: StreamOptions | None = None, *, on_step=None, **fields) -> Stream:
        """A live stream. `on_step` (for tests and tools) sees every engine step; its arguments are
        the family's (docs/architecture.md). With `vad`, silence is not decoded."""
        options = build(StreamOptions, options, fields, self.stream_fields | COMMON_STREAM_FIELDS, self.family)
        engine = self._stream_engine(options, on_step)
        if self.live_vad(options.vad):
            from ..vad import VadGate

            engine = SpeechOnly(engine, VadGate(self.vad, options.vad_options))
        return Stream(engine, endpoint=options.endpoint_ms / 1000)

    # -- what a family implements ------------------------------------------------------------------

    def _open(self) -> None:
        raise NotImplementedError

    def _stream_engine(self, options: StreamOptions, on_step):
        raise NotImplementedError

    def _language(self, source, options) -> tuple[str | None, float | None]:
        return options.language, None

    def _segments(self, source, options: TranscribeOptions, info: TranscriptionInfo):
        raise NotImplementedError


def stream_segments(stream: Stream, source):
    """File transcription as a live stream: its final words, grouped into segments."""
    segments = SegmentBuilder()
    for block in source.blocks(FILE_CHUNK):
        for event in stream.feed(block):
            if event.kind == "final":
                yield from segments.add(event.words)
    for event in stream.close():
        if event.kind == "final":
            yield from segments.add(event.words)
    yield from segments.flush()
