"""Write hard frames as a YOLO-format dataset, ready for retraining:

    <out>/images/train/<name>.png    the exact pixels (lossless)
    <out>/labels/train/<name>.txt    one line per box: class cx cy w h, normalised to 0..1
    <out>/data.yaml                  path, train, val, nc, names

The dataset is built in a temporary sibling folder and renamed into place only when complete, so a cancelled
or failed export leaves nothing half-written.
"""

from __future__ import annotations

import shutil
import tempfile
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from edge_console.core.detection.record import Detection


class ExportCancelled(Exception):
    pass


@dataclass(frozen=True)
class LabelledFrame:
    name: str  # file stem, e.g. "device-abc123-seq000042"
    image: np.ndarray  # BGR
    detections: Sequence[Detection]


def yolo_label_lines(detections: Sequence[Detection], width: int, height: int) -> list[str]:
    lines = []
    for d in detections:
        x1, y1 = max(0.0, d.x1), max(0.0, d.y1)
        x2, y2 = min(float(width), d.x2), min(float(height), d.y2)
        if x2 <= x1 or y2 <= y1:
            continue
        cx, cy = (x1 + x2) / 2 / width, (y1 + y2) / 2 / height
        lines.append(f"{d.class_id} {cx:.6f} {cy:.6f} {(x2 - x1) / width:.6f} {(y2 - y1) / height:.6f}")
    return lines


def _yaml_str(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def data_yaml(class_names: Sequence[str]) -> str:
    names = "\n".join(f"  {i}: {_yaml_str(n)}" for i, n in enumerate(class_names))
    # `path: .` makes the dataset relocatable: Ultralytics resolves train/val against the yaml's folder.
    return f"path: .\ntrain: images/train\nval: images/train\nnc: {len(class_names)}\nnames:\n{names}\n"


def export_yolo_dataset(frames: Sequence[LabelledFrame], out_dir: Path, class_names: Sequence[str],
                        progress: Callable[[int, int], None] | None = None,
                        cancel: threading.Event | None = None) -> Path:
    """Write `frames` to `out_dir` (which must not exist yet); returns out_dir. Raises ExportCancelled."""
    out_dir = Path(out_dir)
    if out_dir.exists():
        raise FileExistsError(f"{out_dir} already exists; choose a new folder so no earlier export is overwritten")
    if not frames:
        raise ValueError("no frames to export")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.partial-", dir=out_dir.parent))
    try:
        (work / "images" / "train").mkdir(parents=True)
        (work / "labels" / "train").mkdir(parents=True)
        for i, frame in enumerate(frames):
            if cancel is not None and cancel.is_set():
                raise ExportCancelled(f"export cancelled after {i} of {len(frames)} frames; nothing was written")
            h, w = frame.image.shape[:2]
            if not cv2.imwrite(str(work / "images" / "train" / f"{frame.name}.png"), frame.image):
                raise OSError(f"could not write image {frame.name}.png")
            label = "\n".join(yolo_label_lines(frame.detections, w, h))
            (work / "labels" / "train" / f"{frame.name}.txt").write_text(label + ("\n" if label else ""))
            if progress:
                progress(i + 1, len(frames))
        (work / "data.yaml").write_text(data_yaml(class_names))
        work.rename(out_dir)  # atomic on one filesystem: the dataset appears complete or not at all
        return out_dir
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
