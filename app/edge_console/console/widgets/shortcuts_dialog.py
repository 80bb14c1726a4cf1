"""Help ▸ Keyboard shortcuts (F1): generated from the window's own menu actions and the preview's key table, so
the list cannot go stale: a new action with a shortcut appears in it by itself."""

from __future__ import annotations

import html

from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QMenu, QMenuBar, QTextBrowser, QVBoxLayout, QWidget

from edge_console.console.widgets.preview_text import PREVIEW_KEYS


def menu_shortcuts(menu_bar: QMenuBar) -> list[tuple[str, str, str]]:
    """(menu path, action, keys) for every action with a shortcut, in menu order."""
    found: list[tuple[str, str, str]] = []

    def walk(menu: QMenu, path: str) -> None:
        for action in menu.actions():
            if action.menu() is not None:
                walk(action.menu(), f"{path} ▸ {_plain(action.text())}")
            elif action.isSeparator():
                continue
            elif keys := _keys(action):
                found.append((path, _plain(action.text()), keys))

    for top in menu_bar.actions():
        if top.menu() is not None:
            walk(top.menu(), _plain(top.text()))
    return found


def _plain(text: str) -> str:
    return text.replace("&&", "\0").replace("&", "").replace("\0", "&")


def _keys(action: QAction) -> str:
    return ", ".join(k.toString(QKeySequence.SequenceFormat.NativeText) for k in action.shortcuts() if not k.isEmpty())


def shortcuts_html(menu_bar: QMenuBar) -> str:
    rows = []
    for path, text, keys in menu_shortcuts(menu_bar):
        rows.append(f"<tr><td style='white-space:nowrap;padding-right:14px'><b>{html.escape(keys)}</b></td>"
                    f"<td>{html.escape(text)} <span style='color:#777'>({html.escape(path)})</span></td></tr>")
    preview = [f"<tr><td style='white-space:nowrap;padding-right:14px'><b>{html.escape(k.label)}</b></td>"
               f"<td>{html.escape(k.description)}</td></tr>" for k in PREVIEW_KEYS]
    return ("<h3>Window</h3><table cellspacing=2>" + "".join(rows) + "</table>"
            "<h3>On a preview or grid tile (click it first)</h3><table cellspacing=2>" + "".join(preview) + "</table>"
            "<p style='color:#555'>Double-click a grid tile to open its preview; the mouse wheel zooms and dragging "
            "pans a zoomed preview.</p>")


class ShortcutsDialog(QDialog):
    def __init__(self, menu_bar: QMenuBar, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Keyboard shortcuts")
        self.browser = QTextBrowser()
        self.browser.setOpenLinks(False)
        self.browser.setHtml(shortcuts_html(menu_bar))
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(self.browser)
        layout.addWidget(buttons)
        self.resize(620, 600)
