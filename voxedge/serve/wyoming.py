"""Home Assistant's Wyoming protocol over TCP, with the `wyoming` package's event framing and messages.

    describe                                   -> info (one asr program, supports_transcript_streaming)
    transcribe? audio-start audio-chunk*        -> transcript-start, then a transcript-chunk per final text
    audio-stop                                  -> the last transcript-chunks, transcript, transcript-stop

Chunks are appended: joined, they are the transcript (each also carries the `start` and `end` of its
audio in seconds, fields other peers ignore). When the machine cannot keep up, a
`voxedge-dropped` event says how much audio was skipped (peers ignore event types they do not know).
A malformed event, an oversized one or audio the model refuses gets an `error` event, and that
connection is closed; every other connection carries on.
"""

from __future__ import annotations

import asyncio
import logging

from wyoming.asr import Transcribe, Transcript, TranscriptChunk, TranscriptStart, TranscriptStop
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.error import Error
from wyoming.event import Event, async_read_event, async_write_event
from wyoming.info import AsrModel, AsrProgram, Attribution, Describe, Info

from .. import __version__
from ..audio import SAMPLE_RATE
from ..errors import VoxedgeError
from .pcm import WireFormat

MAX_EVENT_BYTES = 1 << 20  # an event's data or payload above this is refused unread (audio chunks are a few kB)
MAX_LINE_BYTES = 1 << 16  # an event's header line
DROPPED_EVENT = "voxedge-dropped"
ATTRIBUTION = {
    "whisper": Attribution(name="OpenAI", url="https://github.com/openai/whisper"),
    "voxtral_realtime": Attribution(name="Mistral AI", url="https://mistral.ai"),
}
log = logging.getLogger("voxedge.serve")


class EventTooLarge(ValueError):
    """Raised inside the event reader; `async_read_event` turns it into the end of the connection."""


class _BoundedReader:
    """The stream `async_read_event` reads through: it refuses a data or payload length over
    MAX_EVENT_BYTES before reading it, so a peer cannot make the server buffer gigabytes."""

    def __init__(self, reader: asyncio.StreamReader):
        self._reader = reader
        self.problem: str | None = None  # why the last event could not be read, if it was malformed
        self.line = b""

    async def readline(self) -> bytes:
        try:
            self.line = await self._reader.readline()
        except ValueError:
            self.problem = f"an event header longer than {MAX_LINE_BYTES} bytes"
            raise
        return self.line

    async def readexactly(self, n: int) -> bytes:
        if n > MAX_EVENT_BYTES:
            self.problem = f"an event announcing {n} bytes of data or payload (the limit is {MAX_EVENT_BYTES})"
            raise EventTooLarge(self.problem)
        return await self._reader.readexactly(n)

    async def read_event(self) -> Event | None:
        """The next event; None at the end of the connection. Raises VoxedgeError if it is malformed."""
        self.line, self.problem = b"", None
        try:
            event = await async_read_event(self)
        except KeyError as exc:  # valid JSON that is not an event
            raise VoxedgeError(f"malformed Wyoming event: its header has no {exc}") from None
        except (TypeError, AttributeError):
            raise VoxedgeError("malformed Wyoming event: its header or data is not a JSON object") from None
        if event is None and (self.problem or self.line.strip()):
            raise VoxedgeError(f"malformed Wyoming event: {self.problem or 'the header is not a JSON object'}")
        if event is not None and not isinstance(event.data, dict):
            raise VoxedgeError("malformed Wyoming event: its data is not a JSON object")
        return event


def info_event(engine) -> Event:
    attribution = ATTRIBUTION.get(engine.family, Attribution(name="voxedge", url=""))
    model = AsrModel(name=engine.name, attribution=attribution, installed=True,
                     description=f"{engine.family} bundle served by voxedge", version=None,
                     languages=list(engine.languages))
    program = AsrProgram(name="voxedge", attribution=Attribution(name="voxedge", url=""), installed=True,
                         description="On-device live speech transcription", version=__version__,
                         models=[model], supports_transcript_streaming=True)
    return Info(asr=[program]).event()


class Connection:
    """One Wyoming peer: reads its events, runs at most one live session at a time."""

    def __init__(self, server, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.server = server
        self.reader = _BoundedReader(reader)
        self.writer = writer
        self.language: str | None = None  # from `transcribe`
        self.session = None
        self.format: WireFormat | None = None
        self.chunks: list[str] = []
        self.open = True

    async def run(self) -> None:
        self.server.connections.add(self)
        try:
            while self.open:
                try:
                    event = await self.reader.read_event()
                except VoxedgeError as exc:
                    await self.send(Error(text=str(exc), code="bad-event").event())
                    break
                if event is None:
                    break
                try:
                    await self.handle(event)
                except (VoxedgeError, KeyError, TypeError, ValueError) as exc:
                    # a refusal (bad audio format, unsupported language, a field of the wrong type, no slot)
                    code = getattr(exc, "code", "bad-request")
                    await self.send(Error(text=_message(exc, event.type), code=code).event())
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass  # the peer went away mid-event
        finally:
            self.close()

    async def handle(self, event: Event) -> None:
        if Describe.is_type(event.type):
            await self.send(info_event(self.server.engine))
        elif Transcribe.is_type(event.type):
            self.language = Transcribe.from_event(event).language
        elif AudioStart.is_type(event.type):
            start = AudioStart.from_event(event)
            await self.start(WireFormat.from_width(start.rate, start.width, start.channels))
        elif AudioChunk.is_type(event.type):
            chunk = AudioChunk.from_event(event)
            fmt = WireFormat.from_width(chunk.rate, chunk.width, chunk.channels)
            if self.session is None:  # audio-start is optional for lenient peers
                await self.start(fmt)
            elif fmt != self.format:
                raise VoxedgeError(f"audio-chunk format {fmt} differs from audio-start's {self.format}")
            self.session.push(fmt.decode(chunk.audio))
        elif AudioStop.is_type(event.type):
            if self.session is None:  # no audio at all: an empty transcript, rather than none
                await self.send(TranscriptStart(language=self.language).event())
                self.chunks = []
            else:
                await self.stop_session()
            await self.finish_transcript()
        # anything else (ping, select-program, events of other domains) is not for an ASR service

    async def start(self, fmt: WireFormat) -> None:
        if self.session is not None:
            raise VoxedgeError("audio-start while a transcription is running: send audio-stop first")
        transcriber = self.server.engine.open_stream(language=self.language)
        self.session = self.server.open_session(transcriber, fmt.rate, emit=self.emit, fail=self.fail)
        self.format, self.chunks = fmt, []
        await self.send(TranscriptStart(language=self.language).event())

    async def stop_session(self) -> None:
        session, self.session = self.session, None
        await session.finish()
        self.server.close_session(session)

    async def finish_transcript(self) -> None:
        await self.send(Transcript(text="".join(self.chunks).strip(), language=self.language).event())
        await self.send(TranscriptStop().event())

    async def emit(self, events) -> None:
        for event in events:
            if event.dropped_samples:
                await self.send(Event(DROPPED_EVENT, {"samples": event.dropped_samples,
                                                      "seconds": round(event.dropped_samples / SAMPLE_RATE, 3)}))
            if event.kind == "final" and event.text:
                self.chunks.append(event.text)
                chunk = TranscriptChunk(text=event.text).event()
                chunk.data.update(start=round(event.start, 3), end=round(event.end, 3))  # extra fields peers ignore
                await self.send(chunk)

    async def fail(self, exc: Exception) -> None:
        log.warning("wyoming: closing a client: %s", exc, exc_info=not isinstance(exc, VoxedgeError))
        text = str(exc) if isinstance(exc, VoxedgeError) else "transcription failed on the server (its log says why)"
        await self.send(Error(text=text, code="transcription-failed").event())
        self.close()

    async def send(self, event: Event) -> None:
        """Write one event; a peer that does not read within the write timeout is disconnected."""
        if not self.open:
            return
        try:
            await asyncio.wait_for(async_write_event(event, self.writer), self.server.config.write_timeout_s)
        except asyncio.TimeoutError:
            log.warning("wyoming: a client stopped reading; disconnecting it")
            self.writer.transport.abort()
            self.close()
        except (ConnectionError, RuntimeError):  # the peer is gone
            self.close()

    def close(self) -> None:
        if self.session is not None:
            self.session.abort()
            self.server.close_session(self.session)
            self.session = None
        self.open = False
        self.writer.close()
        self.server.connections.discard(self)

    async def shutdown(self) -> None:
        """The server is stopping."""
        self.close()


def _message(exc: Exception, what: str) -> str:
    if isinstance(exc, VoxedgeError):
        return str(exc)
    if isinstance(exc, KeyError):
        return f"{what}: the event lacks the field {exc}"
    return f"{what}: {exc}"


async def start_wyoming(server, host: str, port: int) -> asyncio.base_events.Server:
    """Listen for Wyoming peers; each connection runs until its peer leaves or misbehaves."""

    async def accept(reader, writer):
        await Connection(server, reader, writer).run()

    return await asyncio.start_server(accept, host, port, limit=MAX_LINE_BYTES)
