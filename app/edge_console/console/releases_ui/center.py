"""The release views' shared state: the library of imported releases, the trusted authority, the console's own
audit log, and (composed here) the rollouts and the fleet's versions. Widgets take the center and only draw.

Everything lives next to the console database (`fleet.database.parent`), the same layout `edge-console release`
uses with `--data-dir`: releases/, release-trust/, delivery.key, audit.log. Disk work (imports, listing, the audit
log) runs in order on one lane of the console's task manager; nothing here blocks the GUI thread.
"""

from __future__ import annotations

import getpass
import socket
import threading
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from edge_console.core.audit_log import AuditLog

from ..fleet import Fleet
from ..releases.audit_merge import console_audit
from ..releases.library import SUFFIX, ReleaseEntry, ReleaseImportError, ReleaseLibrary
from ..tasks import Task, TaskCancelled
from .db_lane import DatabaseClosed, ReleaseDb
from .rollouts import RolloutControl
from .versions import FleetVersions

LANE = "releases"


def console_actor() -> str:
    """Who the console's audit entries name: this machine and the person logged in."""
    try:
        user = getpass.getuser()
    except (OSError, KeyError):
        user = "unknown user"
    return f"console {socket.gethostname()} ({user})"


class ReleaseCenter(QObject):
    entries_changed = Signal()  # `entries` was re-read
    import_progress = Signal(int, int, str)  # files done, files in all, the file being verified
    import_finished = Signal(object, str, bool)  # the last ReleaseEntry imported (or None), a summary, whether
    # something was refused or went wrong (the summary then says what)
    trust_changed = Signal(str)  # a sentence on the authority now trusted
    message = Signal(str, str)  # text, kind ("info", "warning", "error"): for the window's notice bar

    def __init__(self, fleet: Fleet, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.fleet = fleet
        self.tasks = fleet.runtime.tasks
        self.data_dir = Path(fleet.database).parent
        self.entries: list[ReleaseEntry] = []
        self.trusted_root: int | None = None
        self.loaded = False
        self._library: ReleaseLibrary | None = None  # made on the lane: it touches the disk
        self._audit: AuditLog | None = None
        self._lib_lock = threading.Lock()  # the lane, the pool and the network loop may all ask first
        self._import_task: Task | None = None
        self._actor = console_actor()
        self.db = ReleaseDb(fleet.database, self.tasks)
        self.versions = FleetVersions(fleet, self)
        self.rollouts = RolloutControl(self, self)
        self.reload()

    # -- on the lane --------------------------------------------------------------------------------------------------
    def _lib(self) -> ReleaseLibrary:
        with self._lib_lock:
            if self._library is None:
                self._audit = console_audit(self.data_dir)
                self._library = ReleaseLibrary(self.data_dir)
            return self._library

    def library_now(self) -> ReleaseLibrary:
        """The library, for jobs on the lane or the task pool (never the GUI thread: it may create folders)."""
        return self._lib()

    def log(self, event: str, **details: object) -> None:
        """Append to the console's audit log, from any thread. The append is fsynced, so it runs on the database
        lane (in order, and before any later read of the log there), never on the GUI thread or the network loop."""
        actor = self._actor

        def append(_db: object) -> None:
            self._lib()
            assert self._audit is not None
            self._audit.append(actor, event, **details)

        future = self.db.submit(append)
        if future.done() and isinstance(future.exception(), DatabaseClosed):
            append(None)  # the console is closing: written here rather than lost

    def audit_entries(self) -> list[dict]:
        """The console's own log (on the database lane, after every append submitted before)."""
        self._lib()
        assert self._audit is not None
        return self._audit.entries()

    # -- listing -----------------------------------------------------------------------------------------------------
    def reload(self) -> None:
        def read(_task: Task) -> tuple[list[ReleaseEntry], int | None]:
            library = self._lib()
            return library.entries(), library.trusted_root_version()

        self.tasks.run(read, lane=LANE, on_done=self._listed,
                       on_failed=lambda exc: self.message.emit(f"Cannot read the release library: {exc}", "error"))

    def _listed(self, result: tuple[list[ReleaseEntry], int | None]) -> None:
        self.entries, self.trusted_root = result
        self.loaded = True
        self.entries_changed.emit()

    def verified(self) -> list[ReleaseEntry]:
        return [e for e in self.entries if e.verified]

    def entry(self, entry_id: str) -> ReleaseEntry | None:
        return next((e for e in self.entries if e.id == entry_id), None)

    # -- trust ---------------------------------------------------------------------------------------------------
    def trust_root(self, path: Path) -> None:
        """Trust the release authority whose root.json this is (the same file its devices trust)."""
        def trust(_task: Task) -> int:
            data = Path(path).read_bytes()
            root = self._lib().trust(data)
            self.log("release trust installed", root_version=root.signed.version, source=str(path))
            return root.signed.version

        def done(version: int) -> None:
            text = (f"The console now trusts releases signed under root version {version} ({Path(path).name}). "
                    "Import the releases again to verify them against it.")
            self.trust_changed.emit(text)
            self.message.emit(text, "info")
            self.reload()

        self.tasks.run(trust, lane=LANE, on_done=done, on_failed=lambda exc: self.message.emit(
            f"{Path(path).name} is not a release authority's root.json the console can trust: {exc}", "error"))

    # -- importing ------------------------------------------------------------------------------------------------
    @property
    def importing(self) -> bool:
        return self._import_task is not None and not self._import_task.done

    def import_paths(self, paths: list[Path]) -> Task | None:
        """Import release files, and every release file in folders (a USB stick), verified one by one."""
        if self.importing:
            self.message.emit("An import is already running; wait for it or cancel it.", "warning")
            return None

        def run(task: Task) -> tuple[ReleaseEntry | None, str, bool]:
            files: list[Path] = []
            for path in paths:
                path = Path(path)
                files += sorted(path.glob(f"*{SUFFIX}")) if path.is_dir() else [path]
            if not files:
                return None, f"No release files (*{SUFFIX}) in {', '.join(str(p) for p in paths)}.", True
            last, verified, refused = None, 0, []
            for i, file in enumerate(files):
                task.raise_if_cancelled()  # between files: a file being verified is finished, never left half
                self.import_progress_from_job(task, i, len(files), file.name)
                try:
                    entry = self._lib().import_release(file)
                except (ReleaseImportError, OSError) as exc:  # gone, unreadable: the other files still count
                    refused.append(f"{file.name}: {exc}")
                    continue
                last = entry
                self.log("release imported", release=entry.label, verified=entry.verified,
                         problem=entry.problem[:300], sha256=entry.sha256)
                if entry.verified:
                    verified += 1
                else:
                    refused.append(f"{entry.label}: {entry.problem}")
            self.import_progress_from_job(task, len(files), len(files), "")
            summary = f"Imported {len(files)} release file(s): {verified} verified"
            if refused:
                summary += f", {len(refused)} refused ({refused[0]}{' …' if len(refused) > 1 else ''})"
            return last, summary, bool(refused)

        self._import_task = self.tasks.run(run, lane=LANE, on_done=self._imported, on_failed=self._import_failed)
        return self._import_task

    def import_progress_from_job(self, task: Task, done: int, total: int, name: str) -> None:
        self.tasks.post(lambda: None if task.abandoned else self.import_progress.emit(done, total, name))

    def cancel_import(self) -> None:
        if self._import_task is not None:
            self._import_task.cancel()

    def _imported(self, result: tuple[ReleaseEntry | None, str, bool]) -> None:
        self.import_finished.emit(*result)
        self.reload()

    def _import_failed(self, exc: BaseException) -> None:
        cancelled = isinstance(exc, TaskCancelled)
        text = "Import cancelled; the releases verified before it are kept." if cancelled else f"Import failed: {exc}"
        self.import_finished.emit(None, text, not cancelled)
        self.reload()

    # -- life cycle -----------------------------------------------------------------------------------------------
    def close(self) -> None:
        """Stop following rollouts (they stay resumable), stop polling, and close the database lane."""
        if self._import_task is not None:
            self._import_task.abandon()
        self.rollouts.close()
        self.versions.close()
        self.db.close()
