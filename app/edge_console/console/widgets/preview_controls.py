"""The bar above a preview or grid: confidence threshold, per-class toggles, hidden count, pause/step/zoom."""

from __future__ import annotations

from collections.abc import Iterable

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction, QColor, QIcon, QPainter, QPixmap
from PySide6.QtWidgets import QHBoxLayout, QLabel, QMenu, QSizePolicy, QSlider, QToolButton, QWidget

from ..colors import class_color
from .overlay import OverlaySettings

MAX_CLASS_BUTTONS = 10  # beyond this (an 80-class COCO model) toggles move into a menu instead of widening the bar


def swatch_icon(color: QColor, size: int = 12) -> QIcon:
    pixmap = QPixmap(size, size)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.fillRect(1, 1, size - 2, size - 2, color)
    painter.end()
    return QIcon(pixmap)


class PreviewControls(QWidget):
    pause_toggled = Signal(bool)
    step_requested = Signal()
    reset_view_requested = Signal()

    def __init__(self, settings: OverlaySettings, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.settings = settings
        self.class_buttons: dict[str, QToolButton] = {}
        self.class_actions: dict[str, QAction] = {}
        layout = QHBoxLayout(self)
        layout.setContentsMargins(4, 2, 4, 2)
        # On a narrow window the bar clips at its right end rather than forcing the whole window wider.
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        self.setMinimumWidth(200)

        self.pause_button = QToolButton(text="Pause", checkable=True, toolTip="Pause the preview (Space)")
        self.pause_button.toggled.connect(self.pause_toggled)
        self.step_button = QToolButton(text="Step ▸", toolTip="Show the next frame while paused (→)")
        self.step_button.clicked.connect(self.step_requested)
        self.reset_button = QToolButton(text="Fit", toolTip="Reset zoom and pan (0); the wheel zooms, drag pans")
        self.reset_button.clicked.connect(self.reset_view_requested)
        for button in (self.pause_button, self.step_button, self.reset_button):
            layout.addWidget(button)
        self._next_action_index = layout.count()
        layout.setSpacing(3)

        layout.addSpacing(8)
        self.threshold_label = QLabel()
        self.threshold_slider = QSlider(Qt.Orientation.Horizontal, minimum=0, maximum=100)
        self.threshold_slider.setFixedWidth(110)
        self.threshold_slider.setToolTip("Draw only detections at or above this confidence")
        self.threshold_slider.setValue(round(settings.threshold * 100))
        self.threshold_slider.valueChanged.connect(lambda v: settings.set_threshold(v / 100))
        self.threshold_label.setToolTip("Minimum confidence of the boxes drawn")
        layout.addWidget(self.threshold_label)
        layout.addWidget(self.threshold_slider)

        layout.addSpacing(8)
        self._classes_layout = QHBoxLayout()
        self._classes_layout.setSpacing(2)
        layout.addLayout(self._classes_layout)
        self.classes_menu = QMenu(self)
        self.classes_menu_button = QToolButton(text="Classes", popupMode=QToolButton.ToolButtonPopupMode.InstantPopup)
        self.classes_menu_button.setMenu(self.classes_menu)
        self.classes_menu_button.hide()
        layout.addWidget(self.classes_menu_button)
        layout.addStretch(1)
        self.hidden_label = QLabel()
        self.hidden_label.setToolTip("Detections in the shown frame(s) that the threshold or class toggles hide")
        layout.addWidget(self.hidden_label)
        settings.changed.connect(self._sync_from_settings)
        self._sync_from_settings()
        self.set_hidden_count(0)

    def add_action_button(self, button: QToolButton) -> None:
        """A button after Pause/Step/Fit (the preview's Compare…): on the left, where a narrow window never
        clips it."""
        self.layout().insertWidget(self._next_action_index, button)
        self._next_action_index += 1

    def set_classes(self, classes: Iterable[tuple[int | None, str]]) -> None:
        """Add a toggle for each (class id, name) whose name is not yet known; existing toggles keep their state.
        The swatch has the colour the boxes of that class id are drawn in (the id may be unknown: None)."""
        for class_id, name in classes:
            if name in self.class_actions:
                continue
            visible = name not in self.settings.hidden_classes
            action = QAction(swatch_icon(class_color(class_id, name)), name, self, checkable=True, checked=visible)
            action.toggled.connect(lambda checked, n=name: self.settings.set_class_visible(n, checked))
            self.class_actions[name] = action
            self.classes_menu.addAction(action)
            button = QToolButton()
            button.setDefaultAction(action)  # the button and the menu entry are one toggle
            button.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
            button.setToolTip(f"Show or hide '{name}' boxes")
            button.setSizePolicy(QSizePolicy.Policy.Fixed, QSizePolicy.Policy.Fixed)  # never an unreadable "w...r"
            self.class_buttons[name] = button
            self._classes_layout.addWidget(button)
        as_menu = len(self.class_actions) > MAX_CLASS_BUTTONS
        for button in self.class_buttons.values():
            button.setVisible(not as_menu)
        self.classes_menu_button.setVisible(as_menu)
        self._sync_from_settings()

    def set_hidden_count(self, hidden: int) -> None:
        self.hidden_label.setText(f"{hidden} hidden" if hidden else "")

    def set_paused(self, paused: bool) -> None:
        self.pause_button.setChecked(paused)

    def _sync_from_settings(self) -> None:
        self.threshold_label.setText(f"Conf ≥ {self.settings.threshold:.2f}")
        if self.threshold_slider.value() != round(self.settings.threshold * 100):
            self.threshold_slider.setValue(round(self.settings.threshold * 100))
        for name, action in self.class_actions.items():
            action.setChecked(name not in self.settings.hidden_classes)
        hidden = sum(1 for n in self.class_actions if n in self.settings.hidden_classes)
        self.classes_menu_button.setText(f"Classes ({len(self.class_actions) - hidden}/{len(self.class_actions)}) ▾")
