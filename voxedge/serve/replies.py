"""What the HTTP handlers share: the app key of the server, and error bodies in OpenAI's shape (so that
its client libraries raise them with the message intact)."""

from __future__ import annotations

from aiohttp import web

SERVER = web.AppKey("server", object)
ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 413: "invalid_request_error"}


def error_response(status: int, message: str, code: str) -> web.Response:
    body = {"error": {"message": message, "type": ERROR_TYPES.get(status, "server_error"), "param": None, "code": code}}
    return web.json_response(body, status=status)
