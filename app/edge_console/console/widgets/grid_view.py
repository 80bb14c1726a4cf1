"""Several devices' previews at once (2x2 and up), sharing one set of overlay controls."""

from __future__ import annotations

import math

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QGridLayout, QLabel, QVBoxLayout, QWidget

from edge_console.console.device_state import DeviceState
from edge_console.console.widgets.overlay import OverlaySettings
from edge_console.console.widgets.preview_canvas import PreviewCanvas
from edge_console.console.widgets.preview_controls import PreviewControls

MAX_TILES = 16


EMPTY_TEXT = ("No devices yet. They appear here as soon as they are found or added "
              "(Devices ▸ Add device…).")


class DeviceGrid(QWidget):
    device_activated = Signal(object)  # DeviceState: a tile was double-clicked
    device_clicked = Signal(object)  # DeviceState: a tile was clicked (it becomes the current device)

    def __init__(self, settings: OverlaySettings | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.settings = settings or OverlaySettings(parent=self)
        self.controls = PreviewControls(self.settings)
        self.tiles: dict[DeviceState, PreviewCanvas] = {}
        self._grid = QGridLayout()
        self._grid.setSpacing(3)
        self._empty = QLabel(EMPTY_TEXT, alignment=Qt.AlignmentFlag.AlignCenter, wordWrap=True)
        self._empty.setTextFormat(Qt.TextFormat.PlainText)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.controls)
        layout.addLayout(self._grid, 1)
        self.controls.pause_toggled.connect(lambda paused: [t.set_paused(paused) for t in self.tiles.values()])
        self.controls.step_requested.connect(lambda: [t.step() for t in self.tiles.values()])
        self.controls.step_back_requested.connect(lambda: [t.step_back() for t in self.tiles.values()])
        self.controls.reset_view_requested.connect(lambda: [t.reset_view() for t in self.tiles.values()])
        self._relayout()

    def add_device(self, state: DeviceState) -> None:
        if state in self.tiles or len(self.tiles) >= MAX_TILES:
            return
        canvas = PreviewCanvas(state, self.settings, compact=True)
        canvas.activated.connect(self.device_activated)
        canvas.clicked.connect(self.device_clicked)
        canvas.hidden_count_changed.connect(self._update_hidden)
        state.changed.connect(self._update_classes)
        self.tiles[state] = canvas
        self._update_classes()
        self._relayout()

    def set_empty_text(self, text: str) -> None:
        """What the grid says while it has no device (the demo: that its fleet is starting)."""
        self._empty.setText(text)

    @property
    def empty_text(self) -> str:
        return self._empty.text() if not self.tiles else ""

    def remove_device(self, state: DeviceState) -> None:
        canvas = self.tiles.pop(state, None)
        if canvas is None:
            return
        canvas.detach()
        try:
            state.changed.disconnect(self._update_classes)
        except (RuntimeError, TypeError):
            pass
        canvas.setParent(None)
        canvas.deleteLater()
        self._relayout()

    def _relayout(self) -> None:
        while self._grid.count():
            self._grid.takeAt(0)
        if not self.tiles:
            self._grid.addWidget(self._empty, 0, 0)
            self._empty.show()
            return
        self._empty.hide()
        columns = max(2, math.ceil(math.sqrt(len(self.tiles))))
        rows = max(2, math.ceil(len(self.tiles) / columns))
        for i, canvas in enumerate(self.tiles.values()):
            self._grid.addWidget(canvas, i // columns, i % columns)
            canvas.show()  # a child added to a shown parent stays hidden unless told; harmless otherwise
        for c in range(columns):
            self._grid.setColumnStretch(c, 1)
        for r in range(rows):
            self._grid.setRowStretch(r, 1)

    def _update_classes(self) -> None:
        classes: dict[str, int] = {}  # one toggle per name; its swatch takes the id of the first model listing it
        for state in self.tiles:
            for class_id, name in enumerate(state.class_names):
                classes.setdefault(name, class_id)
        self.controls.set_classes((class_id, name) for name, class_id in classes.items())

    def _update_hidden(self) -> None:
        self.controls.set_hidden_count(sum(t.hidden_count for t in self.tiles.values()))

    def detach(self) -> None:
        for canvas in self.tiles.values():
            canvas.detach()
