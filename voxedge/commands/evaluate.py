"""`voxedge eval`: the accuracy of bundles on audio whose words are known (docs/cli.md)."""

from __future__ import annotations

from pathlib import Path


def register(sub) -> None:
    p = sub.add_parser("eval", help="measure the accuracy of bundles (WER, CER, agreement between presets)",
                       description="WER and CER of each bundle on the audio with known words that ships offline "
                       "(two real recordings and espeak-ng sentences), its real-time factor, how much of the most "
                       "precise bundle's output the others reproduce (words; for Voxtral, decoder tokens), and "
                       "with --reference the reference implementation's WER on the same clips. Runs from a "
                       "voxedge checkout with `make dev` (docs/cli.md).")
    p.add_argument("bundles", nargs="+", metavar="BUNDLE", help="bundle directories or model names, e.g. the "
                   "fp32 and int4 exports of one checkpoint")
    p.add_argument("--reference", type=Path, metavar="DIR",
                   help="the checkpoint the bundles came from: a Voxtral directory (run by transformers) or a "
                   "Whisper CTranslate2 directory (run by faster-whisper)")
    p.add_argument("--languages", default="", metavar="CODES",
                   help="also espeak-ng sentences in these languages (of de, es, fr, it, nl, pt), e.g. de,fr")
    p.add_argument("--limit", type=int, metavar="N", help="only the first N clips (the sentences come first): "
                   "a quick check")
    p.add_argument("--json", action="store_true", help="print the figures as JSON")
    p.set_defaults(handler=run)


def run(args) -> int:
    from ..bench import run_in_checkout
    from ..bundle import open_bundle
    from ..catalog import locate
    from ..errors import VoxedgeError

    if args.limit is not None and args.limit < 1:
        raise VoxedgeError(f"--limit must be at least 1, got {args.limit}")
    # checked here, so a wrong path or name is one error line; the check runs in the checkout, so
    # directories are passed on as absolute paths
    bundles = [str(open_bundle(locate(b), verify=False).root.resolve()) for b in args.bundles]
    options = [*bundles, "--languages", args.languages] + (["--json"] if args.json else [])
    options += ["--limit", str(args.limit)] if args.limit else []
    if args.reference is not None:
        options += ["--reference", str(args.reference.resolve())]
    run_in_checkout("benchmarks.evaluate", options, "the accuracy check")
    return 0
