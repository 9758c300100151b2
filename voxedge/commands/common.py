"""Options and helpers that several commands share."""

from __future__ import annotations


def engine_options(p) -> None:
    p.add_argument("--bundle", metavar="NAME_OR_DIR",
                   help="a model name (`voxedge models`) or a bundle directory (default: $VOXEDGE_BUNDLE)")
    p.add_argument("--delay-ms", type=int, help="Voxtral: transcription delay, a multiple of 80 from 80 to 1200, "
                   "or 2400 (default: the bundle's, usually 480). Longer is more accurate.")
    p.add_argument("--providers", default="cpu",
                   help="onnxruntime execution providers in priority order, comma-separated: cpu, cuda, coreml, "
                   "qnn, openvino, directml (default: cpu; unavailable ones fall back to cpu with a warning)")
    p.add_argument("--threads", type=int, help="CPU threads (default: one per core)")


def language_options(p) -> None:
    """Whisper's language and task, for files and live streams."""
    p.add_argument("--language", default="auto", metavar="auto|CODE",
                   help="the language spoken, as a code such as en, fr, de (Whisper: the codes the model knows); "
                   "auto (default) detects it on a multilingual model (files: on the first 30 s; live: on the first "
                   "2 s with speech) and is en on an English-only one")
    p.add_argument("--task", choices=("transcribe", "translate"), default="transcribe",
                   help="transcribe (default) in the language spoken, or translate into English (multilingual "
                   "Whisper models)")


def load_model(args):
    from ..model import load

    return load(args.bundle, providers=args.providers.split(","), threads=args.threads)


def option_fields(args) -> dict:
    """The option fields (voxedge/options.py) given on the command line; unset ones keep the model's
    defaults, so a family that does not have a field is only refused when it is asked for."""
    fields = {"delay_ms": args.delay_ms, "beam_size": getattr(args, "beam_size", None)}
    if getattr(args, "language", "auto") != "auto":
        fields["language"] = args.language
    if getattr(args, "task", "transcribe") != "transcribe":
        fields["task"] = args.task
    return {name: value for name, value in fields.items() if value is not None}
