"""What a user would call a readable main window, as checks on the real, laid-out widgets: the window inside its
screen, every chart with room to draw, no label broken inside a word, the table's key columns on screen."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QRect
from PySide6.QtGui import QGuiApplication, QScreen, QTextDocument
from PySide6.QtWidgets import QTableView

from edge_console.console.main_window import MainWindow
from tests.support.screens import DESKTOP, LAPTOP

MIN_PLOT_HEIGHT = 60  # px of a telemetry chart's plot area: a curve and its axis labels still read
LONG_TOKEN = 24  # an id or a hash may break anywhere; a word this short must not


def screen_named(name: str) -> QScreen:
    for screen in QGuiApplication.screens():
        if screen.name() == name:
            return screen
    pytest.skip(f"these checks run on the offscreen test screens (screens.py), not on {QGuiApplication.platformName()}")


def desktop() -> QScreen:
    return screen_named(DESKTOP["name"])


def laptop() -> QScreen:
    return screen_named(LAPTOP["name"])


def place_on(window: MainWindow, screen: QScreen) -> None:
    """Before the first show: the window opens on `screen`, as on a machine whose screen it is."""
    window.setScreen(screen)
    window.move(screen.availableGeometry().topLeft())


def broken_words(document: QTextDocument) -> list[str]:
    """Words that the layout split across two lines ("addre|ss"), ids and hashes excepted."""
    broken = []
    block = document.begin()
    while block.isValid():
        text, layout = block.text(), block.layout()
        for i in range(1, layout.lineCount()):
            at = layout.lineAt(i).textStart()
            if 0 < at < len(text) and text[at - 1].isalnum() and text[at].isalnum():
                start, end = at, at
                while start > 0 and not text[start - 1].isspace():
                    start -= 1
                while end < len(text) and not text[end].isspace():
                    end += 1
                word = text[start:end]
                if len(word) < LONG_TOKEN:
                    broken.append(f"{text[start:at]}|{text[at:end]}")
        block = block.next()
    return broken


def hidden_columns(view: QTableView, columns: list[int]) -> list[str]:
    """The given columns that are not wholly inside the table's visible area."""
    header, width = view.horizontalHeader(), view.viewport().width()
    model = view.model()
    return [model.headerData(c, header.orientation()) for c in columns
            if header.sectionViewportPosition(c) < 0 or header.sectionViewportPosition(c) + header.sectionSize(c) > width]


def layout_problems(window: MainWindow) -> list[str]:
    """Everything that makes the window unreadable, in words (empty: fine)."""
    problems = []
    area: QRect = window.screen().availableGeometry()
    if not area.contains(window.frameGeometry()):
        problems.append(f"window {window.frameGeometry().getRect()} is not inside its screen {area.getRect()}")
    for plot in window.charts.plots:
        height = plot.getViewBox().sceneBoundingRect().height()
        if height < MIN_PLOT_HEIGHT:
            problems.append(f"chart {plot.titleLabel.text!r:.40} is {height:.0f} px high")
    window.details.refresh()
    if words := broken_words(window.details.browser.document()):
        problems.append(f"details break words: {words[:5]}")
    if missing := hidden_columns(window.table.view, [0, 1]):
        problems.append(f"device table hides {missing}")
    return problems


def dock_sizes(window: MainWindow) -> dict[str, tuple[int, int]]:
    return {dock.objectName(): (dock.width(), dock.height())
            for dock in (window.devices_dock, window.details_dock, window.charts_dock)}
