"""Releases ▸ Audit: the console's own log and its devices' logs merged, each hash chain verified.

    [Refresh]  Device [All ▾]  Event [All ▾]  [text filter]               [Export CSV…] [Export JSON…]
    ┌ BROKEN AUDIT CHAIN — Line 1: entry #5 was edited after it was written (its hash does not match) ┐
    Time | Source | Seq | Actor | Event | Details | Chain

A broken chain is said loudly: a red banner naming the device and the problem, and its entries from the first bad
one on marked red. A device that could not be read is named too. Exports hold every entry, whatever the filter.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from edge_console.client.releases.audit_merge import MergedAudit
from edge_console.client.untrusted_text import plain_tooltip, visible_text
from edge_console.console.releases_ui.audit_source import AuditSource
from edge_console.console.releases_ui.center import ReleaseCenter

COLUMNS = ("Time", "Source", "Seq", "Actor", "Event", "Details", "Chain")
ALL = "All"
BROKEN_STYLE = "background:#b91c1c;color:white;font-weight:bold;padding:6px;"
UNREAD_STYLE = "background:#fff4e5;color:#6b4100;padding:4px;"
BROKEN_ROW = QColor("#fde2e2")


class AuditView(QWidget):
    def __init__(self, center: ReleaseCenter, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.center = center
        self.source = AuditSource(center, self)
        self.merged: MergedAudit | None = None
        self.refresh_button = QPushButton("Refresh")
        self.device_box = QComboBox(minimumContentsLength=16)
        self.event_box = QComboBox(minimumContentsLength=16)
        self.text_edit = QLineEdit(placeholderText="filter: any text in a row", clearButtonEnabled=True)
        self.csv_button = QPushButton("Export CSV…")
        self.json_button = QPushButton("Export JSON…")
        for b in (self.csv_button, self.json_button):
            b.setToolTip("Every entry of every log, with each chain's check (whatever the filter shows)")
        self.broken_banner = QLabel(wordWrap=True)
        self.broken_banner.setTextFormat(Qt.TextFormat.PlainText)
        self.broken_banner.setStyleSheet(BROKEN_STYLE)
        self.unread_label = QLabel(wordWrap=True)
        self.unread_label.setTextFormat(Qt.TextFormat.PlainText)
        self.unread_label.setStyleSheet(UNREAD_STYLE)
        self.status = QLabel()
        self.status.setStyleSheet("color:#555")
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setSectionResizeMode(COLUMNS.index("Details"), QHeaderView.ResizeMode.Stretch)
        self.table.setWordWrap(False)
        # The selected entry whole (its details are often longer than their cell), as plain text to read and copy.
        self.detail = QPlainTextEdit(readOnly=True, placeholderText="Select an entry to read it whole")
        self.detail.setMaximumHeight(150)
        self._rows: list[dict] = []
        bar = QHBoxLayout()
        bar.addWidget(self.refresh_button)
        bar.addWidget(QLabel("Device"))
        bar.addWidget(self.device_box)
        bar.addWidget(QLabel("Event"))
        bar.addWidget(self.event_box)
        bar.addWidget(self.text_edit, 1)
        bar.addWidget(self.csv_button)
        bar.addWidget(self.json_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addLayout(bar)
        layout.addWidget(self.broken_banner)
        layout.addWidget(self.unread_label)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.detail)
        layout.addWidget(self.status)
        self.broken_banner.hide()
        self.unread_label.hide()

        self.refresh_button.clicked.connect(self.refresh)
        self.device_box.currentIndexChanged.connect(lambda _i: self.apply_filter())
        self.event_box.currentIndexChanged.connect(lambda _i: self.apply_filter())
        self.text_edit.textChanged.connect(lambda _t: self.apply_filter())
        self.csv_button.clicked.connect(lambda: self.ask_export("csv"))
        self.json_button.clicked.connect(lambda: self.ask_export("json"))
        self.table.currentCellChanged.connect(lambda row, *_: self._show_entry(row))
        self.source.loaded.connect(self.show_merged)
        self.source.failed.connect(self._failed)

    def refresh(self) -> None:
        self.status.setText("Reading the console's log and every reachable device's…")
        self.refresh_button.setEnabled(False)
        self.source.load()

    def _failed(self, message: str) -> None:
        self.refresh_button.setEnabled(True)
        self.status.setText(message)

    def show_merged(self, merged: MergedAudit) -> None:
        self.refresh_button.setEnabled(True)
        self.merged = merged
        broken = merged.broken
        self.broken_banner.setVisible(bool(broken))
        self.broken_banner.setText("\n".join(
            visible_text(f"BROKEN AUDIT CHAIN — {log.source} (device {log.device_id[:12]}): {log.report.problem}. "
                         f"Its entries from #{log.report.first_bad_seq or log.report.entries} on cannot be trusted.",
                         600) for log in broken))
        unread = [log for log in merged.logs if log.error]
        self.unread_label.setVisible(bool(unread))
        self.unread_label.setText("Not read: " + "; ".join(visible_text(f"{log.source}: {log.error}", 200)
                                                            for log in unread))
        first_bad = {log.source: log.report.first_bad_seq or (log.report.entries + 1) for log in broken}
        rows = self._rows = merged.rows()
        self.table.setRowCount(len(rows))
        for r, row in enumerate(rows):
            bad = row["source"] in first_bad and isinstance(row["seq"], int) and row["seq"] >= first_bad[row["source"]]
            at = row["at"]
            values = [time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(at)) if isinstance(at, int | float) else "?",
                      row["source"], str(row["seq"]), row["actor"], row["event"],
                      json.dumps(row["details"], sort_keys=True, default=str), "BROKEN" if bad else "ok"]
            for c, value in enumerate(values):
                item = QTableWidgetItem(visible_text(value, 400))
                item.setToolTip(plain_tooltip(pretty_details(row["details"]).splitlines()[:40]
                                              if c == COLUMNS.index("Details") else [value]))
                if bad:
                    item.setBackground(BROKEN_ROW)
                    item.setForeground(QColor("#8a1c1c"))
                self.table.setItem(r, c, item)
        self._fill_box(self.device_box, sorted({str(r["source"]) for r in rows} | {log.source for log in merged.logs}))
        self._fill_box(self.event_box, sorted({str(r["event"]) for r in rows}))
        self.apply_filter()

    def _show_entry(self, row: int) -> None:
        if not 0 <= row < len(self._rows):
            self.detail.clear()
            return
        entry = self._rows[row]
        at = entry["at"]
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(at)) if isinstance(at, int | float) else "?"
        chain = self.table.item(row, COLUMNS.index("Chain")).text()
        text = (f"#{entry['seq']} · {when} · {entry['source']} · chain {chain}\n{entry['actor']}: {entry['event']}\n"
                + pretty_details(entry["details"]))
        self.detail.setPlainText("\n".join(visible_text(line, 2000) for line in text.splitlines()[:400]))

    @staticmethod
    def _fill_box(box: QComboBox, values: list[str]) -> None:
        keep = box.currentText()
        box.blockSignals(True)
        box.clear()
        box.addItem(ALL)
        for value in values:
            box.addItem(visible_text(value, 60))
        box.setCurrentIndex(max(0, box.findText(keep)))
        box.blockSignals(False)

    def apply_filter(self) -> None:
        device, event = self.device_box.currentText(), self.event_box.currentText()
        text = self.text_edit.text().strip().lower()
        shown = 0
        for r in range(self.table.rowCount()):
            cells = [self.table.item(r, c).text() for c in range(len(COLUMNS))]
            visible = ((device in ("", ALL) or cells[1] == device) and (event in ("", ALL) or cells[4] == event)
                       and (not text or any(text in cell.lower() for cell in cells)))
            self.table.setRowHidden(r, not visible)
            shown += visible
        logs = len(self.merged.logs) if self.merged else 0
        self.status.setText(f"{shown} of {self.table.rowCount()} entries shown, from {logs} log(s).")

    def visible_rows(self) -> list[list[str]]:
        return [[self.table.item(r, c).text() for c in range(len(COLUMNS))]
                for r in range(self.table.rowCount()) if not self.table.isRowHidden(r)]

    def ask_export(self, kind: str) -> None:
        if self.merged is None:
            self.status.setText("Nothing to export yet: Refresh first.")
            return
        name = f"audit-{time.strftime('%Y%m%d-%H%M%S')}.{kind}"
        path, _ = QFileDialog.getSaveFileName(self, f"Export the merged audit log ({kind.upper()})", name,
                                              f"{kind.upper()} (*.{kind})")
        if path:
            self.export(Path(path), kind)

    def export(self, path: Path, kind: str) -> None:
        merged = self.merged
        if merged is None:
            return

        def write(_task) -> Path:
            path.write_text(merged.to_csv() if kind == "csv" else merged.to_json())
            return path

        self.center.tasks.run(write, on_done=lambda p: self.status.setText(f"Exported to {p}."),
                              on_failed=lambda exc: self.status.setText(f"Export failed: {exc}"))

    def showEvent(self, event) -> None:  # noqa: N802 - Qt override
        if self.merged is None and not self.source.loading:
            self.refresh()
        super().showEvent(event)


def pretty_details(details: object) -> str:
    return json.dumps(details, sort_keys=True, indent=1, default=str, ensure_ascii=False)
