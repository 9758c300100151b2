"""The HTTP side (aiohttp): the captions page at `/`, the OpenAI-compatible API under `/v1/`, the live
WebSocket at `/v1/live`. The page and its assets need no token (they hold no data); the API does
when the server has one."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from .auth import bearer, token_matches
from .replies import SERVER, error_response
from .transcriptions import models, transcriptions
from .websocket import live

PAGE = Path(__file__).with_name("page")


def is_public(path: str) -> bool:
    """The page and its assets; the WebSocket checks its own token (browsers send it in the query)."""
    return path == "/" or path.startswith("/static/") or path == "/v1/live"


@web.middleware
async def require_token(request: web.Request, handler):
    token = request.app[SERVER].config.token
    if not is_public(request.path) and not token_matches(bearer(request.headers.get("Authorization")), token):
        return error_response(401, "missing or wrong token: send the header `Authorization: Bearer TOKEN` "
                              "(the openai client's api_key)", "invalid_api_key")
    return await handler(request)


async def page(request: web.Request) -> web.FileResponse:
    return web.FileResponse(PAGE / "index.html", headers={"Cache-Control": "no-cache"})


def build_app(server) -> web.Application:
    app = web.Application(middlewares=[require_token])
    app[SERVER] = server
    app.router.add_get("/", page)
    app.router.add_static("/static/", PAGE)
    app.router.add_get("/v1/models", models)
    app.router.add_post("/v1/audio/transcriptions", transcriptions)
    app.router.add_get("/v1/live", live)
    return app


async def start_http(server, host: str, port: int):
    """Listen on host:port; returns the runner (to clean up) and the address bound."""
    # lingering_time=0: a refused upload's remaining body is not read and discarded, the connection closes
    runner = web.AppRunner(build_app(server), access_log=None, lingering_time=0, handle_signals=False,
                           shutdown_timeout=10.0)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    return runner, runner.addresses[0][:2]
