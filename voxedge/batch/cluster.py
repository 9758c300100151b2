"""The batch job on a Ray cluster (`pip install 'voxedge-asr[cluster]'`): Ray Data hands the files out to a
pool of actors, each holding one model, and writes one row per file to Parquet or JSON lines.

    from voxedge.batch.cluster import transcribe_files
    transcribe_files(["/archive"], "/shared/results", bundle="whisper-tiny.en", address="auto")

A row is the file's `voxedge transcribe --format json` object plus its path and an error:
{"path", "text", "language", "language_probability", "duration", "segments", "error"}. A file that fails
(unreadable, not audio) is a row whose `error` says why, with no segments; the job goes on. Files are
handed out longest first (durations from the headers, read here on the driver).

Without `address` a local Ray instance is started on this machine only: every Ray process listens on
127.0.0.1, no dashboard is served and no usage statistics are sent. With one (`"auto"` on a cluster
node, `"ray://head:10001"` from outside), the job runs on that cluster: the audio, the bundle (or the
weights package, for a model name) and `out` must be reachable from every node (docs/batch.md). This
is the only module of voxedge that imports ray.
"""

from __future__ import annotations

import contextlib
import os
import sys
import warnings

from ..errors import DependencyError, VoxedgeError

FORMATS = ("parquet", "jsonl")
# Ray's single-machine mode (its default on macOS and Windows), read when ray is imported: the node's
# address is 127.0.0.1, so every Ray process listens there only
LOCAL_ONLY = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"
ACTOR_RETRIES = 2  # a file whose actor dies (out of memory) is retried twice, not forever (Ray's default)
# One file at a time per actor: Ray Data would queue up to 4 calls on an actor, and an actor's death fails
# (and retries) every call queued on it, so a file queued behind one that kills its actor would share its
# ACTOR_RETRIES + 1 deaths and be lost with it.
FILES_PER_ACTOR = 1


def schema():
    """The rows' Arrow schema, fixed so that every block (and an error row) writes the same columns."""
    import pyarrow as pa

    word = pa.struct([("start", pa.float64()), ("end", pa.float64()), ("text", pa.string())])
    segment = pa.struct([("start", pa.float64()), ("end", pa.float64()), ("text", pa.string()),
                         ("words", pa.list_(word))])
    return pa.schema([("path", pa.string()), ("text", pa.string()), ("language", pa.string()),
                      ("language_probability", pa.float64()), ("duration", pa.float64()),
                      ("segments", pa.list_(segment)), ("error", pa.string())])


class Transcriber:
    """A Ray Data actor: one model, loaded once, transcribing one file per call."""

    def __init__(self, bundle: str, providers: tuple, threads: int, options: dict):
        from ..model import load

        self.model = load(bundle, providers=providers, threads=threads, verify=False)
        self.options = options

    def __call__(self, batch):
        import pyarrow as pa

        rows = [self._row(item) for item in batch.to_pylist()]
        return pa.Table.from_pylist(rows, schema=schema())

    def _row(self, item: dict) -> dict:
        if item["error"] is None:
            try:
                record = transcript_record(self.model, item["path"], self.options)
                return {"path": item["path"], **record, "error": None}
            except VoxedgeError as exc:
                item = {**item, "error": str(exc)}
            except Exception as exc:  # a defect: a row that says so, and the job goes on
                item = {**item, "error": f"{item['path']}: unexpected error ({type(exc).__name__}: {exc})"}
        return _error_row(item)


def _error_row(item: dict) -> dict:
    return {"path": item["path"], "text": "", "language": None, "language_probability": None,
            "duration": item["duration"], "segments": [], "error": item["error"]}


def transcript_record(model, path: str, options: dict) -> dict:
    """What `voxedge transcribe --format json` writes for this file, as a dict."""
    from ..audio import open_audio
    from ..transcript import Transcript
    from ..writers import to_record

    result = model.transcribe(open_audio(path), **options)
    segments = tuple(result)
    info = result.info
    return to_record(Transcript(segments, info.duration, language=info.language,
                                language_probability=info.language_probability))


def transcribe_files(inputs: list, out: str, *, bundle: str, output_format: str = "parquet", address: str | None = None,
                     actors: int | None = None, threads: int = 1, providers=("cpu",), num_cpus: int | None = None,
                     **options) -> dict:
    """Transcribe audio files and directories of them (`voxedge transcribe`'s inputs, no stdin) into `out`, a
    directory of Parquet or JSON-lines files. `actors` models (default: as many as the cluster's CPUs allow
    at `threads` each) run at once; Ray places each where `threads` CPUs and the memory one model needs are
    free. `options` are transcribe() fields (e.g. delay_ms). `num_cpus` sizes a local instance.

    Returns {"files", "failed": [(path, error)], "out"}."""
    if output_format not in FORMATS:
        raise VoxedgeError(f"output_format is one of {', '.join(FORMATS)}, got {output_format!r}")
    out = os.fspath(out)
    if "://" not in out and os.path.exists(out) and (not os.path.isdir(out) or os.listdir(out)):
        raise VoxedgeError(f"{out}: exists and is not an empty directory; write each run's results to a new one")
    from ..bundle import open_bundle
    from ..catalog import locate
    from .tuning import worker_bytes

    checked = open_bundle(locate(bundle))  # on the driver, once: a bad bundle fails here, not in every actor
    items = _items(inputs)
    ray = connect(address, num_cpus)
    from ray.data import ActorPoolStrategy, SaveMode

    size = min(actors or max(1, int(ray.cluster_resources().get("CPU", 1) // threads)), max(1, len(items)))
    with _tolerating_lost_files(ray), warnings.catch_warnings():
        # max_task_retries has no named parameter in Ray 2.60 (the pinned version)
        warnings.filterwarnings("ignore", message="`ray_remote_args` is deprecated")
        pool = ActorPoolStrategy(size=size, max_tasks_in_flight_per_actor=FILES_PER_ACTOR)
        rows = ray.data.from_items(items, override_num_blocks=max(1, len(items))).map_batches(
            Transcriber, batch_size=1, batch_format="pyarrow", compute=pool,
            fn_constructor_kwargs={"bundle": str(checked.root), "providers": tuple(providers), "threads": threads,
                                   "options": options},
            num_cpus=threads, memory=worker_bytes(checked.size_bytes()), max_task_retries=ACTOR_RETRIES)
    _write(rows, out, output_format, SaveMode.CREATE)  # results of two runs never mix in one directory
    errors = _add_lost_rows(ray, items, out, output_format)
    return {"files": len(errors), "failed": [(path, error) for path, error in errors.items() if error], "out": out}


def _add_lost_rows(ray, items: list, out: str, output_format: str) -> dict:
    """An error row for every file with no row (its actor died ACTOR_RETRIES + 1 times); {path: error or None}."""
    from ray.data import SaveMode

    errors = {row["path"]: row["error"] for row in _written(ray, out, output_format)}
    lost = [_error_row({**item, "error": f"{item['path']}: the Ray actor transcribing it died {ACTOR_RETRIES + 1} "
                                         "times (out of memory?)"}) for item in items if item["path"] not in errors]
    if lost:
        import pyarrow as pa

        _write(ray.data.from_arrow(pa.Table.from_pylist(lost, schema=schema())), out, output_format, SaveMode.APPEND)
        errors.update((row["path"], row["error"]) for row in lost)
    return errors


@contextlib.contextmanager
def _tolerating_lost_files(ray):
    """Datasets created in the block skip a file whose actor died ACTOR_RETRIES + 1 times, instead of failing the
    whole job (Ray's default); transcribe_files writes an error row for it."""
    context = ray.data.DataContext.get_current()
    previous, context.max_errored_blocks = context.max_errored_blocks, -1
    try:
        yield
    finally:
        context.max_errored_blocks = previous


def _write(dataset, out: str, output_format: str, mode) -> None:
    (dataset.write_parquet if output_format == "parquet" else dataset.write_json)(out, mode=mode)


def _written(ray, out: str, output_format: str) -> list[dict]:
    """The rows in `out`: none when every file was lost (Ray then writes nothing, not even the directory)."""
    try:
        dataset = ray.data.read_parquet(out) if output_format == "parquet" else ray.data.read_json(out)
    except FileNotFoundError:
        return []
    return dataset.select_columns(["path", "error"]).take_all()


def _items(inputs: list) -> list[dict]:
    """[{"path", "duration", "error"}], longest first; a file that does not open carries its error."""
    from ..audio import open_audio
    from ..commands.transcribe import expand

    if "-" in inputs:
        raise VoxedgeError("stdin (-) cannot be sent to a cluster: pass files or directories")
    files, empty = expand([os.fspath(name) for name in inputs])
    items = [{"path": name, "duration": 0.0, "error": f"{name}: a directory with no audio files in it"}
             for name in empty]
    for path in files:
        try:
            items.append({"path": path, "duration": open_audio(path).duration, "error": None})
        except VoxedgeError as exc:
            items.append({"path": path, "duration": 0.0, "error": str(exc)})
    if not items:
        raise VoxedgeError("no inputs given")
    return sorted(items, key=lambda item: -item["duration"])


def connect(address: str | None = None, num_cpus: int | None = None):
    """ray, connected to `address`, or to a local instance confined to this machine (`num_cpus` CPUs); if
    ray is already initialized, as it is."""
    if address is None:
        ray = sys.modules.get("ray")
        if ray is not None and not ray.is_initialized() and os.environ.get(LOCAL_ONLY) != "0":
            warnings.warn(f"ray was imported before voxedge could set {LOCAL_ONLY}=0: the local Ray instance "
                          "will listen on this machine's network address; set it before importing ray", stacklevel=3)
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no usage statistics leave the machine
        os.environ.setdefault(LOCAL_ONLY, "0")
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError:
        raise DependencyError("the cluster mode needs Ray: pip install 'voxedge-asr[cluster]'") from None
    if not ray.is_initialized():
        local = {"num_cpus": num_cpus, "include_dashboard": False} if address is None else {}
        ray.init(address=address, log_to_driver=False, **local)
    return ray
