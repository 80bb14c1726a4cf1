"""The console's database, damaged (issue 9 item 9, issue 10 item 10): a row that cannot be used, a damaged page,
a file that is not a database at all. What can be read is listed, what cannot is said in the window, and an
unreadable file can be moved aside for a fresh one from the window itself."""

from __future__ import annotations

import logging
import sqlite3
import time
from pathlib import Path

from PySide6.QtCore import QSettings, Qt

from edge_console.client.net.addresses import DeviceAddress
from edge_console.client.store import DeviceRecord, DeviceStore
from edge_console.console.main_window import MainWindow

from .window_checks import desktop, place_on

LONG = 30_000
CLOSED = 9  # discard: nothing listens there on 127.0.0.1; the devices stay offline, which is all these tests need


def remembered(path: Path, count: int, padding: int = 0) -> None:
    store = DeviceStore(path)
    now = time.time()
    for i in range(count):
        store.record_seen(DeviceRecord(f"dev-{i:04d}", f"Camera {i:04d}", "127.0.0.1", CLOSED, manual=True,
                                       hardware={"padding": "x" * padding} if padding else None,
                                       first_seen=now - 60, last_seen=now - 30))
    store.close()


def open_window(qtbot, fleet, tmp_path: Path) -> MainWindow:
    window = MainWindow(fleet, QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat))
    place_on(window, desktop())
    qtbot.addWidget(window)
    window.show()
    return window


def names(fleet) -> set[str]:
    return {state.name for state in fleet.states}


def test_a_row_that_cannot_be_used_is_skipped_and_the_others_are_listed(qtbot, fleet_factory, tmp_path):
    database = tmp_path / "console.sqlite"
    remembered(database, 3)
    with sqlite3.connect(database) as db:
        db.execute("UPDATE devices SET port = 'eighty' WHERE id = 'dev-0001'")
    fleet = fleet_factory(discover=False, database=database)
    window = open_window(qtbot, fleet, tmp_path)
    qtbot.waitUntil(lambda: len(fleet.states) == 2, timeout=LONG)
    assert names(fleet) == {"Camera 0000", "Camera 0002"}
    notice = window.notice.label.text()
    assert window.notice.isVisible() and "Camera 0001" in notice and "'eighty' is not a port number" in notice
    window.close()


def damage_a_page_holding(database: Path, marker: bytes) -> None:
    """Overwrite the header of the table page that holds `marker` (a b-tree leaf: page type 0x0D) with garbage."""
    data = bytearray(database.read_bytes())
    page_size = int.from_bytes(data[16:18], "big")
    for start in range(page_size, len(data), page_size):  # page 1 holds the schema
        page = data[start:start + page_size]
        if page[0] == 0x0D and marker in page:
            data[start:start + 64] = b"\xff" * 64
            database.write_bytes(bytes(data))
            return
    raise AssertionError(f"no table page holds {marker!r}")


def test_a_damaged_page_costs_only_the_devices_on_it(qtbot, fleet_factory, tmp_path):
    database = tmp_path / "console.sqlite"
    remembered(database, 80, padding=900)  # about four devices per page
    damage_a_page_holding(database, b"dev-0040")
    with sqlite3.connect(database) as db:  # the damage is real: a full read fails
        try:
            db.execute("SELECT * FROM devices").fetchall()
            raise AssertionError("the page is not damaged")
        except sqlite3.DatabaseError:
            pass
    fleet = fleet_factory(discover=False, database=database)
    window = open_window(qtbot, fleet, tmp_path)
    qtbot.waitUntil(lambda: len(fleet.states) >= 60, timeout=LONG)
    qtbot.wait(300)
    listed = names(fleet)
    assert 60 <= len(listed) < 80 and "Camera 0040" not in listed
    assert {"Camera 0000", "Camera 0079"} <= listed
    assert "damaged" in window.notice.label.text() and window.notice.isVisible()
    window.close()


def test_a_file_that_is_not_a_database_is_reported_once_and_can_be_moved_aside(qtbot, fleet_factory, tmp_path,
                                                                                   caplog):
    database = tmp_path / "console.sqlite"
    database.write_bytes(b"this is not an SQLite database, whatever its name says\n" * 200)
    caplog.set_level(logging.INFO, logger="edge_console")
    fleet = fleet_factory(discover=False, database=database)
    window = open_window(qtbot, fleet, tmp_path)
    qtbot.waitUntil(window.notice.isVisible, timeout=LONG)
    assert "cannot be read" in window.notice.label.text() and str(database) in window.notice.label.text()
    button = window.notice.action_button
    assert button.isVisible() and "fresh" in button.text()
    fleet.add_manual(DeviceAddress("127.0.0.1", CLOSED))  # tried before the reset: no new traceback
    qtbot.wait(300)
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1 and errors[0].exc_info is None, [r.getMessage() for r in errors]

    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: "fresh database" in window.notice.label.text(), timeout=LONG)
    aside = list(tmp_path.glob("console.sqlite.unreadable-*"))
    assert len(aside) == 1 and aside[0].read_bytes().startswith(b"this is not an SQLite")
    fleet.close()  # writes what is pending
    kept = DeviceStore(database)
    assert [r.id for r in kept.all_devices()] == [f"manual:127.0.0.1:{CLOSED}"]  # remembered again
    kept.close()
    window.close()
