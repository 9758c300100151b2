"""Options and helpers that several commands share."""

from __future__ import annotations

from ..bundle import BUNDLE_ENV
from ..errors import VoxedgeError


def engine_options(p) -> None:
    p.add_argument("--bundle", metavar="NAME_OR_DIR",
                   help=f"a model name (`voxedge models`) or a bundle directory (default: ${BUNDLE_ENV})")
    p.add_argument("--delay-ms", type=int, help="Voxtral: transcription delay, a multiple of 80 from 80 to 1200, "
                   "or 2400 (default: the bundle's, usually 480). Longer is more accurate.")
    p.add_argument("--providers", default="cpu",
                   help="onnxruntime execution providers in priority order, comma-separated: cpu, cuda, coreml, "
                   "qnn, openvino, directml (default: cpu; unavailable ones fall back to cpu with a warning)")
    p.add_argument("--threads", type=int, help="CPU threads (default: one per core)")


def load_model(args):
    from ..model import load

    return load(args.bundle, providers=args.providers.split(","), threads=args.threads)


def model_kwargs(model, args) -> dict:
    if args.delay_ms is None:
        return {}
    if model.family != "voxtral_realtime":
        raise VoxedgeError(f"--delay-ms applies to Voxtral Realtime bundles; this is a {model.family} bundle")
    return {"delay_ms": args.delay_ms}
