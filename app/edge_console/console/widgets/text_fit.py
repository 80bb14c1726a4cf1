"""Dialogs that grow with their text: word-wrapped labels need a height that depends on their width, which Qt
does not give a dialog it sizes before its labels know their width; their last lines were clipped ("the code
does not match: it was mistyped or has expired, or someone bet|"). `grow_to_fit` gives the dialog the height
its text needs at its width, and a test can ask `clipped_labels` whether any label still lacks room."""

from __future__ import annotations

from PySide6.QtWidgets import QLabel, QWidget


def grow_to_fit(dialog: QWidget) -> None:
    """Make `dialog` at least as tall as its layout needs at its current width (never shrinks it)."""
    layout = dialog.layout()
    if layout is None:
        return
    layout.activate()
    width = dialog.width()
    needed = layout.totalHeightForWidth(width) if layout.hasHeightForWidth() else layout.totalSizeHint().height()
    dialog.setMinimumHeight(needed)
    if dialog.height() < needed:
        dialog.resize(width, needed)


def clipped_labels(widget: QWidget) -> list[str]:
    """The visible labels under `widget` whose text needs more height than they have (for tests and checks)."""
    out = []
    for label in widget.findChildren(QLabel):
        if not label.isVisible() or not label.text():
            continue
        needed = label.heightForWidth(label.width()) if label.wordWrap() else label.sizeHint().height()
        if label.height() < needed - 1:
            out.append(label.text()[:60])
    return out
