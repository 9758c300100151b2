"""`voxedge serve`: one loaded model for Home Assistant (Wyoming), OpenAI-compatible HTTP clients,
WebSocket clients and the live-captions page (docs/server.md). Needs the `server` extra."""

from __future__ import annotations

import os
import sys
from urllib.parse import urlsplit

from ..errors import VoxedgeError
from .common import engine_options, model_kwargs

DEFAULT_WYOMING = "tcp://127.0.0.1:10300"
DEFAULT_HTTP = "127.0.0.1:8000"
TOKEN_ENV = "VOXEDGE_TOKEN"


def register(sub) -> None:
    p = sub.add_parser("serve", help="serve Home Assistant (Wyoming), OpenAI-compatible HTTP and a captions page",
                       description="Load one bundle and serve it to many clients at once: Home Assistant's Wyoming "
                       "protocol, OpenAI's /v1/audio/transcriptions, a WebSocket for live audio (/v1/live) and a "
                       "live-captions page at /. Without --wyoming or --http both run, on "
                       f"{DEFAULT_WYOMING} and {DEFAULT_HTTP}. Stop with Ctrl-C.")
    engine_options(p)
    p.add_argument("--wyoming", metavar="tcp://HOST:PORT", help="serve the Wyoming protocol there")
    p.add_argument("--http", metavar="HOST:PORT", help="serve HTTP and the WebSocket there")
    p.add_argument("--token", default=os.environ.get(TOKEN_ENV),
                   help=f"the token clients must send (default: ${TOKEN_ENV}); required to listen beyond loopback")
    p.add_argument("--workers", type=int, default=1, help="threads running the model for all clients (default: 1)")
    p.add_argument("--max-clients", type=int, default=16, help="live streams at once (default: 16)")
    p.add_argument("--max-lag", type=float, default=10.0, metavar="SECONDS",
                   help="audio a live client may have waiting before its oldest is dropped and reported (default: 10)")
    p.add_argument("--max-upload-mb", type=float, default=25.0, help="largest file upload (default: 25, as OpenAI)")
    p.set_defaults(handler=run)


def run(args) -> int:
    import asyncio
    import importlib.util
    import logging
    import warnings

    missing = [name for name in ("aiohttp", "wyoming") if importlib.util.find_spec(name) is None]
    if missing:
        raise VoxedgeError(f"`voxedge serve` needs the server extra ({', '.join(missing)} missing): "
                           "pip install -e '.[server]' in a voxedge checkout")
    from ..serve.adapter import Engine
    from ..serve.auth import check_exposure
    from ..serve.server import serve_forever

    config = _config(args)
    check_exposure(config)  # before loading the model: a refusal should not take seconds
    logging.basicConfig(level=logging.INFO, format="voxedge: %(message)s", stream=sys.stderr)
    # each client is told about its own drops (docs/server.md); a warning per drop would flood the log
    warnings.filterwarnings("ignore", message=r".*dropped before transcription")
    warnings.filterwarnings("ignore", message=r"'audioop' is deprecated")  # inside the wyoming package
    engine = Engine.load(args.bundle, providers=args.providers.split(","), threads=args.threads)
    engine.defaults = model_kwargs(args)
    asyncio.run(serve_forever(engine, config, on_ready=_announce))
    return 0


def _config(args):
    from ..serve.server import ServeConfig

    wyoming, http = args.wyoming, args.http
    if wyoming is None and http is None:
        wyoming, http = DEFAULT_WYOMING, DEFAULT_HTTP
    for name, value in (("--workers", args.workers), ("--max-clients", args.max_clients)):
        if value < 1:
            raise VoxedgeError(f"{name} must be at least 1, got {value}")
    if args.max_lag <= 0 or args.max_upload_mb <= 0:
        raise VoxedgeError("--max-lag and --max-upload-mb must be positive")
    return ServeConfig(wyoming=wyoming and _address(wyoming, "--wyoming", "tcp"),
                       http=http and _address(http, "--http"), token=args.token, workers=args.workers,
                       max_clients=args.max_clients, max_lag_s=args.max_lag, max_upload_mb=args.max_upload_mb)


def _address(value: str, option: str, scheme: str | None = None) -> tuple[str, int]:
    """HOST:PORT (or tcp://HOST:PORT for `scheme` "tcp") -> (host, port); IPv6 hosts in brackets."""
    parts = urlsplit(value if scheme else f"//{value}")
    try:
        port = parts.port
    except ValueError:
        port = None
    if (scheme and parts.scheme != scheme) or not parts.hostname or port is None:
        form = f"{scheme}://HOST:PORT" if scheme else "HOST:PORT"
        raise VoxedgeError(f"{option} {value!r} is not {form} (e.g. {DEFAULT_WYOMING if scheme else DEFAULT_HTTP})")
    return parts.hostname, port


def _announce(server) -> None:
    from ..serve.auth import host_port

    engine, lines = server.engine, []
    if "http" in server.addresses:
        base = host_port(server.addresses["http"])
        lines += [f"captions page  http://{base}/", f"OpenAI API     http://{base}/v1",
                  f"WebSocket      ws://{base}/v1/live"]
    if "wyoming" in server.addresses:
        lines.append(f"Wyoming        tcp://{host_port(server.addresses['wyoming'])}")
    print(f"voxedge: serving {engine.name} ({engine.family}, {', '.join(engine.languages)}); Ctrl-C to stop\n"
          + "".join(f"  {line}\n" for line in lines), file=sys.stderr, end="", flush=True)
