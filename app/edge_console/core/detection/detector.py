"""The object detector: one onnxruntime session, preprocessing and decoding driven by the model's own metadata.

Rectangular inference. A model exported with dynamic input height and width (`yolo export dynamic=True`) takes any
stride-aligned size, so a 16:9 frame is letterboxed to the smallest stride-aligned rectangle that holds it at the
nominal size (1280x720 at imgsz 640: 640x384 instead of 640x640, 40 % fewer pixels), as Ultralytics' own predictor
does. It is on by default for such models; fixed-size models always get their square.

Turn it off (`Detector(..., rectangular=False)`, or metadata rect='false' written into the model file so it travels
with the model) for a model that was trained and validated only on square, padded inputs and scores worse without
the padding: one trained on square crops (mosaic or `rect=False`) whose objects near the frame's top and bottom
edges were always seen next to grey bands, or a transformer model (RT-DETR-like) whose position encodings were
learned for one size. The way to know: run the golden set both ways; a drop in recall or mAP on rectangles means
off. Detections reference sets recorded with one setting shift slightly (sub-pixel to a few pixels) with the other.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from edge_console.core.atomic_files import file_sha256
from edge_console.core.detection.decoders import select_decoder
from edge_console.core.detection.model_spec import ModelSpec, build_spec
from edge_console.core.detection.onnx_runtime import open_session
from edge_console.core.detection.preprocess import Preprocessor
from edge_console.core.detection.record import Detection, DetectionResult, Timings
from edge_console.core.errors import ModelError

_ONNX_NUMPY_DTYPES = {"float32": np.float32, "float16": np.float16, "uint8": np.uint8}


def _use_rectangles(spec: ModelSpec, requested: bool | None) -> bool:
    """None: automatic (dynamic models, unless their metadata says rect='false'); True/False: the caller decides."""
    if requested is None:
        return spec.dynamic_size and spec.letterbox and spec.rect is not False
    if requested and not spec.dynamic_size:
        raise ModelError(f"{spec.path}: rectangular inference needs a model with dynamic input height and width; "
                         f"this one takes only {spec.input_width}x{spec.input_height} (export it with dynamic=True, "
                         "or leave the setting automatic)")
    if requested and not spec.letterbox:
        raise ModelError(f"{spec.path}: rectangular inference letterboxes, but this model's metadata says "
                         "letterbox='false' (it expects the frame stretched to its input)")
    return requested


class Detector:
    """Detect objects in BGR frames of any size; thread-safe for concurrent detect() calls (onnxruntime is)."""

    def __init__(self, model_path: str | Path, *, provider: str | None = None, conf_threshold: float = 0.25,
                 iou_threshold: float = 0.45, max_detections: int = 300, intra_op_threads: int | None = None,
                 inter_op_threads: int | None = None, rectangular: bool | None = None):
        path = Path(model_path)
        self.session = open_session(path, provider, intra_op_threads, inter_op_threads)
        self.spec: ModelSpec = build_spec(path, self.session, sha256=file_sha256(path))
        self.provider: str = self.session.get_providers()[0]
        self.conf_threshold = conf_threshold
        self.iou_threshold = iou_threshold
        self.max_detections = max_detections
        self.rectangular: bool = _use_rectangles(self.spec, rectangular)
        self.stride: int = self.spec.stride
        self.preprocess = Preprocessor(self.spec, self.stride if self.rectangular else None)
        self.last_input_size: tuple[int, int] | None = None  # (width, height) of the latest detect()'s tensor
        self._output_names = [o.name for o in self.session.get_outputs()]
        # One warm-up run on the full nominal square: it pays the first-call allocation cost up front, and the real
        # output shapes tell the layout even when the file declares them dynamic. The square is also the size every
        # rectangle fits in, so the layout rules (anchor counts for the input size) see the model's nominal head.
        warmup = self.run(np.zeros(self._input_shape(), _ONNX_NUMPY_DTYPES[self.spec.input_dtype]))
        self.decoder = select_decoder(path, self._output_names, warmup, self.spec.num_classes, self.spec.task,
                                      self.spec.end2end, (self.spec.input_width, self.spec.input_height))

    @property
    def layout(self) -> str:
        return self.decoder.name

    def input_size_for(self, width: int, height: int) -> tuple[int, int]:
        """(width, height) of the tensor a width x height frame is run at: a rectangle or the model's square."""
        return self.preprocess.plan(width, height)[0].input_size

    def describe(self, frame_size: tuple[int, int] | None = None) -> dict:
        """The model summary (ModelSpec.describe) plus the layout and how frames are fed to it; with `frame_size`
        (width, height), the input size used for frames of that size."""
        info = self.spec.describe()
        info["layout"] = self.layout
        info["input"] = {**info["input"], "rectangular": self.rectangular, "stride": self.stride}
        if frame_size is not None:
            info["input"]["used_width"], info["input"]["used_height"] = self.input_size_for(*frame_size)
        return info

    def _input_shape(self) -> tuple[int, int, int, int]:
        s = self.spec
        return (1, s.input_height, s.input_width, 3) if s.channels_last else (1, 3, s.input_height, s.input_width)

    def run(self, tensor: np.ndarray) -> list[np.ndarray]:
        """Bare inference on an already-prepared input tensor."""
        return self.session.run(self._output_names, {self.spec.input_name: tensor})

    def detect(self, frame_bgr: np.ndarray, conf_threshold: float | None = None) -> DetectionResult:
        t0 = time.perf_counter()
        tensor, transform = self.preprocess(frame_bgr)
        t1 = time.perf_counter()
        outputs = self.run(tensor)
        t2 = time.perf_counter()
        conf = self.conf_threshold if conf_threshold is None else conf_threshold
        input_size = transform.input_size
        raw = self.decoder(outputs, conf, self.iou_threshold, self.max_detections, input_size=input_size)
        self.last_input_size = input_size
        boxes = transform.to_source(raw.boxes)
        name = self.spec.class_name
        # A box that lies wholly in the letterbox padding clips to nothing: it is not a detection in the frame.
        detections = [
            Detection(b[0], b[1], b[2], b[3], c, name(c), s)
            for b, c, s in zip(boxes.tolist(), raw.class_ids.tolist(), raw.scores.tolist())
            if b[2] > b[0] and b[3] > b[1]
        ]
        t3 = time.perf_counter()
        return DetectionResult(detections, Timings((t1 - t0) * 1e3, (t2 - t1) * 1e3, (t3 - t2) * 1e3))
