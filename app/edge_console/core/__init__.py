"""Pure logic shared by every program: the wire protocol, detection, release files and trust, audit, scenes.

Never imports Qt or a network library (checked by tests/unit/test_boundaries.py).

    protocol.py       the wire protocol between agent and console, in one place both sides import
    versions.py       model and release versions ordered as semantic versions (2.10.0 > 2.9.0)
    errors.py         errors a user can act on: each message says what was wrong and what to do
    atomic_files.py   files written whole or not at all (file and folder fsynced), and a file's SHA-256
    state_machine.py  transition tables and their one check (update records, the model lifecycle, rollouts)
    file_lock.py      an exclusive lock on a file shared by processes
    disk_reserve.py   room kept for the writes a device cannot do without when its disk is full
    bounded_json.py   JSON parsed with bounds on nesting and numbers
    backoff.py        retry delays: one policy for the agent's retries and the console's reconnects
    frame_file.py     a saved device frame (`.edgeframe`), byte for byte as the device sent it
    image_headers.py  an image's size read from its own header, before anything decodes it
    terminal_text.py  text another machine sent, made safe to print to a terminal
    paths.py          where the shipped demo models and the console's resources are (package data)
    detection/        the detection record, the ONNX detector and its decoders, matching, metrics, the model library
    releases/         the release file format, the tar stream, TUF trust, preverify and the golden check
    trust/            TLS identities and pairing by code (SPAKE2)
    audit/            the hash-chained audit log and its signed head
    scene/            synthetic conveyor scenes with exact ground truth (the demo's camera, the tests' frames)

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
