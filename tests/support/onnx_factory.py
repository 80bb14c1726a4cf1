"""Build small real ONNX models for tests: fixed outputs we choose, any metadata, any input layout.

The graph really reads its input (output = constant + 0 * mean(input)) so onnxruntime runs it like any model.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper


def constant_output_model(path: Path, outputs: dict[str, np.ndarray], *, input_shape=(1, 3, 64, 64),
                          input_name: str = "images", metadata: dict[str, str] | None = None,
                          input_type=TensorProto.FLOAT) -> Path:
    nodes, initializers, graph_outputs = [], [], []
    x = input_name
    if input_type != TensorProto.FLOAT:
        nodes.append(helper.make_node("Cast", [x], ["x_float"], to=TensorProto.FLOAT))
        x = "x_float"
    nodes.append(helper.make_node("ReduceMean", [x], ["x_mean"], keepdims=0))
    initializers.append(numpy_helper.from_array(np.array(0.0, np.float32), "zero"))
    nodes.append(helper.make_node("Mul", ["x_mean", "zero"], ["x_zero"]))
    for name, value in outputs.items():
        value = np.asarray(value, np.float32)
        initializers.append(numpy_helper.from_array(value, f"{name}_const"))
        nodes.append(helper.make_node("Add", [f"{name}_const", "x_zero"], [name]))
        graph_outputs.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, list(value.shape)))
    graph = helper.make_graph(nodes, "constant_outputs",
                              [helper.make_tensor_value_info(input_name, input_type, list(input_shape))],
                              graph_outputs, initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    for key, value in (metadata or {}).items():
        model.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def ultralytics_metadata(names: list[str], imgsz=(64, 64), **extra: str) -> dict[str, str]:
    """The metadata keys a real Ultralytics export writes, with the same value formatting."""
    meta = {
        "description": "test model",
        "author": "tests",
        "task": "detect",
        "stride": "32",
        "batch": "1",
        "imgsz": str(list(imgsz)),
        "names": str({i: n for i, n in enumerate(names)}),
    }
    meta.update(extra)
    return meta
