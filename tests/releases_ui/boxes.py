"""Answering the release views' confirmations as a user does: the box is found on screen, read, and answered with a
click on its yes button or with the Escape key (which must mean "no")."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt, QTimer
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QMessageBox


def answer_confirmation(yes: bool, seen: list[str]) -> QTimer:
    """Answer the next confirmation box: its title, text, yes and no buttons' labels go into `seen`."""
    def answer() -> None:
        box = QApplication.activeModalWidget()
        if not isinstance(box, QMessageBox):
            return
        timer.stop()
        buttons = {box.buttonRole(b): b for b in box.buttons()}
        yes_button, no_button = buttons[QMessageBox.ButtonRole.AcceptRole], buttons[QMessageBox.ButtonRole.RejectRole]
        seen.append("\n".join([box.windowTitle(), box.text(), yes_button.text(), no_button.text()]))
        assert box.textFormat() == Qt.TextFormat.PlainText, "names come from devices: never read as HTML"
        assert box.defaultButton() is no_button, "Enter must not change devices"
        if yes:
            QTest.mouseClick(yes_button, Qt.MouseButton.LeftButton)
        else:
            QTest.keyClick(box, Qt.Key.Key_Escape)

    timer = QTimer(interval=50)
    timer.timeout.connect(answer)
    timer.start()
    return timer


def confirmed(yes: bool, action: Callable[[], object]) -> str:
    """Do `action` (a click that asks first), answer its box with `yes`, and return what the box said."""
    seen: list[str] = []
    timer = answer_confirmation(yes, seen)
    try:
        action()
    finally:
        timer.stop()
    assert len(seen) == 1, f"expected one confirmation, saw {seen}"
    return seen[0]
