"""Pure logic shared by every program: detections, the ONNX detector, matching, synthetic scenes.

Never imports Qt or a network library (checked by tests/unit/test_boundaries.py).

The names below are the public face for the signing tool and scripts: `from edge_console.core import Detector`.
They load on first use (PEP 562 module `__getattr__`), so importing a light module such as
`edge_console.core.protocol` or `edge_console.core.versions` never pulls in onnxruntime or OpenCV; only asking for
e.g. `Detector` does. Everything else stays importable from its own module, with no promise of stability.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

# public name -> the module (relative to this package) that defines it
_EXPORTS: dict[str, str] = {
    "Detector": "detection.detector",
    "Detection": "detection.record",
    "DetectionResult": "detection.record",
    "Timings": "detection.record",
    "ModelSpec": "detection.model_spec",
    "build_spec": "detection.model_spec",
    "match_detections": "detection.matching",
    "MatchReport": "detection.matching",
    "MatchedPair": "detection.matching",
    "mean_average_precision": "detection.metrics",
    "average_precision_per_class": "detection.metrics",
    "precision_recall": "detection.metrics",
    "precision_recall_f1": "detection.metrics",
    "PrecisionRecall": "detection.metrics",
    "box_iou": "detection.metrics",
    "API_VERSION": "protocol",
    "parse_version": "versions",
    "version_key": "versions",
    "ModelLibrary": "detection.model_library",
    "LibraryModel": "detection.model_library",
    "read_model": "detection.model_library",
    "EdgeConsoleError": "errors",
    "ModelError": "errors",
    "ModelNotFoundError": "errors",
    "NotAnOnnxModelError": "errors",
    "UnknownModelLayoutError": "errors",
    "ProviderError": "errors",
}
_SUBMODULES = ("errors",)  # whole modules offered by name: `from edge_console.core import errors`

# Spelled out (not derived from _EXPORTS) so linters and IDEs read it; tests/unit/test_core_api.py keeps both equal.
__all__ = [
    "API_VERSION",
    "Detection",
    "DetectionResult",
    "Detector",
    "EdgeConsoleError",
    "LibraryModel",
    "MatchReport",
    "MatchedPair",
    "ModelError",
    "ModelLibrary",
    "ModelNotFoundError",
    "ModelSpec",
    "NotAnOnnxModelError",
    "PrecisionRecall",
    "ProviderError",
    "Timings",
    "UnknownModelLayoutError",
    "average_precision_per_class",
    "box_iou",
    "build_spec",
    "errors",
    "match_detections",
    "mean_average_precision",
    "parse_version",
    "precision_recall",
    "precision_recall_f1",
    "read_model",
    "version_key",
]


def __getattr__(name: str) -> Any:
    if name in _SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    module = _EXPORTS.get(name)
    if module is None:
        # AttributeError (not ImportError) lets `from edge_console.core import some_module` fall back to importing it.
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


if TYPE_CHECKING:  # for type checkers and IDEs only; never executed
    from edge_console.core import errors
    from edge_console.core.detection.detector import Detector
    from edge_console.core.detection.matching import MatchedPair, MatchReport, match_detections
    from edge_console.core.detection.metrics import (
        PrecisionRecall,
        average_precision_per_class,
        box_iou,
        mean_average_precision,
        precision_recall,
        precision_recall_f1,
    )
    from edge_console.core.detection.model_library import LibraryModel, ModelLibrary, read_model
    from edge_console.core.detection.model_spec import ModelSpec, build_spec
    from edge_console.core.detection.record import Detection, DetectionResult, Timings
    from edge_console.core.errors import (
        EdgeConsoleError,
        ModelError,
        ModelNotFoundError,
        NotAnOnnxModelError,
        ProviderError,
        UnknownModelLayoutError,
    )
    from edge_console.core.protocol import API_VERSION
    from edge_console.core.versions import parse_version, version_key
