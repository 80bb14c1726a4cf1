"""The fleet as a sortable, filterable table with a status colour that reads at a glance."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from PySide6.QtCore import (
    QAbstractTableModel,
    QModelIndex,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtGui import QAction, QBrush, QColor, QIcon, QPainter, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from edge_console.client.untrusted_text import plain_tooltip
from edge_console.console.colors import STATUS_COLORS
from edge_console.console.device_state import DeviceState
from edge_console.console.fleet import Fleet
from edge_console.console.widgets.formatting import age_text, number_text, trust_text

SORT_ROLE = Qt.ItemDataRole.UserRole + 1
FLUSH_MS = 250  # telemetry for 20 devices arrives as 20 updates a second; repaint the table at most 4 times


def _sample(state: DeviceState, key: str) -> Any:
    return (state.latest_sample or {}).get(key) if state.connected else None


def _health_text(state: DeviceState) -> str:
    if not state.connected:
        return state.status_reason or ""
    reasons = state.health_reasons
    return state.health.get("status", "?") + (f": {reasons[0]}" if reasons else "")


STATUS_ORDER = ("certificate changed", "no longer paired", "failing", "degraded", "online", "not paired",
                "connecting", "offline")


# (header, display text, sort key). What a glance needs comes first (name, status, health, last seen, trust), so it
# is on screen at the dock's default width (window_layout.DEVICES_DOCK_WIDTH); the numbers follow, the table scrolls sideways to them. A cell too
# narrow for its text ends in "…", and its tooltip starts with the whole text.
Column = tuple[str, Callable[[DeviceState], str], Callable[[DeviceState], Any]]
COLUMNS: tuple[Column, ...] = (
    ("Name", lambda s: s.name, lambda s: s.name.lower()),
    ("Status", lambda s: s.status, lambda s: STATUS_ORDER.index(s.status) if s.status in STATUS_ORDER else 99),
    ("Health", _health_text, _health_text),
    ("Last seen", lambda s: "now" if s.connected else age_text(s.last_seen), lambda s: s.last_seen or 0.0),
    ("Trust", lambda s: trust_text(s), lambda s: trust_text(s)),
    ("Address", lambda s: str(s.address or ""), lambda s: str(s.address or "")),
    ("Model", lambda s: f"{s.model_name} {s.model_version}".strip(), lambda s: (s.model_name, s.model_version)),
    ("FPS", lambda s: number_text(_sample(s, "fps_inferred")), lambda s: _sample(s, "fps_inferred") or -1.0),
    ("Inference p50", lambda s: number_text(_sample(s, "latency_p50_ms"), unit="ms"),
     lambda s: _sample(s, "latency_p50_ms") or -1.0),
    ("CPU", lambda s: number_text(_sample(s, "cpu_percent"), "{:.0f}", "%"), lambda s: _sample(s, "cpu_percent") or -1.0),
    ("Temp", lambda s: number_text(_sample(s, "temperature_c"), "{:.0f}", "°C"),
     lambda s: _sample(s, "temperature_c") or -1.0),
)
STATUS_COLUMN = 1
HEALTH_COLUMN = 2
LAST_SEEN_COLUMN = 3
TRUST_COLUMN = 4
HEALTH_COLUMN_WIDTH = 110  # the reason is elided here; the cell's tooltip has it whole
MAX_COLUMN_WIDTH = 180


def status_icon(color: QColor, size: int = 10) -> QIcon:
    pixmap = QPixmap(size, size)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setBrush(color)
    painter.setPen(Qt.PenStyle.NoPen)
    painter.drawEllipse(0, 0, size, size)
    painter.end()
    return QIcon(pixmap)


class DeviceTableModel(QAbstractTableModel):
    def __init__(self, fleet: Fleet) -> None:
        super().__init__(fleet)
        self.fleet = fleet
        self._rows: list[DeviceState] = []
        self._dirty: set[DeviceState] = set()
        self._icons = {status: status_icon(color) for status, color in STATUS_COLORS.items()}
        self._flush_timer = QTimer(self, interval=FLUSH_MS, singleShot=True)
        self._flush_timer.timeout.connect(self._flush)
        self._age_timer = QTimer(self, interval=5000)  # "last seen 3 min ago" ages even when nothing arrives
        self._age_timer.timeout.connect(self._refresh_ages)
        self._age_timer.start()
        fleet.device_added.connect(self._add)
        fleet.device_removed.connect(self._remove)
        for state in fleet.states:
            self._add(state)

    def state_at(self, row: int) -> DeviceState | None:
        return self._rows[row] if 0 <= row < len(self._rows) else None

    def row_of(self, state: DeviceState) -> int:
        return self._rows.index(state) if state in self._rows else -1

    def _add(self, state: DeviceState) -> None:
        row = len(self._rows)
        self.beginInsertRows(QModelIndex(), row, row)
        self._rows.append(state)
        self.endInsertRows()
        state.changed.connect(lambda s=state: self._mark(s))
        state.telemetry_added.connect(lambda s=state: self._mark(s))

    def _remove(self, state: DeviceState) -> None:
        row = self.row_of(state)
        if row < 0:
            return
        self.beginRemoveRows(QModelIndex(), row, row)
        del self._rows[row]
        self.endRemoveRows()
        self._dirty.discard(state)

    def _mark(self, state: DeviceState) -> None:
        self._dirty.add(state)
        if not self._flush_timer.isActive():
            self._flush_timer.start()

    def _flush(self) -> None:
        for state in self._dirty:
            row = self.row_of(state)
            if row >= 0:
                self.dataChanged.emit(self.index(row, 0), self.index(row, len(COLUMNS) - 1))
        self._dirty.clear()

    def _refresh_ages(self) -> None:
        if self._rows:
            self.dataChanged.emit(self.index(0, LAST_SEEN_COLUMN), self.index(len(self._rows) - 1, LAST_SEEN_COLUMN))

    # -- QAbstractTableModel ---------------------------------------------------------------------------------------

    def rowCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: N802, B008
        return 0 if parent.isValid() else len(self._rows)

    def columnCount(self, parent: QModelIndex | QPersistentModelIndex = QModelIndex()) -> int:  # noqa: N802, B008
        return 0 if parent.isValid() else len(COLUMNS)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole) -> Any:  # noqa: N802
        if orientation == Qt.Orientation.Horizontal and role == Qt.ItemDataRole.DisplayRole:
            return COLUMNS[section][0]
        return None

    def data(self, index: QModelIndex | QPersistentModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        state = self.state_at(index.row())
        if state is None:
            return None
        _, text, key = COLUMNS[index.column()]
        if role == Qt.ItemDataRole.DisplayRole:
            return text(state)
        if role == SORT_ROLE:
            return key(state)
        if role == Qt.ItemDataRole.DecorationRole and index.column() == STATUS_COLUMN:
            return self._icons.get(state.status)
        if role == Qt.ItemDataRole.BackgroundRole and index.column() == STATUS_COLUMN:
            color = QColor(STATUS_COLORS.get(state.status, QColor("gray")))
            color.setAlpha(60)
            return QBrush(color)
        if role == Qt.ItemDataRole.ForegroundRole and not state.connected:
            return QBrush(QColor("#8a8a8a"))  # offline rows greyed, but still listed
        if role == Qt.ItemDataRole.ToolTipRole:
            cell = text(state)
            lines = [f"{COLUMNS[index.column()][0]}: {cell}"] if cell and index.column() != 0 else []
            lines.append(f"{state.name} — {state.status}")
            if state.status_reason:
                lines.append(state.status_reason)
            lines += state.health_reasons if state.connected else []
            lines += [f"last seen {age_text(state.last_seen)}"] + [e.message for e in list(state.errors)[-3:]]
            return plain_tooltip(lines)  # the device's words, never read as HTML
        return None


class DeviceTable(QWidget):
    selected = Signal(object)  # DeviceState or None
    activated = Signal(object)  # DeviceState: open its preview
    reconnect_requested = Signal(object)
    forget_requested = Signal(object)
    pair_requested = Signal(object)
    help_requested = Signal()

    def __init__(self, fleet: Fleet, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.model = DeviceTableModel(fleet)
        self.proxy = QSortFilterProxyModel(self)
        self.proxy.setSourceModel(self.model)
        self.proxy.setSortRole(SORT_ROLE)
        self.proxy.setFilterKeyColumn(-1)
        self.proxy.setFilterCaseSensitivity(Qt.CaseSensitivity.CaseInsensitive)

        self.filter_edit = QLineEdit(placeholderText="Filter devices (name, status, address, model…)",
                                     clearButtonEnabled=True)
        self.filter_edit.textChanged.connect(self.proxy.setFilterFixedString)
        self.view = QTableView()
        self.view.setModel(self.proxy)
        self.view.setSortingEnabled(True)
        self.view.sortByColumn(0, Qt.SortOrder.AscendingOrder)
        self.view.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.view.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.view.verticalHeader().hide()
        self.view.setAlternatingRowColors(True)
        self.view.setWordWrap(False)  # one line a device; what does not fit ends in "…" (the tooltip has it all)
        self.view.setTextElideMode(Qt.TextElideMode.ElideRight)
        header = self.view.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setMaximumSectionSize(MAX_COLUMN_WIDTH)  # a long name or reason is elided, never pushes Trust away
        header.setSectionResizeMode(HEALTH_COLUMN, QHeaderView.ResizeMode.Interactive)
        header.resizeSection(HEALTH_COLUMN, HEALTH_COLUMN_WIDTH)
        header.setStretchLastSection(True)
        self.view.selectionModel().currentRowChanged.connect(lambda cur, _prev: self.selected.emit(self._state(cur)))
        self.view.activated.connect(lambda index: self._emit_if_state(self.activated, index))
        self.view.setContextMenuPolicy(Qt.ContextMenuPolicy.ActionsContextMenu)
        for text, signal in (("Open preview", self.activated), ("Pair…", self.pair_requested),
                             ("Reconnect now", self.reconnect_requested), ("Forget device", self.forget_requested)):
            action = QAction(text, self.view)
            action.triggered.connect(lambda _checked=False, s=signal: self._emit_if_state(s, self.view.currentIndex()))
            self.view.addAction(action)

        hint = QLabel('Device missing? <a href="#why">Why a device may not appear</a> · '
                      "Devices ▸ Add device… adds one by address")
        hint.setWordWrap(True)
        hint.linkActivated.connect(lambda _link: self.help_requested.emit())
        layout = QVBoxLayout(self)
        layout.setContentsMargins(2, 2, 2, 2)
        top = QHBoxLayout()
        top.addWidget(self.filter_edit)
        layout.addLayout(top)
        layout.addWidget(self.view, 1)
        layout.addWidget(hint)

    def _state(self, proxy_index: QModelIndex) -> DeviceState | None:
        if not proxy_index.isValid():
            return None
        return self.model.state_at(self.proxy.mapToSource(proxy_index).row())

    def _emit_if_state(self, signal: Signal, proxy_index: QModelIndex) -> None:
        state = self._state(proxy_index)
        if state is not None:
            signal.emit(state)

    def current(self) -> DeviceState | None:
        return self._state(self.view.currentIndex())

    def select(self, state: DeviceState) -> None:
        row = self.model.row_of(state)
        if row >= 0:
            self.view.setCurrentIndex(self.proxy.mapFromSource(self.model.index(row, 0)))
