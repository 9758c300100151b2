"""Who may connect. On loopback only this machine can reach the server; anything wider needs a token:
HTTP clients send `Authorization: Bearer TOKEN` (what the openai client does with its api_key), a
browser's WebSocket sends `?token=TOKEN` (browsers cannot set headers on WebSockets).

Wyoming has no authentication in its protocol: exposing it needs the token too (proof that exposing
the server was meant), but Wyoming peers are not asked for it, so keep that port on a trusted network.
"""

from __future__ import annotations

import hmac
import ipaddress
import socket

from ..errors import VoxedgeError

MIN_TOKEN_LENGTH = 16


def is_loopback(host: str) -> bool:
    """True if every address `host` stands for is a loopback address (127.0.0.0/8, ::1, localhost)."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(info[4][0]).is_loopback for info in infos)


def host_port(address: tuple[str, int]) -> str:
    """HOST:PORT, with an IPv6 host in brackets."""
    host, port = address[:2]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def check_exposure(config) -> None:
    """Refuse to listen beyond loopback without a token, and refuse a token too short to guess at."""
    token = config.token
    if token is not None and len(token) < MIN_TOKEN_LENGTH:
        raise VoxedgeError(f"--token must be at least {MIN_TOKEN_LENGTH} characters; generate one with "
                           "`python3 -c 'import secrets; print(secrets.token_urlsafe())'`")
    for name, address in (("--wyoming", config.wyoming), ("--http", config.http)):
        if address and not is_loopback(address[0]) and token is None:
            raise VoxedgeError(
                f"{name} {host_port(address)} would accept connections from other machines: pass --token "
                "TOKEN (or set VOXEDGE_TOKEN) so that only clients holding it are served, or listen on 127.0.0.1")


def token_matches(given: str | None, token: str | None) -> bool:
    """True if no token is required, or `given` is it (compared in constant time)."""
    if token is None:
        return True
    return given is not None and hmac.compare_digest(given.encode(), token.encode())


def bearer(header: str | None) -> str | None:
    """The token of an `Authorization: Bearer TOKEN` header."""
    if header and header[:7].lower() == "bearer ":
        return header[7:].strip()
    return None
