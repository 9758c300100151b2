"""The batch job on Ray (voxedge/batch/cluster.py) on a local Ray instance of 2 CPUs: one row per file that
equals the single-process command's JSON for it, failures as rows (a file that does not open, one that
fails while it is read, one whose actor is killed every time it tries, with another file queued behind it
on the same actor and alone), Ray confined to 127.0.0.1. One Ray start-up for the whole file (it takes
seconds), a few short files."""

import importlib.util
import json
import os
import subprocess
import sys
import threading
import time

import numpy as np
import psutil
import pytest
import soundfile

from benchmarks.corpus import SENTENCES
from tests.conftest import asset, synthesize

if importlib.util.find_spec("ray") is None:  # not imported here: voxedge must be first to (confining it to 127.0.0.1)
    pytest.skip("the cluster mode needs the [cluster] extra (`make dev` installs it)", allow_module_level=True)

BUNDLE = "whisper-tiny.en"
LOOPBACK = {"127.0.0.1", "::ffff:127.0.0.1", "::1"}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    root = tmp_path_factory.mktemp("archive")
    samples, rate = soundfile.read(asset("beckett.wav"), dtype="float32")
    soundfile.write(root / "beckett.wav", samples, rate)
    synthesize(SENTENCES[0], root / "fox.wav")
    broken = np.zeros(16000 * 2, np.float32)
    broken[100] = np.inf  # opens; fails in the actor while it is read
    soundfile.write(root / "inf.wav", broken, 16000, subtype="FLOAT")
    (root / "garbage.wav").write_bytes(b"RIFF" + os.urandom(100))  # fails on the driver, at its header
    return root


def kill_whoever_reads(name: str, times: int, killed: set) -> None:
    """SIGKILL the Ray worker that has `name` open, `times` times (as the out-of-memory killer would)."""
    me = psutil.Process()
    deadline = time.monotonic() + 300
    while len(killed) < times and time.monotonic() < deadline:
        for process in me.children(recursive=True):
            try:
                if process.pid not in killed and any(f.path.endswith(name) for f in process.open_files()):
                    process.kill()
                    killed.add(process.pid)
            except psutil.Error:
                pass
        time.sleep(0.01)


def test_rows_equal_the_command_output_and_failures_are_rows(inputs, tmp_path, monkeypatch):
    from voxedge.batch.cluster import transcribe_files

    monkeypatch.setenv("VOXEDGE_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("VOXEDGE_BUNDLE", raising=False)
    reference = tmp_path / "single"
    done = subprocess.run([sys.executable, "-m", "voxedge.cli", "transcribe", inputs, "--bundle", BUNDLE, "--format",
                           "json", "--output-dir", reference], capture_output=True, text=True, env=os.environ)
    assert done.returncode == 1 and "2 of 4 inputs failed" in done.stderr
    expected = {str(inputs / f"{p.stem}.wav"): json.loads(p.read_text()) for p in reference.iterdir()}
    assert len(expected) == 2
    doomed = tmp_path / "doomed"
    doomed.mkdir()
    (doomed / "beckett.wav").write_bytes((inputs / "beckett.wav").read_bytes())
    speech, rate = soundfile.read(asset("two_cities.wav"), dtype="int16")
    soundfile.write(doomed / "long.wav", np.tile(speech, 14), rate)  # 10 minutes: a first pass over it takes a while
    killed, killed_alone, alone = set(), set(), tmp_path / "alone"
    alone.mkdir()
    try:
        parquet = transcribe_files([inputs], str(tmp_path / "parquet"), bundle=BUNDLE, num_cpus=2)
        # one actor: beckett.wav waits behind long.wav on the actor that dies under it, and must get its row
        jsonl = _while_killing("long.wav", killed, transcribe_files, [doomed], str(tmp_path / "jsonl"), bundle=BUNDLE,
                               output_format="jsonl", actors=1)
        (alone / "long.wav").write_bytes((doomed / "long.wav").read_bytes())  # every file lost: Ray writes nothing
        lost = _while_killing("long.wav", killed_alone, transcribe_files, [alone], str(tmp_path / "lost"),
                              bundle=BUNDLE, actors=1)
        listening = {(c.laddr.ip, c.laddr.port) for p in [psutil.Process(), *psutil.Process().children(recursive=True)]
                     for c in _connections(p) if c.status == psutil.CONN_LISTEN}
    finally:
        sys.modules["ray"].shutdown()
    import pyarrow.parquet

    rows = {row.pop("path"): row for row in pyarrow.parquet.read_table(tmp_path / "parquet").to_pylist()}
    assert parquet["files"] == 4, parquet
    assert sorted(parquet["failed"]) == sorted(
        (path, rows[path]["error"]) for path in (str(inputs / "garbage.wav"), str(inputs / "inf.wav")))
    for path, cli in expected.items():
        assert rows[path].pop("error") is None
        assert rows[path] == cli
    assert "cannot decode it" in rows[str(inputs / "garbage.wav")]["error"]
    failed = rows[str(inputs / "inf.wav")]
    assert "infinite or out-of-range samples" in failed["error"]
    assert failed["segments"] == [] and failed["duration"] == 2.0

    lines = [json.loads(line) for f in sorted((tmp_path / "jsonl").iterdir()) for line in f.read_text().splitlines()]
    rows = {row.pop("path"): row for row in lines}
    assert len(killed) == 3 and jsonl["files"] == 2, (killed, jsonl)
    assert jsonl["failed"] == [(str(doomed / "long.wav"), f"{doomed / 'long.wav'}: the Ray actor transcribing it "
                                                          "died 3 times (out of memory?)")]
    assert rows[str(doomed / "long.wav")]["segments"] == [] and rows[str(doomed / "long.wav")]["duration"] > 600
    assert rows[str(doomed / "beckett.wav")] == {**expected[str(inputs / "beckett.wav")], "error": None}
    died = f"{alone / 'long.wav'}: the Ray actor transcribing it died 3 times (out of memory?)"
    assert len(killed_alone) == 3 and lost["files"] == 1 and lost["failed"] == [(str(alone / "long.wav"), died)], lost
    assert pyarrow.parquet.read_table(tmp_path / "lost").column("path").to_pylist() == [str(alone / "long.wav")]
    assert listening and {ip for ip, _ in listening} <= LOOPBACK, listening
    assert 8265 not in {port for _, port in listening}  # no dashboard


def _while_killing(name: str, killed: set, job, *args, **kwargs):
    """job(*args, **kwargs) while the Ray worker that reads `name` is killed 3 times."""
    killer = threading.Thread(target=kill_whoever_reads, args=(name, 3, killed))
    killer.start()
    try:
        return job(*args, **kwargs)
    finally:
        killer.join()


def _connections(process):
    try:
        return process.net_connections(kind="inet")
    except psutil.Error:
        return []
