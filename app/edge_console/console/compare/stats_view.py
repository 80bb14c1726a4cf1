"""The numbers of a comparison: agreement (this frame and the run so far) and latency per stage (device against
laptop). Plain labels in grids; the values come from `FrameComparison.to_dict()` and `summarize()`, the very
dictionaries `edge-console compare --json` prints, so the panel and the script can never disagree."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QGridLayout, QGroupBox, QLabel, QWidget

AGREEMENT_ROWS: tuple[tuple[str, str, str], ...] = (
    # key in the dictionaries, row title, tooltip
    ("precision", "Precision", "share of the device's boxes that the local model confirms"),
    ("recall", "Recall", "share of the local model's boxes that the device found"),
    ("f1", "F1", "harmonic mean of precision and recall"),
    ("mean_iou", "Mean IoU", "how well matched boxes overlap (1 = identical)"),
    ("matched", "Matched", "boxes found by both, same class, IoU at or above the match threshold"),
    ("only_device", "Device only", "boxes the device reports that the local model does not"),
    ("only_local", "Local only", "boxes the local model finds that the device does not"),
    ("class_mismatches", "Class mismatches", "same place, different class (also counted in the two rows above)"),
)
STAGES: tuple[tuple[str, str], ...] = (("preprocess_ms", "Preprocess"), ("inference_ms", "Inference"),
                                       ("postprocess_ms", "Postprocess"))
FRAME, RUN = "frame", "run"


def format_value(key: str, value: float | int | None) -> str:
    if value is None:
        return "–"
    if isinstance(value, int) and key not in ("precision", "recall", "f1", "mean_iou"):
        return str(value)
    return f"{value:.3f}"


def _value_label() -> QLabel:
    label = QLabel("–")
    label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    return label


class AgreementStats(QGroupBox):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Agreement (device against local)", parent)
        grid = QGridLayout(self)
        grid.setHorizontalSpacing(14)
        grid.setVerticalSpacing(2)
        grid.addWidget(QLabel("<b>This frame</b>"), 0, 1, Qt.AlignmentFlag.AlignRight)
        grid.addWidget(QLabel("<b>This run</b>"), 0, 2, Qt.AlignmentFlag.AlignRight)
        self.values: dict[tuple[str, str], QLabel] = {}
        for row, (key, title, tip) in enumerate(AGREEMENT_ROWS, start=1):
            name = QLabel(title)
            name.setToolTip(tip)
            grid.addWidget(name, row, 0)
            for column, which in ((1, FRAME), (2, RUN)):
                self.values[(key, which)] = _value_label()
                grid.addWidget(self.values[(key, which)], row, column)
        grid.setColumnStretch(0, 1)

    def show_frame(self, values: dict | None) -> None:
        for key, *_ in AGREEMENT_ROWS:
            self.values[(key, FRAME)].setText(format_value(key, None if values is None else values[key]))

    def show_run(self, summary: dict | None, frames_note: str) -> None:
        self.setTitle(f"Agreement (device against local) · run: {frames_note}" if frames_note
                      else "Agreement (device against local)")
        for key, *_ in AGREEMENT_ROWS:
            self.values[(key, RUN)].setText(format_value(key, None if summary is None else summary[key]))


class LatencyStats(QGroupBox):
    """Milliseconds per stage: this frame on the device and on the laptop, and the run's medians."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__("Latency per stage (ms)", parent)
        grid = QGridLayout(self)
        grid.setHorizontalSpacing(12)
        grid.setVerticalSpacing(2)
        grid.addWidget(QLabel("<b>This frame</b>"), 0, 1, 1, 2, Qt.AlignmentFlag.AlignCenter)
        grid.addWidget(QLabel("<b>Run median</b>"), 0, 3, 1, 2, Qt.AlignmentFlag.AlignCenter)
        for column, title in enumerate(("Device", "Laptop", "Device", "Laptop"), start=1):
            grid.addWidget(QLabel(title), 1, column, Qt.AlignmentFlag.AlignRight)
        self.values: dict[tuple[str, int], QLabel] = {}
        for row, (key, title) in enumerate((*STAGES, ("total", "Total")), start=2):
            grid.addWidget(QLabel(title), row, 0)
            for column in range(1, 5):
                self.values[(key, column)] = _value_label()
                grid.addWidget(self.values[(key, column)], row, column)
        grid.setColumnStretch(0, 1)
        self.setToolTip("Device: the stages as the device timed them. Laptop: the local model on the same pixels. "
                        "Medians over the run.")

    def _fill(self, column: int, timings: dict | None) -> None:
        total = sum(timings[k] for k, _ in STAGES) if timings else None
        for key, _ in STAGES:
            self.values[(key, column)].setText("–" if timings is None else f"{timings[key]:.1f}")
        self.values[("total", column)].setText("–" if total is None else f"{total:.1f}")

    def show_frame(self, frame: dict | None) -> None:
        self._fill(1, frame["device_timings"] if frame else None)
        self._fill(2, frame["local_timings"] if frame else None)

    def show_run(self, summary: dict | None) -> None:
        self._fill(3, summary["device_timings_median"] if summary else None)
        self._fill(4, summary["local_timings_median"] if summary else None)
