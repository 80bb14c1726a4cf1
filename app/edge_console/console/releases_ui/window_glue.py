"""How the main window carries the release views: the Releases menu, the Releases tab (made when first opened,
hidden rather than destroyed when closed), the offer to resume a rollout an earlier console left unfinished, the
library's releases in every Compare panel's model picker, and the views' messages in the window's notice bar.

Kept out of `main_window.py` so the window knows one object here, not the views' internals.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QMenuBar, QStatusBar, QTabWidget

from edge_console.client.releases.library import ReleaseEntry
from edge_console.client.releases.rollout import Rollout
from edge_console.console.releases_ui.center import ReleaseCenter
from edge_console.console.releases_ui.confirm import confirm
from edge_console.console.releases_ui.rollouts import age_of
from edge_console.console.releases_ui.workspace import AUDIT, LIBRARY, ROLLOUTS, VERSIONS, ReleasesWorkspace

if TYPE_CHECKING:
    from edge_console.console.compare.panel import ComparePanel
    from edge_console.console.device_state import DeviceState
    from edge_console.console.fleet import Fleet
    from edge_console.console.widgets.device_table import DeviceTable
    from edge_console.console.widgets.notice_bar import NoticeBar


class HostWindow(Protocol):
    """What the release views use of the main window (`main_window.MainWindow`, a QMainWindow: their parent, its
    status bar): its tabs, its fleet, the device in front, the Compare panels and the notice bar. Named here, not
    imported, so the window can hold this glue without the two importing each other."""

    tabs: QTabWidget
    fleet: Fleet
    current: DeviceState | None
    table: DeviceTable
    compares: dict[DeviceState, ComparePanel]
    notice: NoticeBar

    def statusBar(self) -> QStatusBar: ...  # noqa: N802 - Qt's name
    def open_compare(self, state: DeviceState) -> ComparePanel: ...


class WindowReleases(QObject):
    def __init__(self, window: HostWindow) -> None:
        super().__init__(window)
        self.window = window
        self.center = ReleaseCenter(window.fleet, self)
        self.tab: ReleasesWorkspace | None = None
        self.center.message.connect(self._say)
        self.center.rollouts.message.connect(self._say)
        self.center.rollouts.unfinished_found.connect(self._offer_resume)
        self.center.entries_changed.connect(self._update_compares)

    def build_menu(self, bar: QMenuBar, action: Callable[..., object]) -> None:
        """`action(menu, text, slot, shortcut)`: the window's way of adding an action (the F1 list reads them)."""
        menu = bar.addMenu("&Releases")
        action(menu, "Release &library", lambda: self.open(LIBRARY), "Ctrl+Shift+R")
        action(menu, "&Import release file…", lambda: self.open(LIBRARY).library.ask_import_file(), "Ctrl+I")
        action(menu, "Import release &folder (USB)…", lambda: self.open(LIBRARY).library.ask_import_folder(),
               "Ctrl+Shift+I")
        action(menu, "&Trust release authority…", lambda: self.open(LIBRARY).library.ask_trust())
        menu.addSeparator()
        action(menu, "&Push release…", lambda: self.open(ROLLOUTS).open_push(), "Ctrl+P")
        action(menu, "Fleet &versions", lambda: self.open(VERSIONS), "Ctrl+Shift+V")
        action(menu, "R&ollouts", lambda: self.open(ROLLOUTS), "Ctrl+Shift+P")
        action(menu, "&Audit log", lambda: self.open(AUDIT), "Ctrl+Shift+A")

    def open(self, page: int = LIBRARY) -> ReleasesWorkspace:
        """The Releases tab (made on first use), in front, on `page`."""
        tabs = self.window.tabs
        if self.tab is None:
            self.tab = ReleasesWorkspace(self.center)
            self.tab.preview_requested.connect(self.preview)
        if tabs.indexOf(self.tab) < 0:
            tabs.insertTab(1, self.tab, "Releases")
        tabs.setCurrentWidget(self.tab)
        self.tab.show_page(page)
        return self.tab

    def close_tab(self, index: int) -> None:
        self.window.tabs.removeTab(index)  # hidden, not destroyed: its rollouts and pages carry on

    def preview(self, entry: ReleaseEntry) -> None:
        """Compare the current device's live frames with the model inside `entry`."""
        window = self.window
        state = window.current or window.table.current()
        if state is None:
            window.statusBar().showMessage("Select a device in the table first, then preview the release on it.",
                                           8000)
            return
        window.open_compare(state).choose_model(entry.model_path)

    def release_models(self) -> dict[str, str]:
        """{model file: release label} of the library's verified releases, for the Compare panels' pickers."""
        return {str(e.model_path): e.label for e in self.center.verified()}

    def _update_compares(self) -> None:
        models = self.release_models()
        for panel in self.window.compares.values():
            panel.set_release_models(models)

    def _say(self, text: str, kind: str) -> None:
        if kind == "info":
            self.window.statusBar().showMessage(text, 10000)
        else:
            self.window.notice.show_notice(text, kind)

    def _offer_resume(self, unfinished: list[Rollout]) -> None:
        rollout = max(unfinished, key=lambda r: r.created_at)
        good = sum(1 for s in rollout.steps if s.phase == "good")
        sent = sum(1 for s in rollout.steps if s.phase != "skipped")
        more = f" ({len(unfinished) - 1} more unfinished: see Releases ▸ Rollouts)" if len(unfinished) > 1 else ""
        self.window.notice.show_notice(
            f"Resume rollout of {rollout.release_label}? It was started {age_of(rollout)} and left unfinished when "
            f"the console closed: {good} of {sent} device(s) good so far.{more}", "info", "Resume rollout",
            lambda: self.resume(rollout.id))

    def resume(self, rollout_id: str) -> None:
        self.window.notice.dismiss()
        self.open(ROLLOUTS).rollouts.select(rollout_id)
        self.center.rollouts.resume(rollout_id)

    def may_close(self) -> bool:
        """Whether the window may close now: quitting while a rollout runs stops following it, so it is asked
        first (the rollout stays resumable: the next console offers to pick it up where it stopped)."""
        control = self.center.rollouts
        running = [r for i, r in control.rollouts.items() if control.is_running(i) and r.status == "running"]
        if not running:
            return True
        good = sum(1 for r in running for s in r.steps if s.phase == "good")
        sent = sum(1 for r in running for s in r.steps if s.phase != "skipped")
        labels = ", ".join(r.release_label for r in running)
        return confirm(self.window, "Quit while a rollout is running",
                       f"The rollout of {labels} is still running ({good} of {sent} device(s) good so far). "
                       "Quit anyway?", "Quit", "Keep the console open",
                       "The console stops following it and can resume it later: when it starts again it offers to "
                       "pick it up where it stopped. A device already installing finishes by itself.")

    def close(self) -> None:
        if self.tab is not None:
            self.tab.audit.source.close()  # a merge still reading devices' logs is dropped, not shown
        self.center.close()  # rollouts stop being followed here and stay resumable by the next console
