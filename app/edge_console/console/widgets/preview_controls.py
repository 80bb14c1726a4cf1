"""The bar above a preview or grid: confidence threshold, per-class toggles, hidden count, pause/step/zoom.

Class toggles never shrink into unreadable stubs ("w…r"): the toggles that do not fit at their full width move
into the "+N ▾" menu (which lists every class), and with more than MAX_CLASS_BUTTONS classes all of them do.
"""

from __future__ import annotations

from collections.abc import Iterable

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QAction, QColor, QIcon, QPainter, QPixmap, QResizeEvent
from PySide6.QtWidgets import QHBoxLayout, QLabel, QMenu, QSizePolicy, QSlider, QToolButton, QWidget

from edge_console.console.colors import class_color
from edge_console.console.widgets.overlay import OverlaySettings

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
    step_back_requested = Signal()
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
        self.pause_button.toggled.connect(self._show_paused)
        self.pause_button.toggled.connect(self.pause_toggled)
        self.step_back_button = QToolButton(text="◂", toolTip="Paused: show the frame received before (←)")
        self.step_back_button.clicked.connect(self.step_back_requested)
        self.step_button = QToolButton(text="Step ▸", toolTip="Paused: show the next frame received (→)")
        self.step_button.clicked.connect(self.step_requested)
        self.reset_button = QToolButton(text="Fit", toolTip="Reset zoom and pan (0); the wheel zooms, drag pans")
        self.reset_button.clicked.connect(self.reset_view_requested)
        for button in (self.pause_button, self.step_back_button, self.step_button, self.reset_button):
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
        self.classes_menu_button.setToolTip("Every class, to show or hide its boxes")
        self.classes_menu_button.hide()
        layout.addWidget(self.classes_menu_button)
        layout.addStretch(1)
        self.hidden_label = QLabel()
        self.hidden_label.setToolTip("Detections in the shown frame(s) that the threshold or class toggles hide")
        # Its room is kept whether it shows a count or not: toggles must not jump into the menu and back as the
        # count comes and goes from frame to frame.
        self.hidden_label.setMinimumWidth(self.hidden_label.fontMetrics().horizontalAdvance("999 hidden") + 4)
        layout.addWidget(self.hidden_label)
        settings.changed.connect(self._sync_from_settings)
        self._sync_from_settings()
        self.set_hidden_count(0)

    def add_action_button(self, button: QToolButton) -> None:
        """A button after Pause/Step/Fit (the preview's Compare…): on the left, where a narrow window never
        clips it."""
        self.layout().insertWidget(self._next_action_index, button)
        self._next_action_index += 1
        self._fit_class_buttons()

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
        self._sync_from_settings()
        self._fit_class_buttons()

    def set_hidden_count(self, hidden: int) -> None:
        self.hidden_label.setText(f"{hidden} hidden" if hidden else "")

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 - Qt override
        super().resizeEvent(event)
        self._fit_class_buttons()

    def _fit_class_buttons(self) -> None:
        """Show, in order, the class toggles that fit at their full width; the rest are in the "+N ▾" menu. The
        room left is measured from the bar's own layout with every toggle hidden and the menu shown."""
        names = list(self.class_buttons)
        for button in self.class_buttons.values():
            button.setVisible(False)
        self.classes_menu_button.setVisible(bool(names))
        self.classes_menu_button.setText(f"+{len(names)} ▾")  # measured in its short form, as shown next to toggles
        layout = self.layout()
        self._classes_layout.invalidate()
        layout.invalidate()
        room = self.width() - layout.sizeHint().width()
        menu = self.classes_menu_button.sizeHint().width() + layout.spacing()
        widths = [self.class_buttons[n].sizeHint().width() + self._classes_layout.spacing() for n in names]
        shown = 0 if len(names) > MAX_CLASS_BUTTONS else len(names)
        while shown and sum(widths[:shown]) - (menu if shown == len(names) else 0) > room:
            shown -= 1
        for name in names[:shown]:
            self.class_buttons[name].setVisible(True)
        overflow = len(names) - shown
        self.classes_menu_button.setVisible(overflow > 0)
        self._update_menu_text(overflow)

    def _update_menu_text(self, overflow: int) -> None:
        total = len(self.class_actions)
        hidden = sum(1 for n in self.class_actions if n in self.settings.hidden_classes)
        if overflow == total:
            self.classes_menu_button.setText(f"Classes ({total - hidden}/{total}) ▾")
        else:
            self.classes_menu_button.setText(f"+{overflow} ▾")

    def set_paused(self, paused: bool) -> None:
        self.pause_button.setChecked(paused)

    def _show_paused(self, paused: bool) -> None:
        """The button says what pressing it does next."""
        self.pause_button.setText("Resume" if paused else "Pause")
        self.pause_button.setToolTip("Resume the live preview (Space)" if paused else "Pause the preview (Space)")

    def _sync_from_settings(self) -> None:
        self.threshold_label.setText(f"Conf ≥ {self.settings.threshold:.2f}")
        if self.threshold_slider.value() != round(self.settings.threshold * 100):
            self.threshold_slider.setValue(round(self.settings.threshold * 100))
        for name, action in self.class_actions.items():
            action.setChecked(name not in self.settings.hidden_classes)
        self._update_menu_text(sum(1 for b in self.class_buttons.values() if b.isHidden()))
