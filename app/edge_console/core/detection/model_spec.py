"""What a model says about itself: class names, input size and layout, preprocessing, version.

Read from the ONNX file's own metadata the way Ultralytics exports carry it (`names`, `imgsz`, `stride`, ...), so a
user's `yolov8n.onnx` works without a sidecar. Optional keys of our own (`letterbox`, `color_order`, `scale`, `mean`,
`std`) describe models that were trained with a different preprocessing; `rect` ("false") keeps a model whose input
height and width are dynamic on square inputs (see `detector.py` for when to set it).
"""

from __future__ import annotations

import ast
import json
from dataclasses import dataclass, field
from pathlib import Path

from edge_console.core.atomic_files import file_sha256
from edge_console.core.errors import ModelError

DEFAULT_IMGSZ = 640


@dataclass(frozen=True)
class ModelSpec:
    path: Path
    name: str
    version: str
    sha256: str
    class_names: tuple[str, ...]
    input_name: str
    input_height: int
    input_width: int
    channels_last: bool = False  # NHWC input instead of the usual NCHW
    input_dtype: str = "float32"  # float32, float16 or uint8
    letterbox: bool = True
    rgb: bool = True
    scale: float = 1.0 / 255.0
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)
    task: str = "detect"
    end2end: bool | None = None  # None when the metadata does not say
    # Input height and width symbolic in the file (`yolo export dynamic=True`): the model takes any stride-aligned
    # size, and input_height/input_width above are only its nominal size (from imgsz).
    dynamic_size: bool = False
    stride: int = 32  # the largest stride of the network: a dynamic input must be a multiple of it
    rect: bool | None = None  # metadata `rect`: False keeps a dynamic model on squares; None when not said
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def class_name(self, class_id: int) -> str:
        if 0 <= class_id < len(self.class_names):
            return self.class_names[class_id]
        return f"class{class_id}"

    def describe(self) -> dict:
        """The summary the agent and console show: enough to tell two models apart at a glance."""
        return {
            "name": self.name,
            "version": self.version,
            "sha256": self.sha256,
            "file": self.path.name,
            "classes": list(self.class_names),
            "input": {
                "name": self.input_name,
                "width": self.input_width,
                "height": self.input_height,
                "layout": "NHWC" if self.channels_last else "NCHW",
                "dtype": self.input_dtype,
                "letterbox": self.letterbox,
                "color_order": "rgb" if self.rgb else "bgr",
                "dynamic_size": self.dynamic_size,
                "stride": self.stride,
            },
        }


def parse_class_names(raw: str | None) -> tuple[str, ...] | None:
    """Ultralytics writes `names` as a Python dict literal ("{0: 'person', ...}"); others write JSON or a list."""
    if not raw:
        return None
    try:
        value = ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        try:
            value = json.loads(raw)
        except ValueError:
            # A plain comma-separated list is the last thing people write by hand.
            return tuple(part.strip() for part in raw.split(",") if part.strip()) or None
    if isinstance(value, dict):
        items = sorted((int(k), str(v)) for k, v in value.items())
        return tuple(name for _, name in items)
    if isinstance(value, (list, tuple)):
        return tuple(str(v) for v in value)
    return None


@dataclass(frozen=True)
class ModelIdentity:
    """Who a model says it is: read the same way by the detector and by the model library."""

    name: str
    version: str
    class_names: tuple[str, ...]


def model_identity(meta: dict[str, str], path: Path) -> ModelIdentity:
    return ModelIdentity(meta.get("model_name") or path.stem, meta.get("version", "unknown"),
                         parse_class_names(meta.get("names")) or ())


def _parse_imgsz(raw: str | None) -> tuple[int, int] | None:
    if not raw:
        return None
    try:
        value = ast.literal_eval(raw)
    except (ValueError, SyntaxError):
        return None
    if isinstance(value, int):
        return value, value
    if isinstance(value, (list, tuple)) and len(value) == 2:
        return int(value[0]), int(value[1])
    if isinstance(value, (list, tuple)) and len(value) == 1:
        return int(value[0]), int(value[0])
    return None


def _parse_bool(raw: str | None) -> bool | None:
    if raw is None:
        return None
    return raw.strip().lower() in ("1", "true", "yes")


def _parse_triple(raw: str | None, default: tuple[float, float, float]) -> tuple[float, float, float]:
    if not raw:
        return default
    value = ast.literal_eval(raw)
    if isinstance(value, (int, float)):
        return (float(value),) * 3
    return tuple(float(v) for v in value)  # type: ignore[return-value]


def _static_dim(dim) -> int | None:
    return dim if isinstance(dim, int) and dim > 0 else None


def _parse_stride(raw: str | None, path: Path) -> int:
    """Ultralytics writes the largest stride ("32"); some tools write every level ("[8, 16, 32]")."""
    if raw is None or not raw.strip():
        return 32
    try:
        value = ast.literal_eval(raw.strip())
        stride = max(int(v) for v in value) if isinstance(value, (list, tuple)) else int(value)
    except (ValueError, SyntaxError, TypeError) as exc:
        raise ModelError(f"{path}: metadata stride={raw!r} cannot be read ({exc}); write the network's largest "
                         "stride as a number, e.g. stride='32'") from exc
    if stride <= 0:
        raise ModelError(f"{path}: metadata stride={raw!r} must be a positive number, e.g. stride='32'")
    return stride


_DTYPES = {"tensor(float)": "float32", "tensor(float16)": "float16", "tensor(uint8)": "uint8"}


def build_spec(path: Path, session, *, sha256: str | None = None) -> ModelSpec:
    """Combine the session's input description with the file's metadata into one ModelSpec."""
    meta = dict(session.get_modelmeta().custom_metadata_map)
    inputs = session.get_inputs()
    if len(inputs) != 1:
        shapes = ", ".join(f"{i.name}{i.shape}" for i in inputs)
        raise ModelError(f"{path}: a detector takes one image input, but this model has {len(inputs)}: {shapes}")
    inp = inputs[0]
    if inp.type not in _DTYPES:
        raise ModelError(f"{path}: input '{inp.name}' is {inp.type}; only float32, float16 and uint8 images are supported")
    shape = list(inp.shape)
    if len(shape) != 4:
        raise ModelError(f"{path}: input '{inp.name}' has shape {shape}; expected an image batch [1, 3, H, W] or [1, H, W, 3]")
    channels_last = shape[3] == 3 and shape[1] != 3
    h_dim, w_dim = (shape[1], shape[2]) if channels_last else (shape[2], shape[3])
    imgsz = _parse_imgsz(meta.get("imgsz")) or (DEFAULT_IMGSZ, DEFAULT_IMGSZ)
    height = _static_dim(h_dim) or imgsz[0]
    width = _static_dim(w_dim) or imgsz[1]

    color = meta.get("color_order", "rgb").strip().lower()
    if color not in ("rgb", "bgr"):
        raise ModelError(f"{path}: metadata color_order={color!r}; use 'rgb' or 'bgr'")
    dtype = _DTYPES[inp.type]
    try:
        scale = float(meta["scale"]) if "scale" in meta else (1.0 if dtype == "uint8" else 1.0 / 255.0)
        mean = _parse_triple(meta.get("mean"), (0.0, 0.0, 0.0))
        std = _parse_triple(meta.get("std"), (1.0, 1.0, 1.0))
    except (ValueError, SyntaxError, TypeError) as exc:
        raise ModelError(f"{path}: metadata scale/mean/std cannot be read ({exc}); write numbers, e.g. mean='[0.485, 0.456, 0.406]'") from exc

    letterbox = _parse_bool(meta.get("letterbox"))
    dynamic_size = _static_dim(h_dim) is None and _static_dim(w_dim) is None
    identity = model_identity(meta, path)
    return ModelSpec(
        path=path,
        name=identity.name,
        version=identity.version,
        sha256=sha256 or file_sha256(path),
        class_names=identity.class_names,
        input_name=inp.name,
        input_height=int(height),
        input_width=int(width),
        channels_last=channels_last,
        input_dtype=dtype,
        letterbox=True if letterbox is None else letterbox,
        rgb=color == "rgb",
        scale=scale,
        mean=mean,
        std=std,
        task=meta.get("task", "detect"),
        end2end=_parse_bool(meta.get("end2end")),
        dynamic_size=dynamic_size,
        stride=_parse_stride(meta.get("stride"), path),
        rect=_parse_bool(meta.get("rect")),
        metadata=meta,
    )
