"""`voxedge transcribe FILE...`: text, subtitles or JSON for audio files, directories or stdin.

Every input is checked before the first is transcribed; an input that fails is reported and skipped,
the others are transcribed, and the exit status is 1 at the end. Results are written as they are
decided (to stdout), or to files written atomically (`--output`, `--output-dir`).
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

from ..errors import VoxedgeError
from ..batch.runner import parse_workers
from .common import engine_options, language_options, load_model, model_kwargs

FORMATS = ("txt", "srt", "vtt", "json")
AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aiff", ".aif", ".au", ".caf", ".w64"}


def register(sub) -> None:
    p = sub.add_parser("transcribe", help="transcribe audio files",
                       description="Transcribe audio files (wav, flac, ogg, opus, mp3: what libsndfile reads), the "
                       "audio files in directories, or `-` (stdin), and print the text, subtitles or JSON.")
    p.add_argument("files", nargs="+", metavar="FILE", help="an audio file, a directory of them, or - for stdin")
    engine_options(p)
    language_options(p)
    p.add_argument("--beam-size", type=int, metavar="N",
                   help="Whisper: beams searched at temperature 0 (default 1: greedy, the fastest; 5 is "
                   "faster-whisper's default, a little more accurate and several times slower to decode)")
    p.add_argument("--format", choices=FORMATS, default="txt",
                   help="txt (default), srt or vtt subtitles, or json: one object per file and line "
                   '{"text", "language", "language_probability", "duration", "segments": [...]}')
    p.add_argument("--vad", action="store_true",
                   help="transcribe only what Silero VAD calls speech (faster-whisper's vad_filter); times stay "
                   "those of the whole file")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--output", type=Path, metavar="FILE", help="write the result to FILE (one input only)")
    out.add_argument("--output-dir", type=Path, metavar="DIR", help="write NAME.<format> for each input there")
    p.add_argument("--workers", type=parse_workers, metavar="N|auto",
                   help="with --output-dir: transcribe N files at a time in N processes, each with its own model "
                   "and --threads / N threads, longest first, skipping inputs whose outputs are complete; auto: "
                   "what the batch benchmark measured best on this machine, else one per core (docs/batch.md)")
    p.set_defaults(handler=run)


def run(args) -> int:
    inputs, empty_dirs = expand(args.files)
    targets = output_paths(inputs, args)
    if len(inputs) > 1 and args.format in ("srt", "vtt") and not targets:
        raise VoxedgeError(f"{args.format} holds one file's subtitles: pass --output-dir for several files")
    batch = args.workers is not None and (args.output_dir is not None or args.workers != 1)
    if batch and args.output_dir is None:
        raise VoxedgeError(f"--workers {args.workers} writes one file per input: pass --output-dir DIR "
                           "(without it, results go to stdout in order, from one process: --workers 1)")
    for name in empty_dirs:
        print(f"voxedge: error: {name}: a directory with no audio files in it "
              f"({', '.join(sorted(AUDIO_SUFFIXES))})", file=sys.stderr)
    sources, failed = open_all(inputs)
    failed += len(empty_dirs)
    inputs += empty_dirs
    if batch:
        from ..batch.runner import run as run_batch

        return run_batch(args, sources, targets, failed, len(inputs))
    from .output import OutputError

    model = load_model(args) if sources else None
    for path, source in sources:
        try:
            transcribe_one(model, path, source, args, targets.get(path), header=len(inputs) > 1 and not targets)
        except OutputError:
            raise
        except VoxedgeError as exc:
            failed += 1
            print(f"voxedge: error: {exc}", file=sys.stderr)
    if failed:
        print(f"voxedge: {failed} of {len(inputs)} inputs failed", file=sys.stderr)
    return 1 if failed else 0


def expand(names: list[str]) -> tuple[list[str], list[str]]:
    """(inputs, directories without audio): directories are replaced by the audio files in them
    (sorted, recursively); "-" stays "-" (stdin)."""
    inputs, empty = [], []
    for name in names:
        path = Path(name)
        if name != "-" and path.is_dir():
            found = sorted(str(p) for p in path.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file())
            inputs += found
            empty += [] if found else [name]
        else:
            inputs.append(name)
    if inputs.count("-") > 1:
        raise VoxedgeError("- (stdin) can be given once")
    return inputs, empty


def output_paths(inputs: list[str], args) -> dict:
    """input -> output file; refused before any work when two inputs would write the same file."""
    if args.output:
        if len(inputs) != 1:
            raise VoxedgeError(f"--output names one file, but there are {len(inputs)} inputs: use --output-dir")
        return {inputs[0]: args.output}
    if not args.output_dir:
        return {}
    if args.output_dir.exists() and not args.output_dir.is_dir():
        raise VoxedgeError(f"--output-dir {args.output_dir}: exists and is not a directory")
    targets, seen = {}, {}
    for name in inputs:
        target = args.output_dir / f"{'stdin' if name == '-' else Path(name).stem}.{args.format}"
        if target in seen:
            raise VoxedgeError(f"{seen[target]} and {name} would both be written to {target}; transcribe them into "
                               "different --output-dir directories, or rename one")
        seen[target] = name
        targets[name] = target
    return targets


def open_all(inputs: list[str]) -> tuple[list, int]:
    """[(name, AudioSource)] of the inputs that open, and how many did not (each reported)."""
    from ..audio import open_audio

    sources, failed = [], 0
    for name in inputs:
        try:
            sources.append((name, open_audio(stdin_file() if name == "-" else name)))
        except VoxedgeError as exc:
            failed += 1
            print(f"voxedge: error: {exc}", file=sys.stderr)
    return sources, failed


def stdin_file() -> str:
    """stdin copied to a temporary file (decoders need to seek); removed at exit."""
    import atexit

    handle, path = tempfile.mkstemp(prefix="voxedge-stdin-")
    atexit.register(os.unlink, path)
    with os.fdopen(handle, "wb") as f:
        shutil.copyfileobj(sys.stdin.buffer, f)
    return path


def transcribe_one(model, name: str, source, args, target: Path | None, header: bool) -> None:
    from ..writers import write_transcription
    from .output import AtomicFile, Progress, stdout

    result = model.transcribe(source, **model_kwargs(args), vad_filter=args.vad)
    sink = AtomicFile(target) if target else stdout()
    progress = Progress(name, result.info.duration)
    with sink:
        if header and args.format == "txt":
            sink.write(f"==> {name} <==\n")
        write_transcription(result, args.format, sink, on_segment=lambda segment: progress.update(segment.end))
    progress.done()
