"""The one question the release views ask before an action that changes devices or stops a rollout: cancel a
rollout, undo it, roll a device back, install release trust on a device, quit while a rollout runs.

A plain-text box (names come from devices: never read as HTML) whose default and Escape answer is "no": a stray
Enter or Escape never changes a device.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, Qt, QTimer
from PySide6.QtGui import QKeyEvent
from PySide6.QtWidgets import QApplication, QMessageBox, QWidget

from edge_console.client.untrusted_text import visible_text


def confirm(parent: QWidget | None, title: str, text: str, yes: str, no: str = "Keep as it is",
            detail: str = "") -> bool:
    """Ask; True only when the user chose `yes`. `text` and `detail` are shown as plain text."""
    box = QMessageBox(QMessageBox.Icon.Question, visible_text(title, 120), "", QMessageBox.StandardButton.NoButton,
                      parent)
    box.setObjectName("releaseConfirmation")
    box.setTextFormat(Qt.TextFormat.PlainText)
    box.setText(f"{text}\n\n{detail}" if detail else text)
    yes_button = box.addButton(yes, QMessageBox.ButtonRole.AcceptRole)
    no_button = box.addButton(no, QMessageBox.ButtonRole.RejectRole)
    box.setDefaultButton(no_button)
    box.setEscapeButton(no_button)
    box.exec()
    return box.clickedButton() is yes_button


def answer_next(yes: bool, seen: list[str] | None = None, interval_ms: int = 50) -> QTimer:
    """For a script that plays the user (the demo tour): answer the next confirmation as a person would, with its
    yes button or with Escape, noting its title and text in `seen`. The timer stops after one answer."""
    def answer() -> None:
        box = QApplication.activeModalWidget()
        if not isinstance(box, QMessageBox) or box.objectName() != "releaseConfirmation":
            return
        timer.stop()
        if seen is not None:
            seen.append(f"{box.windowTitle()}\n{box.text()}")
        if yes:
            next(b for b in box.buttons() if box.buttonRole(b) == QMessageBox.ButtonRole.AcceptRole).click()
        else:
            QApplication.sendEvent(box, QKeyEvent(QEvent.Type.KeyPress, Qt.Key.Key_Escape,
                                                  Qt.KeyboardModifier.NoModifier))

    timer = QTimer(interval=interval_ms)
    timer.timeout.connect(answer)
    timer.start()
    return timer
