"""Soak: the equivalent of two hours of live audio through the tiny Voxtral model on the live path."""

import pytest

from benchmarks.soak import run


@pytest.mark.slow
def test_two_hours_of_live_audio_keep_memory_and_latency_flat(bundles):
    result = run(bundles["int8"], hours=2.0)
    windows = result["windows"]
    print("soak:", result)
    assert result["steps"] >= 2 * 3600 * 12.5 - 60 and result["dropped_samples"] == 0
    assert max(w["resident_mb"] for w in windows[1:]) - windows[0]["resident_mb"] < 50
    first, last = windows[0], windows[-1]
    assert last["step_ms_p50"] <= 1.5 * first["step_ms_p50"] + 1.0  # no slow drift over hours
