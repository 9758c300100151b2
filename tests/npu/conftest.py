"""Bundles for the NPU target and the execution-provider checks.

Whisper tiny.en (real weights) is built torch-free, in both targets; the tiny Voxtral is exported with
validation against transformers. The provider checks run tests/npu/ep_check.py in the provider's own
virtualenv (`make ep-venvs`: onnxruntime-openvino replaces onnxruntime; the QNN plugin gets a clean
one) and judge the figures it prints.
"""

import json
import os
import subprocess
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import asset

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def npu_root(tmp_path_factory):
    return tmp_path_factory.mktemp("npu")


def _whisper(root: Path, name: str, quant: str, target: str) -> Path:
    from export.stages import Stages
    from export.whisper.offline import build, shipped_model_dir

    out = root / name
    if not out.exists():
        out.mkdir()
        build(shipped_model_dir(), out, quant, Stages(stream=None), target=target)
    return out


@pytest.fixture(scope="session")
def whisper_npu(npu_root):
    return _whisper(npu_root, "whisper-npu", "fp32", "npu")


@pytest.fixture(scope="session")
def whisper_npu_int8(npu_root):
    """QDQ: 8-bit weights, 16-bit activations, calibrated on two_cities.wav and beckett.wav."""
    return _whisper(npu_root, "whisper-npu-int8", "int8", "npu")


@pytest.fixture(scope="session")
def whisper_default(npu_root):
    return {quant: _whisper(npu_root, f"whisper-{quant}", quant, "cpu") for quant in ("fp32", "int8")}


@pytest.fixture(scope="session")
def voxtral_npu(tiny_checkpoint, npu_root):
    """The tiny Voxtral for NPUs, exported through the command line: the export's own validation step
    fails unless the bundle reproduces transformers token for token."""
    from export.__main__ import main as export_main

    out = npu_root / "voxtral-npu"
    assert export_main([str(tiny_checkpoint), "--out", str(out), "--target", "npu", "--quant", "fp32"]) == 0
    return out


@pytest.fixture(scope="session")
def beckett_inputs(npu_root, whisper_npu):
    """Beckett's recording as Whisper's mel window and as 1.5 s of samples, in .npy files (the provider
    processes read no audio files before their sessions exist)."""
    import voxedge
    from voxedge.audio import load_audio

    audio = load_audio(asset("beckett.wav"))
    mel, clip = npu_root / "beckett_mel.npy", npu_root / "beckett_1500ms.npy"
    np.save(mel, voxedge.load(whisper_npu).features(audio))
    np.save(clip, audio[:24000])
    return {"mel": str(mel), "audio": str(clip), "wav": asset("beckett.wav")}


def run_ep_check(provider_venv: str, request: dict, tmp_path: Path, timeout: int) -> list[dict]:
    """tests/npu/ep_check.py in `provider_venv`; returns its results, one per check."""
    python = ROOT / provider_venv / "bin" / "python"
    if not python.exists():
        message = f"{provider_venv} is missing: `make ep-venvs` creates it (make test does)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    path = tmp_path / "request.json"
    path.write_text(json.dumps({"work": str(tmp_path), **request}))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([str(python), str(ROOT / "tests" / "npu" / "ep_check.py"), str(path)], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"ep_check exited {done.returncode}: {done.stderr[-3000:]}"
    # the QNN backend prints its own lines on stdout: the figures are the last line
    results = json.loads(done.stdout.strip().splitlines()[-1])["results"]
    errors = [f"{r['kind']}: {r['error']}\n{r['traceback']}" for r in results if "error" in r]
    assert not errors, "\n".join(errors)
    return results

