"""Where box labels go so that none hides another, and where a text block goes so that it hides the fewest boxes.

Overlapping boxes are exactly the case an engineer must read (a nut also called a washer, two parts touching): if
every label sat on its box's top-left corner, the labels of boxes starting near one point would be drawn over each
other ("nut 0.35 .45"). Each label tries a few spots around its box, in order of preference, and takes the first
that overlaps no label placed before it, no block of text on the picture, and stays inside the view; when none is
free it takes the one that overlaps least. Used by the preview, the grid and the Compare overlay.
"""

from __future__ import annotations

from collections.abc import Sequence

from PySide6.QtCore import QRectF, QSizeF

GAP = 1.0  # between a box's edge and a label outside it
STACKED_SPOTS = 3  # when every spot around a box is taken, labels stack above it this far

Rect = tuple[float, float, float, float]  # left, top, right, bottom: plain floats, it runs on every paint


def _overlap(a: Rect, b: Rect) -> float:
    width = min(a[2], b[2]) - max(a[0], b[0])
    height = min(a[3], b[3]) - max(a[1], b[1])
    return width * height if width > 0 and height > 0 else 0.0


def _edges(rect: QRectF) -> Rect:
    return rect.left(), rect.top(), rect.right(), rect.bottom()


def label_spots(box: Rect, w: float, h: float):
    """The top-left corners a label may take, best first: above the box, inside its top edge, below it, inside its
    bottom edge (each on the left, then on the right), then stacked further above."""
    left, top, right, bottom = box
    for y in (top - h - GAP, top, bottom + GAP, bottom - h):
        yield left, y
        yield right - w, y
    for k in range(1, STACKED_SPOTS + 1):
        yield left, top - (k + 1) * (h + GAP)


def place_labels(boxes: Sequence[QRectF], sizes: Sequence[QSizeF], bounds: QRectF,
                 avoid: Sequence[QRectF] = ()) -> list[QRectF]:
    """One rectangle per label, in the order given (earlier labels get the better spots), each moved inside
    `bounds` as far as it fits. Plain arithmetic inline: this runs for every label of every painted frame."""
    x_min, y_min, x_max, y_max = _edges(bounds)
    taken = [_edges(r) for r in avoid if not r.isEmpty()]
    placed: list[QRectF] = []
    for box, size in zip(boxes, sizes):
        w, h = size.width(), size.height()
        best, best_cost = None, float("inf")
        for x, y in label_spots(_edges(box), w, h):
            x = min(max(x, x_min), max(x_min, x_max - w))
            y = min(max(y, y_min), max(y_min, y_max - h))
            right, bottom = x + w, y + h
            cost = 0.0
            for left2, top2, right2, bottom2 in taken:
                if left2 < right and x < right2 and top2 < bottom and y < bottom2:
                    cost += (min(right, right2) - max(x, left2)) * (min(bottom, bottom2) - max(y, top2))
            if cost < best_cost:
                best, best_cost = (x, y, right, bottom), cost
                if cost == 0:
                    break
        taken.append(best)
        placed.append(QRectF(best[0], best[1], w, h))
    return placed


def corner_rect(corner: int, size: QSizeF, bounds: QRectF, margin: float = 6.0) -> QRectF:
    """Corner 0 top-left, 1 top-right, 2 bottom-right (not bottom-left: the preview's footer lives there)."""
    w, h = size.width(), size.height()
    x = bounds.left() + margin if corner == 0 else bounds.right() - margin - w
    y = bounds.bottom() - margin - h if corner == 2 else bounds.top() + margin
    return QRectF(x, y, w, h)


def quietest_corner(size: QSizeF, bounds: QRectF, boxes: Sequence[QRectF], margin: float = 6.0) -> int:
    """The corner where a block of `size` covers the least of the boxes (top-left when all are equal), so an
    information block hides as few detections as it can."""
    edges = [_edges(b) for b in boxes]
    costs = [sum(_overlap(_edges(corner_rect(c, size, bounds, margin)), b) for b in edges) for c in range(3)]
    return costs.index(min(costs))
