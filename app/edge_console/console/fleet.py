"""The fleet: every device the console knows, where each came from, and the network session behind each.

Sources of devices, merged by the device's own id:
- mDNS announcements (`DeviceDiscovery`),
- `add_manual(host:port)` for networks where multicast is blocked (the id is learnt from `/v1/info`),
- the database of devices seen before (listed offline until they answer again).
The fleet owns the network loop, the decoder pool and the store worker, and shuts all of them down in `close()`.
"""

from __future__ import annotations

import concurrent.futures
import logging
import time
from collections.abc import Callable
from pathlib import Path

import aiohttp
from PySide6.QtCore import QObject, Signal

from .device_state import DeviceState
from .discovery import DeviceDiscovery
from .frames import decode_stream_message, use_single_threaded_opencv
from .gui_dispatch import GuiDispatcher
from .net.addresses import DeviceAddress
from .net.device_session import DeviceSession
from .net.loop_thread import NetworkLoop
from .net.mdns_browser import DiscoveredService
from .session_bridge import SessionBridge, SessionHandle
from .store import DeviceRecord, StoreWorker

log = logging.getLogger(__name__)
LAST_SEEN_WRITE_PERIOD_S = 30.0  # how often a live device's last-seen time is written; it is only a coarse fact
DEFAULT_STREAM_PARAMS = {"max_width": 1280, "max_fps": 30}  # the agent sends 15 fps unless asked


class Fleet(QObject):
    device_added = Signal(object)  # DeviceState
    device_removed = Signal(object)  # DeviceState
    message = Signal(str)  # for the status bar: things the user should know that belong to no single device

    def __init__(self, database: Path, browse_interfaces: list[str] | None, *, discover: bool = True,
                 stream_params: dict[str, int] | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.dispatcher = GuiDispatcher(self)
        self.network = NetworkLoop()
        use_single_threaded_opencv()
        self.decode_pool = concurrent.futures.ThreadPoolExecutor(max_workers=2, thread_name_prefix="console-decode")
        self.store = StoreWorker(database, self.dispatcher.post, self.message.emit)
        self.database = database
        self.discovery = DeviceDiscovery(self.network, self.dispatcher, browse_interfaces, self) if discover else None
        self.stream_params = dict(DEFAULT_STREAM_PARAMS if stream_params is None else stream_params)
        self.states: list[DeviceState] = []
        self._sessions: dict[DeviceState, SessionHandle] = {}
        self._service_owner: dict[str, DeviceState] = {}  # mDNS service name -> device
        self._last_written: dict[DeviceState, float] = {}
        self._http: aiohttp.ClientSession | None = None
        self._closed = False
        # Which announced devices to list (the demo lists only its own fleet); refused ones wait in `_deferred`
        # and are offered again by `recheck_deferred`, since an announcement may come before the filter knows it.
        self.discovery_filter: Callable[[DiscoveredService], bool] | None = None
        self._deferred: dict[str, DiscoveredService] = {}

    # -- life cycle -------------------------------------------------------------------------------------------

    def start(self) -> None:
        self.network.start()
        self.store.submit(lambda store: store.all_devices(), self._restore_remembered)
        if self.discovery is not None:
            self.discovery.found.connect(self._on_discovered)
            self.discovery.removed.connect(self._on_service_removed)
            self.discovery.failed.connect(self.message.emit)
            self.discovery.start()

    def _http_session(self) -> aiohttp.ClientSession:
        """The one HTTP client of all sessions, made on first use on the loop thread (aiohttp binds it there)."""
        if self._http is None:
            # Connect timeouts bound WebSocket handshakes too; no total timeout, streams last for hours.
            timeout = aiohttp.ClientTimeout(total=None, connect=3, sock_connect=3)
            self._http = aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(limit=0))
        return self._http

    def close(self) -> None:
        """Stop every session, discovery, the loop thread, the decoders and the database thread; idempotent."""
        if self._closed:
            return
        self._closed = True
        self.dispatcher.close()
        sessions = list(self._sessions.values())
        self._sessions.clear()

        async def close_all() -> None:
            for session in sessions:
                await session.aclose()
            if self.discovery is not None:
                await self.discovery.aclose()
            if self._http is not None:
                await self._http.close()

        self.network.stop(close_all)
        self.decode_pool.shutdown(wait=True, cancel_futures=True)
        self.store.close()

    # -- adding devices -----------------------------------------------------------------------------------------

    def find(self, device_id: str | None = None, address: DeviceAddress | None = None) -> DeviceState | None:
        for state in self.states:
            if device_id is not None and state.device_id == device_id:
                return state
        for state in self.states:
            if address is not None and state.address == address and (device_id is None or state.device_id is None):
                return state
        return None

    def add_manual(self, address: DeviceAddress) -> DeviceState:
        """Add (or return the existing) device at `address`; its id is learnt when it first answers."""
        state = self.find(address=address)
        if state is None:
            state = self._add_state(DeviceState(address, manual=True))
            self._remember(state, force=True)
        else:
            state.manual = True
            self.reconnect(state)
        return state

    def _restore_remembered(self, records: list[DeviceRecord]) -> None:
        """List the devices of earlier sessions (offline until they answer), unless already found meanwhile."""
        for rec in records:
            if not rec.host or not rec.port:
                continue
            address = DeviceAddress(rec.host, rec.port)
            provisional = rec.id.startswith("manual:")  # added by address, never answered
            existing = self.find(address=address) if provisional else self.find(device_id=rec.id)
            if existing is not None:
                if rec.first_seen and (existing.first_seen is None or rec.first_seen < existing.first_seen):
                    existing.restore_seen(rec.first_seen, existing.last_seen or rec.last_seen)
                continue
            state = DeviceState(address, device_id=None if provisional else rec.id, name=rec.name, manual=rec.manual)
            state.txt = {"model": rec.model_name, "model_version": rec.model_version, "arch": rec.arch}
            state.restore_seen(rec.first_seen, rec.last_seen)
            self._add_state(state)

    def _on_discovered(self, service: DiscoveredService) -> None:
        address = service.best_address
        if address is None:
            return
        if self.discovery_filter is not None and not self.discovery_filter(service):
            self._deferred[service.service_name] = service
            return
        self._deferred.pop(service.service_name, None)
        state = self.find(device_id=service.device_id, address=address)
        if state is None:
            state = self._add_state(DeviceState(address, device_id=service.device_id, name=service.name))
        else:
            if state.device_id is None:
                state.device_id = service.device_id
            state.set_identity(name=service.name if not state.info else None, address=address)
            handle = self._sessions.get(state)
            if handle is not None:
                handle.set_address(address)
        self._service_owner[service.service_name] = state
        state.apply_txt(service.txt)

    def recheck_deferred(self) -> None:
        for service in list(self._deferred.values()):
            self._on_discovered(service)

    def _on_service_removed(self, service_name: str) -> None:
        self._deferred.pop(service_name, None)
        state = self._service_owner.pop(service_name, None)
        if state is not None:
            state.mark_announced(False)

    def _add_state(self, state: DeviceState) -> DeviceState:
        state.setParent(self)
        self.states.append(state)
        state.stream_wanted_changed.connect(lambda wanted, s=state: self._set_stream_wanted(s, wanted))
        self._start_session(state)
        self.device_added.emit(state)
        return state

    def _start_session(self, state: DeviceState) -> None:
        if state.address is None or self._closed:
            return
        bridge = SessionBridge(state, self.dispatcher, self._on_info, self._remember)
        address, wanted = state.address, state.stream_wanted

        def create() -> DeviceSession:  # runs on the loop thread
            session = DeviceSession(self._http_session(), address, bridge, decode_stream_message, self.decode_pool,
                                    self.stream_params)
            if wanted:
                session.set_stream_wanted(True)
            return session

        self._sessions[state] = SessionHandle(self.network, create)

    def _set_stream_wanted(self, state: DeviceState, wanted: bool) -> None:
        handle = self._sessions.get(state)
        if handle is not None:
            handle.set_stream_wanted(wanted)

    # -- what sessions learn ----------------------------------------------------------------------------------

    def _on_info(self, state: DeviceState, info: dict) -> None:
        device_id = str(info["id"])
        if state.device_id is None:
            other = self.find(device_id=device_id)
            if other is not None and other is not state:
                # Added by address, but already listed (found by mDNS or remembered): one row per device.
                other.manual = other.manual or state.manual
                if state.address is not None:
                    other.set_identity(address=state.address)
                    self.reconnect(other)
                old_id = f"manual:{state.address}"
                self.remove(state)
                self.store.submit(lambda store: store.forget(old_id))
                return
            state.device_id = device_id
            self.store.submit(lambda store: store.forget(f"manual:{state.address}"))
        elif state.device_id != device_id:
            state.add_error(f"the device at {state.address} now says it is {device_id!r}, not {state.device_id!r}")
        state.apply_info(info)
        self._remember(state, force=True)

    def _remember(self, state: DeviceState, force: bool = False) -> None:
        """Write the device to the database; a live device at most every LAST_SEEN_WRITE_PERIOD_S."""
        now = time.monotonic()
        if not force and now - self._last_written.get(state, -1e9) < LAST_SEEN_WRITE_PERIOD_S:
            return
        if state.address is None or state not in self._sessions:
            return
        self._last_written[state] = now
        hardware = state.info.get("hardware") if isinstance(state.info.get("hardware"), dict) else None
        record = DeviceRecord(
            id=state.device_id or f"manual:{state.address}", name=state.name, host=state.address.host,
            port=state.address.port, manual=state.manual,
            arch=str((hardware or {}).get("arch") or state.txt.get("arch", "")), hardware=hardware,
            model_name=state.model_name, model_version=state.model_version,
            first_seen=state.first_seen, last_seen=state.last_seen,
        )
        self.store.submit(lambda store: store.record_seen(record))

    # -- user actions -------------------------------------------------------------------------------------------

    def set_address(self, state: DeviceState, address: DeviceAddress) -> None:
        """The user corrected a device's address (it moved, or a typo in a manual add)."""
        state.set_identity(address=address)
        self.reconnect(state)
        self._remember(state, force=True)

    def reconnect(self, state: DeviceState) -> None:
        handle = self._sessions.get(state)
        if handle is not None and state.address is not None:
            handle.set_address(state.address)
            handle.reconnect_now()

    def remove(self, state: DeviceState) -> None:
        """Stop talking to the device and drop it from the list (not from the database)."""
        handle = self._sessions.pop(state, None)
        if handle is not None:
            handle.close()
        if state in self.states:
            self.states.remove(state)
            self.device_removed.emit(state)
        for name, owner in list(self._service_owner.items()):
            if owner is state:
                del self._service_owner[name]
        self._last_written.pop(state, None)

    def forget(self, state: DeviceState) -> None:
        """Remove the device and its database row: it comes back only if it is announced or added again."""
        device_id = state.device_id or f"manual:{state.address}"
        self.remove(state)
        self.store.submit(lambda store: store.forget(device_id))

