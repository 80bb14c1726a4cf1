"""The Releases tab of the main window: Library, Fleet versions, Rollouts and Audit, one page each, and the glue
between them (a Push… anywhere opens the push dialog; a started rollout shows its page).

The main window creates the `ReleaseCenter` at start (so an unfinished rollout is offered for resuming and the
Compare panels list the library's releases) and this tab only when it is first shown.
"""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QTabWidget, QWidget

from edge_console.client.releases.library import ReleaseEntry
from edge_console.console.device_state import DeviceState
from edge_console.console.releases_ui.audit_view import AuditView
from edge_console.console.releases_ui.center import ReleaseCenter
from edge_console.console.releases_ui.library_view import LibraryView
from edge_console.console.releases_ui.push_dialog import PushDialog, RolloutPlan
from edge_console.console.releases_ui.rollout_view import RolloutView
from edge_console.console.releases_ui.versions_view import VersionsView

LIBRARY, VERSIONS, ROLLOUTS, AUDIT = range(4)


class ReleasesWorkspace(QTabWidget):
    preview_requested = Signal(object)  # ReleaseEntry: preview its model on the current device (Compare)

    def __init__(self, center: ReleaseCenter, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setDocumentMode(True)
        self.center = center
        self.library = LibraryView(center)
        self.versions = VersionsView(center)
        self.rollouts = RolloutView(center)
        self.audit = AuditView(center)
        self.addTab(self.library, "Library")
        self.addTab(self.versions, "Fleet versions")
        self.addTab(self.rollouts, "Rollouts")
        self.addTab(self.audit, "Audit")
        self.push_dialog: PushDialog | None = None
        self.library.push_requested.connect(self.open_push)
        self.library.preview_requested.connect(self.preview_requested)
        self.rollouts.push_button.clicked.connect(lambda: self.open_push(self.library.current))

    def show_page(self, page: int) -> None:
        self.setCurrentIndex(page)

    def showEvent(self, event) -> None:  # noqa: N802 - Qt override
        # The library folder also changes without this window: `edge-console release import` in a terminal, the
        # demo's own release made in the background. Read it again whenever the tab comes to the front.
        if not self.center.importing:
            self.center.reload()
        super().showEvent(event)

    def open_push(self, entry: ReleaseEntry | None = None, chosen: list[DeviceState] | None = None) -> PushDialog:
        """The push dialog, window-modal and not blocking: accepting it starts the rollout."""
        if self.push_dialog is not None:
            self.push_dialog.close()
        dialog = self.push_dialog = PushDialog(self.center, entry or self.library.current, chosen, self)
        dialog.accepted.connect(lambda: self._start(dialog.plan()))
        dialog.finished.connect(dialog.deleteLater)
        dialog.open()
        return dialog

    def _start(self, plan: RolloutPlan | None) -> None:
        self.push_dialog = None
        if plan is None or not plan.devices:
            return
        rollout = self.center.rollouts.start(plan.entry, plan.devices, plan.canaries, plan.skipped, plan.batch,
                                             plan.max_failure_pct)
        self.rollouts.select(rollout.id)
        self.show_page(ROLLOUTS)
