"""One process, one loaded model, every protocol: Wyoming and HTTP (the OpenAI-compatible API, the
live WebSocket and the captions page) share the model, the worker threads and the client limit."""

from __future__ import annotations

import asyncio
import logging
import signal
from dataclasses import dataclass

from ..errors import VoxedgeError
from .auth import check_exposure
from .live import LiveSession, Scheduler

log = logging.getLogger("voxedge.serve")


class ServerBusy(VoxedgeError):
    """Every live-client slot is taken."""

    code = "busy"


@dataclass(frozen=True)
class ServeConfig:
    wyoming: tuple[str, int] | None = ("127.0.0.1", 10300)  # (host, port); port 0 picks a free one
    http: tuple[str, int] | None = ("127.0.0.1", 8000)
    token: str | None = None  # required when any listener is reachable from other machines
    workers: int = 1  # threads running the model, shared by all clients
    max_clients: int = 16  # live streams at once (Wyoming and WebSocket together)
    max_lag_s: float = 10.0  # audio a live client may have waiting; older audio is dropped and reported
    max_upload_mb: float = 25.0  # /v1/audio/transcriptions request body (OpenAI's limit too)
    max_files: int = 2  # file transcriptions decoded at once; more wait their turn
    write_timeout_s: float = 10.0  # a client that does not read for this long is disconnected


class Server:
    """The shared state the protocol modules use: `engine`, `scheduler`, `config`, live-client slots."""

    def __init__(self, engine, config: ServeConfig):
        check_exposure(config)
        self.engine, self.config = engine, config
        self.scheduler = Scheduler(config.workers)
        self.sessions: set[LiveSession] = set()
        self.connections: set = set()  # open Wyoming and WebSocket connections, closed by `stop`
        self.files = asyncio.Semaphore(config.max_files)
        self.addresses: dict[str, tuple[str, int]] = {}  # "wyoming"/"http" -> the address bound
        self._listeners = []

    def open_session(self, transcriber, rate: int, *, emit, fail) -> LiveSession:
        if len(self.sessions) >= self.config.max_clients:
            raise ServerBusy(f"all {self.config.max_clients} live-client slots are in use; try again later")
        session = LiveSession(transcriber, self.scheduler, rate, max_lag_s=self.config.max_lag_s, emit=emit, fail=fail)
        self.sessions.add(session)
        return session

    def close_session(self, session: LiveSession) -> None:
        self.sessions.discard(session)

    async def start(self) -> None:
        from .http import start_http
        from .wyoming import start_wyoming

        try:
            if self.config.wyoming:
                listener = await start_wyoming(self, *self.config.wyoming)
                self.addresses["wyoming"] = listener.sockets[0].getsockname()[:2]
                self._listeners.append(listener.close)
            if self.config.http:
                runner, address = await start_http(self, *self.config.http)
                self.addresses["http"] = address
                self._listeners.append(runner.cleanup)
        except OSError as exc:
            await self.stop()
            raise VoxedgeError(f"cannot listen: {exc.strerror or exc}; choose another address or port") from None

    async def stop(self) -> None:
        for connection in list(self.connections):
            await connection.shutdown()
        for close in reversed(self._listeners):
            result = close()
            if asyncio.iscoroutine(result):
                await result
        self._listeners.clear()
        self.scheduler.shutdown()


async def serve_forever(engine, config: ServeConfig, on_ready=None) -> None:
    """Run until SIGINT or SIGTERM. `on_ready(server)` is called once every listener is bound."""
    server = Server(engine, config)
    await server.start()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    try:
        if on_ready:
            on_ready(server)
        await stop.wait()
    finally:
        await server.stop()
