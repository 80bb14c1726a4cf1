"""Colours that carry meaning: per detection class (stable everywhere), per device status, per chart curve."""

from __future__ import annotations

import zlib

from PySide6.QtGui import QColor

# A fixed qualitative palette, indexed by class id: the same class id gets the same colour in every frame, device
# and session, and neighbouring ids (the few classes of a line's model: 0, 1, 2, 3) get clearly different hues.
# Saturated and bright, so boxes stand out against grey conveyor belts and metal; ordered so the first eight are
# spread around the colour wheel (Ultralytics' palette, reordered for that).
CLASS_PALETTE: tuple[str, ...] = (
    "#FF3838", "#00C2FF", "#FFB21D", "#8438FF", "#48F90A", "#FF37C7", "#00D4BB", "#FF701F",
    "#0018EC", "#CFD231", "#CB38FF", "#1A9334", "#FF95C8", "#2C99A8", "#92CC17", "#6473FF",
    "#FF9D97", "#3DDB86", "#520085", "#344593",
)


def class_color(class_id: int | None, class_name: str = "") -> QColor:
    """The colour of a class: the palette entry of its id; only a class known by name alone (no id) is placed by a
    CRC of its name (stable across sessions, unlike Python's `hash`)."""
    known = class_id is not None and class_id >= 0
    index = class_id if known else zlib.crc32(class_name.encode("utf-8"))
    return QColor(CLASS_PALETTE[index % len(CLASS_PALETTE)])


def readable_text_color(background: QColor) -> QColor:
    """Black or white, whichever reads better on `background` (perceived luminance)."""
    luminance = 0.299 * background.red() + 0.587 * background.green() + 0.114 * background.blue()
    return QColor("black") if luminance > 150 else QColor("white")


STATUS_COLORS: dict[str, QColor] = {
    "online": QColor("#2e7d32"),
    "degraded": QColor("#ef8f00"),
    "failing": QColor("#c62828"),
    "offline": QColor("#8a8a8a"),
    "connecting": QColor("#1565c0"),
    "not paired": QColor("#5c6bc0"),
    "certificate changed": QColor("#8e0000"),
    "no longer paired": QColor("#8e0000"),
}

# Distinct, colour-blind-friendly curve colours (Okabe-Ito plus two), assigned to devices in the order charts meet
# them, so the few devices of one overlay never share a colour.
CURVE_PALETTE: tuple[str, ...] = (
    "#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000", "#7F3C8D", "#11A579",
)
