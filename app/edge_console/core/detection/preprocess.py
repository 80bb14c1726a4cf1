"""Turn a BGR frame of any size into the model's input tensor, and map boxes back to the frame exactly.

The normalisation is `(pixel * scale - mean) / std` per channel, in the model's colour order.

Rectangular inference (a `stride` given to the Preprocessor, for models whose input height and width are dynamic):
the frame is letterboxed into the smallest stride-aligned rectangle instead of the model's full square, exactly as
Ultralytics' `LetterBox(auto=True)` does it: scale to fit the nominal size, then keep only the padding that is not
a whole multiple of the stride (1280x720 at 320, stride 32: 320x180 content, 12 px of padding, 320x192 input).
The result is a multiple of the stride whenever the nominal size is, as Ultralytics requires of its exports.
The content keeps its scale, so objects look to the network as they would in the square; only padding goes, and
with it the compute spent on it.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from edge_console.core.detection.model_spec import ModelSpec

LETTERBOX_FILL = (114, 114, 114)  # the grey Ultralytics pads with; models trained that way expect it


@dataclass(frozen=True, slots=True)
class InputTransform:
    """How source pixels were placed in the model input: input = source * scale + pad, per axis.

    The scales are the exact ratios cv2.resize used (new size / old size), not the rounded letterbox ratio, so
    boxes map back without the sub-pixel drift a single ratio would leave.
    """

    scale_x: float
    scale_y: float
    pad_x: float
    pad_y: float
    source_width: int
    source_height: int
    input_width: int  # the size of the tensor the frame became: the model's square, or a smaller rectangle
    input_height: int

    @property
    def input_size(self) -> tuple[int, int]:
        return self.input_width, self.input_height

    def to_source(self, boxes: np.ndarray) -> np.ndarray:
        """Map Nx4 x1,y1,x2,y2 boxes from input pixels to source pixels, clipped to the source frame."""
        out = np.empty_like(boxes, dtype=np.float32)
        out[:, 0::2] = (boxes[:, 0::2] - self.pad_x) / self.scale_x
        out[:, 1::2] = (boxes[:, 1::2] - self.pad_y) / self.scale_y
        # Strided slices are views, so clip can write in place.
        np.clip(out[:, 0::2], 0, self.source_width, out=out[:, 0::2])
        np.clip(out[:, 1::2], 0, self.source_height, out=out[:, 1::2])
        return out

    def to_input(self, boxes: np.ndarray) -> np.ndarray:
        """Map Nx4 boxes from source pixels to input pixels (the inverse of to_source, for tests and tools)."""
        out = np.empty_like(boxes, dtype=np.float32)
        out[:, 0::2] = boxes[:, 0::2] * self.scale_x + self.pad_x
        out[:, 1::2] = boxes[:, 1::2] * self.scale_y + self.pad_y
        return out


def plan_transform(src_w: int, src_h: int, dst_w: int, dst_h: int, letterbox: bool,
                   stride: int | None = None) -> InputTransform:
    """Where a src_w x src_h frame goes in a dst_w x dst_h input; with `stride`, in the smallest stride-aligned
    rectangle inside it instead (rectangular inference: see the module docstring)."""
    if not letterbox:
        return InputTransform(dst_w / src_w, dst_h / src_h, 0.0, 0.0, src_w, src_h, dst_w, dst_h)
    ratio = min(dst_w / src_w, dst_h / src_h)
    new_w, new_h = round(src_w * ratio), round(src_h * ratio)
    pad_w, pad_h = dst_w - new_w, dst_h - new_h
    if stride:
        pad_w, pad_h = pad_w % stride, pad_h % stride  # Ultralytics' auto=True: drop whole strides of padding
    # Same split as Ultralytics' LetterBox (centre, the odd pixel to the bottom/right), so a model exported from
    # there sees exactly the input it was validated on.
    left = round(pad_w / 2 - 0.1)
    top = round(pad_h / 2 - 0.1)
    return InputTransform(new_w / src_w, new_h / src_h, float(left), float(top), src_w, src_h,
                          new_w + pad_w, new_h + pad_h)


class Preprocessor:
    """Prepared once per model: the per-frame path does one resize, one border and one fused normalisation.

    `stride` switches on rectangular inference (only for a model whose input size is dynamic). The plan for each
    source size is computed once and cached: a camera sends one size, so the per-frame cost stays a dict lookup.
    """

    _MAX_PLANS = 64  # a source that changes size on every frame must not grow the cache without bound

    def __init__(self, spec: ModelSpec, stride: int | None = None):
        self.spec = spec
        self.stride = stride
        self._plans: dict[tuple[int, int], tuple[InputTransform, int, int, tuple[int, int, int, int]]] = {}
        self._float_dtype = np.float16 if spec.input_dtype == "float16" else np.float32
        self._plain_scale = spec.mean == (0.0, 0.0, 0.0) and spec.std == (1.0, 1.0, 1.0)
        mean = np.array(spec.mean, np.float32)
        std = np.array(spec.std, np.float32)
        # (p*scale - mean)/std == p*(scale/std) - mean/std: one multiply-add per pixel, broadcast per channel.
        self._mul = spec.scale / std
        self._add = -mean / std

    def __call__(self, frame_bgr: np.ndarray) -> tuple[np.ndarray, InputTransform]:
        if frame_bgr is None or frame_bgr.ndim != 3 or frame_bgr.shape[2] != 3 or frame_bgr.dtype != np.uint8:
            shape = None if frame_bgr is None else (frame_bgr.shape, frame_bgr.dtype)
            raise ValueError(f"expected a BGR uint8 image of shape HxWx3, got {shape}")
        src_h, src_w = frame_bgr.shape[:2]
        t, new_w, new_h, border = self.plan(src_w, src_h)
        if (new_w, new_h) != (src_w, src_h):
            resized = cv2.resize(frame_bgr, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
        else:
            resized = frame_bgr
        if any(border):
            top, bottom, left, right = border
            resized = cv2.copyMakeBorder(resized, top, bottom, left, right, cv2.BORDER_CONSTANT, value=LETTERBOX_FILL)
        return self._to_tensor(resized), t

    def plan(self, src_w: int, src_h: int) -> tuple[InputTransform, int, int, tuple[int, int, int, int]]:
        """(transform, resized width, resized height, (top, bottom, left, right) border) for a source size."""
        key = (src_w, src_h)
        cached = self._plans.get(key)
        if cached is not None:
            return cached
        spec = self.spec
        t = plan_transform(src_w, src_h, spec.input_width, spec.input_height, spec.letterbox, self.stride)
        new_w, new_h = (round(src_w * t.scale_x), round(src_h * t.scale_y)) if spec.letterbox else (t.input_width, t.input_height)
        left, top = int(t.pad_x), int(t.pad_y)
        border = (top, t.input_height - new_h - top, left, t.input_width - new_w - left)
        if len(self._plans) >= self._MAX_PLANS:
            self._plans.clear()
        plan = (t, new_w, new_h, border)
        self._plans[key] = plan  # one dict assignment: safe under concurrent detect() calls
        return plan

    def _to_tensor(self, image: np.ndarray) -> np.ndarray:
        spec = self.spec
        if spec.input_dtype == "uint8":
            img = cv2.cvtColor(image, cv2.COLOR_BGR2RGB) if spec.rgb else image
            tensor = img[None] if spec.channels_last else img.transpose(2, 0, 1)[None]
            return np.ascontiguousarray(tensor)
        if spec.channels_last:
            img = cv2.cvtColor(image, cv2.COLOR_BGR2RGB) if spec.rgb else image
            tensor = img[None].astype(np.float32) * self._mul + self._add
            return tensor.astype(self._float_dtype, copy=False)
        # blobFromImage does the BGR->RGB swap, HWC->NCHW and the scale in one native pass.
        tensor = cv2.dnn.blobFromImage(image, scalefactor=spec.scale, swapRB=spec.rgb)
        if not self._plain_scale:
            tensor *= (self._mul / spec.scale).reshape(1, 3, 1, 1)
            tensor += self._add.reshape(1, 3, 1, 1)
        return tensor.astype(self._float_dtype, copy=False)
