"""A malformed bundle is a BundleError, whatever is wrong with it: the manifest's shape and checksum,
files the manifest does not list, links, and the tables and graphs it points to."""

import json
import os
import shutil

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import voxedge
from voxedge.bundle import MANIFEST, manifest_checksum, open_bundle, sha256_file
from voxedge.errors import BundleError, VoxedgeError


@pytest.fixture(scope="module")
def pristine(bundles):
    return bundles["int8"]


@pytest.fixture
def bundle(pristine, tmp_path):
    return shutil.copytree(pristine, tmp_path / "bundle")


def edit(bundle, change, checksum: bool = True) -> None:
    manifest = json.loads((bundle / MANIFEST).read_text())
    change(manifest)
    if checksum:
        manifest["checksum"] = manifest_checksum(manifest)
    (bundle / MANIFEST).write_text(json.dumps(manifest))


def replace_file(bundle, name, data: bytes) -> None:
    (bundle / name).write_bytes(data)
    edit(bundle, lambda m: m["files"].update({name: {"bytes": len(data), "sha256": sha256_file(bundle / name)}}))


def test_an_edited_manifest_is_refused_unless_its_checksum_agrees(bundle):
    edit(bundle, lambda m: m["model"].update(default_delay_ms=80), checksum=False)
    with pytest.raises(BundleError, match="does not match its checksum"):
        voxedge.load(bundle)


def test_a_file_the_manifest_does_not_list_is_refused(bundle):
    (bundle / "notes.txt").write_text("extra")
    with pytest.raises(BundleError, match="notes.txt is not listed"):
        voxedge.load(bundle)


def test_a_graph_cannot_read_weights_from_an_unlisted_file(bundle):
    # the weights moved to a file the manifest does not list, the graph pointed at it
    import onnx

    model = onnx.load(bundle / "decoder_step.onnx", load_external_data=False)
    for tensor in model.graph.initializer:
        for entry in tensor.external_data:
            if entry.key == "location":
                entry.value = "hidden.data"
    onnx.save_model(model, bundle / "decoder_step.onnx")
    shutil.copy(bundle / "decoder_step.onnx.data", bundle / "hidden.data")
    replace_file(bundle, "decoder_step.onnx", (bundle / "decoder_step.onnx").read_bytes())
    with pytest.raises(BundleError, match="hidden.data is not listed"):
        voxedge.load(bundle)


def test_hard_links_are_refused(bundle, tmp_path):
    os.link(bundle / "ada_scales.npy", tmp_path / "elsewhere.npy")
    with pytest.raises(BundleError, match="hard links"):
        voxedge.load(bundle)


def test_the_graph_loaded_is_the_graph_that_was_hashed(bundle, monkeypatch):
    # Between the check and the load, the file on disk changes: voxedge loads the bytes it checked.
    from voxedge import model as loader

    def open_then_tamper(*args, **kwargs):
        opened = open_bundle(*args, **kwargs)
        (bundle / "decoder_step.onnx").write_bytes(b"not a graph")
        return opened

    monkeypatch.setattr(loader, "open_bundle", open_then_tamper)
    stream = loader.load(bundle).stream()
    stream.feed(np.zeros(16000, np.float32))


@pytest.mark.parametrize("case, match", [
    ("tokenizer.npz", "not a readable token table"),
    ("ada_scales.npy", "has shape"),
    ("swap_graphs", "lacks"),
    ("hop_length", "hop_length must be a whole number from 1"),
    ("nul_name", "outside the bundle"),
    ("string_bytes", "needs 'bytes'"),
    ("embedding_offset", "the embedding table needs bytes"),
    ("deep_json", "not valid JSON"),
    ("missing_key", "no model.tokens entry"),
])
def test_malformed_bundles_name_what_is_wrong(bundle, case, match):
    if case == "tokenizer.npz":
        replace_file(bundle, case, b"PK\x03\x04" + os.urandom(200))
    elif case == "ada_scales.npy":
        buf = bundle / "wrong.npy"
        np.save(buf, np.zeros((3, 3), np.float32))
        replace_file(bundle, "ada_scales.npy", buf.read_bytes())
        buf.unlink()
    elif case == "swap_graphs":
        edit(bundle, lambda m: m["graphs"]["audio_encoder_step"].update(file="decoder_step.onnx"))
    elif case == "hop_length":
        edit(bundle, lambda m: m["model"].update(hop_length=0))
    elif case == "nul_name":
        edit(bundle, lambda m: m["files"].update({"a\x00b": {"bytes": 1, "sha256": "0" * 64}}))
    elif case == "string_bytes":
        edit(bundle, lambda m: m["files"]["tokenizer.npz"].update(bytes=str(m["files"]["tokenizer.npz"]["bytes"])))
    elif case == "embedding_offset":
        edit(bundle, lambda m: m["model"]["embedding"].update(offset=10**12))
    elif case == "deep_json":
        (bundle / MANIFEST).write_text("[" * 100000 + "]" * 100000)
    elif case == "missing_key":
        edit(bundle, lambda m: m["model"].pop("tokens"))
    with pytest.raises(BundleError, match=match):
        voxedge.load(bundle)


JSON = st.recursive(st.none() | st.booleans() | st.integers(-2**63, 2**63) | st.floats() | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
                    max_leaves=6)


def paths(value, prefix=()):
    """Every path to an entry of a JSON document."""
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from paths(item, (*prefix, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from paths(item, (*prefix, i))


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                  HealthCheck.too_slow])
@given(data=st.data())
def test_fuzzed_manifests_only_raise_bundle_errors(pristine, tmp_path_factory, data):
    # Any entry of a real manifest replaced by arbitrary JSON, or deleted, with the checksum made to
    # agree: loading either works or raises a VoxedgeError, never anything else.
    bundle = shutil.copytree(pristine, tmp_path_factory.mktemp("fuzz") / "b")
    manifest = json.loads((bundle / MANIFEST).read_text())
    targets = [p for p in paths(manifest) if p and p[0] != "checksum"]
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(targets))
        parent = manifest
        try:
            for key in path[:-1]:
                parent = parent[key]
            if data.draw(st.booleans()) and isinstance(parent, dict):
                parent.pop(path[-1], None)
            else:
                parent[path[-1]] = data.draw(JSON)
        except (KeyError, IndexError, TypeError):
            continue  # an earlier mutation removed this path
    edit(bundle, lambda m: (m.clear(), m.update(manifest)))
    try:
        voxedge.load(bundle).stream().feed(np.zeros(4000, np.float32))
    except VoxedgeError:
        pass
