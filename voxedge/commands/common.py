"""Options and helpers that several commands share."""

from __future__ import annotations

from pathlib import Path

from ..errors import VoxedgeError


def engine_options(p) -> None:
    p.add_argument("--bundle", metavar="NAME_OR_DIR",
                   help="a model name (`voxedge models`) or a bundle directory (default: $VOXEDGE_BUNDLE)")
    p.add_argument("--delay-ms", type=int, help="Voxtral: transcription delay, a multiple of 80 from 80 to 1200, "
                   "or 2400 (default: the bundle's, usually 480). Longer is more accurate.")
    provider_arguments(p)
    p.add_argument("--threads", type=int, help="CPU threads (default: one per core)")
    p.add_argument("--keyterms", metavar="A,B,...",
                   help="words or phrases the transcript should get right (names, jargon), comma-separated")
    p.add_argument("--keyterms-file", type=Path, metavar="FILE",
                   help="keyterms from a file, one per line (blank lines and lines starting with # are skipped)")


def provider_arguments(p) -> None:
    p.add_argument("--providers", default="cpu",
                   help="onnxruntime execution providers in priority order, comma-separated, each with its options: "
                   "cpu, cuda, tensorrt, coreml, qnn, openvino, directml, e.g. \"qnn:soc_model=60,openvino:device_type=NPU\" "
                   "(default: cpu; unavailable ones fall back to cpu with a warning; docs/hardware.md)")
    p.add_argument("--strict", action="store_true",
                   help="fail instead of running any part of a graph on the CPU when an accelerator is asked for")


def language_options(p) -> None:
    """Whisper's language and task, for files and live streams."""
    p.add_argument("--language", default="auto", metavar="auto|CODE",
                   help="the language spoken, as a code such as en, fr, de (Whisper: the codes the model knows); "
                   "auto (default) detects it on a multilingual model (files: on the first 30 s; live: on the first "
                   "4 s with speech, or on a shorter utterance at its end) and is en on an English-only one")
    p.add_argument("--task", choices=("transcribe", "translate"), default="transcribe",
                   help="transcribe (default) in the language spoken, or translate into English (multilingual "
                   "Whisper models)")


def load_model(args):
    from ..model import load

    return load(args.bundle, providers=args.providers, threads=args.threads, strict=args.strict)


def model_kwargs(args) -> dict:
    """The option fields (voxedge/options.py) given on the command line; unset ones keep the model's
    defaults, so a family that does not have a field is only refused when it is asked for."""
    fields = {"delay_ms": args.delay_ms, "beam_size": getattr(args, "beam_size", None),
              "step_ms": getattr(args, "step_ms", None)}
    if getattr(args, "language", "auto") != "auto":
        fields["language"] = args.language
    if getattr(args, "task", "transcribe") != "transcribe":
        fields["task"] = args.task
    terms = keyterms(args)
    fields["keyterms"] = terms or None
    return {name: value for name, value in fields.items() if value is not None}


def keyterms(args) -> list[str]:
    terms = [t.strip() for t in (args.keyterms or "").split(",") if t.strip()]
    if args.keyterms_file:
        try:
            lines = args.keyterms_file.read_text(encoding="utf-8").splitlines()
        except (OSError, UnicodeDecodeError) as exc:
            raise VoxedgeError(f"--keyterms-file {args.keyterms_file}: cannot read it ({exc})") from None
        terms += [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    return terms
