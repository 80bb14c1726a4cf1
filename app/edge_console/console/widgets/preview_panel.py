"""One device's full preview: controls on top (with the way into Compare), the canvas below."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QToolButton, QVBoxLayout, QWidget

from edge_console.console.device_state import DeviceState
from edge_console.console.widgets.overlay import OverlaySettings
from edge_console.console.widgets.preview_canvas import PreviewCanvas
from edge_console.console.widgets.preview_controls import PreviewControls


class PreviewPanel(QWidget):
    compare_requested = Signal(object)  # DeviceState: open the Compare panel for this device

    def __init__(self, state: DeviceState, settings: OverlaySettings | None = None,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.state = state
        self.settings = settings or OverlaySettings(parent=self)
        self.controls = PreviewControls(self.settings)
        self.canvas = PreviewCanvas(state, self.settings)
        self.compare_button = QToolButton(text="Compare…")
        self.compare_button.setToolTip("Run a model on this laptop on the device's own frames and show where the two "
                                       "disagree (Ctrl+K)")
        self.compare_button.clicked.connect(lambda: self.compare_requested.emit(self.state))
        self.controls.add_action_button(self.compare_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.controls)
        layout.addWidget(self.canvas, 1)
        self.controls.pause_toggled.connect(self.canvas.set_paused)
        self.controls.step_requested.connect(self.canvas.step)
        self.controls.step_back_requested.connect(self.canvas.step_back)
        self.controls.reset_view_requested.connect(self.canvas.reset_view)
        self.canvas.paused_changed.connect(self.controls.set_paused)
        self.canvas.hidden_count_changed.connect(self.controls.set_hidden_count)
        state.changed.connect(self._update_classes)
        state.frame_arrived.connect(self._update_classes_from_frame)
        self._update_classes()

    def _update_classes(self) -> None:
        self.controls.set_classes(enumerate(self.state.class_names))  # the model's list: index = class id

    def _update_classes_from_frame(self) -> None:
        # A model without class metadata in /v1/info still gets toggles, for the classes it actually reports.
        frame = self.state.latest_frame
        if frame is not None and len(self.controls.class_buttons) < 64:
            seen = {d.class_name: d.class_id for d in frame.header.detections}
            new = sorted((class_id, name) for name, class_id in seen.items() if name not in self.controls.class_buttons)
            if new:
                self.controls.set_classes(new)

    def detach(self) -> None:
        self.canvas.detach()
