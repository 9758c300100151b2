"""QDQ weights for the npu target: 8-bit weights (per output channel), 16-bit activations, ranges
calibrated on real recordings (docs/hardware.md).

onnxruntime's static quantizer, with the configuration it ships for QNN
(onnxruntime.quantization.execution_providers.qnn), puts standard QuantizeLinear/DequantizeLinear pairs
around the standard ops of a float graph: a QDQ model any provider can run (the CPU and OpenVINO in
float, an NPU in its integer kernels). 16-bit activations keep attention's softmax inputs and the
residual stream precise; 8-bit weights halve the float16 size.
"""

from __future__ import annotations

from pathlib import Path

LABEL = "qdq-w8a16"
MAX_SAMPLES = 48  # calibration inputs per graph, spread over the recordings


def quantize_graph(float_path: Path, out_path: Path, samples: list[dict]) -> None:
    """Quantize the float graph at `float_path` into `out_path`, calibrated on `samples` (graph feeds)."""
    from onnxruntime.quantization import CalibrationDataReader, QuantType, quantize
    from onnxruntime.quantization.execution_providers.qnn import get_qnn_qdq_config

    class Samples(CalibrationDataReader):
        def __init__(self):
            self._items = iter(samples)

        def get_next(self):
            return next(self._items, None)

    config = get_qnn_qdq_config(str(float_path), Samples(), activation_type=QuantType.QUInt16,
                                weight_type=QuantType.QUInt8, per_channel=True)
    quantize(str(float_path), str(out_path), config)


def spread(items: list, n: int = MAX_SAMPLES) -> list:
    """At most `n` of `items`, evenly spaced (first and last included)."""
    if len(items) <= n:
        return items
    step = (len(items) - 1) / (n - 1)
    return [items[round(i * step)] for i in range(n)]
