"""Waiting for Compare panels in tests, and reading their grabbed pixels."""

from __future__ import annotations

from PySide6.QtGui import QColor, QImage

from edge_console.console.compare.frame_view import ComparedFrameView
from edge_console.console.compare.panel import ComparePanel
from edge_console.core.detection.record import Detection
from tests.support.pixels import color_distance

LONG = 60_000  # ms; generous: two shared cores, agents and onnxruntime sessions starting


def wait_for_frames(qtbot, panel: ComparePanel, count: int, timeout: int = LONG) -> None:
    """Until the run has `count` comparisons; if it never gets there, the failure says what the panel shows."""
    try:
        qtbot.waitUntil(lambda: panel.run_count >= count, timeout=timeout)
    except qtbot.TimeoutError:
        raise AssertionError(f"{panel.run_count} of {count} comparisons; panel says {panel.message_label.text()!r}, "
                             f"{panel.pending_jobs} requests pending, opened: {panel.opened is not None}, "
                             f"worker alive: {panel.worker is not None and panel.worker.running}") from None


def edge_coverage(image: QImage, x: float, y1: float, y2: float, color: QColor, tolerance: int = 30) -> float:
    """Share of the rows between y1 and y2 where the vertical line at x (±1 px: a 2 px pen straddles it) has
    `color`: 1.0 for a solid line, less for dashes and dots, by how much of their pattern is gap."""
    rows = range(round(y1) + 3, round(y2) - 2)
    hits = 0
    for y in rows:
        hits += any(color_distance(QColor(image.pixel(round(x) + dx, y)), color) <= tolerance for dx in (-1, 0, 1))
    return hits / max(1, len(rows))


def box_in_view(view: ComparedFrameView, d: Detection) -> tuple[float, float, float, float]:
    transform = view.image_to_widget()
    x1, y1 = transform.map(d.x1, d.y1)
    x2, y2 = transform.map(d.x2, d.y2)
    return x1, y1, x2, y2
