"""`voxedge transcribe --output-dir DIR --workers N`: the worker pool as users run it (subprocesses, exit
codes, no traceback). The reference is the single-process command's output, file by file, and the known
text of a real recording."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import psutil
import pytest
import soundfile

from benchmarks.corpus import BECKETT, SENTENCES
from benchmarks.wer import corpus_wer
from tests.conftest import asset, synthesize

BUNDLE = "whisper-tiny.en"


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    """The environment of every command: a cache of its own with whisper-tiny.en prepared."""
    env = {key: value for key, value in os.environ.items() if key != "VOXEDGE_BUNDLE"}
    env["VOXEDGE_HOME"] = str(tmp_path_factory.mktemp("home"))
    done = subprocess.run([sys.executable, "-m", "voxedge.cli", "models", "prepare", BUNDLE], env=env,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return env


def voxedge(env, *args):
    done = subprocess.run([sys.executable, "-m", "voxedge.cli", *map(str, args)], env=env, capture_output=True,
                          text=True, timeout=600)
    assert "Traceback" not in done.stderr, done.stderr
    return done.returncode, done.stderr


@pytest.fixture(scope="module")
def audio(tmp_path_factory):
    """Four files of different lengths: a real recording of 44 s, one of 10 s, two spoken sentences."""
    root = tmp_path_factory.mktemp("audio")
    for name in ("two_cities.wav", "beckett.wav"):
        samples, rate = soundfile.read(asset(name), dtype="float32")
        soundfile.write(root / name, samples, rate)
    synthesize(SENTENCES[0], root / "fox.wav")
    synthesize(" ".join(SENTENCES[1:3]), root / "stella.wav")
    return root


@pytest.fixture(scope="module")
def reference(env, audio, tmp_path_factory):
    """{file name: bytes} that the single-process command writes (`--output-dir`, no --workers)."""
    out = tmp_path_factory.mktemp("single")
    code, _ = voxedge(env, "transcribe", audio, "--bundle", BUNDLE, "--format", "json", "--output-dir", out)
    assert code == 0
    return {path.name: path.read_bytes() for path in out.iterdir()}


def voxedge_on_a_terminal(env, *args):
    """Run the command with stderr on a pseudo-terminal; returns (exit status, what the terminal showed)."""
    import pty

    leader, follower = pty.openpty()
    command = subprocess.Popen([sys.executable, "-m", "voxedge.cli", *map(str, args)], env=env,
                               stdout=subprocess.DEVNULL, stderr=follower)
    os.close(follower)
    shown = b""
    while True:
        try:
            chunk = os.read(leader, 4096)
        except OSError:  # EIO: the command closed its end
            break
        if not chunk:
            break
        shown += chunk
    os.close(leader)
    return command.wait(timeout=600), shown.decode()


def outputs(directory) -> dict:
    return {path.name: path.read_bytes() for path in directory.iterdir()}


def temporaries(directory) -> list:
    return [path.name for path in directory.iterdir() if path.name.endswith(".part")]


def test_workers_write_what_one_process_writes_file_by_file(env, audio, reference, tmp_path):
    code, err = voxedge(env, "transcribe", audio, "--bundle", BUNDLE, "--format", "json",
                        "--output-dir", tmp_path, "--workers", "2")
    assert code == 0, err
    assert outputs(tmp_path) == reference and len(reference) == 4
    assert corpus_wer([BECKETT], [json.loads(reference["beckett.json"])["text"]]) < 0.2
    assert "voxedge: 4 files transcribed (1:" in err and "with 2 workers x 1 thread: real-time factor" in err


def test_the_command_line_options_reach_the_workers(env, audio, tmp_path):
    """--keyterms brings a name tiny.en does not know into the single process's transcript (as in
    tests/whisper/test_keyterms.py); the workers, given the same options, write the same bytes."""
    short = tmp_path / "short"
    short.mkdir()
    (short / "beckett.wav").write_bytes((audio / "beckett.wav").read_bytes())
    synthesize("Please ask Siobhan to restart the Kubernetes cluster before noon.", short / "names.wav")
    flags = ["--bundle", BUNDLE, "--format", "json", "--vad", "--keyterms", "Siobhan,Kubernetes"]
    code, err = voxedge(env, "transcribe", short, *flags, "--output-dir", tmp_path / "single")
    assert code == 0, err
    code, err = voxedge(env, "transcribe", short, *flags, "--output-dir", tmp_path / "workers", "--workers", "2")
    assert code == 0, err
    single = outputs(tmp_path / "single")
    assert outputs(tmp_path / "workers") == single and len(single) == 2
    assert {"Siobhan", "Kubernetes"} <= set(json.loads(single["names.json"])["text"].replace(".", "").split())


def test_files_are_handed_out_longest_first_by_their_headers(env, audio, tmp_path, monkeypatch):
    from voxedge.audio import open_audio
    from voxedge.batch.jobs import Job, plan
    from voxedge.batch.pool import WorkerPool, WorkerSettings
    from voxedge.catalog import locate

    monkeypatch.setenv("VOXEDGE_HOME", env["VOXEDGE_HOME"])
    names = sorted(path.name for path in audio.iterdir())
    longest_first = sorted(names, key=lambda name: -soundfile.info(audio / name).duration)  # libsndfile's reading
    jobs = [Job(name, str(audio / name), tmp_path / f"{name}.txt", open_audio(audio / name).duration) for name in names]
    todo, done = plan(jobs)
    assert [job.name for job in todo] == longest_first and not done
    with WorkerPool(WorkerSettings(str(locate(BUNDLE)), ("CPUExecutionProvider",), 1, "txt"), workers=1) as pool:
        finished = [outcome.job.name for outcome in pool.run(todo)]
    assert finished == longest_first  # one worker process: finished in the order handed out
    assert corpus_wer([BECKETT], [(tmp_path / "beckett.wav.txt").read_text()]) < 0.2
    code, _ = voxedge(env, "transcribe", audio, "--bundle", BUNDLE, "--output-dir", tmp_path / "in-process",
                      "--workers", "1")
    written = sorted((tmp_path / "in-process").iterdir(), key=lambda path: path.stat().st_mtime_ns)
    assert code == 0 and [path.stem for path in written] == [Path(name).stem for name in longest_first]


def test_a_failing_file_is_reported_and_the_others_are_written(env, audio, reference, tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    for name in ("beckett.wav", "fox.wav"):
        (inputs / name).write_bytes((audio / name).read_bytes())
    broken = np.zeros(16000 * 3, np.float32)
    broken[20000] = np.nan  # the header is fine; the worker finds the NaN while it reads
    soundfile.write(inputs / "nan.wav", broken, 16000, subtype="FLOAT")
    (inputs / "garbage.wav").write_bytes(b"RIFF" + os.urandom(200))  # refused before any work
    out = tmp_path / "out"
    code, err = voxedge(env, "transcribe", inputs, "--bundle", BUNDLE, "--format", "json", "--output-dir", out,
                        "--workers", "2")
    assert code == 1
    assert "garbage.wav: cannot decode it" in err
    nan = [line for line in err.splitlines() if "nan.wav" in line]
    assert len(nan) == 1 and nan[0].startswith(f"voxedge: error: {inputs / 'nan.wav'}: the audio holds 1 NaN")
    assert "2 files transcribed" in err and "2 of 4 inputs failed" in err
    assert outputs(out) == {name: reference[name] for name in ("beckett.json", "fox.json")}


def test_a_rerun_skips_complete_outputs_and_redoes_changed_inputs(env, audio, reference, tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    for name in ("beckett.wav", "fox.wav", "stella.wav"):
        (inputs / name).write_bytes((audio / name).read_bytes())
    out = tmp_path / "out"
    args = ("transcribe", inputs, "--bundle", BUNDLE, "--format", "json", "--output-dir", out, "--workers", "2")
    assert voxedge(env, *args)[0] == 0
    stamps = {path.name: path.stat().st_mtime_ns for path in out.iterdir()}
    code, err = voxedge(env, *args)
    assert code == 0 and "0 files transcribed" in err and "3 already done, skipped" in err
    assert {path.name: path.stat().st_mtime_ns for path in out.iterdir()} == stamps
    later = time.time() + 5
    os.utime(inputs / "fox.wav", (later, later))  # a changed input: its output is out of date
    code, shown = voxedge_on_a_terminal(env, *args)
    assert code == 0 and "1 file transcribed" in shown and "2 already done, skipped" in shown
    assert "\r\x1b[Kvoxedge: 0/1 files, 0:00 / 0:0" in shown and "\r\x1b[Kvoxedge: 1/1 files" in shown  # progress
    changed = {path.name for path in out.iterdir() if path.stat().st_mtime_ns != stamps[path.name]}
    assert changed == {"fox.json"} and outputs(out) == {name: reference[name] for name in stamps}


def writing(candidates, target, timeout: float = 120) -> psutil.Process:
    """The process among `candidates()` that holds `target`'s temporary file open: it is in mid-file."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for process in candidates():
            try:
                if any(Path(f.path).name.startswith(f".{target.name}.") for f in process.open_files()):
                    return process
            except psutil.Error:
                pass
        time.sleep(0.05)
    raise AssertionError(f"no process was writing {target} within {timeout} s")


@pytest.mark.parametrize("workers, sig, status", [(2, signal.SIGINT, 130), (1, signal.SIGTERM, 143)])
def test_stopping_leaves_no_partial_output_and_a_rerun_finishes(env, audio, reference, tmp_path, workers, sig, status):
    args = [sys.executable, "-m", "voxedge.cli", "transcribe", audio, "--bundle", BUNDLE, "--format", "json",
            "--output-dir", tmp_path, "--workers", str(workers)]
    command = subprocess.Popen(args, env=env, stderr=subprocess.PIPE, text=True, start_new_session=True)
    parent = psutil.Process(command.pid)
    writing(parent.children, tmp_path / "two_cities.json")  # the longest file, handed out first
    family = [parent, *parent.children(recursive=True)]
    if sig == signal.SIGINT:
        os.killpg(command.pid, signal.SIGINT)  # what Ctrl-C on a terminal does: the whole process group
    else:
        command.send_signal(sig)
    _, err = command.communicate(timeout=120)
    assert command.returncode == status and "Traceback" not in err, err
    assert "voxedge: interrupted: " in err and "run the same command again to go on" in err
    assert not temporaries(tmp_path) and "two_cities.json" not in outputs(tmp_path)
    assert all(reference[name] == data for name, data in outputs(tmp_path).items())
    assert not psutil.wait_procs(family, timeout=10)[1]  # no worker left behind
    code, err = voxedge(env, *args[3:])
    assert code == 0 and outputs(tmp_path) == reference


def test_a_worker_killed_in_mid_file_fails_that_file_only(env, audio, reference, tmp_path):
    args = [sys.executable, "-m", "voxedge.cli", "transcribe", audio, "--bundle", BUNDLE, "--format", "json",
            "--output-dir", tmp_path, "--workers", "2"]
    command = subprocess.Popen(args, env=env, stderr=subprocess.PIPE, text=True)
    parent = psutil.Process(command.pid)
    writing(parent.children, tmp_path / "two_cities.json").kill()  # as the out-of-memory killer would
    _, err = command.communicate(timeout=300)
    assert command.returncode == 1 and "Traceback" not in err
    assert ("two_cities.wav: the worker process transcribing it died (killed by SIGKILL, out of memory?); "
            "the other files go on") in err
    assert "3 files transcribed" in err and "1 of 4 inputs failed" in err
    assert not temporaries(tmp_path)
    assert outputs(tmp_path) == {name: data for name, data in reference.items() if name != "two_cities.json"}


def test_workers_auto_uses_the_measured_split_else_one_per_core(env, audio, tmp_path, monkeypatch):
    from voxedge.batch.tuning import remember
    from voxedge.bundle import open_bundle
    from voxedge.catalog import locate

    fox = audio / "fox.wav"
    code, err = voxedge(env, "transcribe", fox, audio / "beckett.wav", "--bundle", BUNDLE, "--output-dir",
                        tmp_path / "rule", "--workers", "auto")
    cores = os.cpu_count()
    assert code == 0 and f"with {min(cores, 2)} worker" in err
    monkeypatch.setenv("VOXEDGE_HOME", env["VOXEDGE_HOME"])
    remember(open_bundle(locate(BUNDLE)), workers=1, threads=cores, figures={})
    code, err = voxedge(env, "transcribe", fox, audio / "beckett.wav", "--bundle", BUNDLE, "--output-dir",
                        tmp_path / "measured", "--workers", "auto")
    assert code == 0 and f"with 1 worker x {cores} thread" in err


@pytest.mark.parametrize("args, status, message", [
    (["--workers", "2"], 1, "--workers 2 writes one file per input: pass --output-dir DIR"),
    (["--workers", "auto", "--output", "x.txt"], 1, "--workers auto writes one file per input"),
    (["--workers", "0", "--output-dir", "out"], 2, "expected a whole number from 1, or auto; got '0'"),
    (["--workers", "many", "--output-dir", "out"], 2, "expected a whole number from 1, or auto"),
])
def test_bad_worker_options_are_one_line(env, audio, tmp_path, args, status, message):
    code, err = voxedge(env, "transcribe", audio / "fox.wav", "--bundle", BUNDLE, *args)
    assert code == status and message in err
    if status == 1:
        assert err.count("\n") == 1 and err.startswith("voxedge: error: ")
