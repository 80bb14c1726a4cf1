"""What every device runs and which release root it trusts, from its `GET /v1/models` (running, previous, retained,
highest per line, probation left, recent updates) and `GET /v1/release-trust`: the answers the eligibility rules
judge by (`facts.why_not`), and the root this console's library trusts, to compare with and to install.

Polled in the background (on the console's network loop, through `fleet.transport`) while someone watches: the
Fleet versions page, the push dialog, or a rollout in progress. Each device has at most one request in flight, so a
slow device never piles requests up. What a device says is kept as it said it; the views make it plain text.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Protocol

from PySide6.QtCore import QObject, QTimer, Signal, SignalInstance

from edge_console.client.releases.device_reports import DeviceReports, DeviceSaidNo, install_release_root, read_reports
from edge_console.client.releases.eligibility import ConsoleTrust, console_trust
from edge_console.client.releases.library import ReleaseLibrary
from edge_console.client.releases.push import link_problem
from edge_console.client.tasks import Task, TaskManager
from edge_console.console.device_state import DeviceState
from edge_console.console.fleet import Fleet

POLL_MS = 3000


class LibraryHolder(Protocol):
    """What following the library needs of its holder (`center.ReleaseCenter`, which also holds this poller: named
    here, not imported, so the two do not import each other): the library, the task manager whose "releases" lane
    reads it, and the signal that it was read again."""

    tasks: TaskManager
    entries_changed: SignalInstance

    def library_now(self) -> ReleaseLibrary: ...


class FleetVersions(QObject):
    changed = Signal()

    def __init__(self, fleet: Fleet, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.fleet = fleet
        self.models: dict[str, dict] = {}  # device id -> its /v1/models answer
        self.fetched_at: dict[str, float] = {}  # device id -> time.monotonic() of that answer
        self.errors: dict[str, str] = {}  # device id -> why its versions could not be read
        self.trust: dict[str, dict] = {}  # device id -> its /v1/release-trust answer
        self.trust_errors: dict[str, str] = {}  # device id -> why its release trust could not be read
        self.ours: ConsoleTrust | None = None  # the root this console's library trusts (read on the lane)
        self._in_flight: dict[str, Task] = {}
        self._watchers: set[object] = set()
        self._timer = QTimer(self, interval=POLL_MS)
        self._timer.timeout.connect(self.refresh)
        self._closed = False

    @property
    def console_keys(self) -> frozenset[str] | None:
        return self.ours.root_keys if self.ours is not None else None

    def watch(self, who: object, on: bool) -> None:
        """Poll while at least one watcher wants it (a visible page, a running rollout); refresh at once."""
        if on:
            self._watchers.add(who)
        else:
            self._watchers.discard(who)
        if self._watchers and not self._timer.isActive() and not self._closed:
            self._timer.start()
            self.refresh()
        elif not self._watchers:
            self._timer.stop()

    def refresh(self, states: list[DeviceState] | None = None) -> None:
        for state in list(states if states is not None else self.fleet.states):
            self._fetch(state)

    def _fetch(self, state: DeviceState) -> None:
        device_id = state.device_id
        if self._closed or not device_id or device_id in self._in_flight or not state.connected:
            return
        try:
            base, tls = self.fleet.transport(state)
        except LookupError as exc:
            self.errors[device_id] = self.trust_errors[device_id] = str(exc)
            return
        runtime = self.fleet.runtime

        def done(said: DeviceReports) -> None:
            self._in_flight.pop(device_id, None)
            for answers, problems, answer, problem in ((self.models, self.errors, said.models, said.models_problem),
                                                       (self.trust, self.trust_errors, said.trust, said.trust_problem)):
                if answer is not None:
                    answers[device_id] = answer
                    problems.pop(device_id, None)
                else:  # an answer read before is kept: the rules say "cannot read" only when none ever came
                    problems[device_id] = problem[:300]
            if said.models is not None:
                self.fetched_at[device_id] = time.monotonic()
            self.changed.emit()

        def failed(exc: BaseException) -> None:
            self._in_flight.pop(device_id, None)
            self.errors[device_id] = f"cannot read its versions: {exc}"[:300]
            self.changed.emit()

        self._in_flight[device_id] = runtime.tasks.run_async(lambda _t: read_reports(runtime.http(), base, tls),
                                                             on_done=done, on_failed=failed)

    def probation_left(self, device_id: str) -> float | None:
        """Seconds of probation left now, counted down from the device's last answer."""
        body = self.models.get(device_id) or {}
        left = body.get("probation_s_left")
        if not isinstance(left, int | float) or isinstance(left, bool):
            return None
        return max(0.0, left - (time.monotonic() - self.fetched_at.get(device_id, time.monotonic())))

    # -- this console's release root ------------------------------------------------------------------------------
    def follow_library(self, center: LibraryHolder) -> None:
        """Read the root the library trusts (on the library's lane) now and whenever the library is read again."""
        def read(_task: Task) -> ConsoleTrust | None:
            library = center.library_now()
            return console_trust(library.trust_dir, library.roots())

        def done(ours: ConsoleTrust | None) -> None:
            if ours != self.ours:
                self.ours = ours
                self.changed.emit()

        def again() -> None:
            if not self._closed:
                center.tasks.run(read, lane="releases", on_done=done)

        center.entries_changed.connect(again)
        again()

    def install_trust(self, state: DeviceState, on_done: Callable[[dict], None],
                      on_failed: Callable[[str], None]) -> None:
        """Have the device trust this console's release root (`PUT /v1/release-trust/root`, admin); its answers
        are asked again after, so the views judge by what it says now."""
        ours = self.ours
        if ours is None:
            on_failed("this console trusts no release authority: Releases ▸ Trust release authority… first")
            return
        try:
            base, tls = self.fleet.transport(state)
        except LookupError as exc:
            on_failed(str(exc))
            return
        runtime = self.fleet.runtime

        def finished(body: dict) -> None:
            self.refresh([state])
            on_done(body)

        def refused(exc: BaseException) -> None:
            self.refresh([state])
            on_failed(str(exc) if isinstance(exc, DeviceSaidNo | ValueError) else link_problem(exc, base))

        runtime.tasks.run_async(lambda _t: install_release_root(runtime.http(), base, tls, ours.root_json),
                                on_done=finished, on_failed=refused)

    def close(self) -> None:
        self._closed = True
        self._timer.stop()
        for task in self._in_flight.values():
            task.abandon()
        self._in_flight.clear()
