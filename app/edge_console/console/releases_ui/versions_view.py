"""Releases ▸ Fleet versions: every device and model line, from each device's own `GET /v1/models` and
`GET /v1/release-trust`.

    Check release: [parts 2.0.0 ▾]                 [Install release trust…] [Roll back ▾] [Refresh]
    Device | Role  | Model line | Running      | … | Release trust            | parts 2.0.0
    Line 1 | admin | parts-v1   | 1.0.0 (good) | … | this console's (root v1) | can take it
    Line 2 | admin | parts-v1   | 1.0.0 (good) | … | this console's (root v1) | not newer than parts 2.0.0, …
    Old Pi | admin | parts-v1   | 1.0.0 (good) | … | none                     | trusts no release root: …

A device the chosen release cannot go to is greyed, with the reason in the last column and its tooltip, before
anything is sent: by the device's own rules (`facts.why_not`), the same the push dialog and the headless push use.
A device that trusts no release root, or another authority's, can be given this console's by an admin
(*Install release trust…*, after a confirmation naming the device and the root). *Roll back ▾* asks before it
changes a device. The probation countdown ticks here between answers. Everything a device said is plain text.
"""

from __future__ import annotations

from PySide6.QtCore import QTimer
from PySide6.QtGui import QColor, QFont
from PySide6.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMenu,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from edge_console.client.releases.eligibility import short_keys, trusts_ours
from edge_console.client.releases.facts import role_of, why_not
from edge_console.client.releases.library import ReleaseEntry
from edge_console.client.untrusted_text import plain_tooltip, visible_text
from edge_console.console.device_state import DeviceState
from edge_console.console.releases_ui.center import ReleaseCenter
from edge_console.console.releases_ui.confirm import confirm
from edge_console.core.protocol import UPDATE_IN_PROGRESS

COLUMNS = ("Device", "Role", "Model line", "Running", "Previous", "Retained", "Pending", "Probation", "Last check",
           "Release trust", "Release")
PROBATION_COLUMN = COLUMNS.index("Probation")
CHECK_COLUMN = COLUMNS.index("Last check")
GREYED = QColor("#9ca3af")
UNFINISHED = UPDATE_IN_PROGRESS


def _model(d: object) -> dict:
    return d if isinstance(d, dict) else {}


def lines_of(models: dict) -> list[str]:
    """The model lines a device has: the running one first, then those it keeps to return to."""
    found = [str(_model(models.get("running")).get("line") or "")]
    for m in [models.get("previous"), *(models.get("retained") or [])]:
        found.append(str(_model(m).get("line") or ""))
    return list(dict.fromkeys(x for x in found if x))


def check_text(record: dict) -> str:
    """An update's check result and its figures: 'passed · F1 1.000 · p95 14.6 ms' or why it was refused."""
    golden = _model(_model(record.get("figures")).get("golden"))
    figures = ""
    if golden:
        figures = f"F1 {golden.get('f1', 0):.3f} (≥ {golden.get('min_f1', '?')}) · p95 {golden.get('latency_p95_ms', '?')} ms"
    state = str(record.get("state", "?"))
    if state == "rejected":
        return f"rejected {record.get('version', '')}: {record.get('reason', '')}" + (f" · {figures}" if figures else "")
    verdict = "passed" if golden.get("passed") else state
    return f"{verdict} {record.get('version', '')}" + (f" · {figures}" if figures else "")


def describe_line(models: dict, line: str) -> dict[str, str]:
    running, previous = _model(models.get("running")), _model(models.get("previous"))
    updates = [u for u in models.get("updates") or [] if isinstance(u, dict) and u.get("line") == line]
    pending = [u for u in updates if u.get("state") in UNFINISHED]
    retained = [m for m in models.get("retained") or [] if _model(m).get("line") == line
                and _model(m).get("version") != running.get("version")]
    checked = [u for u in updates if _model(u.get("figures")).get("golden") or u.get("state") == "rejected"]
    on = running.get("line") == line
    return {
        "Running": f"{running.get('version')} ({running.get('state', 'good')})" if on else "—",
        "Previous": str(previous.get("version")) if previous.get("line") == line else "—",
        "Retained": ", ".join(f"{m.get('version')}{' (factory)' if m.get('factory') else ''}" for m in retained) or "—",
        "Pending": (f"{pending[-1].get('version') or pending[-1].get('release')} {pending[-1].get('state')}"
                    if pending else ("busy" if models.get("busy") and on else "—")),
        "Last check": check_text(checked[-1]) if checked else "—",
    }


def verdict(entry: ReleaseEntry | None, why: str | None, models: dict | None, line: str) -> str:
    """The release column: whether this row already runs it, else why the release cannot go there."""
    if entry is None:
        return ""
    running = _model((models or {}).get("running"))
    if line and line == entry.line and (running.get("line"), running.get("version")) == (entry.line, entry.version):
        return "runs it"
    return why or "can take it"


def trust_text(trust: dict | None, problem: str, ours: frozenset[str] | None) -> str:
    """The release trust column: whose release root the device trusts, as it says (GET /v1/release-trust)."""
    if trust is None:
        return f"cannot read: {problem}" if problem else "not known yet"
    if trust.get("installed") is not True:
        return "none"
    version = trust.get("root_version")
    root = f"root v{version}" if isinstance(version, int) and not isinstance(version, bool) else "a root"
    mine = trusts_ours(trust, ours)
    keys = trust.get("keys")
    named = short_keys(sorted(k for k in keys if isinstance(k, str))) if isinstance(keys, list) else ""
    return (f"this console's ({root})" if mine else f"another authority ({root}, keys {named})" if mine is False
            else root)


class VersionsView(QWidget):
    def __init__(self, center: ReleaseCenter, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.center = center
        self.fleet = center.fleet
        self.versions = center.versions
        self.release_box = QComboBox(minimumContentsLength=24)
        self.release_box.setToolTip("Grey out the devices this release cannot go to, with the reason")
        self.rollback_button = QToolButton(text="Roll back ▾", popupMode=QToolButton.ToolButtonPopupMode.InstantPopup)
        self.rollback_button.setToolTip("Return the selected device to its previous model or a retained version")
        self.rollback_menu = QMenu(self)
        self.rollback_menu.aboutToShow.connect(self._fill_rollback_menu)
        self.rollback_button.setMenu(self.rollback_menu)
        self.refresh_button = QPushButton("Refresh")
        self.trust_button = QPushButton("Install release trust…")
        self.trust_button.setToolTip("Have the selected device trust the release authority this console trusts "
                                     "(it must trust it to take a release; needs the admin role)")
        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.verticalHeader().hide()
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        # The check's figures give way (elided, whole in the tooltip): the release's verdict must stay readable.
        header.setSectionResizeMode(CHECK_COLUMN, QHeaderView.ResizeMode.Stretch)
        self.note = QLabel(wordWrap=True)
        self.note.setStyleSheet("color:#555")
        bar = QHBoxLayout()
        bar.addWidget(QLabel("Check release:"))
        bar.addWidget(self.release_box)
        bar.addStretch(1)
        bar.addWidget(self.trust_button)
        bar.addWidget(self.rollback_button)
        bar.addWidget(self.refresh_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addLayout(bar)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.note)
        self.rows: list[tuple[DeviceState, str]] = []  # (device, model line) of each row
        self._rebuild_soon = QTimer(self, singleShot=True, interval=100)
        self._rebuild_soon.timeout.connect(self.rebuild)
        self._tick = QTimer(self, interval=1000)  # the countdown between answers, while the page is shown
        self._tick.timeout.connect(self._tick_probation)

        self.refresh_button.clicked.connect(lambda: self.versions.refresh())
        self.trust_button.clicked.connect(self.ask_install_trust)
        self.table.itemSelectionChanged.connect(self._offer_trust)
        self.release_box.currentIndexChanged.connect(lambda _i: self.rebuild())
        self.versions.changed.connect(self.rebuild)
        center.entries_changed.connect(self._fill_releases)
        self.fleet.device_added.connect(self._watch_device)
        self.fleet.device_removed.connect(lambda _s: self.rebuild())
        for state in self.fleet.states:
            self._watch_device(state)
        self._fill_releases()

    def _watch_device(self, state: DeviceState) -> None:
        state.changed.connect(self._rebuild_soon.start)  # many devices changing at once: one rebuild
        self._rebuild_soon.start()

    def _fill_releases(self) -> None:
        chosen = self.release_box.currentData()
        self.release_box.blockSignals(True)
        self.release_box.clear()
        self.release_box.addItem("(none)", None)
        for entry in self.center.entries:
            self.release_box.addItem(visible_text(entry.label, 60) + ("" if entry.verified else " (refused)"),
                                     entry.id)
        index = self.release_box.findData(chosen) if chosen else -1
        verified = [e for e in self.center.entries if e.verified]
        if index < 0 and verified:
            index = self.release_box.findData(verified[-1].id)  # the newest verified one, as a start
        self.release_box.setCurrentIndex(max(0, index))
        self.release_box.blockSignals(False)
        self.rebuild()

    def choose_release(self, entry_id: str | None) -> None:
        self.release_box.setCurrentIndex(max(0, self.release_box.findData(entry_id)))

    def rebuild(self) -> None:
        entry = self.center.entry(self.release_box.currentData() or "")
        self.table.setHorizontalHeaderItem(len(COLUMNS) - 1, QTableWidgetItem(
            visible_text(entry.label, 40) if entry else "Release"))
        selected = self.selected()
        self.rows = []
        rows: list[list[str]] = []
        reasons: list[str | None] = []
        for state in self.fleet.states:
            models = self.versions.models.get(state.device_id or "")
            why = why_not(entry, state, self.versions)
            lines = lines_of(models) if models else [""]
            for line in lines:
                described = describe_line(models, line) if models else {}
                error = self.versions.errors.get(state.device_id or "")
                fill = "—" if models else (error or ("reading…" if state.connected else state.status))
                trusted = trust_text(self.versions.trust.get(state.device_id or ""),
                                     self.versions.trust_errors.get(state.device_id or "", ""),
                                     self.versions.console_keys)
                rows.append([state.name, role_of(state) or "not paired", line or fill,
                             *(described.get(c, "") for c in ("Running", "Previous", "Retained", "Pending")),
                             "—", described.get("Last check", ""), trusted, verdict(entry, why, models, line)])
                reasons.append(why)
                self.rows.append((state, line))
        self.table.setRowCount(len(rows))
        italic = QFont(self.table.font())
        italic.setItalic(True)
        for r, (values, why) in enumerate(zip(rows, reasons)):
            for c, value in enumerate(values):
                item = QTableWidgetItem(visible_text(value, 300))
                if why:
                    item.setForeground(GREYED)
                    item.setFont(italic)
                    item.setToolTip(plain_tooltip([f"{self.rows[r][0].name} cannot take this release:", why]))
                elif c == len(COLUMNS) - 1 and entry is not None:
                    item.setForeground(QColor("#166534"))
                elif c == CHECK_COLUMN and value not in ("", "—"):
                    item.setToolTip(plain_tooltip([value]))
                self.table.setItem(r, c, item)
        self._tick_probation()
        if selected is not None:
            self.select(*selected)
        self._offer_trust()
        greyed = sum(1 for w in reasons if w)
        self.note.setText(f"{greyed} device row(s) greyed: {entry.label} cannot go there (reason in the last "
                          "column)." if entry and greyed else "Versions as each device reports them "
                          "(GET /v1/models), refreshed every few seconds while this page is open.")

    def _tick_probation(self) -> None:
        for r, (state, line) in enumerate(self.rows):
            item = self.table.item(r, PROBATION_COLUMN)
            models = self.versions.models.get(state.device_id or "") or {}
            if item is None or _model(models.get("running")).get("line") != line:
                continue
            left = self.versions.probation_left(state.device_id or "")
            item.setText("—" if left is None else f"{left:.0f} s left")

    def selected(self) -> tuple[DeviceState, str] | None:
        rows = self.table.selectionModel().selectedRows() if self.table.selectionModel() else []
        return self.rows[rows[0].row()] if rows and rows[0].row() < len(self.rows) else None

    def select(self, state: DeviceState, line: str = "") -> None:
        for r, (shown, shown_line) in enumerate(self.rows):
            if shown is state and (not line or shown_line == line):
                self.table.selectRow(r)
                return

    def row_texts(self, state: DeviceState) -> list[list[str]]:
        """What the table shows for a device, row by row (for tests and for copying)."""
        return [[self.table.item(r, c).text() for c in range(len(COLUMNS))]
                for r, (s, _l) in enumerate(self.rows) if s is state]

    def _fill_rollback_menu(self) -> None:
        self.rollback_menu.clear()
        chosen = self.selected()
        if chosen is None:
            self.rollback_menu.addAction("Select a device first").setEnabled(False)
            return
        state, _line = chosen
        models = self.versions.models.get(state.device_id or "") or {}
        running = _model(models.get("running"))
        previous = _model(models.get("previous"))
        if previous:
            label = f"{visible_text(previous.get('line'), 40)} {visible_text(previous.get('version'), 20)}"
            self.rollback_menu.addAction(f"To the previous model: {label}",
                                         lambda t=label: self.ask_rollback(state, None, t))
        for m in models.get("retained") or []:
            m = _model(m)
            if (m.get("line"), m.get("version")) == (running.get("line"), running.get("version")):
                continue
            target = f"{m.get('line')}:{m.get('version')}"  # line and version: two lines may share a version
            label = (f"{visible_text(m.get('line'), 40)} {visible_text(m.get('version'), 20)}"
                     f"{' (factory)' if m.get('factory') else ''}")
            self.rollback_menu.addAction(f"To {label}", lambda v=target, t=label: self.ask_rollback(state, v, t))
        if self.rollback_menu.isEmpty():
            self.rollback_menu.addAction("Nothing retained to return to").setEnabled(False)

    def ask_rollback(self, state: DeviceState, version: str | None, label: str) -> None:
        """Roll one device back to `version` (None: its previous model), once the user said yes."""
        models = self.versions.models.get(state.device_id or "") or {}
        running = _model(models.get("running"))
        now = f"{visible_text(running.get('line'), 40)} {visible_text(running.get('version'), 20)}".strip()
        if confirm(self, f"Roll back {state.name}", f"Roll {state.name} back to {label}?", "Roll back",
                   detail=f"It runs {now or 'a model the console has not read yet'} now, and switches at once (a "
                          "version it ran before needs no probation). Fleet versions shows the change."):
            self.center.rollouts.rollback_device(state, version)

    # -- release trust ------------------------------------------------------------------------------------------
    def _trust_offer(self) -> tuple[DeviceState | None, str]:
        """The selected device, if this console can give it its release root now; else why not."""
        chosen = self.selected()
        if chosen is None:
            return None, "Select a device first"
        state = chosen[0]
        ours = self.versions.ours
        trust = self.versions.trust.get(state.device_id or "")
        if ours is None:
            return None, "The console trusts no release authority yet: Releases ▸ Trust release authority… first"
        if trust is None:
            return None, f"{state.name}'s release trust is not known yet"
        if trusts_ours(trust, ours.root_keys):
            return None, f"{state.name} already trusts this console's release authority"
        if not state.connected:
            return None, f"{state.name} is offline"
        if role_of(state) != "admin":
            return None, (f"Installing release trust needs the admin role on {state.name}; this console is "
                          f"{role_of(state) or 'not paired'} there")
        return state, ""

    def _offer_trust(self) -> None:
        state, why = self._trust_offer()
        self.trust_button.setEnabled(state is not None)
        self.trust_button.setToolTip(plain_tooltip([why] if state is None else [
            f"Have {state.name} trust the release authority this console trusts (it trusts "
            f"{'another one' if self._trusts(state) else 'no release root'} now)"]))

    def _trusts(self, state: DeviceState | None) -> bool:
        trust = self.versions.trust.get(state.device_id or "") if state is not None else None
        return bool(trust and trust.get("installed") is True)

    def ask_install_trust(self) -> None:
        state, why = self._trust_offer()
        ours = self.versions.ours
        if state is None or ours is None:
            self.center.message.emit(why, "warning")
            return
        before = ("It trusts no release root now." if not self._trusts(state) else
                  f"It trusts {trust_text(self.versions.trust.get(state.device_id or ''), '', ours.root_keys)} now: "
                  "releases signed by that authority will no longer install there.")
        if not confirm(self, f"Install release trust on {state.name}",
                       f"Have {state.name} trust this console's release authority: root version {ours.version}, "
                       f"keys {short_keys(ours.keys, 4)}?", "Install release trust", detail=before):
            return
        name, version = state.name, ours.version
        self.center.log("release trust install requested", device=state.device_id, root_version=version)

        def done(_body: dict) -> None:
            self.center.log("release trust installed on a device", device=state.device_id, root_version=version)
            self.center.message.emit(f"{name} now trusts release root version {version}.", "info")

        self.versions.install_trust(state, done, lambda why: self.center.message.emit(
            f"{name} did not take the release trust: {why}", "error"))

    def showEvent(self, event) -> None:  # noqa: N802 - Qt override
        self.versions.watch(self, True)
        self._tick.start()
        super().showEvent(event)

    def hideEvent(self, event) -> None:  # noqa: N802 - Qt override
        self.versions.watch(self, False)
        self._tick.stop()
        super().hideEvent(event)
