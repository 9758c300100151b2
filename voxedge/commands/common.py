"""Options and helpers that several commands share."""

from __future__ import annotations


def engine_options(p) -> None:
    p.add_argument("--bundle", metavar="NAME_OR_DIR",
                   help="a model name (`voxedge models`) or a bundle directory (default: $VOXEDGE_BUNDLE)")
    p.add_argument("--delay-ms", type=int, help="Voxtral: transcription delay, a multiple of 80 from 80 to 1200, "
                   "or 2400 (default: the bundle's, usually 480). Longer is more accurate.")
    provider_arguments(p)
    p.add_argument("--threads", type=int, help="CPU threads (default: one per core)")


def provider_arguments(p) -> None:
    p.add_argument("--providers", default="cpu",
                   help="onnxruntime execution providers in priority order, comma-separated, each with its options: "
                   "cpu, cuda, tensorrt, coreml, qnn, openvino, directml, e.g. \"qnn:soc_model=60,openvino:device_type=NPU\" "
                   "(default: cpu; unavailable ones fall back to cpu with a warning; docs/hardware.md)")
    p.add_argument("--strict", action="store_true",
                   help="fail instead of running any part of a graph on the CPU when an accelerator is asked for")


def load_model(args):
    from ..model import load

    return load(args.bundle, providers=args.providers, threads=args.threads, strict=args.strict)


def model_kwargs(args) -> dict:
    """Options given on the command line (unset ones keep the model's defaults)."""
    return {} if args.delay_ms is None else {"delay_ms": args.delay_ms}
