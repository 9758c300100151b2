"""OpenVINO's execution provider (device CPU here, the stand-in for its NPU device), in its own
virtualenv: npu-target and default bundles give the CPU provider's text; fp32 logits within 1e-3,
quantized bundles the same argmax at every step."""

from tests.npu.conftest import run_ep_check

OPENVINO = "openvino:device_type=CPU"


def test_npu_and_default_bundles_on_openvino_give_the_cpu_providers_text(whisper_npu, whisper_npu_int8, whisper_default,
                                                                         voxtral_npu, bundles, beckett_inputs, tmp_path):
    checks = [{"kind": "whisper_greedy", "bundle": str(b), "mel": beckett_inputs["mel"]}
              for b in (whisper_npu, whisper_default["fp32"], whisper_default["int8"], whisper_npu_int8)]
    checks += [{"kind": "voxtral_stream", "bundle": str(b), "audio": beckett_inputs["audio"], "delay_ms": 480}
               for b in (voxtral_npu, bundles["int8"])]
    checks += [{"kind": "placement", "bundle": str(b)} for b in (whisper_npu, whisper_npu_int8, voxtral_npu)]
    results = run_ep_check(".venv-openvino", {"providers": OPENVINO, "checks": checks}, tmp_path, timeout=600)
    whisper_fp32, whisper_default_fp32, whisper_int8, whisper_qdq, voxtral_fp32, voxtral_int8 = results[:6]

    for result in (whisper_fp32, whisper_default_fp32, voxtral_fp32):  # fp32: the same numbers
        assert result["ep"]["tokens"] == result["cpu"]["tokens"]
        assert result["max_abs_logit_delta"] < 1e-3
    for result in (whisper_int8, whisper_qdq, voxtral_int8):  # quantized: the same decisions
        assert result["argmax_ep"] == result["argmax_cpu"] and result["ep"]["tokens"] == result["cpu"]["tokens"]
    assert whisper_fp32["ep"]["text"].strip() == "Ever tried, ever failed. No matter, try again. Fail again. Fail better."
    assert voxtral_fp32["steps"] > 16  # past the tiny decoder's 16-token window: the ring wrapped
    for placement in results[6:]:  # the fixed-shape graphs run whole on OpenVINO
        for graph, providers in placement["placement"].items():
            assert set(providers) == {"OpenVINOExecutionProvider"}, (graph, providers)
