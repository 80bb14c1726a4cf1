"""The object detector: one onnxruntime session, preprocessing and decoding driven by the model's own metadata."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from .decoders import select_decoder
from .detection import Detection, DetectionResult, Timings
from .model_spec import ModelSpec, build_spec, file_sha256
from .onnx_runtime import open_session
from .preprocess import Preprocessor

_ONNX_NUMPY_DTYPES = {"float32": np.float32, "float16": np.float16, "uint8": np.uint8}


class Detector:
    """Detect objects in BGR frames of any size; thread-safe for concurrent detect() calls (onnxruntime is)."""

    def __init__(self, model_path: str | Path, *, provider: str | None = None, conf_threshold: float = 0.25,
                 iou_threshold: float = 0.45, max_detections: int = 300, intra_op_threads: int | None = None,
                 inter_op_threads: int | None = None):
        path = Path(model_path)
        self.session = open_session(path, provider, intra_op_threads, inter_op_threads)
        self.spec: ModelSpec = build_spec(path, self.session, sha256=file_sha256(path))
        self.provider: str = self.session.get_providers()[0]
        self.conf_threshold = conf_threshold
        self.iou_threshold = iou_threshold
        self.max_detections = max_detections
        self.preprocess = Preprocessor(self.spec)
        self._output_names = [o.name for o in self.session.get_outputs()]
        # One warm-up run: it pays the first-call allocation cost up front, and the real output shapes tell the
        # layout even when the file declares them dynamic.
        warmup = self.run(np.zeros(self._input_shape(), _ONNX_NUMPY_DTYPES[self.spec.input_dtype]))
        self.decoder = select_decoder(path, self._output_names, warmup, self.spec.num_classes, self.spec.task,
                                      self.spec.end2end, (self.spec.input_width, self.spec.input_height))

    @property
    def layout(self) -> str:
        return self.decoder.name

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
        raw = self.decoder(outputs, conf, self.iou_threshold, self.max_detections)
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
