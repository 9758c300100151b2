"""--target npu on the CPU provider: the graphs are fixed-shape and standard-op, and they compute what
the default graphs (validated against transformers) and transformers itself compute."""

import numpy as np
import onnx
import pytest

import voxedge
from tests.conftest import asset
from voxedge.audio import load_audio
from voxedge.engines.kv_cache import SlidingKVCache

GRAPHS = {"whisper": ("encoder", "decoder_step"), "voxtral": ("audio_encoder_step", "decoder_step")}


def _graphs(bundle, names):
    return [onnx.load(bundle / f"{name}.onnx", load_external_data=False) for name in names]


@pytest.mark.parametrize("family", ["whisper", "voxtral"])
def test_npu_graphs_have_fixed_shapes_and_standard_ops_only(family, whisper_npu, voxtral_npu):
    bundle = whisper_npu if family == "whisper" else voxtral_npu
    for graph in _graphs(bundle, GRAPHS[family]):
        assert {node.domain for node in graph.graph.node} <= {"", "ai.onnx"}, graph.graph.name
        for value in [*graph.graph.input, *graph.graph.output]:
            dims = value.type.tensor_type.shape.dim
            assert all(d.HasField("dim_value") for d in dims), (graph.graph.name, value.name)


def test_whisper_npu_bundle_computes_what_the_default_bundle_does(whisper_npu, whisper_default):
    """Beckett's recording, whole transcription: the default fp32 bundle reproduces transformers token
    for token (tests/whisper); the npu one must give the same text and the same logits at every step."""
    from voxedge.engines.whisper_decoding import WindowDecoder

    audio = load_audio(asset("beckett.wav"))
    runs = {}
    for name, bundle in (("npu", whisper_npu), ("default", whisper_default["fp32"])):
        model, tokens, logits = voxedge.load(bundle), [], []
        decoder = WindowDecoder(model, on_step=lambda t, lg: (tokens.append(t), logits.append(lg)))
        decoder.decode(model.encode(model.features(audio)), [*model.config.sot_sequence], timestamps=True)
        runs[name] = tokens, np.stack(logits), decoder.graph.binding
    assert runs["npu"][0] == runs["default"][0]
    assert np.abs(runs["npu"][1] - runs["default"][1]).max() < 1e-3
    assert (runs["npu"][2], runs["default"][2]) == ("ring", "shared")
    segments = list(voxedge.load(whisper_npu).transcribe(asset("beckett.wav")))
    assert " ".join(s.text.strip() for s in segments) == "Ever tried, ever failed. No matter, try again. Fail again. Fail better."


def test_int8_npu_bundle_is_standard_qdq_and_transcribes_unseen_speech(whisper_npu_int8, whisper_npu, speech_dir):
    """8-bit weights, 16-bit activations, in QuantizeLinear/DequantizeLinear pairs; judged by WER on
    sentences espeak-ng speaks (not the recordings the ranges were calibrated on), against the float
    npu bundle on the same audio."""
    import jiwer

    from benchmarks.corpus import SENTENCES
    from tests.conftest import synthesize

    for graph in _graphs(whisper_npu_int8, GRAPHS["whisper"]):
        ops = {node.op_type for node in graph.graph.node}
        assert {"QuantizeLinear", "DequantizeLinear"} <= ops and {n.domain for n in graph.graph.node} <= {""}
        weights = [t for t in graph.graph.initializer if t.name.endswith("weight_t_quantized")]  # the linears
        assert weights and {t.data_type for t in weights} == {onnx.TensorProto.UINT8}
        zero_points = {t.data_type for t in graph.graph.initializer if t.name.endswith("_zero_point") and not t.dims}
        assert onnx.TensorProto.UINT16 in zero_points  # 16-bit activations
    texts = SENTENCES[2:6]
    clips = [synthesize(text, speech_dir / f"npu_{i}.wav") for i, text in enumerate(texts)]
    errors = {}
    for name, bundle in (("int8", whisper_npu_int8), ("fp32", whisper_npu)):
        model = voxedge.load(bundle)
        hypotheses = [" ".join(s.text for s in model.transcribe(clip)) for clip in clips]
        errors[name] = jiwer.wer([_norm(t) for t in texts], [_norm(h) for h in hypotheses])
    assert errors["int8"] <= errors["fp32"] + 0.05, errors


def _norm(text: str) -> str:
    return "".join(c for c in text.lower() if c.isalnum() or c == " ").strip()


def test_voxtral_npu_bundle_is_token_identical_with_transformers_across_window_edges(voxtral_npu):
    """The export's own validation ran the bundle against transformers; its clip is longer than both
    tiny windows (12 encoder frames, 16 decoder tokens), so the rings wrapped many times."""
    import json

    report = json.loads((voxtral_npu / "validation.json").read_text())
    assert report["tokens_identical"] and report["steps_reference"] > 4 * 16
    assert report["max_abs_logit_delta_before_divergence"] < 1e-3


def test_ring_mask_is_the_models_sliding_window():
    """Over calls of several sizes, the slots a query may see hold exactly the window - 1 positions
    before it (and the call's own earlier positions), however often the ring wrapped."""
    window, capacity = 7, 6
    cache = SlidingKVCache(layers=1, kv_heads=1, head_dim=1, window=window, max_step=4)
    cache.use_ring(capacity, np.float32)
    written = np.full(capacity, -1)  # the position each slot holds, tracked independently
    position = 0
    for n in [1, 4, 2, 4, 1, 1, 3, 4, 4, 2, 1] * 3:
        mask = cache.ring_mask(n)[0, 0]
        for i in range(n):
            query = position + i
            seen = {int(written[s]) for s in range(capacity) if mask[i, s]} | \
                   {position + j for j in range(n) if mask[i, capacity + j]}
            assert seen == set(range(max(0, query - window + 1), query + 1)), (query, seen)
        cache.write_ring([np.zeros((1, 1, n, 1), np.float32)])
        for i in range(n):
            written[(position + i) % capacity] = position + i
        position += n


def test_npu_target_refuses_presets_made_of_com_microsoft_ops(tiny_checkpoint, tmp_path, capsys):
    """Voxtral's int4/int8 are MatMulNBits/DynamicQuantizeMatMul: no npu bundle is made of them."""
    from export.__main__ import main

    assert main([str(tiny_checkpoint), "--out", str(tmp_path / "b"), "--target", "npu", "--quant", "int4"]) == 1
    assert "for target npu come in fp16, fp32, not int4" in capsys.readouterr().err
    assert not (tmp_path / "b").exists()


def test_npu_model_by_name_is_prepared_for_npus(tmp_path, monkeypatch, capsys):
    """`voxedge models prepare whisper-tiny.en-npu`: the catalog's NPU name builds the npu target."""
    from voxedge.cli import main

    monkeypatch.setenv("VOXEDGE_HOME", str(tmp_path))
    assert main(["models", "prepare", "whisper-tiny.en-npu"]) == 0
    bundle = voxedge.load("whisper-tiny.en-npu").bundle
    assert bundle.model_section["target"] == "npu"
    assert [i.name for i in onnx.load(bundle.root / "decoder_step.onnx", load_external_data=False).graph.input][:3] \
        == ["inputs_embeds", "position_ids", "attention_mask"]
