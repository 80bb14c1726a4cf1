"""Colours that carry meaning: per detection class (stable everywhere), per device status, per chart curve."""

from __future__ import annotations

import zlib

from PySide6.QtGui import QColor


def class_color(class_name: str) -> QColor:
    """The same class gets the same colour in every frame, device and session.

    Derived from a CRC of the name, not Python's `hash`, which changes with every interpreter start. Saturated,
    bright hues so boxes stand out against grey conveyor belts and metal.
    """
    h = zlib.crc32(class_name.encode("utf-8"))
    hue = h % 360
    saturation = 200 + (h >> 9) % 56
    return QColor.fromHsv(hue, saturation, 255)


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
}

# Distinct, colour-blind-friendly curve colours (Okabe-Ito plus two), assigned to devices in the order charts meet
# them, so the few devices of one overlay never share a colour.
CURVE_PALETTE: tuple[str, ...] = (
    "#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000", "#7F3C8D", "#11A579",
)
