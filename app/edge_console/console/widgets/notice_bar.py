"""A bar across the top of the window for what the user must know and may have to act on (the console's database
cannot be read, some remembered devices were skipped), with at most one action and a close button. Unlike the
status bar it stays until read. Its text is plain: it may quote a file name or a device's words."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton, QSizePolicy, QToolButton, QWidget

STYLES = {
    "error": "QFrame#notice { background: #fdecea; border: 1px solid #f5c2c0; } QLabel { color: #8a1c1c; }",
    "warning": "QFrame#notice { background: #fff4e5; border: 1px solid #f3d19e; } QLabel { color: #6b4100; }",
    "info": "QFrame#notice { background: #e8f4ea; border: 1px solid #b7dfbb; } QLabel { color: #1e4620; }",
}


class NoticeBar(QFrame):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("notice")
        self.label = QLabel(wordWrap=True, textInteractionFlags=Qt.TextInteractionFlag.TextSelectableByMouse)
        self.label.setTextFormat(Qt.TextFormat.PlainText)
        self.label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.action_button = QPushButton()
        self.action_button.hide()
        self.action_button.clicked.connect(self._act)
        close = QToolButton(text="✕", toolTip="Close this message", autoRaise=True)
        close.clicked.connect(self.dismiss)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(8, 4, 4, 4)
        layout.addWidget(self.label, 1)
        layout.addWidget(self.action_button)
        layout.addWidget(close, 0, Qt.AlignmentFlag.AlignTop)
        self._action: Callable[[], None] | None = None
        self.hide()

    def show_notice(self, text: str, kind: str = "warning", action_text: str = "",
                    action: Callable[[], None] | None = None) -> None:
        self.setStyleSheet(STYLES.get(kind, STYLES["warning"]))
        self.label.setText(text)
        self._action = action
        self.action_button.setText(action_text)
        self.action_button.setVisible(bool(action_text and action))
        self.action_button.setEnabled(True)
        self.show()

    @property
    def text(self) -> str:
        return "" if self.isHidden() else self.label.text()

    def dismiss(self) -> None:
        self._action = None
        self.hide()

    def _act(self) -> None:
        if self._action is not None:
            self.action_button.setEnabled(False)  # once: the action reports back through a new notice
            self._action()
