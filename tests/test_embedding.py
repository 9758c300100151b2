"""Token embeddings read from the LM head's bytes are exactly the weights onnxruntime multiplies with."""

import numpy as np
import onnxruntime
import pytest
from onnx import TensorProto

from export.graph import GraphBuilder
from export.layers import lm_head
from export.quantize import FP16, FP32, INT4, INT8
from voxedge.config import EmbeddingSpec, Section
from voxedge.engines.embedding import EmbeddingTable

VOCAB, HIDDEN = 512, 96


@pytest.mark.parametrize("fmt", [FP32, FP16, INT8, INT4], ids=lambda f: f.label)
def test_rows_match_what_onnxruntime_computes(tmp_path, fmt):
    weight = np.random.default_rng(0).standard_normal((VOCAB, HIDDEN)).astype(np.float32)
    g = GraphBuilder("head", tmp_path / "head.onnx")
    x = g.input("x", TensorProto.FLOAT16 if fmt.dtype == "float16" else TensorProto.FLOAT, [1, HIDDEN])
    g.output(lm_head(g, x, weight, fmt), "logits", TensorProto.FLOAT16 if fmt.dtype == "float16" else TensorProto.FLOAT,
             [1, VOCAB])
    g.save()
    if fmt.bits:  # accuracy level 0: float compute, so the product shows the weights themselves
        import onnx

        model = onnx.load(tmp_path / "head.onnx")
        for node in model.graph.node:
            for attr in node.attribute:
                if attr.name == "accuracy_level":
                    attr.i = 0
        onnx.save(model, tmp_path / "head.onnx", save_as_external_data=False)
    spec = {"format": fmt.label, "vocab": VOCAB, "hidden": HIDDEN, "block_size": 32}
    if fmt.bits:
        spec.update(offset=g.locations["lm_head.qweight"][0], scales_offset=g.locations["lm_head.scales"][0])
    else:
        spec.update(offset=g.locations["lm_head.weight"][0])
    table = EmbeddingTable(tmp_path / "head.onnx.data", EmbeddingSpec.parse(Section(spec | {"file": "x"}, "model.embedding")))
    rows = table(np.arange(VOCAB))
    probe = np.random.default_rng(1).standard_normal((1, HIDDEN)).astype(fmt.dtype)
    session = onnxruntime.InferenceSession(str(tmp_path / "head.onnx"))
    logits = session.run(None, {"x": probe})[0].astype(np.float32)
    np.testing.assert_allclose(probe.astype(np.float32) @ rows.T, logits, rtol=2e-3 if fmt.dtype == "float16" else 1e-5,
                               atol=5e-2 if fmt.dtype == "float16" else 1e-4)
    tolerance = {"fp32": 0, "fp16": 1e-3, "int8": 0.02, "int4": 0.3}[fmt.label]
    assert np.abs(rows - weight).max() <= tolerance * np.abs(weight).max()  # and they are the weights
