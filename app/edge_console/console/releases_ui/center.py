"""The release views' shared state: the library of imported releases, the trusted authority, the console's own
audit log, and (composed here) the rollouts and the fleet's versions. Widgets take the center and only draw.

Everything lives next to the console database (`fleet.database.parent`), the same layout `edge-console release`
uses with `--data-dir`: releases/, release-trust/, delivery.key, audit.log. Disk work (imports, checking refused
releases again once an authority is trusted, removals, listing, the audit log) runs in order on one lane of the
console's task manager; nothing here blocks the GUI thread.
"""

from __future__ import annotations

import getpass
import socket
import threading
from pathlib import Path

from PySide6.QtCore import QObject, Signal

from edge_console.client.releases.audit_merge import console_audit
from edge_console.client.releases.db_lane import DatabaseClosed, ReleaseDb
from edge_console.client.releases.library import (
    SUFFIX,
    ReleaseEntry,
    ReleaseImportError,
    ReleaseLibrary,
    held_reason,
    rollouts_holding,
)
from edge_console.client.tasks import Task, TaskCancelled
from edge_console.console.fleet import Fleet
from edge_console.console.releases_ui.rollouts import RolloutControl
from edge_console.console.releases_ui.versions import FleetVersions
from edge_console.core.audit.log import AuditLog

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
    removal_finished = Signal(str, bool)  # what was removed and what not (and why), whether something was refused
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
        self._import_task: Task | None = None  # an import, or refused releases being checked again
        self._recheck_waiting = False  # an authority was trusted during an import: check again after it
        self._actor = console_actor()
        self.db = ReleaseDb(fleet.runtime.store, self.tasks)
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
                    "Every release it refused is checked again.")
            self.trust_changed.emit(text)
            self.message.emit(text, "info")
            self.recheck_refused()

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
        if result[1]:  # nothing to say when there was nothing to check again
            self.import_finished.emit(*result)
        self.reload()
        self._recheck_if_waiting()

    def _import_failed(self, exc: BaseException) -> None:
        cancelled = isinstance(exc, TaskCancelled)
        text = "Import cancelled; the releases verified before it are kept." if cancelled else f"Import failed: {exc}"
        self.import_finished.emit(None, text, not cancelled)
        self.reload()
        self._recheck_if_waiting()

    # -- checking refused releases again ------------------------------------------------------------------------------
    def recheck_refused(self) -> Task | None:
        """Check every refused release again, as on import (after an authority was trusted), one by one on the
        lane with the import's progress and cancel; each row updates as soon as its release is checked."""
        if self.importing:
            self._recheck_waiting = True
            return None

        def run(task: Task) -> tuple[None, str, bool]:
            library = self._lib()
            refused = library.refused()
            verified, still = 0, []
            for i, entry in enumerate(refused):
                task.raise_if_cancelled()
                self.import_progress_from_job(task, i, len(refused), entry.label)
                try:
                    after = library.recheck(entry)
                except (ReleaseImportError, OSError) as exc:
                    still.append(f"{entry.label}: {exc}")
                    continue
                self.log("release checked again", release=after.label, verified=after.verified,
                         problem=after.problem[:300], sha256=after.sha256)
                if after.verified:
                    verified += 1
                else:
                    still.append(f"{after.label}: {after.problem}")
                listing = library.entries(), library.trusted_root_version()
                self.tasks.post(lambda listing=listing: None if task.abandoned else self._listed(listing))
            if not refused:
                return None, "", False
            self.import_progress_from_job(task, len(refused), len(refused), "")
            summary = f"Checked {len(refused)} refused release(s) again: {verified} verified"
            if still:
                summary += f", {len(still)} still refused ({still[0]}{' …' if len(still) > 1 else ''})"
            return None, summary, bool(still)

        self._import_task = self.tasks.run(run, lane=LANE, on_done=self._imported, on_failed=self._import_failed)
        return self._import_task

    def _recheck_if_waiting(self) -> None:
        if self._recheck_waiting:
            self._recheck_waiting = False
            self.recheck_refused()

    # -- removing ----------------------------------------------------------------------------------------------------
    def removal_refusals(self, entries: list[ReleaseEntry]) -> dict[str, str]:
        """Release id -> why it is not removed: a rollout this console knows still needs it (running here, or
        saved as running: resumable)."""
        running = set(self.rollouts.running)
        known = list(self.rollouts.rollouts.values())
        return {e.id: held_reason(e, holding, running) for e in entries
                if (holding := rollouts_holding(e.id, known, running))}

    def remove(self, entries: list[ReleaseEntry]) -> Task:
        """Delete releases from the library (files and entry), each written in the console's audit log; one that a
        rollout still needs stays, and `removal_finished` says why. The database is asked again on the lane: a
        rollout another console or `edge-console push` saved counts as well."""
        refusals = self.removal_refusals(entries)
        refused, wanted = list(refusals.values()), [e for e in entries if e.id not in refusals]
        running = set(self.rollouts.running)

        def run(_task: Task) -> tuple[list[ReleaseEntry], list[str]]:
            try:
                saved = self.db.submit(lambda db: db.rollouts().all()).result(timeout=60)
            except DatabaseClosed:
                saved = []  # the console is closing; what it knew was checked above
            removed, why_not = [], list(refused)
            for entry in wanted:
                if holding := rollouts_holding(entry.id, saved, running):
                    why_not.append(held_reason(entry, holding, running))
                    continue
                try:
                    self._lib().remove(entry.id)
                except (ReleaseImportError, OSError) as exc:
                    why_not.append(f"{entry.label} was not removed: {exc}")
                    continue
                self.log("release removed", release=entry.label, id=entry.id, verified=entry.verified,
                         sha256=entry.sha256)
                removed.append(entry)
            return removed, why_not

        def done(result: tuple[list[ReleaseEntry], list[str]]) -> None:
            removed, why_not = result
            text = f"Removed {', '.join(e.label for e in removed)} from the library." if removed else ""
            self.removal_finished.emit(" ".join([text, *why_not]).strip(), bool(why_not))
            self.reload()

        return self.tasks.run(run, lane=LANE, on_done=done, on_failed=lambda exc: self.removal_finished.emit(
            f"Nothing was removed: {exc}", True))

    # -- life cycle -----------------------------------------------------------------------------------------------
    def close(self) -> None:
        """Stop following rollouts (they stay resumable), stop polling, and close the database lane."""
        if self._import_task is not None:
            self._import_task.abandon()
        self.rollouts.close()
        self.versions.close()
        self.db.close()
