"""What every device runs, from its `GET /v1/models`: running, previous, retained, probation left, recent updates.

Polled in the background (on the console's network loop, through `fleet.transport`) while someone watches: the
Fleet versions page or a rollout in progress. Each device has at most one request in flight, so a slow device
never piles requests up. What a device says is kept as it said it; the views make it plain text.
"""

from __future__ import annotations

import time

import aiohttp
from PySide6.QtCore import QObject, QTimer, Signal

from ..device_state import DeviceState
from ..fleet import Fleet
from ..tasks import Task

POLL_MS = 3000
REQUEST_TIMEOUT = aiohttp.ClientTimeout(total=10)


class FleetVersions(QObject):
    changed = Signal()

    def __init__(self, fleet: Fleet, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.fleet = fleet
        self.models: dict[str, dict] = {}  # device id -> its /v1/models answer
        self.fetched_at: dict[str, float] = {}  # device id -> time.monotonic() of that answer
        self.errors: dict[str, str] = {}  # device id -> why its versions could not be read
        self._in_flight: dict[str, Task] = {}
        self._watchers: set[object] = set()
        self._timer = QTimer(self, interval=POLL_MS)
        self._timer.timeout.connect(self.refresh)
        self._closed = False

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
            self.errors[device_id] = str(exc)
            return
        runtime = self.fleet.runtime

        async def get(_task: Task) -> dict:
            async with runtime.http().get(f"{base}/v1/models", ssl=tls, timeout=REQUEST_TIMEOUT) as r:
                body = await r.json(content_type=None)
                if r.status != 200 or not isinstance(body, dict):
                    detail = body.get("detail") if isinstance(body, dict) else ""
                    raise ValueError(f"HTTP {r.status}: {detail}")
                return body

        def done(body: dict) -> None:
            self._in_flight.pop(device_id, None)
            self.models[device_id] = body
            self.fetched_at[device_id] = time.monotonic()
            self.errors.pop(device_id, None)
            self.changed.emit()

        def failed(exc: BaseException) -> None:
            self._in_flight.pop(device_id, None)
            self.errors[device_id] = f"cannot read its versions: {exc}"[:300]
            self.changed.emit()

        self._in_flight[device_id] = runtime.tasks.run_async(get, on_done=done, on_failed=failed)

    def probation_left(self, device_id: str) -> float | None:
        """Seconds of probation left now, counted down from the device's last answer."""
        body = self.models.get(device_id) or {}
        left = body.get("probation_s_left")
        if not isinstance(left, int | float) or isinstance(left, bool):
            return None
        return max(0.0, left - (time.monotonic() - self.fetched_at.get(device_id, time.monotonic())))

    def close(self) -> None:
        self._closed = True
        self._timer.stop()
        for task in self._in_flight.values():
            task.abandon()
        self._in_flight.clear()
