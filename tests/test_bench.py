"""The benchmarks' own correctness: the baseline computes the same thing, the byte model and the verdict."""

import json

import numpy as np
import pytest

from benchmarks.floor import PRESET_FORMATS, parameters, step_bytes


def test_byte_model_counts_the_real_model():
    # docs/voxtral.md, "The model": 970.4 M encoder, 25.2 M adapter, 3031.5 M decoder, 402.7 M embedding (4.43 B);
    # the byte model counts linear weights only (biases, norms and ada MLPs are under 0.2%).
    p = parameters()
    assert abs(p["encoder"] + p["convs"] - 970.4e6) / 970.4e6 < 0.002
    assert abs(p["adapter"] - 25.2e6) < 0.1e6 and abs(p["lm_head"] - 402.7e6) < 0.1e6
    assert abs(p["decoder"] - 3031.5e6) / 3031.5e6 < 0.003
    int4, int8 = step_bytes("int4"), step_bytes("int8")
    assert int4["decoder"] < int8["decoder"] and int4["encoder"] == int8["encoder"]  # int4 = 4-bit decoder only
    assert step_bytes("int4", encoder_batch=4)["encoder"] == pytest.approx(int4["encoder"] / 4)
    assert set(PRESET_FORMATS) == {"fp32", "fp16", "int8", "int4", "int4-b64", "int4-b128"}


def test_larger_blocks_read_fewer_bytes():
    from export.quantize import BY_LABEL

    # 4 bits per weight plus one float32 scale per block: 1/8, 1/16, 1/32 of a byte per weight
    assert [BY_LABEL[f].bytes_per_weight for f in ("int4", "int4-b64", "int4-b128")] == [0.625, 0.5625, 0.53125]
    decoder = {p: step_bytes(p)["decoder"] for p in ("int4", "int4-b64", "int4-b128")}
    weights = parameters()["decoder"]
    assert decoder["int4"] - decoder["int4-b64"] == pytest.approx(weights * 4 / 64)
    assert decoder["int4-b64"] - decoder["int4-b128"] == pytest.approx(weights * 4 / 128)
    assert step_bytes("int4-b128")["encoder"] == step_bytes("int4")["encoder"]  # only the decoder's blocks change


def test_concat_kv_baseline_computes_what_the_shared_buffer_encoder_computes(tmp_path):
    pytest.importorskip("torch")
    from benchmarks.concat_kv import ConcatKV, window_mask
    from export.checkpoint import Checkpoint
    from export.quantize import FP32
    from export.voxtral import tiny
    from export.voxtral.graphs import build_encoder
    from voxedge.engines.kv_cache import CachedGraph, SlidingKVCache
    from voxedge.options import RuntimeOptions
    from voxedge.runtime import create_session

    ckpt = Checkpoint(tiny.build(tmp_path / "ckpt"), "tiny")
    cfg = ckpt.config["audio_config"]
    build_encoder(tmp_path / "shared.onnx", ckpt, ckpt.config, FP32, FP32).save()
    build_encoder(tmp_path / "concat.onnx", ckpt, ckpt.config, FP32, FP32, kv=ConcatKV(cfg["head_dim"])).save()
    shared = CachedGraph(create_session(tmp_path / "shared.onnx", RuntimeOptions()),
                         SlidingKVCache(cfg["num_hidden_layers"], cfg["num_attention_heads"], cfg["head_dim"],
                                        cfg["sliding_window"], 4), ["audio_embeds", "conv1_state_out", "conv2_state_out"])
    concat = create_session(tmp_path / "concat.onnx", RuntimeOptions())
    names = [f"past_{k}.{i}" for i in range(cfg["num_hidden_layers"]) for k in ("key", "value")]
    past = [np.zeros((1, cfg["num_attention_heads"], 0, cfg["head_dim"]), np.float32) for _ in names]
    states = [np.zeros((1, 128, 2), np.float32), np.zeros((1, cfg["hidden_size"], 1), np.float32)] * 2
    mel = np.random.default_rng(0).standard_normal((1, 128, 8 * 30)).astype(np.float32)
    keep = cfg["sliding_window"] - 1
    for step in range(30):  # 120 frames through a 12-frame window
        chunk, positions = mel[:, :, 8 * step : 8 * step + 8], np.arange(4 * step, 4 * step + 4)
        a, states[0], states[1] = shared.run({"mel": chunk, "conv1_state": states[0], "conv2_state": states[1],
                                              "position_ids": positions[None]}, 4)
        out = dict(zip([o.name for o in concat.get_outputs()], concat.run(None, {
            "mel": chunk, "conv1_state": states[2], "conv2_state": states[3], "position_ids": positions[None],
            "attention_mask": window_mask(positions, np.arange(4 * step - past[0].shape[2], 4 * step + 4),
                                          cfg["sliding_window"]), **dict(zip(names, past))})))
        states[2], states[3] = out["conv1_state_out"], out["conv2_state_out"]
        past = [out[n.replace("past", "present")][:, :, -keep:] for n in names]
        assert np.abs(a - out["audio_embeds"]).max() < 1e-5


def test_device_verdict_runs_anywhere(capsys):
    from voxedge.cli import main

    assert main(["bench", "--device", "--json", "--out", "/nonexistent/results"]) == 0
    result = json.loads(capsys.readouterr().out)["device"]
    assert result["bandwidth_gb_s"] > 1 and set(result["voxtral"]) == {"int4", "int8"}
    assert "Voxtral 4B" in result["text"]
    steps = result["voxtral"]["int4"]["ms_per_step"]
    assert steps["8"] < steps["1"]  # batching the encoder can only help


def test_verdict_uses_this_machines_figures_only_when_they_are_its_own():
    from voxedge.bench.device import machine, verdict

    fast = {"preset": "int4", "machine": machine(), "decoder_ms": 40.0,
            "encoder_ms_per_step_by_batch": {"1": 60.0, "4": 20.0, "8": 15.0}}
    result = verdict(30.0, [fast])
    assert result["figures_from"] == "this machine"
    assert result["voxtral"]["int4"]["ms_per_step"][4] == 60.0
    assert result["voxtral"]["int4"]["live_encoder_batch"] in (4, None)  # None only if RAM is short
    elsewhere = verdict(30.0, [{**fast, "machine": {**machine(), "cpu": "another CPU"}}])
    assert elsewhere["figures_from"] == "the reference machine, scaled"
    assert elsewhere["voxtral"]["int4"]["ms_per_step"][8] >= (92.4 + 27.1)  # never rosier than measured
