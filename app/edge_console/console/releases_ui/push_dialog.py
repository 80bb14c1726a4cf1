"""Push a release: which devices (or every eligible one), which go first as canaries, batch size, when to halt.

Devices the release cannot go to are listed greyed, unselectable, with the reason, judged before anything is sent
by the device's own rules on what it reported (`facts.why_not`): a version not newer than the highest it has had,
no release root or another authority's, offline ("offline since 14:02"), architecture, agent version, providers,
this console's role. Until a device's answers are in, its row says "not known yet", never "yes". The dialog asks
the devices while it is open and updates the rows as they answer, keeping what the user ticked. The rollout
itself runs in the background (`rollouts.RolloutControl`); this dialog only plans it.
"""

from __future__ import annotations

from dataclasses import dataclass

from PySide6.QtCore import Qt, QTimer
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (
    QButtonGroup,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QRadioButton,
    QSpinBox,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from edge_console.client.releases.facts import canaries_per_kind, hardware_kind, role_of, why_not
from edge_console.client.releases.library import ReleaseEntry
from edge_console.client.untrusted_text import plain_tooltip, visible_text
from edge_console.console.device_state import DeviceState
from edge_console.console.releases_ui.center import ReleaseCenter

GREYED = QColor("#9ca3af")
PUSH, CANARY, WHY = 0, 4, 5


@dataclass
class RolloutPlan:
    entry: ReleaseEntry
    devices: list[DeviceState]
    canaries: list[DeviceState]
    skipped: dict[DeviceState, str]
    batch: int
    max_failure_pct: float | None


class PushDialog(QDialog):
    def __init__(self, center: ReleaseCenter, entry: ReleaseEntry | None = None,
                 chosen: list[DeviceState] | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setWindowTitle("Push a release")
        self.center = center
        self.release_box = QComboBox(minimumContentsLength=30)
        self._fill_releases(entry.id if entry is not None else None)
        self.tree = QTreeWidget()
        self.tree.setHeaderLabels(["Device", "Hardware", "Runs", "Role", "Canary", "Can it take the release?"])
        self.tree.setRootIsDecorated(False)
        self.tree.header().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.all_button = QPushButton("All eligible")
        self.none_button = QPushButton("None")
        self.per_kind = QRadioButton("one per hardware kind")
        self.ticked = QRadioButton("the devices ticked in the Canary column")
        self.no_canary = QRadioButton("none: every device in batches")
        self.canary_mode = QButtonGroup(self)
        for b in (self.per_kind, self.ticked, self.no_canary):
            self.canary_mode.addButton(b)
        self.per_kind.setChecked(True)
        self.batch_box = QSpinBox(minimum=1, maximum=100, value=1, suffix=" device(s) at a time")
        self.halt_first = QRadioButton("on the first failure")
        self.halt_pct = QRadioButton("when more than")
        self.halt_first.setChecked(True)
        self.pct_box = QSpinBox(minimum=1, maximum=99, value=20, suffix=" % of devices fail")
        self.summary = QLabel(wordWrap=True)
        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.start_button = self.buttons.addButton("Start rollout", QDialogButtonBox.ButtonRole.AcceptRole)
        self._arrange()
        self._chosen = set(chosen or [])
        self.items: dict[DeviceState, QTreeWidgetItem] = {}
        self.reasons: dict[DeviceState, str] = {}
        self._ticks: dict[DeviceState, tuple[Qt.CheckState, Qt.CheckState]] = {}  # (push, canary) the user left
        self._shown: tuple | None = None  # what the rows say now: refilled only when that changes
        self.fill()
        # The devices are asked while the dialog is open; rows follow their answers and their going on/offline.
        self._refill_soon = QTimer(self, singleShot=True, interval=100)
        self._refill_soon.timeout.connect(self.fill)
        center.versions.changed.connect(self._refill_soon.start)
        for state in center.fleet.states:
            state.changed.connect(self._refill_soon.start)
        center.versions.watch(self, True)
        self.finished.connect(lambda _result: center.versions.watch(self, False))

        self.release_box.currentIndexChanged.connect(lambda _i: self.fill())
        center.entries_changed.connect(self._library_read)
        self.all_button.clicked.connect(lambda: self._tick_all(True))
        self.none_button.clicked.connect(lambda: self._tick_all(False))
        self.tree.itemChanged.connect(lambda *_: self._summarize())
        for w in (self.per_kind, self.ticked, self.no_canary, self.halt_first, self.halt_pct):
            w.toggled.connect(lambda _on: self._summarize())
        self.batch_box.valueChanged.connect(lambda _v: self._summarize())
        self.pct_box.valueChanged.connect(lambda _v: self._summarize())
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        self.resize(860, 520)

    def _arrange(self) -> None:
        picks = QHBoxLayout()
        picks.addWidget(self.all_button)
        picks.addWidget(self.none_button)
        picks.addStretch(1)
        canary = QVBoxLayout()
        for b in (self.per_kind, self.ticked, self.no_canary):
            canary.addWidget(b)
        halt = QHBoxLayout()
        halt.addWidget(self.halt_first)
        halt.addWidget(self.halt_pct)
        halt.addWidget(self.pct_box)
        halt.addStretch(1)
        form = QFormLayout()
        form.addRow("Release", self.release_box)
        form.addRow("Canaries first (they must pass probation)", canary)
        form.addRow("Then the rest in batches of", self.batch_box)
        form.addRow("Halt", halt)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(QLabel("Devices (greyed: the release cannot go there, and why)"))
        layout.addWidget(self.tree, 1)
        layout.addLayout(picks)
        layout.addWidget(self.summary)
        layout.addWidget(self.buttons)

    def _fill_releases(self, chosen: str | None) -> None:
        self.release_box.blockSignals(True)
        self.release_box.clear()
        for e in self.center.verified():
            self.release_box.addItem(visible_text(e.label, 60), e.id)
        if chosen is not None and self.release_box.findData(chosen) >= 0:
            self.release_box.setCurrentIndex(self.release_box.findData(chosen))
        self.release_box.blockSignals(False)

    def _library_read(self) -> None:
        """The library was read again (the dialog may have opened before it was): offer what it holds now. The
        devices' ticks are kept unless the release list itself changed."""
        shown = [self.release_box.itemData(i) for i in range(self.release_box.count())]
        if shown != [e.id for e in self.center.verified()]:
            self._fill_releases(self.release_box.currentData())
            self.fill()

    @property
    def entry(self) -> ReleaseEntry | None:
        return self.center.entry(self.release_box.currentData() or "")

    def _runs(self, state: DeviceState) -> str:
        """What the device runs: its own /v1/models answer when in, else what its /v1/info said."""
        models = self.center.versions.models.get(state.device_id or "") or {}
        running = models.get("running") if isinstance(models.get("running"), dict) else None
        if running:
            return visible_text(f"{running.get('line', '?')} {running.get('version', '')}", 60)
        model = state.info.get("model") if isinstance(state.info.get("model"), dict) else {}
        return visible_text(f"{model.get('name', '?')} {model.get('version', '')}", 60)

    def fill(self) -> None:
        entry = self.entry
        states = list(self.center.fleet.states)
        rows = [(state, why_not(entry, state, self.center.versions) if entry else "no verified release chosen",
                 self._runs(state)) for state in states]
        shown = (entry.id if entry else None, tuple((id(s), why, runs) for s, why, runs in rows))
        if shown == self._shown:
            return
        self._shown = shown
        for state, item in self.items.items():  # what the user ticked survives a refill
            if state not in self.reasons:
                self._ticks[state] = (item.checkState(PUSH), item.checkState(CANARY))
        self.tree.blockSignals(True)
        self.tree.clear()
        self.items = {}
        self.reasons = {}
        for state, why, runs in rows:
            item = QTreeWidgetItem([state.name, hardware_kind(state), runs, role_of(state) or "—", "", why or "yes"])
            self.items[state] = item
            if why:
                self.reasons[state] = why
                item.setFlags(Qt.ItemFlag.NoItemFlags)  # greyed: neither ticked nor chosen as canary
                for c in range(self.tree.columnCount()):
                    item.setForeground(c, GREYED)
                item.setToolTip(WHY, plain_tooltip([why]))
            else:
                item.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsUserCheckable)
                on = not self._chosen or state in self._chosen
                default = (Qt.CheckState.Checked if on else Qt.CheckState.Unchecked, Qt.CheckState.Unchecked)
                pushed, canary = self._ticks.get(state, default)
                item.setCheckState(PUSH, pushed)
                item.setCheckState(CANARY, canary)
            self.tree.addTopLevelItem(item)
        self.tree.blockSignals(False)
        self._summarize()

    def _tick_all(self, on: bool) -> None:
        for state, item in self.items.items():
            if state not in self.reasons:
                item.setCheckState(PUSH, Qt.CheckState.Checked if on else Qt.CheckState.Unchecked)

    def set_pushed(self, states: list[DeviceState]) -> None:
        for state, item in self.items.items():
            if state not in self.reasons:
                item.setCheckState(PUSH, Qt.CheckState.Checked if state in states else Qt.CheckState.Unchecked)

    def set_canaries(self, states: list[DeviceState]) -> None:
        self.ticked.setChecked(True)
        for state, item in self.items.items():
            if state not in self.reasons:
                item.setCheckState(CANARY, Qt.CheckState.Checked if state in states else Qt.CheckState.Unchecked)

    def plan(self) -> RolloutPlan | None:
        entry = self.entry
        if entry is None:
            return None
        devices = [s for s, item in self.items.items()
                   if s not in self.reasons and item.checkState(PUSH) == Qt.CheckState.Checked]
        if self.per_kind.isChecked():
            canaries = canaries_per_kind(devices) if len(devices) > 1 else []
        elif self.ticked.isChecked():
            canaries = [s for s in devices if self.items[s].checkState(CANARY) == Qt.CheckState.Checked]
        else:
            canaries = []
        # Canaries go first in the order chosen, then the rest in the table's order.
        devices = canaries + [s for s in devices if s not in canaries]
        return RolloutPlan(entry, devices, canaries, dict(self.reasons), self.batch_box.value(),
                           float(self.pct_box.value()) if self.halt_pct.isChecked() else None)

    def _summarize(self) -> None:
        plan = self.plan()
        if plan is None or not plan.devices:
            self.summary.setText("Choose at least one device that can take a verified release.")
            self.start_button.setEnabled(False)
            return
        self.start_button.setEnabled(True)
        first = (f"{len(plan.canaries)} canary device(s) first ({', '.join(s.name for s in plan.canaries)}), "
                 if plan.canaries else "no canary, ")
        halt = ("halting on the first failure" if plan.max_failure_pct is None else
                f"halting when more than {plan.max_failure_pct:g} % fail")
        skipped = f" {len(plan.skipped)} device(s) cannot take it and are skipped." if plan.skipped else ""
        self.summary.setText(visible_text(f"{len(plan.devices)} device(s): {first}then batches of {plan.batch}, "
                                          f"{halt}.{skipped}", 600))
