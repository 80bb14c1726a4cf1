"""The main window: arranges the views, wires them to the fleet, holds menus, notices and the status bar. Nothing
more; each view knows its own internals, and the layout rules (minimums, fitting the screen, what is saved) are
in `window_layout.py`.

One notion of the current device: the one last chosen, in the table, on a grid tile, or by bringing its preview or
Compare tab to the front. Details, charts, the table's selection and the window's title follow it, and every
action on "the device" (Pair…, Forget, Compare, Reconnect, Open preview) acts on it and names it.

Releases, rollouts and the audit trail (Releases menu, Releases tab) come in through one object,
`releases_ui.window_glue.WindowReleases`; its `center` is made at start, so a rollout left unfinished is offered
for resuming and every Compare panel lists the library's verified releases.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings, Qt, QTimer
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence, QShowEvent
from PySide6.QtWidgets import QDockWidget, QLabel, QMainWindow, QMessageBox, QTabWidget, QVBoxLayout, QWidget

from edge_console.client.untrusted_text import visible_text
from edge_console.console import window_layout
from edge_console.console.compare.panel import ComparePanel
from edge_console.console.device_state import DeviceState
from edge_console.console.fleet import Fleet
from edge_console.console.releases_ui.window_glue import WindowReleases
from edge_console.console.releases_ui.workspace import LIBRARY, ReleasesWorkspace
from edge_console.console.widgets.add_device_dialog import AddDeviceDialog, show_why_not_listed
from edge_console.console.widgets.charts import WINDOWS_S, TelemetryCharts
from edge_console.console.widgets.details_panel import DetailsPanel
from edge_console.console.widgets.device_table import DeviceTable
from edge_console.console.widgets.grid_view import DeviceGrid
from edge_console.console.widgets.notice_bar import NoticeBar
from edge_console.console.widgets.overlay import OverlaySettings
from edge_console.console.widgets.pair_dialog import PairDialog, open_pair_dialog
from edge_console.console.widgets.preview_panel import PreviewPanel
from edge_console.console.widgets.shortcuts_dialog import ShortcutsDialog
from edge_console.core.detection.model_library import ModelLibrary
from edge_console.core.paths import models_dir


class MainWindow(QMainWindow):
    def __init__(self, fleet: Fleet, settings: QSettings, parent: QWidget | None = None,
                 model_library: ModelLibrary | None = None) -> None:
        super().__init__(parent)
        self.fleet = fleet
        self.settings = settings
        self.setWindowTitle("Edge Console")
        self.overlay_settings = OverlaySettings(parent=self)
        self.previews: dict[DeviceState, PreviewPanel] = {}
        self.compares: dict[DeviceState, ComparePanel] = {}
        self.current: DeviceState | None = None
        # One library for every Compare panel: a model or USB folder added in one is offered in all.
        self.model_library = model_library
        self._laid_out = False
        self.release_views = WindowReleases(self)
        self.releases = self.release_views.center

        self.grid = DeviceGrid(self.overlay_settings)
        self.tabs = QTabWidget(documentMode=True, tabsClosable=True, movable=True)
        self.tabs.addTab(self.grid, "Grid")
        self.tabs.tabBar().setTabButton(0, self.tabs.tabBar().ButtonPosition.RightSide, None)  # the grid stays
        self.tabs.tabCloseRequested.connect(self._close_tab)
        self.tabs.currentChanged.connect(self._on_tab_changed)
        self.notice = NoticeBar()
        central = QWidget()
        central_layout = QVBoxLayout(central)
        central_layout.setContentsMargins(0, 0, 0, 0)
        central_layout.setSpacing(0)
        central_layout.addWidget(self.notice)
        central_layout.addWidget(self.tabs, 1)
        self.setCentralWidget(central)

        self.table = DeviceTable(fleet)
        self.details = DetailsPanel()
        self.charts = TelemetryCharts()
        self.devices_dock = self._dock("Devices", self.table, Qt.DockWidgetArea.LeftDockWidgetArea)
        self.details_dock = self._dock("Details", self.details, Qt.DockWidgetArea.RightDockWidgetArea)
        self.charts_dock = self._dock("Telemetry", self.charts, Qt.DockWidgetArea.BottomDockWidgetArea)
        window_layout.apply_dock_minimums(self.devices_dock, self.details_dock, self.charts_dock)

        self.status_label = QLabel()
        self.statusBar().addPermanentWidget(self.status_label)
        self._status_timer = QTimer(self, interval=1000)
        self._status_timer.timeout.connect(self._update_status)
        self._status_timer.start()

        self.table.selected.connect(lambda state: self.set_current(state) if state is not None else None)
        self.table.activated.connect(self.open_preview)
        self.table.reconnect_requested.connect(fleet.reconnect)
        self.table.forget_requested.connect(self._forget)
        self.table.pair_requested.connect(self.pair_with)
        self.table.help_requested.connect(lambda: show_why_not_listed(self))
        self.grid.device_activated.connect(self.open_preview)
        self.grid.device_clicked.connect(self.set_current)
        fleet.device_added.connect(self._on_device_added)
        fleet.device_removed.connect(self._on_device_removed)
        fleet.message.connect(lambda text: self.statusBar().showMessage(text, 15000))
        fleet.database_problem.connect(self._on_database_problem)
        for state in fleet.states:
            self._on_device_added(state)

        self._build_menus()
        self.resize(window_layout.DEFAULT_SIZE)
        self._update_status()

    def _dock(self, title: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(f"dock-{title.lower()}")  # saveState needs stable names
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        return dock

    def _action(self, menu, text: str, slot, shortcut: QKeySequence | str | None = None) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        action.triggered.connect(slot)
        menu.addAction(action)
        return action

    def _build_menus(self) -> None:
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        self._action(file_menu, "&Quit", self.close, QKeySequence.StandardKey.Quit)

        devices = bar.addMenu("&Devices")
        self._action(devices, "&Add device by address…", self.add_device_dialog, "Ctrl+N")
        self._action(devices, "&Open preview", lambda: self._with_current(self.open_preview), "Ctrl+O")
        self._action(devices, "&Compare with a local model", lambda: self._with_current(self.open_compare), "Ctrl+K")
        self._action(devices, "&Reconnect now", lambda: self._with_current(self.fleet.reconnect), "Ctrl+R")
        self._action(devices, "&Pair with device…", lambda: self._with_current(self.pair_with), "Ctrl+Alt+P")
        self._action(devices, "&Forget device", lambda: self._with_current(self._forget), "Ctrl+Shift+Delete")
        devices.addSeparator()
        self._action(devices, "&Filter the list", self._focus_filter, QKeySequence.StandardKey.Find)

        view = bar.addMenu("&View")
        self._action(view, "&Grid", lambda: self.tabs.setCurrentIndex(0), "Ctrl+G")
        self._action(view, "&Close preview tab", lambda: self._close_tab(self.tabs.currentIndex()), "Ctrl+W")
        self._action(view, "Pause / resume previews (Compare: continuous mode)", self._toggle_pause, "Ctrl+Space")
        view.addSeparator()
        for dock, key in ((self.devices_dock, "Ctrl+1"), (self.details_dock, "Ctrl+2"), (self.charts_dock, "Ctrl+3")):
            toggle = dock.toggleViewAction()
            toggle.setShortcut(QKeySequence(key))
            view.addAction(toggle)
        view.addSeparator()
        window = view.addMenu("Telemetry &window")
        for i, label in enumerate(WINDOWS_S):
            self._action(window, label, lambda _=False, t=label: self.charts.window_box.setCurrentText(t),
                         f"Alt+{i + 1}")
        overlay = self._action(view, "Overlay all devices in charts", self.charts.set_overlay_all, "Ctrl+Shift+O")
        overlay.setCheckable(True)
        self.charts.mode_box.currentIndexChanged.connect(lambda i: overlay.setChecked(i == 1))

        self.release_views.build_menu(bar, self._action)

        help_menu = bar.addMenu("&Help")
        self._action(help_menu, "&Keyboard shortcuts", self.show_shortcuts, QKeySequence.StandardKey.HelpContents)
        self._action(help_menu, "&Why is my device not listed?", lambda: show_why_not_listed(self))
        self._action(help_menu, "&About", self._about)

    # -- the current device ------------------------------------------------------------------------------------

    def set_current(self, state: DeviceState | None) -> None:
        """The device every panel follows: details, charts, the table's selection and the window's title."""
        if state is self.current or (state is not None and state not in self.fleet.states):
            return
        self.current = state
        self.details.set_device(state)
        self.charts.set_selected(state)
        self._title()
        if state is not None and self.table.current() is not state:
            self.table.select(state)  # comes back here through `selected`, and stops at the check above

    def _title(self) -> None:
        name = visible_text(self.current.name, 60) if self.current is not None else ""
        self.setWindowTitle(f"Edge Console — {name}" if name else "Edge Console")

    def _on_tab_changed(self, _index: int) -> None:
        tab = self.tabs.currentWidget()
        if isinstance(tab, PreviewPanel | ComparePanel):
            self.set_current(tab.state)

    # -- actions -----------------------------------------------------------------------------------------------

    def _with_current(self, fn) -> None:
        state = self.current or self.table.current()  # the one rule (module docstring): never the tab's by itself
        if state is None:
            self.statusBar().showMessage("Select a device in the table first.", 5000)
        else:
            fn(state)

    def pair_with(self, state: DeviceState) -> PairDialog:
        """Type the one-time code the device printed; on success its certificate is pinned and it reconnects."""
        return open_pair_dialog(self, self.fleet, state)

    def add_device_dialog(self) -> None:
        dialog = AddDeviceDialog(self)
        if dialog.exec() and dialog.address is not None:
            state = self.fleet.add_manual(dialog.address)
            self.set_current(state)
            self.statusBar().showMessage(f"Added {dialog.address}; connecting…", 5000)

    def open_preview(self, state: DeviceState) -> None:
        panel = self.previews.get(state)
        if panel is None:
            panel = PreviewPanel(state)
            panel.compare_requested.connect(self.open_compare)
            self.previews[state] = panel
            self.tabs.addTab(panel, state.name)
        self.tabs.setCurrentWidget(panel)
        self.set_current(state)
        panel.canvas.setFocus()

    def open_compare(self, state: DeviceState) -> ComparePanel:
        """The device's Compare tab (opened next to its preview, or brought to front if already open)."""
        panel = self.compares.get(state)
        if panel is None:
            if self.model_library is None:
                self.model_library = ModelLibrary([models_dir()])  # the shipped models are there from the start
            panel = ComparePanel(state, self.model_library, self.fleet.runtime)
            panel.set_release_models(self.release_views.release_models())
            self.compares[state] = panel
            preview = self.previews.get(state)
            at = self.tabs.indexOf(preview) + 1 if preview is not None else self.tabs.count()
            self.tabs.insertTab(at, panel, self._compare_title(state))
        self.tabs.setCurrentWidget(panel)
        self.set_current(state)
        return panel

    @staticmethod
    def _compare_title(state: DeviceState) -> str:
        return f"Compare: {state.name}"

    def open_releases(self, page: int = LIBRARY) -> ReleasesWorkspace:
        """The Releases tab in front, on `page` (LIBRARY, VERSIONS, ROLLOUTS, AUDIT of releases_ui.workspace)."""
        return self.release_views.open(page)

    def _close_tab(self, index: int) -> None:
        widget = self.tabs.widget(index)
        if widget is not None and widget is self.release_views.tab:
            self.release_views.close_tab(index)
        elif isinstance(widget, PreviewPanel):
            self.tabs.removeTab(index)
            widget.detach()
            self.previews.pop(widget.state, None)
            widget.deleteLater()
        elif isinstance(widget, ComparePanel):
            self.tabs.removeTab(index)
            widget.shutdown()  # stops continuous mode and releases the device and the local model
            self.compares.pop(widget.state, None)
            widget.deleteLater()

    def _toggle_pause(self) -> None:
        current = self.tabs.currentWidget()
        if isinstance(current, PreviewPanel):
            current.canvas.set_paused(not current.canvas.paused)
        elif isinstance(current, ComparePanel):
            current.set_continuous(not current.continuous_button.isChecked())
        else:
            self.grid.controls.pause_button.toggle()

    def _forget(self, state: DeviceState) -> None:
        box = QMessageBox(QMessageBox.Icon.Question, f"Forget {visible_text(state.name, 60)}",
                          f"Remove {state.name} from the list and from the console's memory?\n"
                          "It comes back if it is announced on the network or added again.",
                          QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, self)
        box.setTextFormat(Qt.TextFormat.PlainText)  # the name is the device's word, never markup
        if box.exec() == QMessageBox.StandardButton.Yes:
            self.fleet.forget(state)

    def _focus_filter(self) -> None:
        self.devices_dock.show()
        self.table.filter_edit.setFocus()
        self.table.filter_edit.selectAll()

    def show_shortcuts(self) -> ShortcutsDialog:
        dialog = ShortcutsDialog(self.menuBar(), self)
        dialog.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        dialog.show()
        return dialog

    def _about(self) -> None:
        QMessageBox.about(self, "Edge Console", "Edge Console — find, watch and check edge-AI devices offline.\n\n"
                          f"Database: {self.fleet.database}")

    # -- the console's database ------------------------------------------------------------------------------------

    def _on_database_problem(self, message: str, resettable: bool) -> None:
        if resettable:
            self.notice.show_notice(message, "error", "Move it aside and start a fresh one", self._reset_database)
        else:
            self.notice.show_notice(message, "warning")

    def _reset_database(self) -> None:
        def done(moved: Path | None) -> None:
            kept = f"; the unreadable file is kept as {moved}" if moved else ""
            self.notice.show_notice(f"Started a fresh database at {self.fleet.database}{kept}. Devices are "
                                    "remembered again from now on.", "info")

        self.fleet.reset_database(done)

    # -- fleet events ------------------------------------------------------------------------------------------------

    def _on_device_added(self, state: DeviceState) -> None:
        QTimer.singleShot(0, self._update_status)
        self.grid.add_device(state)
        self.charts.add_device(state)
        state.changed.connect(lambda s=state: self._retitle(s))
        # Device problems also pass through the status bar (the session already limits how often).
        state.error_added.connect(lambda message, s=state: self.statusBar().showMessage(f"{s.name}: {message}", 8000))
        if self.current is None:
            self.set_current(state)

    def _on_device_removed(self, state: DeviceState) -> None:
        self.grid.remove_device(state)
        self.charts.remove_device(state)
        for panel in (self.previews.get(state), self.compares.get(state)):
            if panel is not None:
                self._close_tab(self.tabs.indexOf(panel))
        if self.current is state:
            self.current = None
            self.set_current(self.table.current())
        if self.details.state is state:
            self.details.set_device(None)

    def _retitle(self, state: DeviceState) -> None:
        if state is self.current:
            self._title()
        panel = self.previews.get(state)
        if panel is not None:
            self.tabs.setTabText(self.tabs.indexOf(panel), state.name)
        compare = self.compares.get(state)
        if compare is not None:
            self.tabs.setTabText(self.tabs.indexOf(compare), self._compare_title(state))

    def _update_status(self) -> None:
        states = self.fleet.states
        counts = {s: sum(1 for d in states if d.status == s) for s in ("online", "degraded", "failing", "offline")}
        parts = [f"{len(states)} device{'s' if len(states) != 1 else ''}"]
        parts += [f"{n} {s}" for s, n in counts.items() if n]
        discovery = self.fleet.discovery.description if self.fleet.discovery else "discovery off"
        self.status_label.setText(" · ".join(parts) + f"   |   {discovery}")

    # -- layout: restored on the first show, once the window knows its screen ------------------------------------------

    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802 - Qt override
        if not self._laid_out:
            self._laid_out = True
            if not window_layout.restore_layout(self, self.settings):
                window_layout.first_layout(self, self.devices_dock, self.details_dock, self.charts_dock)
            window = self.settings.value("telemetry_window")
            if window in WINDOWS_S:
                self.charts.window_box.setCurrentText(window)
        super().showEvent(event)

    def save_layout(self) -> None:
        window_layout.save_layout(self, self.settings)
        self.settings.setValue("telemetry_window", self.charts.window_box.currentText())
        self.settings.sync()

    def closeEvent(self, event: QCloseEvent) -> None:  # noqa: N802 - Qt override
        if not self.release_views.may_close():  # a rollout is running: asked first (it can be resumed later)
            event.ignore()
            return
        self.save_layout()
        self.grid.detach()
        for panel in self.previews.values():
            panel.detach()
        for compare in self.compares.values():
            compare.shutdown()
        self.release_views.close()
        super().closeEvent(event)
