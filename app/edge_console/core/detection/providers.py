"""Choose onnxruntime execution providers from what this machine's onnxruntime build offers."""

from __future__ import annotations

from edge_console.core.detection.onnx_runtime import ort
from edge_console.core.errors import ProviderError

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
