"""`voxedge transcribe FILE...`: text, subtitles or JSON for audio files."""

from __future__ import annotations

from pathlib import Path

from ..errors import VoxedgeError
from .common import engine_options, load_model, model_kwargs

FORMATS = ("txt", "srt", "vtt", "json")


def register(sub) -> None:
    p = sub.add_parser("transcribe", help="transcribe audio files",
                       description="Transcribe audio files (wav, flac, ogg, mp3 where libsndfile reads it) "
                       "and print the text, subtitles or JSON on stdout.")
    p.add_argument("files", nargs="+", type=Path, metavar="FILE")
    engine_options(p)
    p.add_argument("--format", choices=FORMATS, default="txt",
                   help="txt (default), srt or vtt subtitles, or json: one object per file and line "
                   '{"text", "duration", "segments": [{"start", "end", "text", "words"}]}')
    p.add_argument("--output-dir", type=Path, help="write FILE.<format> there instead of printing")
    p.set_defaults(handler=run)


def run(args) -> int:
    from ..audio import load_audio
    from ..transcript import Transcript, render

    if len(args.files) > 1 and args.format in ("srt", "vtt") and not args.output_dir:
        raise VoxedgeError(f"{args.format} holds one file's subtitles: pass --output-dir for several files")
    model = load_model(args)
    kwargs = model_kwargs(model, args)
    for path in args.files:
        samples = load_audio(path)
        transcript = Transcript(tuple(model.transcribe(samples, **kwargs)), duration=len(samples) / 16000)
        text = render(transcript, args.format)
        if args.output_dir:
            args.output_dir.mkdir(parents=True, exist_ok=True)
            (args.output_dir / f"{path.stem}.{args.format}").write_text(text, encoding="utf-8")
        elif len(args.files) > 1 and args.format == "txt":
            print(f"==> {path} <==\n{text}", end="")
        else:
            print(text, end="", flush=True)
    return 0
