"""Execution providers as voxedge asks onnxruntime for them: options, strict mode, the placement
report, and the KV bindings every provider can run. Providers other than CPU: test_openvino.py,
test_qnn.py."""

import numpy as np
import pytest

import voxedge
from voxedge.errors import OptionError, UnsupportedError
from voxedge.options import RuntimeOptions


@pytest.fixture(scope="module")
def whisper_int8(whisper_default):
    return whisper_default["int8"]


def test_provider_options_in_the_command_line_spelling_and_as_dicts():
    spelled = RuntimeOptions("qnn:soc_model=60,htp_performance_mode=burst,openvino:device_type=NPU,cpu")
    assert spelled.providers == ("QNNExecutionProvider", "OpenVINOExecutionProvider", "CPUExecutionProvider")
    assert spelled.options_for("qnn") == {"soc_model": "60", "htp_performance_mode": "burst"}
    assert spelled.options_for("OpenVINOExecutionProvider") == {"device_type": "NPU"}
    as_dict = RuntimeOptions(("qnn", "openvino", "cpu"), provider_options={
        "QNNExecutionProvider": {"htp_performance_mode": "burst", "soc_model": 60}, "openvino": {"device_type": "NPU"}})
    assert as_dict == spelled and hash(as_dict) == hash(spelled)
    assert RuntimeOptions(["cuda:device_id=1"]).options_for("cuda") == {"device_id": "1"}


@pytest.mark.parametrize("bad", ["soc_model=60,qnn", "qnn:soc_model", "qnn:=1", ":a=1", ""])
def test_malformed_provider_lists_are_option_errors(bad):
    with pytest.raises(OptionError):
        RuntimeOptions(bad)


def test_provider_options_of_the_wrong_shape_are_option_errors():
    with pytest.raises(OptionError):
        RuntimeOptions(provider_options={"qnn": ["soc_model"]})
    with pytest.raises(OptionError):
        RuntimeOptions(strict="yes")


def test_strict_mode_refuses_a_provider_this_onnxruntime_lacks(whisper_int8):
    with pytest.raises(UnsupportedError, match="strict mode does not fall back to CPU"):
        voxedge.load(whisper_int8, providers="cuda", strict=True)


def test_cli_strict_failure_is_one_error_line(whisper_int8, capsys):
    from voxedge.cli import main

    assert main(["info", str(whisper_int8), "--providers", "qnn:soc_model=60", "--strict"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("voxedge: error: execution provider 'QNNExecutionProvider'")


def test_info_reports_where_every_graph_runs(whisper_int8, capsys):
    import json

    from voxedge.cli import main

    assert main(["info", str(whisper_int8), "--providers", "cpu", "--json", "--no-verify"]) == 0
    placement = json.loads(capsys.readouterr().out)["placement"]
    assert set(placement) == {"encoder", "decoder_step"}
    decoder = placement["decoder_step"]["CPUExecutionProvider"]
    assert decoder["ops"]["GroupQueryAttention"] == 4 and decoder["nodes"] == sum(decoder["ops"].values())


@pytest.mark.parametrize("binding", ["alternate", "shared"])
def test_every_kv_binding_decodes_what_the_shared_buffer_does(whisper_int8, binding):
    """Two buffers in turn (what providers other than CPU get) against one aliased buffer (the CPU's),
    over a whole window, on the same session: identical logits."""
    from voxedge.engines.kv_cache import CachedGraph, SlidingKVCache

    model = voxedge.load(whisper_int8)
    cross = model.encode(np.random.default_rng(0).standard_normal((80, 3000)).astype(np.float32))
    tokens = np.random.default_rng(1).integers(0, 50000, 150)

    def run(kind):
        graph = CachedGraph(model.decoder, SlidingKVCache.of(model.config.decoder, model.config.max_positions,
                                                             initial=16), ["logits"], binding=kind)
        return np.stack([graph.run({"inputs_embeds": model.embed([int(t)])[None],
                                    "position_ids": np.array([[i]], np.int64), **cross}, 1)[0][0]
                         for i, t in enumerate(tokens)])

    np.testing.assert_array_equal(run(binding), run("shared"))


def test_word_alignment_pass_reads_the_same_scores_through_alternating_buffers(whisper_int8):
    """The alignment pass (a window's whole text in one call, voxedge/engines/whisper_alignment.py) with
    the binding providers other than the CPU get: the alignment heads' scores of the shared buffer."""
    from voxedge.engines.kv_cache import CachedGraph, SlidingKVCache

    model = voxedge.load(whisper_int8)
    cross = model.encode(np.random.default_rng(0).standard_normal((80, 3000)).astype(np.float32))
    tokens = [*model.config.sot_sequence, model.config.tokens.no_timestamps,
              *np.random.default_rng(1).integers(0, 50000, 100).tolist(), model.config.tokens.eot]

    def run(kind):
        cache = SlidingKVCache.of(model.config.decoder, model.config.max_positions, initial=64)
        graph = CachedGraph(model.decoder, cache, ["alignment_scores"], binding=kind)
        feeds = {"inputs_embeds": model.embed(tokens)[None],
                 "position_ids": np.arange(len(tokens), dtype=np.int64)[None], **cross}
        return graph.run(feeds, len(tokens))[0]

    shared = run("shared")
    assert shared.shape[2] == len(tokens)
    np.testing.assert_array_equal(run("alternate"), shared)


def test_alternating_buffers_slide_like_the_shared_one(bundles):
    """The tiny Voxtral decoder's 16-token window, 200 steps: compactions with two buffer sets."""
    from voxedge.engines.kv_cache import CachedGraph, SlidingKVCache

    model = voxedge.load(bundles["int8"])
    cfg = model.config
    scale = next(iter(model.ada_scales.values()))
    embeds = np.random.default_rng(0).standard_normal((200, 1, 1, cfg.decoder.hidden)).astype(np.float32)

    def run(kind):
        graph = CachedGraph(model.decoder, SlidingKVCache.of(cfg.decoder, 1, initial=8), ["logits"], binding=kind)
        out = [graph.run(model.decoder_feeds(e, i, scale), 1)[0]
               for i, e in enumerate(embeds)]
        return np.stack(out), graph.cache.compactions

    alternate, shared = run("alternate"), run("shared")
    assert alternate[1] == shared[1] >= 2
    np.testing.assert_allclose(alternate[0], shared[0], atol=1e-5)
