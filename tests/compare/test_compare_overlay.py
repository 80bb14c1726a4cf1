"""The agreement overlay, checked by pixels: on a known frame with known detections each kind of agreement has
its colour, and its line style shows as gaps along the outline (solid, dashed, dotted, dash-dot)."""

from __future__ import annotations

import numpy as np
from PySide6.QtGui import QColor

from edge_console.console.colors import class_color
from edge_console.console.compare.frame_view import ComparedFrameView, ViewMode
from edge_console.console.compare.overlay_painter import STYLES, Agreement, AgreementLegend, compared_boxes
from edge_console.core.detection.comparison import FrameComparison
from edge_console.core.detection.matching import match_detections
from edge_console.core.detection.record import Detection, Timings
from tests.support.pixels import count_color

from .panel_helpers import edge_coverage

GREY = 110  # a flat frame: nothing in it can be mistaken for an agreement colour


def det(x1: float, y1: float, x2: float, y2: float, cls: str, conf: float = 0.9) -> Detection:
    return Detection(x1, y1, x2, y2, ["bolt", "nut", "washer", "bracket"].index(cls), cls, conf)


MATCHED_DEVICE = det(40, 60, 200, 180, "bolt")
DEVICE_ONLY = det(260, 60, 400, 180, "nut", 0.6)
MISMATCH_DEVICE = det(440, 60, 600, 180, "washer", 0.7)
MATCHED_LOCAL = det(42, 62, 198, 178, "bolt")
MISMATCH_LOCAL = det(440, 60, 600, 180, "bracket")
LOCAL_ONLY = det(40, 280, 200, 440, "nut")


def known_comparison() -> FrameComparison:
    device = [MATCHED_DEVICE, DEVICE_ONLY, MISMATCH_DEVICE]
    local = [MATCHED_LOCAL, MISMATCH_LOCAL, LOCAL_ONLY]
    image = np.full((480, 640, 3), GREY, np.uint8)
    return FrameComparison(7, device, local, Timings(), Timings(), match_detections(device, local), image)


def test_boxes_are_sorted_into_kinds_once_each():
    boxes = compared_boxes(known_comparison().report)
    kinds = {b.kind: b for b in boxes}
    assert len(boxes) == 4 and set(kinds) == set(Agreement)  # the mismatch is one box, not two extra
    assert kinds[Agreement.MATCHED].label.startswith("IoU 0.9")
    assert kinds[Agreement.CLASS_MISMATCH].label == "washer/bracket"
    assert kinds[Agreement.LOCAL_ONLY].detection is LOCAL_ONLY
    assert "Device only · nut 0.60" in kinds[Agreement.DEVICE_ONLY].describe()


def test_overlay_pixels_carry_each_kinds_colour_and_line_style(qtbot):
    view = ComparedFrameView(ViewMode.OVERLAY)
    qtbot.addWidget(view)
    view.resize(640, 480)  # the frame's own size: one widget pixel per frame pixel
    view.show()
    comparison = known_comparison()
    boxes = compared_boxes(comparison.report)
    view.show_comparison(comparison, boxes, "")
    image = view.grab().toImage()
    colors = {kind: style.color for kind, style in STYLES.items()}

    def coverage(d: Detection, kind: Agreement) -> float:
        return edge_coverage(image, d.x1, d.y1, d.y2, colors[kind])  # the left edge: labels sit on the top one

    solid = coverage(MATCHED_DEVICE, Agreement.MATCHED)
    dashed = coverage(DEVICE_ONLY, Agreement.DEVICE_ONLY)
    dotted = coverage(LOCAL_ONLY, Agreement.LOCAL_ONLY)
    dash_dot = coverage(MISMATCH_DEVICE, Agreement.CLASS_MISMATCH)
    assert solid > 0.95
    assert 0.5 < dashed < 0.85 and 0.15 < dotted < 0.5 and 0.35 < dash_dot < 0.8
    print(f"outline coverage: solid {solid:.2f} dashed {dashed:.2f} dash-dot {dash_dot:.2f} dotted {dotted:.2f}")
    assert dotted < dash_dot < dashed < solid  # four styles, told apart by their gaps alone
    # Each box has its own kind's colour and no other's.
    for d, kind in ((MATCHED_DEVICE, Agreement.MATCHED), (DEVICE_ONLY, Agreement.DEVICE_ONLY),
                    (LOCAL_ONLY, Agreement.LOCAL_ONLY), (MISMATCH_DEVICE, Agreement.CLASS_MISMATCH)):
        for other in Agreement:
            if other is not kind:
                assert coverage(d, other) < 0.05, (kind, other)

    # Highlighting a disagreement tints its box and draws it thicker over a white halo.
    centre = ((DEVICE_ONLY.x1 + DEVICE_ONLY.x2) / 2, (DEVICE_ONLY.y1 + DEVICE_ONLY.y2) / 2)
    before = QColor(image.pixel(*map(round, centre)))
    view.set_highlighted(next(b for b in boxes if b.kind is Agreement.DEVICE_ONLY))
    lit = view.grab().toImage()
    after = QColor(lit.pixel(*map(round, centre)))
    assert (before.red(), before.green(), before.blue()) == (GREY, GREY, GREY)
    assert after.red() > GREY + 20 and after.blue() < GREY - 20  # towards orange
    assert edge_coverage(lit, DEVICE_ONLY.x1 - 4, DEVICE_ONLY.y1, DEVICE_ONLY.y2, QColor("white")) > 0.9
    assert edge_coverage(image, DEVICE_ONLY.x1 - 4, DEVICE_ONLY.y1, DEVICE_ONLY.y2, QColor("white")) == 0


def test_side_views_draw_each_sides_own_detections(qtbot):
    comparison = known_comparison()
    for mode, present, absent in ((ViewMode.DEVICE, DEVICE_ONLY, LOCAL_ONLY), (ViewMode.LOCAL, LOCAL_ONLY, DEVICE_ONLY)):
        view = ComparedFrameView(mode)
        qtbot.addWidget(view)
        view.resize(640, 480)
        view.show()
        view.show_comparison(comparison, [], "")
        image = view.grab().toImage()
        nut = class_color(DEVICE_ONLY.class_id)  # nut: class 1 on both sides
        assert edge_coverage(image, present.x1, present.y1, present.y2, nut) > 0.95
        assert edge_coverage(image, absent.x1, absent.y1, absent.y2, nut) < 0.05


def test_legend_shows_every_kind(qtbot):
    legend = AgreementLegend()
    qtbot.addWidget(legend)
    legend.resize(legend.sizeHint())
    legend.show()
    image = legend.grab().toImage()
    for style in STYLES.values():
        assert count_color(image, style.color) > 10
