"""A small ONNX graph builder that streams weights to the external-data file as they are added.

Exporting the real 4B model must never hold the whole model in memory: every weight goes to disk
the moment it is added (page-aligned, so onnxruntime can memory-map it), and the ModelProto keeps
only its location. Peak memory is one tensor, not one model.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 21
ALIGN = 4096  # external data offsets aligned to pages: onnxruntime can mmap them
INLINE_BYTES = 1024  # smaller tensors stay inside the .onnx file

FLOAT, FLOAT16, INT32, INT64, UINT8 = (
    TensorProto.FLOAT,
    TensorProto.FLOAT16,
    TensorProto.INT32,
    TensorProto.INT64,
    TensorProto.UINT8,
)


class GraphBuilder:
    def __init__(self, name: str, path: Path):
        """The graph will be written to `path` (.onnx) and its weights to `path` + ".data"."""
        self.name = name
        self.path = Path(path)
        self.data_path = self.path.with_name(self.path.name + ".data")
        self._data = open(self.data_path, "wb")
        self.nodes: list = []
        self.inputs: list = []
        self.outputs: list = []
        self.initializers: list = []
        self.locations: dict[str, tuple[int, int]] = {}  # initializer -> (offset, bytes) in the data file
        self.metadata: dict[str, str] = {}  # the model's metadata_props (what the runtime reads of a graph)
        self._count = 0

    def fresh(self, hint: str) -> str:
        self._count += 1
        return f"{hint}_{self._count}"

    # -- graph interface --------------------------------------------------------------------------

    def input(self, name: str, elem_type: int, shape) -> str:
        self.inputs.append(helper.make_tensor_value_info(name, elem_type, list(shape)))
        return name

    def output(self, value: str, name: str, elem_type: int, shape) -> None:
        """Expose `value` as graph output `name`."""
        if value != name:
            self.nodes.append(helper.make_node("Identity", [value], [name]))
        self.outputs.append(helper.make_tensor_value_info(name, elem_type, list(shape)))

    def op(self, op_type: str, *inputs, outputs=1, domain: str = "", **attrs):
        """Add a node; returns its output name (or a list of names when `outputs` > 1 or is a list)."""
        names = outputs if isinstance(outputs, list) else [self.fresh(op_type.lower()) for _ in range(outputs)]
        self.nodes.append(helper.make_node(op_type, list(inputs), names, domain=domain or None, **attrs))
        return names if len(names) > 1 or isinstance(outputs, list) else names[0]

    def const(self, value, dtype=np.float32) -> str:
        """A small constant tensor (scalars, shapes, axes)."""
        return self.weight(self.fresh("const"), np.asarray(value, dtype=dtype))

    def weight(self, name: str, array: np.ndarray) -> str:
        """Add an initializer; big ones go straight to the data file."""
        array = np.ascontiguousarray(array)
        if array.nbytes < INLINE_BYTES:
            self.initializers.append(numpy_helper.from_array(array, name))
            return name
        offset = -self._data.tell() % ALIGN + self._data.tell()
        self._data.seek(offset)
        self._data.write(memoryview(array).cast("B"))  # the array's own buffer: no copy
        tensor = TensorProto(name=name, data_type=helper.np_dtype_to_tensor_dtype(array.dtype), dims=array.shape)
        tensor.data_location = TensorProto.EXTERNAL
        for key, value in (("location", self.data_path.name), ("offset", str(offset)), ("length", str(array.nbytes))):
            entry = tensor.external_data.add()
            entry.key, entry.value = key, value
        self.initializers.append(tensor)
        self.locations[name] = (offset, array.nbytes)
        return name

    def save(self) -> list[Path]:
        """Write the .onnx file; returns the files making up the graph."""
        self._data.close()
        graph = helper.make_graph(self.nodes, self.name, self.inputs, self.outputs, self.initializers)
        model = helper.make_model(
            graph,
            opset_imports=[helper.make_opsetid("", OPSET), helper.make_opsetid("com.microsoft", 1)],
            producer_name="voxedge-export",
        )
        model.ir_version = 10
        if self.metadata:
            helper.set_model_props(model, self.metadata)
        onnx.save_model(model, self.path)
        if self.data_path.stat().st_size == 0:
            self.data_path.unlink()
            return [self.path]
        return [self.path, self.data_path]
