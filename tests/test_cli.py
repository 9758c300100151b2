"""The `voxedge` command as users run it: subprocesses, exit codes, one-line errors, never a traceback."""

import json
import os
import subprocess
import sys
import types

import numpy as np
import pytest
import soundfile

from benchmarks.corpus import BECKETT
from benchmarks.wer import corpus_wer
from tests.conftest import asset
from voxedge.errors import VoxedgeError


def voxedge(*args, stdin=None, stdout=subprocess.PIPE, cwd=None, env=None):
    """Run the command; returns (exit status, stdout, stderr) and checks no traceback was printed."""
    done = subprocess.run([sys.executable, "-m", "voxedge.cli", *map(str, args)], input=stdin, stdout=stdout,
                          stderr=subprocess.PIPE, cwd=cwd, env=env, timeout=300)
    out = done.stdout.decode() if done.stdout is not None else ""
    err = done.stderr.decode()
    assert "Traceback" not in err, err
    return done.returncode, out, err


@pytest.fixture(scope="module")
def bundle(whisper_bundles):
    return str(whisper_bundles["int8"])


@pytest.fixture(scope="module")
def clips(tmp_path_factory):
    """Two recordings with the same name in different directories, and a short one."""
    root = tmp_path_factory.mktemp("cli")
    (root / "a").mkdir()
    (root / "b").mkdir()
    audio, rate = soundfile.read(asset("beckett.wav"), dtype="float32")
    for d in ("a", "b"):
        soundfile.write(root / d / "x.wav", audio, rate)
    soundfile.write(root / "x.flac", audio[: rate * 3], rate)
    return root


def test_two_inputs_that_would_write_the_same_output_are_refused_before_any_work(bundle, clips, tmp_path):
    code, _, err = voxedge("transcribe", clips / "a/x.wav", clips / "b/x.wav", clips / "x.flac", "--bundle", bundle,
                           "--output-dir", tmp_path / "out")
    assert code == 1 and "would both be written to" in err and err.count("\n") == 1
    assert not (tmp_path / "out").exists()


def test_a_bad_input_is_reported_and_the_others_are_transcribed(bundle, clips, tmp_path):
    code, out, err = voxedge("transcribe", tmp_path / "missing.wav", clips / "a/x.wav", clips / "x.flac",
                             "--bundle", bundle, "--format", "json")
    assert code == 1 and "missing.wav: no such file" in err and "1 of 3 inputs failed" in err
    results = [json.loads(line) for line in out.splitlines()]
    assert len(results) == 2 and corpus_wer([BECKETT], [results[0]["text"]]) < 0.2
    assert results[0]["language"] == "en" and results[0]["duration"] == pytest.approx(9.96, abs=0.05)


def test_stdin_directories_and_files_that_are_not_audio_files(bundle, clips, tmp_path):
    code, out, _ = voxedge("transcribe", "-", "--bundle", bundle, stdin=(clips / "a/x.wav").read_bytes())
    assert code == 0 and corpus_wer([BECKETT], [out]) < 0.2
    code, out, _ = voxedge("transcribe", clips / "a", "--bundle", bundle)
    assert code == 0 and corpus_wer([BECKETT], [out]) < 0.2
    fifo, loop = tmp_path / "fifo", tmp_path / "loop"
    os.mkfifo(fifo)
    os.symlink(loop, loop)
    code, _, err = voxedge("transcribe", fifo, "/dev/zero", loop, tmp_path, "--bundle", bundle)
    assert code == 1
    assert "fifo: is a FIFO (pipe), not an audio file" in err and "/dev/zero: is a device or socket" in err
    assert "loop: cannot open it (Too many levels of symbolic links)" in err
    assert "a directory with no audio files" in err


def test_output_files_are_complete_or_absent(bundle, clips, tmp_path):
    target = tmp_path / "t.srt"
    target.write_text("the previous result\n")
    code, _, err = voxedge("transcribe", clips / "a/x.wav", "--bundle", bundle, "--format", "srt", "--output", target)
    assert code == 0 and target.read_text().startswith("1\n00:00:0")
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part")]
    code, _, err = voxedge("transcribe", clips / "a/x.wav", clips / "x.flac", "--bundle", bundle, "--output", target)
    assert code == 1 and "--output names one file" in err
    code, _, err = voxedge("transcribe", clips / "x.flac", "--bundle", bundle, "--output-dir", target)
    assert code == 1 and "exists and is not a directory" in err


def test_a_full_disk_and_a_closed_pipe_end_in_one_line(bundle, clips):
    with open("/dev/full", "w") as full:
        code, _, err = voxedge("transcribe", clips / "x.flac", "--bundle", bundle, stdout=full)
    assert code == 1 and err == "voxedge: error: cannot write the output: No space left on device\n"
    pipe = subprocess.run(f"{sys.executable} -m voxedge.cli transcribe {clips / 'a/x.wav'} {clips / 'b/x.wav'} "
                          f"--bundle {bundle} | head -c 1", shell=True, capture_output=True, timeout=300)
    assert pipe.stdout and b"Traceback" not in pipe.stderr and b"Error" not in pipe.stderr


def test_bad_bundles_and_options_are_one_line(tmp_path, bundle, clips):
    code, _, err = voxedge("transcribe", clips / "x.flac", "--bundle", "b" * 5000)
    assert code == 1 and err.startswith("voxedge: error: ") and err.count("\n") == 1
    code, _, err = voxedge("transcribe", clips / "x.flac", "--bundle", bundle, "--threads", "100000")
    assert code == 1 and "threads must be a whole number from 1 to" in err
    code, _, err = voxedge("bench", "tiny", "--repeats", "0")
    assert code == 1 and "--repeats must be at least 1" in err


def test_subtitles_are_wrapped_as_guidelines_ask(bundle, tmp_path):
    audio, rate = soundfile.read(asset("two_cities.wav"), dtype="float32")
    path = tmp_path / "long.wav"
    soundfile.write(path, audio, rate)
    code, out, _ = voxedge("transcribe", path, "--bundle", bundle, "--format", "vtt")
    assert code == 0
    cues = out.split("\n\n")[1:]
    assert len(cues) > 5
    for cue in cues:
        lines = cue.strip().splitlines()[1:]
        assert 1 <= len(lines) <= 2 and all(len(line) <= 42 for line in lines), cue


def test_the_command_module_imports_no_numerics():
    # Ctrl-C while the program starts must not print a traceback: everything heavy loads inside main()
    code = "import sys, voxedge.cli; print(sorted(m for m in ('numpy', 'onnxruntime', 'soundfile') if m in sys.modules))"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "[]"


def test_listen_without_a_microphone(bundle, monkeypatch, capsys):
    from voxedge.cli import main

    class PortAudioError(Exception):
        pass

    def no_device(**_):
        raise PortAudioError("Error querying device -1")

    fake = types.SimpleNamespace(PortAudioError=PortAudioError, query_devices=lambda *a, **k: no_device(),
                                 check_input_settings=no_device, InputStream=no_device)
    monkeypatch.setitem(sys.modules, "sounddevice", fake)
    assert main(["listen", "--bundle", bundle]) == 1
    err = capsys.readouterr().err
    assert err == ("voxedge: error: cannot open the default input device: Error querying device -1; "
                   "see `voxedge listen --list-devices`\n")
    fake.query_devices = lambda *a, **k: [{"name": "HDMI out", "max_input_channels": 0, "default_samplerate": 48000}]
    assert main(["listen", "--list-devices"]) == 1
    assert capsys.readouterr().out == "no input devices\n"


def test_listen_takes_the_live_step(bundle, bundles, monkeypatch, capsys):
    """`--step-ms` reaches a Whisper stream; a Voxtral bundle refuses it in one line, before any device opens."""
    from voxedge.cli import main
    from voxedge.engines.whisper import WhisperModel

    asked = {}

    def stream(self, **fields):
        asked.update(fields)
        raise VoxedgeError("stop here")

    monkeypatch.setattr(WhisperModel, "stream", stream)
    assert main(["listen", "--bundle", bundle, "--step-ms", "2000"]) == 1
    assert asked["step_ms"] == 2000 and capsys.readouterr().err == "voxedge: error: stop here\n"
    assert main(["listen", "--bundle", str(bundles["int8"]), "--step-ms", "2000"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("voxedge: error:") and "step_ms" in err and err.count("\n") == 1
