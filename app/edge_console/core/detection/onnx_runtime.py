"""The one place that imports onnxruntime, chooses its execution providers and opens sessions, so a missing
runtime is one clear message.

onnxruntime comes in flavours (CPU, -gpu, -openvino, -directml, ...) that all install the module `onnxruntime`;
the product works with whichever is installed (see pyproject.toml's `runtime` and `agent-base` extras).
"""

from __future__ import annotations

from pathlib import Path

try:
    import onnxruntime as ort
except ImportError as exc:  # pragma: no cover - exercised by hand on a device without a runtime
    raise ImportError(
        "onnxruntime is not installed. Install one flavour of it: `pip install onnxruntime` (CPU, or "
        "`pip install 'edge-console[agent]'`), onnxruntime-gpu (CUDA/TensorRT) or onnxruntime-openvino, "
        "then start again."
    ) from exc

from edge_console.core.detection.onnx_shape import not_onnx_message, onnx_file_problem
from edge_console.core.errors import ModelNotFoundError, NotAnOnnxModelError, ProviderError

__all__ = ["ort", "available_providers", "resolve_providers", "open_session", "open_metadata_session"]

# Preferred order when nothing is forced. TensorRT is left out of the automatic choice on purpose: its first run
# builds an engine for minutes, which on a factory floor looks like a hung device. Force it with provider="tensorrt".
AUTO_ORDER = (
    "CUDAExecutionProvider",
    "OpenVINOExecutionProvider",
    "CoreMLExecutionProvider",
    "DmlExecutionProvider",
    "CPUExecutionProvider",
)

ALIASES = {
    "cpu": "CPUExecutionProvider",
    "cuda": "CUDAExecutionProvider",
    "tensorrt": "TensorrtExecutionProvider",
    "trt": "TensorrtExecutionProvider",
    "openvino": "OpenVINOExecutionProvider",
    "coreml": "CoreMLExecutionProvider",
    "directml": "DmlExecutionProvider",
    "dml": "DmlExecutionProvider",
}


def available_providers() -> list[str]:
    return list(ort.get_available_providers())


def resolve_providers(forced: str | None = None) -> list[str]:
    """The provider list to hand to InferenceSession, CPU always last as the fallback for unsupported nodes."""
    available = available_providers()
    if forced:
        name = ALIASES.get(forced.lower(), forced)
        if name not in available:
            raise ProviderError(
                f"execution provider {forced!r} is not available in this onnxruntime build; available: "
                f"{', '.join(available)}. Install the matching onnxruntime package (e.g. onnxruntime-gpu for CUDA) "
                "or choose one of the available providers."
            )
        chosen = [name]
    else:
        chosen = [p for p in AUTO_ORDER if p in available][:1]
    if "CPUExecutionProvider" not in chosen and "CPUExecutionProvider" in available:
        chosen.append("CPUExecutionProvider")
    return chosen


def _check_file(path: Path) -> None:
    if not path.exists():
        raise ModelNotFoundError(f"model file not found: {path}. Check the path, or give a model name from the "
                                 "library (e.g. parts-v2).")
    if not path.is_file():
        raise ModelNotFoundError(f"{path} is a folder, not a model file; pass the .onnx file inside it")
    if (problem := onnx_file_problem(path)) is not None:  # said in words before onnxruntime says it in its own
        raise NotAnOnnxModelError(not_onnx_message(str(path), problem))


# onnxruntime's refusals say what failed in its own words ("[ONNXRuntimeError] : 7 : INVALID_PROTOBUF : Load model
# from ... failed:Protobuf parsing failed."); people need what it means for the file in their hand.
_PLAIN = (
    ("INVALID_PROTOBUF", "it is not an ONNX model, or it is damaged (cut short by a copy, or another file renamed "
                         ".onnx, such as a PyTorch .pt checkpoint)"),
    ("NO_SUCHFILE", "the file cannot be read"),
    ("INVALID_GRAPH", "it is an ONNX file whose graph is invalid (a broken or hand-edited export)"),
    ("NOT_IMPLEMENTED", "it uses an operator or opset this onnxruntime does not have (export it with an older "
                        "opset, or update onnxruntime)"),
    ("MODEL_LOADED", "it was loaded already"),
)


def plain_load_error(exc: BaseException) -> str:
    """What an onnxruntime load failure means for the file, in words; the code it gave in brackets."""
    raw = str(exc).strip()
    for code, meaning in _PLAIN:
        if code in raw:
            return f"{meaning} (onnxruntime: {code})"
    first = raw.splitlines()[0] if raw else type(exc).__name__
    return f"onnxruntime cannot load it ({first[:200]})"


def _session(path: Path, options: ort.SessionOptions, providers: list[str]) -> ort.InferenceSession:
    try:
        return ort.InferenceSession(str(path), sess_options=options, providers=providers)
    except Exception as exc:  # onnxruntime raises its own Fail/InvalidProtobuf/... with a C++ message
        raise NotAnOnnxModelError(f"{path} cannot be used as a model: {plain_load_error(exc)}.") from exc


def open_session(path: Path, provider: str | None = None, intra_op_threads: int | None = None,
                 inter_op_threads: int | None = None) -> ort.InferenceSession:
    """A session ready to infer, on the best (or the forced) execution provider."""
    _check_file(path)
    options = ort.SessionOptions()
    if intra_op_threads:
        options.intra_op_num_threads = intra_op_threads
    if inter_op_threads:
        options.inter_op_num_threads = inter_op_threads
    options.log_severity_level = 3  # warnings about unused initialisers etc. are not the user's business
    return _session(path, options, resolve_providers(provider))


def open_metadata_session(path: Path) -> ort.InferenceSession:
    """A session only to read the model's description: no graph optimisation, CPU, one thread."""
    _check_file(path)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.intra_op_num_threads = 1
    options.log_severity_level = 3
    return _session(path, options, ["CPUExecutionProvider"])
