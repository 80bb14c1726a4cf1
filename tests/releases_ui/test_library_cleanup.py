"""Issue 22, item 9, on the real window: releases imported before the console trusted their authority are checked
again, in the background with progress, as soon as it is trusted through its dialog, and their rows turn verified;
junk and refused releases are removed with the Delete key or Remove…, after a confirmation that names them, and
the removal is in the console's audit log; a release a rollout still needs stays, and the window says why."""

from __future__ import annotations

import time

from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QApplication, QMessageBox

from edge_console.client.releases.audit_merge import console_audit
from edge_console.client.releases.rollout import DeviceStep, Rollout, RolloutStore
from edge_console.console.releases_ui.library_view import REFUSED_COLOR, VERIFIED_COLOR

from .support import LONG, answer_file_dialog, make_site, open_window


class ConfirmationAnswer:
    """Answers the next confirmation box with the button named `button`, keeping what it said."""

    def __init__(self, button: str) -> None:
        self.said: list[str] = []
        self.timer = QTimer(interval=50)
        self.timer.timeout.connect(lambda: self._answer(button))
        self.timer.start()

    def _answer(self, button: str) -> None:
        box = QApplication.activeModalWidget()
        if not isinstance(box, QMessageBox):
            return
        self.timer.stop()
        self.said.append(f"{box.windowTitle()}\n{box.text()}\n{box.informativeText()}")
        next(b for b in box.buttons() if b.text().replace("&", "") == button).click()


def rows(library) -> dict[str, tuple[str, object]]:
    """label -> (row text, row colour), as the list shows them."""
    out = {}
    for i in range(library.list.count()):
        item = library.list.item(i)
        out[library.center.entry(item.data(Qt.ItemDataRole.UserRole)).label] = (item.text(),
                                                                               item.foreground().color())
    return out


def select(library, *labels: str) -> None:
    library.list.clearSelection()
    for i in range(library.list.count()):
        item = library.list.item(i)
        if library.center.entry(item.data(Qt.ItemDataRole.UserRole)).label in labels:
            item.setSelected(True)
            library.list.setCurrentItem(item, library.list.selectionModel().SelectionFlag.Select)


def test_trusting_the_authority_checks_refused_releases_again_and_delete_removes_junk(qtbot, fleet_factory,
                                                                                       tmp_path):
    site = make_site(tmp_path)
    site.release("2.0.0")
    newer = site.release("2.0.1")
    junk = site.usb / "notes.edgerelease"
    junk.write_text("minutes of the line meeting\n" * 20)
    fleet = fleet_factory(discover=False)
    window = open_window(fleet, tmp_path, qtbot)
    center = window.releases
    library = window.open_releases().library

    # The USB stick imported before the authority is trusted: all refused, saying what to do.
    library.import_paths([site.usb])
    qtbot.waitUntil(lambda: len(center.entries) == 3 and not center.importing, timeout=LONG)
    assert all(not e.verified for e in center.entries)
    assert sum("checked again then" in e.problem for e in center.entries) == 2
    newer.unlink()  # the stick's copy is gone; the library kept its own for the check to come

    # Releases ▸ Trust release authority…, through its dialog: every refused release is checked again, with progress.
    progress: list[tuple[int, int, str]] = []
    center.import_progress.connect(lambda done, total, name: progress.append((done, total, name)))
    answerer = answer_file_dialog(site.root)
    library.trust_button.click()
    answerer.stop()
    qtbot.waitUntil(lambda: len(center.verified()) == 2 and not center.importing, timeout=LONG)
    qtbot.waitUntil(lambda: "Checked 3 refused release(s) again" in library.message.text(), timeout=LONG)
    assert "2 verified, 1 still refused (notes.edgerelease: not a usable release file" in library.message.text()
    assert {total for _done, total, _name in progress} == {3} and progress[-1][:2] == (3, 3)
    assert {name for *_, name in progress} >= {"parts 2.0.0", "parts 2.0.1", "notes.edgerelease"}
    shown = rows(library)
    assert shown["parts 2.0.0"][1] == shown["parts 2.0.1"][1] == VERIFIED_COLOR
    assert "verified" in shown["parts 2.0.1"][0] and shown["notes.edgerelease"][1] == REFUSED_COLOR
    assert not library.progress.isVisible()
    checked = [e["details"] for e in console_audit(tmp_path).entries() if e["event"] == "release checked again"]
    assert sorted((d["release"], d["verified"]) for d in checked) == [
        ("notes.edgerelease", False), ("parts 2.0.0", True), ("parts 2.0.1", True)]

    # The junk: selected, the Delete key, a confirmation that names it; its files and entry go, the stick's file stays.
    junk_entry = next(e for e in center.entries if e.label == "notes.edgerelease")
    select(library, "notes.edgerelease")
    window.activateWindow()
    qtbot.waitUntil(window.isActiveWindow, timeout=5000)
    library.list.setFocus()
    confirm = ConfirmationAnswer("Remove")
    qtbot.keyClick(library.list, Qt.Key.Key_Delete)
    qtbot.waitUntil(lambda: len(center.entries) == 2, timeout=LONG)
    confirm.timer.stop()
    assert len(confirm.said) == 1 and "Remove notes.edgerelease (refused) from the release library?" in confirm.said[0]
    assert "notes.edgerelease" not in rows(library)
    assert not (tmp_path / "releases" / junk_entry.id).exists() and junk.exists()
    qtbot.waitUntil(lambda: "Removed notes.edgerelease from the library." in library.message.text(), timeout=LONG)
    removed = [e for e in console_audit(tmp_path).entries() if e["event"] == "release removed"]
    assert [(e["details"]["release"], e["details"]["id"]) for e in removed] == [("notes.edgerelease", junk_entry.id)]
    window.close()


def test_remove_asks_first_and_keeps_a_release_a_rollout_still_needs(qtbot, fleet_factory, tmp_path):
    site = make_site(tmp_path)
    site.release("2.0.0")
    site.release("2.0.1")
    fleet = fleet_factory(discover=False)
    window = open_window(fleet, tmp_path, qtbot)
    center = window.releases
    center.trust_root(site.root)
    qtbot.waitUntil(lambda: center.trusted_root == 1 and not center.importing, timeout=LONG)
    library = window.open_releases().library
    library.import_paths([site.usb])
    qtbot.waitUntil(lambda: len(center.verified()) == 2 and not center.importing, timeout=LONG)
    window.close()

    # The console closed in the middle of a rollout of 2.0.0: the next one finds it resumable.
    first = next(e for e in center.entries if e.label == "parts 2.0.0")
    store = RolloutStore(fleet.database)
    store.save(Rollout("0badc0ffee00", first.id, first.label, [DeviceStep("dev1", "Press line 1", canary=True)],
                       created_at=time.time() - 120))
    store.close()
    fleet = fleet_factory(discover=False, database=fleet.database)
    window = open_window(fleet, tmp_path, qtbot)
    center = window.releases
    library = window.open_releases().library
    qtbot.waitUntil(lambda: center.loaded and center.rollouts.loaded and library.list.count() == 2, timeout=LONG)

    # Both selected, Remove…: the confirmation names only 2.0.1 and says why 2.0.0 stays. Cancel removes nothing.
    select(library, "parts 2.0.0", "parts 2.0.1")
    assert len(library.selected_entries()) == 2 and library.remove_button.isEnabled()
    cancel = ConfirmationAnswer("Cancel")
    library.remove_button.click()
    cancel.timer.stop()
    text = cancel.said[0]
    assert "Remove parts 2.0.1 (verified) from the release library?" in text and "2.0.0 (verified)" not in text
    assert "Not removed: parts 2.0.0 is not removed: the rollout of it started" in text and "0badc0ffee00" in text
    qtbot.wait(300)
    assert len(center.entries) == 2 and all((tmp_path / "releases" / e.id).is_dir() for e in center.entries)

    confirm = ConfirmationAnswer("Remove")
    library.remove_button.click()
    qtbot.waitUntil(lambda: len(center.entries) == 1, timeout=LONG)
    confirm.timer.stop()
    assert [e.label for e in center.entries] == ["parts 2.0.0"]
    message = library.message.text()
    assert message.startswith("Removed parts 2.0.1 from the library.") and "parts 2.0.0 is not removed" in message
    assert "#8a1c1c" in library.message.styleSheet(), "what was not done is said as a problem"

    # 2.0.0 alone: no confirmation to answer, only why it stays; its files are all there.
    library.message.clear()
    select(library, "parts 2.0.0")
    library.remove_button.click()
    assert library.message.isVisible() and "is not finished" in library.message.text()
    assert "cancel it (Releases ▸ Rollouts)" in library.message.text()
    assert (tmp_path / "releases" / first.id / "release.edgerelease").is_file()
    assert QApplication.activeModalWidget() is None
    window.close()
