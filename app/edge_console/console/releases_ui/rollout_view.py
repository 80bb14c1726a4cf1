"""Releases ▸ Rollouts: one rollout's devices and how far each got, with cancel, resume and undo.

    Rollout [parts 2.0.0 · 2026-11-28 14:02 · running ▾]
    ┌ Halted: Line 1: failed its check on this device: F1 0.41 < 0.95                      [Undo rollout] ┐
    Device | Stage   | Phase   | Progress            | Detail                            | Check            | Probation
    Line 1 | canary  | pushing | [####  probation  ] | serving parts 2.0.0 on probation… | F1 1.000 · 15 ms | 41 s left
    Line 2 | batch 1 | waiting | [                 ] |                                   |                  |
    [Cancel rollout] [Resume] [Undo rollout]

Each row follows its device's own update: upload (bytes and rate), verified, checked (the golden set's figures
on that device), active (probation counting down), good; or the reason it failed. A device the push lost says so
at once ("offline since 14:02:03, waiting for it"). *Cancel rollout* and *Undo rollout* (one name, whatever the
rollout's state: the README's) ask first, naming the devices they change.
"""

from __future__ import annotations

import re
import time

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QFrame,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from edge_console.client.releases.rollout import DeviceStep, Rollout
from edge_console.client.releases.rollout_runner import installing, something_to_undo, undo_targets
from edge_console.client.untrusted_text import plain_tooltip, visible_text
from edge_console.console.releases_ui.center import ReleaseCenter
from edge_console.console.releases_ui.confirm import confirm
from edge_console.core.protocol import UPDATE_FAILED

COLUMNS = ("Device", "Stage", "Phase", "Progress", "Detail", "Check", "Probation")
PROGRESS_WIDTH = 210
# How far along a push is, for its bar: the upload is the first half, the device's own steps the rest.
STAGE_PERCENT = {"staged": 55, "verified": 65, "checked": 80, "active": 90, "good": 100}
DEVICE_VERDICTS = UPDATE_FAILED  # a device's own end of an update, said as it is
UNDO = "Undo rollout"  # the README's name for the button, whatever state the rollout is in
BANNERS = {
    "halted": ("background:#fdecea;border:1px solid #f5c2c0", "color:#8a1c1c"),
    "cancelled": ("background:#fff4e5;border:1px solid #f3d19e", "color:#6b4100"),
    "done": ("background:#e8f4ea;border:1px solid #b7dfbb", "color:#1e4620"),
    "rolled_back": ("background:#eef2f7;border:1px solid #c9d3e0", "color:#243447"),
    "running": ("background:#eef6ff;border:1px solid #bcd7f5", "color:#12385f"),
}
_RATE = re.compile(r"\(([\d.]+ MB/s)\)")


def check_figures(record: dict) -> str:
    golden = record.get("figures", {}).get("golden") if isinstance(record.get("figures"), dict) else None
    if not isinstance(golden, dict):
        return ""
    verdict = "passed" if golden.get("passed") else "FAILED"
    return (f"{verdict} · F1 {golden.get('f1', 0):.3f} (≥ {golden.get('min_f1', '?')}) · p95 "
            f"{golden.get('latency_p95_ms', '?')} ms · {golden.get('frames', '?')} frames")


def step_progress(step: DeviceStep, size: int) -> tuple[int, str]:
    """(percent for the bar, the word on it)."""
    state = str(step.record.get("state") or "")
    if step.phase in ("waiting", "skipped"):
        return 0, step.phase
    if step.phase == "rolled_back":
        return 100, "rolled back"
    if step.phase == "cancelled":
        return 0, "cancelled"
    if step.phase == "failed":
        if state in DEVICE_VERDICTS:
            return 100, state.replace("_", " ")
        return STAGE_PERCENT.get(state, 0), f"failed{' at ' + state if state else ''}"
    if step.phase == "good":
        return 100, "good"
    offline = " · offline" if step.offline_since else ""
    if state in STAGE_PERCENT:
        return STAGE_PERCENT[state], ("probation" if state == "active" else state) + offline
    offset = int(step.push.get("offset") or 0)
    percent = int(100 * offset / size) if size else 0
    rate = _RATE.search(step.detail)
    return percent // 2, f"upload {percent} %" + (offline or (f" · {rate.group(1)}" if rate else ""))


def rollout_title(rollout: Rollout) -> str:
    when = time.strftime("%Y-%m-%d %H:%M", time.localtime(rollout.created_at))
    return f"{visible_text(rollout.release_label, 60)} · {when} · {rollout.status.replace('_', ' ')}"


class RolloutView(QWidget):
    def __init__(self, center: ReleaseCenter, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.center = center
        self.control = center.rollouts
        self.rollout_box = QComboBox(minimumContentsLength=40)
        self.push_button = QPushButton("Push a release…")
        self.banner = QFrame(objectName="rolloutBanner")
        self.banner_label = QLabel(wordWrap=True, textInteractionFlags=Qt.TextInteractionFlag.TextSelectableByMouse)
        self.banner_label.setTextFormat(Qt.TextFormat.PlainText)  # reasons quote what devices said
        self.undo_button = QPushButton(UNDO)
        self.undo_button.setToolTip("Return every device this rollout changed to its previous model")
        self.resume_button = QPushButton("Resume")
        self.cancel_button = QPushButton("Cancel rollout")
        self.cancel_button.setToolTip("Stop now: nothing more is sent; a device already installing finishes by itself")
        banner_layout = QHBoxLayout(self.banner)
        banner_layout.setContentsMargins(8, 4, 8, 4)
        banner_layout.addWidget(self.banner_label, 1)
        banner_layout.addWidget(self.resume_button)
        banner_layout.addWidget(self.cancel_button)
        banner_layout.addWidget(self.undo_button)
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.verticalHeader().hide()
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(COLUMNS.index("Detail"), QHeaderView.ResizeMode.Stretch)
        # A bar is a cell widget, which ResizeToContents does not measure: wide enough for "upload 100 % · 99.9
        # MB/s" or "failed at checked" (it was "uplo|ad 58 %", "failed at activ"), its full text in the tooltip.
        header.setSectionResizeMode(COLUMNS.index("Progress"), QHeaderView.ResizeMode.Fixed)
        header.resizeSection(COLUMNS.index("Progress"), PROGRESS_WIDTH)
        self.empty = QLabel("No rollout yet. Choose a release in the Library and press Push… (Ctrl+P).")
        self.empty.setStyleSheet("color:#555")
        bar = QHBoxLayout()
        bar.addWidget(QLabel("Rollout"))
        bar.addWidget(self.rollout_box, 1)
        bar.addWidget(self.push_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addLayout(bar)
        layout.addWidget(self.banner)
        layout.addWidget(self.empty)
        layout.addWidget(self.table, 1)
        self.bars: list[QProgressBar] = []
        self.shown: Rollout | None = None

        self.rollout_box.currentIndexChanged.connect(lambda _i: self.show_rollout(self.rollout_box.currentData()))
        self.cancel_button.clicked.connect(self.ask_cancel)
        self.resume_button.clicked.connect(lambda: self.shown and self.control.resume(self.shown.id))
        self.undo_button.clicked.connect(self.ask_undo)
        self.control.changed.connect(self._on_changed)
        self.control.ended.connect(self._on_changed)
        center.versions.changed.connect(self._tick)
        self._ticker = QTimer(self, interval=1000)  # the probation countdown between the devices' answers
        self._ticker.timeout.connect(self._tick)
        self._fill_box()

    def _fill_box(self, select: str | None = None) -> None:
        keep = select or self.rollout_box.currentData()
        self.rollout_box.blockSignals(True)
        self.rollout_box.clear()
        for rollout in sorted(self.control.rollouts.values(), key=lambda r: r.created_at, reverse=True):
            self.rollout_box.addItem(rollout_title(rollout), rollout.id)
        index = self.rollout_box.findData(keep) if keep else -1
        self.rollout_box.setCurrentIndex(index if index >= 0 else 0)
        self.rollout_box.blockSignals(False)
        self.show_rollout(self.rollout_box.currentData())

    def select(self, rollout_id: str) -> None:
        self._fill_box(rollout_id)

    def _on_changed(self, rollout_id: str) -> None:
        index = self.rollout_box.findData(rollout_id)
        rollout = self.control.rollouts.get(rollout_id)
        if index < 0 or rollout is None:
            self._fill_box()
            return
        self.rollout_box.setItemText(index, rollout_title(rollout))
        if rollout_id == self.rollout_box.currentData():
            self.show_rollout(rollout_id)

    def show_rollout(self, rollout_id: str | None) -> None:
        rollout = self.control.rollouts.get(rollout_id or "")
        self.shown = rollout
        self.empty.setVisible(rollout is None)
        self.table.setVisible(rollout is not None)
        self.banner.setVisible(rollout is not None)
        if rollout is None:
            return
        size = self.control.delivery_sizes.get(rollout.id, 0)
        stages, first = {}, 0 if any(s.canary for s in rollout.steps) else 1  # batch 1 comes after the canaries
        for n, batch in enumerate(rollout.batches()):
            for step in batch:
                stages[step.device_id] = "canary" if step.canary else f"batch {n + first}"
        if self.table.rowCount() != len(rollout.steps):
            self.table.setRowCount(len(rollout.steps))
            self.bars = []
            for r in range(len(rollout.steps)):
                bar = QProgressBar(textVisible=True, maximum=100)
                self.table.setCellWidget(r, COLUMNS.index("Progress"), bar)
                self.bars.append(bar)
        for r, step in enumerate(rollout.steps):
            percent, word = step_progress(step, size)
            values = [step.name, "—" if step.phase == "skipped" else stages.get(step.device_id, ""),
                      step.phase.replace("_", " "), "", visible_text(step.detail, 300),
                      check_figures(step.record), ""]
            for c, value in enumerate(values):
                item = QTableWidgetItem(value)
                if step.phase == "failed":
                    item.setForeground(QColor("#b91c1c"))
                elif step.offline_since and step.phase == "pushing":
                    item.setForeground(QColor("#92400e"))
                elif step.phase in ("skipped", "cancelled"):
                    item.setForeground(QColor("#9ca3af"))
                if c == COLUMNS.index("Detail") and step.detail:
                    item.setToolTip(plain_tooltip([step.detail]))
                self.table.setItem(r, c, item)
            self.bars[r].setValue(percent)
            self.bars[r].setFormat(word)
            self.bars[r].setToolTip(plain_tooltip([word, step.detail] if step.detail else [word]))
        self._tick()
        self._banner(rollout)

    def _tick(self) -> None:
        rollout = self.shown
        if rollout is None:
            return
        for r, step in enumerate(rollout.steps):
            item = self.table.item(r, COLUMNS.index("Probation"))
            if item is None:
                continue
            left = (self.center.versions.probation_left(step.device_id)
                    if step.record.get("state") == "active" and step.phase == "pushing" else None)
            item.setText("" if left is None else f"{left:.0f} s left")

    def _banner(self, rollout: Rollout) -> None:
        running_here = self.control.is_running(rollout.id)
        good = sum(1 for s in rollout.steps if s.phase == "good")
        sent = [s for s in rollout.steps if s.phase != "skipped"]
        undo = something_to_undo(rollout)
        if rollout.status == "running" and running_here:
            text = f"Running: {good} of {len(sent)} device(s) good so far."
        elif rollout.status == "running":
            text = (f"This rollout of {rollout.release_label} was left unfinished ({good} of {len(sent)} device(s) "
                    "good). Resume it to pick up where it stopped.")
        elif rollout.status == "halted":
            text = (f"HALTED: {rollout.reason}. " + (f"Some devices were changed: {UNDO} returns them to their "
                                                     "previous model." if undo else
                                                     "Nothing was installed on any device."))
        elif rollout.status == "done":
            text = f"Done: {good} of {len(sent)} device(s) run {rollout.release_label}."
        elif rollout.status == "cancelled" and running_here and installing(rollout):
            busy = [s.name for s in installing(rollout)]
            text = (f"Cancelled: nothing more is sent. {', '.join(busy)} had received the release and "
                    f"{'is' if len(busy) == 1 else 'are'} finishing the install: "
                    f"{'its row follows it' if len(busy) == 1 else 'their rows follow them'} to the end.")
        elif rollout.status == "cancelled":
            text = f"Cancelled ({rollout.reason}); {good} device(s) had finished."
        else:
            text = "Rolled back: every device this rollout changed went back to its previous model."
        background, color = BANNERS.get(rollout.status, BANNERS["running"])
        self.banner.setStyleSheet(f"QFrame#rolloutBanner {{ {background} }} QLabel {{ {color} }}")
        self.banner_label.setText(visible_text(text, 800))
        self.cancel_button.setVisible(running_here and rollout.status == "running")
        self.resume_button.setVisible(rollout.status == "running" and not running_here)
        self.undo_button.setVisible(not running_here and rollout.status != "rolled_back" and undo)

    # -- the questions before acting -------------------------------------------------------------------------------
    def ask_cancel(self) -> None:
        rollout = self.shown
        if rollout is None or not self.control.is_running(rollout.id):
            return
        busy = [s.name for s in installing(rollout)]
        waiting = [s.name for s in rollout.steps if s.phase == "waiting" or (s.phase == "pushing"
                                                                               and not s.push.get("update_id"))]
        detail = " ".join(x for x in (
            f"Nothing more is sent{' to ' + ', '.join(waiting) if waiting else ''}." if waiting else
            "Nothing more is sent.",
            (f"{busy[0]} already received it: it finishes installing by itself, and its row follows it to the end."
             if len(busy) == 1 else f"{', '.join(busy)} already received it: they finish installing by themselves, "
             "and their rows follow them to the end.") if busy else "",
            f"Devices the rollout changed keep the release until you press {UNDO}.") if x)
        if confirm(self, f"Cancel the rollout of {rollout.release_label}",
                   f"Cancel the rollout of {rollout.release_label}?", "Cancel rollout", "Keep it running", detail):
            self.control.cancel(rollout.id)

    def ask_undo(self) -> None:
        rollout = self.shown
        if rollout is None or self.control.is_running(rollout.id):
            return
        changed = [s.name for s in undo_targets(rollout)]
        if not changed:
            return
        if confirm(self, f"{UNDO}: {rollout.release_label}",
                   f"Undo the rollout of {rollout.release_label}?", UNDO, "Keep the release",
                   f"These devices go back to the model they ran before: {', '.join(changed)}."):
            self.control.roll_back(rollout.id)

    def showEvent(self, event) -> None:  # noqa: N802 - Qt override
        self._ticker.start()
        super().showEvent(event)

    def hideEvent(self, event) -> None:  # noqa: N802 - Qt override
        self._ticker.stop()
        super().hideEvent(event)
