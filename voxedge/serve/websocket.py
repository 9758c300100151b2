"""`GET /v1/live`: live audio in, live text out, over one WebSocket (messages: docs/server.md).

    client: {"type": "start", "sample_rate": 48000, "encoding": "s16le", "channels": 1, "language": null}
    client: binary messages of PCM frames ...
    server: {"type": "partial" | "final" | "utterance", "text", "start", "end", ...}, {"type": "dropped", ...}
    client: {"type": "stop"}
    server: ... the last finals, then {"type": "done", "text": every final text joined}

After "done" the client may "start" again. A message that breaks these rules gets {"type": "error"}
and the connection is closed; other clients carry on.
"""

from __future__ import annotations

import asyncio
import json
import logging

from aiohttp import WSCloseCode, WSMsgType, web

from ..audio import SAMPLE_RATE
from ..errors import VoxedgeError
from .auth import bearer, token_matches
from .pcm import WireFormat
from .replies import SERVER

MAX_MESSAGE_BYTES = 1 << 20  # about 5 s of 48 kHz stereo int16 in one message
UNAUTHORIZED = 4401  # close codes 4000-4999 are the application's own
INVALID = 1007  # RFC 6455: data inconsistent with the message type
TRY_AGAIN_LATER = 1013  # every live-client slot is taken
log = logging.getLogger("voxedge.serve")


async def live(request: web.Request) -> web.WebSocketResponse:
    server = request.app[SERVER]
    ws = web.WebSocketResponse(heartbeat=30.0, max_msg_size=MAX_MESSAGE_BYTES)
    await ws.prepare(request)
    token = request.query.get("token") or bearer(request.headers.get("Authorization"))
    connection = LiveConnection(server, ws, request)
    if not token_matches(token, server.config.token):
        await connection.refuse("unauthorized", "this server needs a token: open the page as /?token=TOKEN, or send "
                                "?token=TOKEN with the WebSocket", UNAUTHORIZED)
        return ws
    await connection.run()
    return ws


class LiveConnection:
    """One WebSocket client: its messages in, its stream's events out."""

    def __init__(self, server, ws: web.WebSocketResponse, request: web.Request):
        self.server, self.ws, self.request = server, ws, request
        self.session = None
        self.format: WireFormat | None = None
        self.finals: list[str] = []

    async def run(self) -> None:
        engine = self.server.engine
        self.server.connections.add(self)
        await self.send({"type": "ready", "model": engine.name, "languages": list(engine.languages),
                         "sample_rate": SAMPLE_RATE})
        try:
            async for message in self.ws:
                if message.type == WSMsgType.TEXT:
                    await self.on_text(message.data)
                elif message.type == WSMsgType.BINARY:
                    self.on_audio(message.data)
                elif message.type == WSMsgType.ERROR:  # e.g. a message over MAX_MESSAGE_BYTES
                    break
        except VoxedgeError as exc:
            code = getattr(exc, "code", "bad-request")
            await self.refuse(code, str(exc), TRY_AGAIN_LATER if code == "busy" else INVALID)
        finally:
            self.end_session()
            self.server.connections.discard(self)

    async def shutdown(self) -> None:
        """The server is stopping: the client is told so (close code 1001, "going away")."""
        self.end_session()
        await self.ws.close(code=WSCloseCode.GOING_AWAY, message=b"server shutting down")

    async def on_text(self, data: str) -> None:
        try:
            message = json.loads(data)
        except ValueError:
            raise VoxedgeError("a text message that is not JSON") from None
        kind = message.get("type") if isinstance(message, dict) else None
        if kind == "start":
            self.start(message)
        elif kind == "stop":
            await self.stop()
        else:
            raise VoxedgeError(f"unknown message {str(message)[:80]!r}: "
                               'send {"type": "start", ...} or {"type": "stop"}')

    def start(self, message: dict) -> None:
        if self.session is not None:
            raise VoxedgeError('"start" while a stream is running: send {"type": "stop"} first')
        fmt = WireFormat.from_encoding(message.get("sample_rate"), message.get("encoding", "s16le"),
                                       message.get("channels", 1))
        language = message.get("language")
        if language is not None and not isinstance(language, str):
            raise VoxedgeError(f"language must be a code such as 'en' or null, got {language!r}")
        transcriber = self.server.engine.open_stream(language=language)
        self.session = self.server.open_session(transcriber, fmt.rate, emit=self.emit, fail=self.fail)
        self.format, self.finals = fmt, []

    def on_audio(self, data: bytes) -> None:
        if self.session is None:
            raise VoxedgeError('audio before {"type": "start", ...}: say first what the audio is')
        self.session.push(self.format.decode(data))

    async def stop(self) -> None:
        if self.session is None:
            raise VoxedgeError('"stop" without a running stream')
        await self.session.finish()
        self.end_session()
        await self.send({"type": "done", "text": "".join(self.finals).strip()})

    async def emit(self, events) -> None:
        for event in events:
            if event.dropped_samples:
                await self.send({"type": "dropped", "samples": event.dropped_samples,
                                 "seconds": round(event.dropped_samples / SAMPLE_RATE, 3)})
            if not event.text and event.kind == "partial" and event.dropped_samples:
                continue  # the stream's carrier of a drop count, said above
            message = {"type": event.kind, "text": event.text, "start": round(event.start, 3),
                       "end": round(event.end, 3), "backlog": event.backlog}
            if event.kind != "partial":
                message["words"] = [{"text": w.text, "start": round(w.start, 3), "end": round(w.end, 3)}
                                    for w in event.words]
            if event.kind == "final":
                self.finals.append(event.text)
            await self.send(message)

    async def fail(self, exc: Exception) -> None:
        log.warning("websocket: closing a client: %s", exc, exc_info=not isinstance(exc, VoxedgeError))
        text = str(exc) if isinstance(exc, VoxedgeError) else "transcription failed on the server (its log says why)"
        await self.refuse("transcription-failed", text, 1011)

    async def refuse(self, code: str, message: str, close_code: int) -> None:
        self.end_session()
        await self.send({"type": "error", "code": code, "message": message})
        await self.ws.close(code=close_code, message=code.encode())

    async def send(self, message: dict) -> None:
        """Send one message; a client that does not read within the write timeout is disconnected."""
        if self.ws.closed:
            return
        try:
            await asyncio.wait_for(self.ws.send_json(message), self.server.config.write_timeout_s)
        except asyncio.TimeoutError:
            log.warning("websocket: a client stopped reading; disconnecting it")
            self.end_session()
            if self.request.transport is not None:
                self.request.transport.abort()
        except (ConnectionError, RuntimeError):  # the client is gone
            self.end_session()

    def end_session(self) -> None:
        if self.session is not None:
            self.session.abort()
            self.server.close_session(self.session)
            self.session = None
