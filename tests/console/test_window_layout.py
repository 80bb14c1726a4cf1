"""The main window as a plant engineer meets it (issue 10): Compare opens without wrecking the layout, at 1366x768
and 1920x1080, and a layout that no longer fits is not restored; every panel follows the device in front; Details
reads cleanly; F1 lists the shortcuts; the demo says it is starting."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest
from PySide6.QtCore import QSettings, Qt, QTimer
from PySide6.QtGui import QAction, QImage, QKeySequence
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QDialog, QTextBrowser

from edge_console.client.store import DeviceRecord, DeviceStore
from edge_console.console.cli import show_window
from edge_console.console.main_window import MainWindow
from edge_console.console.screenshot import LAYOUT_TEXT_KEY
from tests.support.agent_harness import ROOT
from tests.support.screens import DESKTOP, LAPTOP

from .window_checks import (
    MIN_PLOT_HEIGHT,
    broken_words,
    dock_sizes,
    hidden_columns,
    layout_problems,
    place_on,
    screen_named,
)

LONG = 60_000


def new_window(fleet, settings_path, screen_name: str) -> MainWindow:
    window = MainWindow(fleet, QSettings(str(settings_path), QSettings.Format.IniFormat))
    place_on(window, screen_named(screen_name))
    window.show()
    return window


def wait_online(qtbot, state) -> None:
    qtbot.waitUntil(lambda: state.status == "online" and bool(state.info) and len(state.telemetry) > 2, timeout=LONG)


@pytest.mark.parametrize("screen_name", [LAPTOP["name"], DESKTOP["name"]])
def test_compare_fits_the_window_and_the_layout_stays_sane(qtbot, fleet_factory, shared_agents, tmp_path,
                                                             screen_name):
    fleet = fleet_factory(discover=False)
    settings = tmp_path / "settings.ini"
    window = new_window(fleet, settings, screen_name)
    qtbot.addWidget(window)
    state = fleet.add_manual(shared_agents[0].address)
    wait_online(qtbot, state)
    window.charts.refresh()
    qtbot.wait(200)
    assert layout_problems(window) == []
    before = dock_sizes(window)

    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=5000)
    QTest.keyClick(window.table.view, Qt.Key.Key_K, Qt.KeyboardModifier.ControlModifier)  # Compare, as a user does
    panel = window.compares[state]
    qtbot.waitUntil(lambda: panel.opened is not None, timeout=LONG)  # its header and picker are filled by now
    qtbot.wait(300)
    assert window.tabs.currentWidget() is panel
    assert layout_problems(window) == [], "with the Compare tab open"
    assert dock_sizes(window) == before  # the panel scrolls inside its tab; the docks keep their room

    window._close_tab(window.tabs.indexOf(panel))
    qtbot.wait(200)
    assert dock_sizes(window) == before
    window.close()  # saves the layout

    again = new_window(fleet, settings, screen_name)  # the next start, on the same screen
    qtbot.addWidget(again)
    qtbot.wait(200)
    assert layout_problems(again) == []
    assert dock_sizes(again) == before
    again.close()


def test_a_layout_saved_on_a_large_screen_is_not_restored_on_a_small_one(qtbot, fleet_factory, tmp_path):
    fleet = fleet_factory(discover=False)
    settings = tmp_path / "settings.ini"
    big = new_window(fleet, settings, DESKTOP["name"])
    qtbot.addWidget(big)
    big.resize(1880, 1000)
    qtbot.wait(100)
    big.close()

    small = new_window(fleet, settings, LAPTOP["name"])
    qtbot.addWidget(small)
    qtbot.wait(200)
    assert layout_problems(small) == []
    assert small.height() < 768 and small.width() <= 1366
    small.close()


def test_every_panel_follows_the_device_in_front(qtbot, fleet_factory, shared_agents, tmp_path):
    fleet = fleet_factory(discover=False)
    window = new_window(fleet, tmp_path / "settings.ini", DESKTOP["name"])
    qtbot.addWidget(window)
    a, b = (fleet.add_manual(agent.address) for agent in shared_agents)
    for state in (a, b):
        wait_online(qtbot, state)
    window.table.select(a)
    assert window.details.state is a

    tile = window.grid.tiles[b]
    qtbot.mouseDClick(tile, Qt.MouseButton.LeftButton, pos=tile.rect().center())  # B's preview opens
    assert window.tabs.currentWidget() is window.previews[b]
    window.details.refresh()
    assert window.details.browser.document().firstBlock().text() == b.name  # Details show B, by its name
    assert window.charts.selected is b and window.table.current() is b

    window.tabs.setCurrentIndex(0)
    qtbot.mouseClick(window.grid.tiles[a], Qt.MouseButton.LeftButton, pos=window.grid.tiles[a].rect().center())
    assert window.details.state is a and window.charts.selected is a and window.table.current() is a
    window.tabs.setCurrentWidget(window.previews[b])  # the preview in front decides again
    assert window.details.state is b and window.charts.selected is b
    window.close()


def test_details_read_cleanly_and_the_table_shows_health_and_last_seen(qtbot, fleet_factory, shared_agents, tmp_path):
    """A device remembered from an earlier session, at the default window size."""
    agent = shared_agents[1]
    database = tmp_path / "console.sqlite"
    store = DeviceStore(database)
    store.record_seen(DeviceRecord(agent.device_id, agent.name, agent.address.host, agent.address.port,
                                   first_seen=time.time() - 3600, last_seen=time.time() - 600))
    store.close()
    fleet = fleet_factory(discover=False, database=database)
    window = new_window(fleet, tmp_path / "settings.ini", DESKTOP["name"])
    qtbot.addWidget(window)
    qtbot.waitUntil(lambda: len(fleet.states) == 1, timeout=LONG)
    state = fleet.states[0]
    wait_online(qtbot, state)
    window.table.select(state)
    window.details.refresh()
    text = window.details.browser.toPlainText()
    assert "found by\tremembered from an earlier session" in text.replace("\n", "\t")
    assert "320x320 RGB float32, NCHW, letterboxed" in text  # the model's input in words, not JSON
    assert "{" not in text and "ExecutionProvider" not in text
    assert broken_words(window.details.browser.document()) == []
    header = window.table.view.model()
    columns = [c for c in range(header.columnCount()) if header.headerData(c, Qt.Orientation.Horizontal)
               in ("Name", "Status", "Health", "Last seen", "Trust")]  # "Tr" was issue 22's (10)
    assert len(columns) == 5 and hidden_columns(window.table.view, columns) == []
    window.close()


def test_f1_lists_every_shortcut_of_the_window_and_the_preview(qtbot, fleet_factory, tmp_path):
    fleet = fleet_factory(discover=False)
    window = new_window(fleet, tmp_path / "settings.ini", DESKTOP["name"])
    qtbot.addWidget(window)

    def close_modal_dialogs() -> None:  # whatever F1 opens must not block the test if it is modal
        for widget in QApplication.topLevelWidgets():
            if isinstance(widget, QDialog) and widget.isModal() and widget.isVisible():
                widget.reject()

    guard = QTimer(interval=500)
    guard.timeout.connect(close_modal_dialogs)
    guard.start()
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=5000)
    QTest.keyClick(window, Qt.Key.Key_F1)
    guard.stop()
    dialogs = [w for w in QApplication.topLevelWidgets() if isinstance(w, QDialog) and w.isVisible()]
    assert [d.windowTitle() for d in dialogs] == ["Keyboard shortcuts"], "F1 opens the shortcut list"
    shown = "\n".join(b.toPlainText() for b in dialogs[0].findChildren(QTextBrowser))
    in_menus = [a for a in window.findChildren(QAction) if not a.shortcut().isEmpty() and a.associatedObjects()]
    assert len(in_menus) >= 15
    for action in in_menus:
        keys = action.shortcut().toString(QKeySequence.SequenceFormat.NativeText)
        assert keys in shown and action.text().replace("&", "") in shown, action.text()
    from edge_console.console.widgets.preview_text import PREVIEW_KEYS  # the keys the preview dispatches on

    for key in PREVIEW_KEYS:
        assert key.label in shown and key.description in shown
    assert "→" in shown and "←" in shown and "step" in shown
    dialogs[0].close()
    window.close()


def test_the_demo_says_it_is_starting_instead_of_an_empty_window(qtbot, fleet_factory, tmp_path):
    fleet = fleet_factory(discover=False)
    window = show_window(fleet, QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat), demo=True,
                         warning=None)
    qtbot.addWidget(window)
    label = window.grid._empty  # what the grid shows while it has no device
    assert "Starting the simulated fleet" in label.text()
    assert label.isVisible() and label.visibleRegion().boundingRect().height() >= label.fontMetrics().height()
    window.close()


def test_a_screenshot_at_1366x768_shows_the_layout_a_laptop_gets(tmp_path):
    """The README's second picture: `edge-console --demo --screenshot PATH --size 1366x768`."""
    shot = tmp_path / "small.png"
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    run = subprocess.run([sys.executable, "-m", "edge_console.console", "--demo", "--screenshot", str(shot),
                          "--size", "1366x768", "--after", "6"], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=180)
    assert run.returncode == 0, run.stderr[-3000:]
    image = QImage(str(shot))
    assert (image.width(), image.height()) == (1366, 768)
    layout = json.loads(image.text(LAYOUT_TEXT_KEY))
    assert layout["window"] == [1366, 768] and len(layout["tiles"]) == 3
    assert all(tile["live"] for tile in layout["tiles"]), layout["tiles"]
    assert min(layout["plot_heights"]) >= MIN_PLOT_HEIGHT, layout["plot_heights"]
    assert layout["docks"]["dock-devices"][0] >= 300 and layout["docks"]["dock-details"][0] >= 260
