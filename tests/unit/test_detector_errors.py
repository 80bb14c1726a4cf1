"""Bad model files and bad options: each gets an error that says what was wrong and what to do."""

import numpy as np
import onnxruntime as ort
import pytest
from onnx import TensorProto

from edge_console.core.detection.detector import Detector
from edge_console.core.detection.onnx_runtime import resolve_providers
from edge_console.core.errors import (
    ModelError,
    ModelNotFoundError,
    NotAnOnnxModelError,
    ProviderError,
    UnknownModelLayoutError,
)
from tests.support.onnx_factory import constant_output_model, ultralytics_metadata


def test_missing_file(tmp_path):
    with pytest.raises(ModelNotFoundError, match="model file not found: .*nothing.onnx"):
        Detector(tmp_path / "nothing.onnx")


def test_folder_instead_of_file(tmp_path):
    with pytest.raises(ModelNotFoundError, match="is a folder"):
        Detector(tmp_path)


@pytest.mark.parametrize("content", [b"", b"not a model at all", b"\x80\x02}q\x00(X\x05\x00\x00\x00torch"])
def test_file_that_is_not_onnx(tmp_path, content):
    path = tmp_path / "model.onnx"
    path.write_bytes(content)
    with pytest.raises(NotAnOnnxModelError, match=r"model.onnx is not an ONNX model .*PyTorch checkpoint"):
        Detector(path)


def test_truncated_onnx_file(tmp_path):
    good = constant_output_model(tmp_path / "good.onnx", {"output0": np.zeros((1, 7, 84), np.float32)},
                                 metadata=ultralytics_metadata(["a", "b", "c"]))
    cut = tmp_path / "cut.onnx"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(NotAnOnnxModelError, match="cut.onnx"):
        Detector(cut)


def test_unknown_layout_names_file_outputs_and_shapes(tmp_path):
    path = constant_output_model(tmp_path / "classifier.onnx", {"logits": np.zeros((1, 1000), np.float32)})
    with pytest.raises(UnknownModelLayoutError, match=r"classifier.onnx.*logits \[1, 1000\]"):
        Detector(path)


def test_input_that_is_not_an_image(tmp_path):
    path = constant_output_model(tmp_path / "vec.onnx", {"output0": np.zeros((1, 7, 84), np.float32)},
                                 input_shape=(1, 10), input_name="features")
    with pytest.raises(ModelError, match=r"input 'features' has shape \[1, 10\]"):
        Detector(path)


def test_uint8_nhwc_model_runs(tmp_path):
    out = np.zeros((1, 7, 84), np.float32)
    out[0, :4, 0] = (32, 32, 8, 8)
    out[0, 4, 0] = 0.9
    path = constant_output_model(tmp_path / "q.onnx", {"output0": out}, input_shape=(1, 64, 64, 3),
                                 input_type=TensorProto.UINT8, metadata=ultralytics_metadata(["a", "b", "c"]))
    det = Detector(path)
    assert det.spec.channels_last and det.spec.input_dtype == "uint8"
    assert len(det.detect(np.zeros((64, 64, 3), np.uint8)).detections) == 1


def test_provider_choice_is_reported_and_can_be_forced(tmp_path):
    path = constant_output_model(tmp_path / "m.onnx", {"output0": np.zeros((1, 7, 84), np.float32)},
                                 metadata=ultralytics_metadata(["a", "b", "c"]))
    det = Detector(path, provider="cpu", intra_op_threads=1)
    assert det.provider == "CPUExecutionProvider"
    auto = resolve_providers()
    assert auto[-1] == "CPUExecutionProvider" and auto[0] in ort.get_available_providers()
    assert "TensorrtExecutionProvider" not in auto  # never chosen silently: engine builds take minutes


def test_forcing_an_absent_provider_says_what_is_available():
    absent = next(p for p in ("coreml", "directml", "openvino", "tensorrt")
                  if resolve_providers.__globals__["ALIASES"][p] not in ort.get_available_providers())
    with pytest.raises(ProviderError, match="not available in this onnxruntime build; available: .*CPUExecutionProvider"):
        resolve_providers(absent)
