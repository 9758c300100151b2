"""The tiny random Voxtral Realtime: voxedge's streaming engine against transformers' generate() on the
same model and the same 20 s clip (the Python/onnxruntime path, where overheads dominate).

    python -m benchmarks.tiny_vs_transformers
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

CACHE = Path(__file__).parent / ".cache"


def run(repeats: int = 5) -> dict:
    import voxedge
    from export.__main__ import main as export_main
    from export.voxtral import reference, tiny
    from export.voxtral.validate import sample_clip

    checkpoint, bundle = CACHE / "voxtral-tiny", CACHE / "voxtral-tiny-fp32"
    if not (checkpoint / "config.json").exists():
        tiny.build(checkpoint)
    if not (bundle / "manifest.json").exists():
        assert export_main([str(checkpoint), "--out", str(bundle), "--quant", "fp32", "--force"]) == 0
    clip = np.tile(sample_clip(), 4)[: 16000 * 20]
    hf = reference.load_model(checkpoint)
    model = voxedge.load(bundle)

    def ours():
        tokens = []
        stream = model.stream(delay_ms=480, on_step=lambda token, *_: tokens.append(token))
        stream.feed(clip)
        stream.close()
        return tokens

    hf_times, our_times = [], []
    for _ in range(repeats):  # alternating, so machine noise hits both alike
        start = time.perf_counter()
        expected, _ = reference.generate(hf, clip, 480)
        hf_times.append(time.perf_counter() - start)
        start = time.perf_counter()
        tokens = ours()
        our_times.append(time.perf_counter() - start)
    steps = len(tokens)
    hf_rate, our_rate = steps / np.median(hf_times), steps / np.median(our_times)
    return {"clip_seconds": 20.0, "steps": steps, "tokens_identical": tokens == expected,
            "transformers_steps_per_s": round(hf_rate, 1), "voxedge_steps_per_s": round(our_rate, 1),
            "speedup": round(our_rate / hf_rate, 2), "repeats": repeats}


if __name__ == "__main__":
    print(run())
