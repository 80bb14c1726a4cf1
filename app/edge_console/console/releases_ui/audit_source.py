"""The merged audit trail for the Audit page: the console's own log and every reachable device's, each chain
verified (`releases.audit_merge`), read in the background: devices on the network loop, files and the database
on the release lane. A device that cannot be read is listed with the reason, never silently left out.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import aiohttp
from PySide6.QtCore import QObject, Signal

from edge_console.client.releases.audit_merge import MergedAudit, SourceLog, check, fetch_device_log, fetch_signed_head
from edge_console.client.tasks import Task
from edge_console.core.audit.chain import ChainReport

if TYPE_CHECKING:
    from edge_console.console.releases_ui.center import ReleaseCenter


class AuditSource(QObject):
    loaded = Signal(object)  # MergedAudit
    failed = Signal(str)

    def __init__(self, center: ReleaseCenter, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.center = center
        self.latest: MergedAudit | None = None
        self._task: Task | None = None

    @property
    def loading(self) -> bool:
        return self._task is not None and not self._task.done

    def load(self) -> None:
        if self.loading:
            return
        fleet, center = self.center.fleet, self.center
        devices: list[tuple[str, str, object, bytes | None]] = []  # name, id, (base, tls) or why not, pinned cert
        runtime = fleet.runtime
        for state in fleet.states:
            if not state.device_id:
                continue
            try:
                target: object = fleet.transport(state) if state.connected else "offline: not read this time"
            except LookupError as exc:
                target = str(exc)
            pin = runtime.trust.pin_for(state.device_id)
            devices.append((state.name, state.device_id, target, pin.certificate if pin else None))

        async def merge(_task: Task) -> MergedAudit:
            own = await center.db.run(lambda _db: center.audit_entries())
            fetched: list[tuple[str, str, tuple | None, bytes | None, str]] = []
            for name, device_id, target, certificate in devices:
                if isinstance(target, str):
                    fetched.append((name, device_id, None, None, target))
                    continue
                base, tls = target
                try:
                    signed = await fetch_signed_head(runtime.http(), base, tls)  # first: the entries hold its head
                    log = (await fetch_device_log(runtime.http(), base, tls), signed)
                    fetched.append((name, device_id, log, certificate, ""))
                except (aiohttp.ClientError, OSError, TimeoutError, ValueError) as exc:
                    fetched.append((name, device_id, None, None, f"cannot read its audit log: {exc}"[:300]))

            def verify(db) -> MergedAudit:
                merged = MergedAudit([check("console", "console", own, None)])
                for name, device_id, log, certificate, error in fetched:
                    if log is None:
                        merged.logs.append(SourceLog(name, device_id, [], ChainReport(True, 0), error))
                    else:
                        entries, signed = log
                        merged.logs.append(check(name, device_id, entries, db.heads(), signed, certificate))
                return merged

            return await center.db.run(verify)

        self._task = runtime.tasks.run_async(merge, on_done=self._loaded, on_failed=lambda exc: self.failed.emit(
            f"Cannot read the audit logs: {exc}"))

    def _loaded(self, merged: MergedAudit) -> None:
        self.latest = merged
        self.loaded.emit(merged)

    def close(self) -> None:
        if self._task is not None:
            self._task.abandon()
