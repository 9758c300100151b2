"""Qualcomm's NPU, simulated: onnxruntime-qnn's HTP backend (a plugin execution provider) in its own
virtualenv. The npu-target bundles compile with CPU fallback disabled, a context binary builds and
runs, and decoder steps give the CPU provider's argmax. The simulated Whisper encoder takes minutes
per call, so Whisper's cross-attention comes from the CPU encoder (its compilation is still checked);
the tiny Voxtral runs whole, encoder included."""

from tests.npu.conftest import run_ep_check

QNN = "qnn:backend_type=htp,soc_model=60"
EARLY_STEPS = 12  # the HTP computes in fp16: a random tiny model's near-ties may flip later


def test_npu_bundles_run_whole_on_the_htp_simulator(whisper_npu, whisper_npu_int8, voxtral_npu, beckett_inputs,
                                                    tmp_path):
    checks = [
        {"kind": "placement", "bundle": str(whisper_npu)},
        {"kind": "placement", "bundle": str(voxtral_npu)},
        {"kind": "whisper_forced", "bundle": str(whisper_npu), "mel": beckett_inputs["mel"], "steps": 5},
        {"kind": "whisper_forced", "bundle": str(whisper_npu_int8), "mel": beckett_inputs["mel"], "steps": 5},
        {"kind": "voxtral_stream", "bundle": str(voxtral_npu), "audio": beckett_inputs["audio"], "delay_ms": 480},
        {"kind": "context_binary", "bundle": str(whisper_npu), "graph": "decoder_step"},
        # the crash this once was: libsndfile called through cffi after HTP sessions exist
        {"kind": "read_audio", "path": beckett_inputs["wav"]},
    ]
    results = run_ep_check(".venv-qnn", {"providers": QNN, "strict": True, "checks": checks}, tmp_path, timeout=900)
    whisper_placed, voxtral_placed, whisper, whisper_qdq, voxtral, context, audio = results

    # strict mode: a node the HTP could not take would have failed the session; and none is on the CPU
    for placement in (whisper_placed, voxtral_placed):
        for graph, providers in placement["placement"].items():
            assert set(providers) == {"QNNExecutionProvider"}, (graph, providers)
    assert whisper["argmax_ep"] == whisper["argmax_cpu"] and whisper["steps"] == 5
    assert whisper["max_relative_logit_delta"] < 0.05  # fp16 on the HTP
    assert whisper_qdq["argmax_ep"] == whisper_qdq["argmax_cpu"]  # the HTP's integer kernels
    assert voxtral["argmax_ep"][:EARLY_STEPS] == voxtral["argmax_cpu"][:EARLY_STEPS]
    assert context["has_ep_context_node"] and context["reloaded_placement"] == {"QNNExecutionProvider": 1}
    assert audio["samples"] == 159414 and audio["rms"] > 0.01


def test_default_bundle_is_refused_in_strict_mode_and_runs_mostly_on_cpu_otherwise(whisper_default, tmp_path):
    """GroupQueryAttention and MatMulNBits are not HTP ops: strict mode refuses the default bundle with a
    VoxedgeError that says what to do; without it the decoder runs mostly on the CPU provider, which
    `voxedge info --providers` shows. A graph the HTP takes nothing of is a warning."""
    bundle = str(whisper_default["int8"])
    refusal, placed, idle = run_ep_check(".venv-qnn", {"providers": QNN, "checks": [
        {"kind": "refused", "bundle": bundle, "strict": True}, {"kind": "placement", "bundle": bundle},
        {"kind": "warnings", "graph": str(_string_graph(tmp_path / "strings.onnx"))}]}, tmp_path, timeout=600)
    assert len(idle["warnings"]) == 1 and "QNNExecutionProvider took no node of this graph" in idle["warnings"][0]
    assert refusal["refused"] and refusal["type"] == "UnsupportedError" and "--target npu" in refusal["message"]
    decoder = placed["placement"]["decoder_step"]
    assert decoder.get("CPUExecutionProvider", 0) > decoder.get("QNNExecutionProvider", 0)


def _string_graph(path):
    """One node over strings: no NPU provider takes string tensors."""
    import onnx
    from onnx import TensorProto, helper

    node = helper.make_node("Identity", ["x"], ["y"])
    graph = helper.make_graph([node], "strings", [helper.make_tensor_value_info("x", TensorProto.STRING, [2])],
                              [helper.make_tensor_value_info("y", TensorProto.STRING, [2])])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 21)])
    model.ir_version = 10
    onnx.save(model, path)
    return path
