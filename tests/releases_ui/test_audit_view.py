"""Releases ▸ Audit against real agents: the console's own log merged with its devices', every hash chain checked,
a device log edited after the fact said loudly (a red banner naming the device, its entries from the edit on
marked), the filters, and the export for a compliance report."""

from __future__ import annotations

import json

from PySide6.QtGui import QColor

from edge_console.console.releases_ui.audit_view import BROKEN_ROW, COLUMNS
from edge_console.console.releases_ui.workspace import AUDIT
from edge_console.core.audit.log import AuditLog
from tests.support.pixels import count_color

from .support import LONG, add_and_wait, make_site, open_window

CHAIN = COLUMNS.index("Chain")


def _history(agent, tamper: bool) -> None:
    """A device's audit log with a little history, written before it starts; `tamper`: entry #2 is edited
    afterwards (someone hiding that a viewer was made an admin), its hash left as it was."""
    path = agent.state_dir / "audit.log"
    log = AuditLog(path)
    log.append("technician laptop", "paired", role="operator")
    log.append("technician laptop", "paired", role="viewer", console="night shift")
    log.append("device", "rollback", line="parts", version="2.0.0")
    if tamper:
        lines = path.read_text().splitlines(keepends=True)
        entry = json.loads(lines[1])
        entry["details"]["role"] = "admin"
        lines[1] = json.dumps(entry, separators=(",", ":")) + "\n"
        path.write_text("".join(lines))


def test_a_tampered_device_log_is_shown_loudly(qtbot, agent_factory, fleet_factory, tmp_path):
    site = make_site(tmp_path)
    honest = agent_factory("Line 1", advertise=False)
    tampered = agent_factory("Line 2", advertise=False)
    for agent, tamper in ((honest, False), (tampered, True)):
        agent.state_dir.mkdir(parents=True)
        _history(agent, tamper)
        agent.start()
    fleet = fleet_factory(discover=False)
    window = open_window(fleet, tmp_path, qtbot)
    add_and_wait(fleet, [honest, tampered], qtbot)
    window.releases.trust_root(site.root)  # something in the console's own log
    qtbot.waitUntil(lambda: window.releases.trusted_root == 1, timeout=LONG)

    audit = window.open_releases(AUDIT).audit  # shown: it reads every log in the background
    qtbot.waitUntil(lambda: audit.merged is not None and audit.refresh_button.isEnabled(), timeout=LONG)
    assert {(log.source, log.report.ok) for log in audit.merged.logs} == {
        ("console", True), ("Line 1", True), ("Line 2", False)}
    banner = audit.broken_banner
    assert banner.isVisible() and banner.text().startswith("BROKEN AUDIT CHAIN — Line 2")
    assert "#2" in banner.text() and "Line 1" not in banner.text()
    red = count_color(banner.grab().toImage(), QColor("#b91c1c"), 30)
    assert red > banner.width() * banner.height() // 2, "a red bar, not a line of small print"

    rows = audit.visible_rows()
    by_source = {}
    for row in rows:
        by_source.setdefault(row[1], []).append(row)
    assert {r[CHAIN] for r in by_source["Line 1"]} == {"ok"} and {r[CHAIN] for r in by_source["console"]} == {"ok"}
    marks = {int(r[2]): r[CHAIN] for r in by_source["Line 2"]}
    assert marks[1] == "ok" and all(mark == "BROKEN" for seq, mark in marks.items() if seq >= 2), marks
    broken_row = next(r for r in range(audit.table.rowCount())
                      if audit.table.item(r, 1).text() == "Line 2" and audit.table.item(r, 2).text() == "2")
    assert audit.table.item(broken_row, 0).background().color() == BROKEN_ROW
    assert '"role": "admin"' in audit.table.item(broken_row, COLUMNS.index("Details")).text()
    # Issue 22 (10): an entry's details are longer than their cell: the tooltip and the detail view hold them whole.
    assert "night shift" in audit.table.item(broken_row, COLUMNS.index("Details")).toolTip()
    audit.table.setCurrentCell(broken_row, 0)
    assert '"console": "night shift"' in audit.detail.toPlainText() and "Line 2" in audit.detail.toPlainText()
    assert any(r[4] == "release trust installed" for r in by_source["console"])

    # Filters: one device, an event, any text.
    audit.device_box.setCurrentText("Line 1")
    assert {r[1] for r in audit.visible_rows()} == {"Line 1"}
    audit.event_box.setCurrentText("rollback")
    assert [(r[1], r[4]) for r in audit.visible_rows()] == [("Line 1", "rollback")]
    audit.device_box.setCurrentText("All")
    audit.event_box.setCurrentText("All")
    audit.text_edit.setText("night shift")
    assert [(r[1], r[2]) for r in audit.visible_rows()] == [("Line 1", "2"), ("Line 2", "2")]
    assert audit.status.text().startswith("2 of ")

    # The export holds every entry and each chain's verdict, whatever the filter shows.
    out = tmp_path / "audit.json"
    audit.export(out, "json")
    qtbot.waitUntil(lambda: "Exported" in audit.status.text(), timeout=LONG)
    exported = json.loads(out.read_text())
    assert {c["source"]: c["ok"] for c in exported["chains"]} == {"console": True, "Line 1": True, "Line 2": False}
    assert len(exported["entries"]) == len(rows)
    audit.export(tmp_path / "audit.csv", "csv")
    qtbot.waitUntil(lambda: "audit.csv" in audit.status.text(), timeout=LONG)
    assert (tmp_path / "audit.csv").read_text().splitlines()[0].startswith("at,source,device_id,seq")
    window.close()


def test_pairing_in_the_window_and_the_release_centre_keep_one_console_chain(qtbot, agent_factory, fleet_factory,
                                                                             tmp_path):
    """Issue 21 (7): the Pair dialog wrote the console's log through a second writer (two entries #1, two #8) and
    the Audit page then showed a red banner after ordinary use."""
    from tests.support.agent_harness import pairing_code

    site = make_site(tmp_path)
    agent = agent_factory("Line 7", advertise=False, enrol=False).start()
    data_dir = tmp_path / "console-data"
    fleet = fleet_factory(discover=False, trusted=False, data_dir=data_dir)
    window = open_window(fleet, tmp_path, qtbot)
    window.releases.trust_root(site.root)  # the release centre writes the console's log first (entry #1)
    qtbot.waitUntil(lambda: window.releases.trusted_root == 1, timeout=LONG)
    state = fleet.add_manual(agent.address)
    qtbot.waitUntil(lambda: state.status == "not paired", timeout=LONG)
    dialog = window.pair_with(state)
    dialog.code.setText(pairing_code(agent.state_dir, "admin"))
    dialog.start()
    qtbot.waitUntil(lambda: state.trust == "admin" and state.connected, timeout=LONG)
    window.releases.trust_root(site.root)  # and again after the dialog wrote its entry
    console_log = AuditLog(fleet.database.parent / "audit.log")  # the console's one log, beside its database
    qtbot.waitUntil(lambda: len(console_log.entries()) >= 3, timeout=LONG)

    entries = console_log.entries()
    assert [e["seq"] for e in entries] == list(range(1, len(entries) + 1))
    assert [e["event"] for e in entries][:2] == ["release trust installed", "paired"]
    audit = window.open_releases(AUDIT).audit
    qtbot.waitUntil(lambda: audit.merged is not None and audit.refresh_button.isEnabled(), timeout=LONG)
    assert {(log.source, log.report.ok) for log in audit.merged.logs} == {("console", True), ("Line 7", True)}
    assert not audit.broken_banner.isVisible()
    window.close()
