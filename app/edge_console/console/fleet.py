"""Every known device as a `DeviceState`, for the widgets: the thin Qt face of the `DeviceRegistry`.

The registry (Qt-free) decides who a device is and when two sightings are one device; the fleet turns what it
decides into Qt signals and `DeviceState` objects, and gives each listed device its network session. Threads and
shared sessions (network loop, decoders, HTTP client, database) belong to the `ConsoleRuntime`, which the fleet
creates and closes. Announcements come from a `DeviceDiscovery`, or from whatever the caller puts in front of it
(the demo lists only its own devices: `demo.DemoOnlyDiscovery`).
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from PySide6.QtCore import QObject, QTimer, Signal, SignalInstance

from edge_console.client.device_registry import DeviceIdentity, DeviceRegistry
from edge_console.client.fleet_trust import FleetTrust
from edge_console.client.frame_ring import ReceivedFrame
from edge_console.client.net.addresses import DeviceAddress
from edge_console.client.net.device_session import DeviceSession
from edge_console.client.net.mdns_browser import DiscoveredService
from edge_console.client.runtime import ConsoleRuntime
from edge_console.client.store import FORGET_DISCOVERED_AFTER_DAYS, DeviceRecord, RestoredDevices
from edge_console.console.device_state import DeviceState
from edge_console.console.discovery import DeviceDiscovery
from edge_console.console.frames import DecodedFrame, decode_stream_message
from edge_console.console.gui_dispatch import GuiDispatcher
from edge_console.console.session_bridge import SessionBridge, SessionHandle

log = logging.getLogger(__name__)
LAST_SEEN_WRITE_PERIOD_S = 30.0  # how often a live device's last-seen time is written; it is only a coarse fact
DEFAULT_STREAM_PARAMS = {"max_width": 1280, "max_fps": 30}  # the agent sends 15 fps unless asked
IGNORED_REPORT_PERIOD_MS = 30_000  # "N announced devices not listed" is repeated at most this often


class AnnouncementSource(Protocol):
    """What the fleet listens to for announcements: `DeviceDiscovery`, or something standing in front of it."""

    found: SignalInstance  # DiscoveredService
    removed: SignalInstance  # service name
    failed: SignalInstance  # message

    @property
    def description(self) -> str: ...
    def start(self) -> None: ...
    async def aclose(self) -> None: ...


class Fleet(QObject, FleetTrust):
    device_added = Signal(object)  # DeviceState
    device_removed = Signal(object)  # DeviceState
    message = Signal(str)  # for the status bar: things the user should know that belong to no single device
    database_problem = Signal(str, bool)  # what is wrong with the console's database; True: moving it aside helps

    def __init__(self, database: Path, browse_interfaces: list[str] | None, *, discover: bool = True,
                 stream_params: dict[str, int] | None = None, data_dir: Path | None = None,
                 announcements: Callable[[DeviceDiscovery, ConsoleRuntime], AnnouncementSource] | None = None,
                 parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.dispatcher = GuiDispatcher(self)
        self.runtime = ConsoleRuntime(self.dispatcher.post, database, on_store_problem=self.database_problem.emit,
                                      data_dir=data_dir)
        self.database = database
        discovery = DeviceDiscovery(self.runtime.network, self.dispatcher, browse_interfaces, self) if discover else None
        self.discovery: AnnouncementSource | None = (announcements(discovery, self.runtime)
                                                     if announcements and discovery else discovery)
        self.stream_params = dict(DEFAULT_STREAM_PARAMS if stream_params is None else stream_params)
        self.registry = DeviceRegistry(self)
        self.states: list[DeviceState] = []
        self._state_of: dict[DeviceIdentity, DeviceState] = {}
        self._sessions: dict[DeviceState, SessionHandle] = {}
        self._last_written: dict[DeviceState, float] = {}
        self._closed = False
        self._ignored_reported = 0
        self._ignored_timer = QTimer(self, singleShot=True, interval=IGNORED_REPORT_PERIOD_MS)
        self._ignored_timer.timeout.connect(self._report_ignored)

    # -- life cycle -------------------------------------------------------------------------------------------

    def start(self) -> None:
        self.runtime.start()
        self.load_pins()
        self.runtime.store.submit(lambda store: store.restore(), self._restore)
        if self.discovery is not None:
            self.discovery.found.connect(self.on_announced)
            self.discovery.removed.connect(self.registry.withdraw)
            self.discovery.failed.connect(self.message.emit)
            self.discovery.start()

    def close(self) -> None:
        """Stop every session and discovery, then the runtime's threads; idempotent."""
        if self._closed:
            return
        self._closed = True
        self.dispatcher.close()
        sessions = list(self._sessions.values())
        self._sessions.clear()
        discovery = self.discovery

        async def close_sessions() -> None:
            for session in sessions:
                await session.aclose()
            if discovery is not None:
                await discovery.aclose()

        self.runtime.close(close_sessions)

    # -- the widgets' API -------------------------------------------------------------------------------------

    def find(self, device_id: str | None = None, address: DeviceAddress | None = None) -> DeviceState | None:
        identity = self.registry.find(device_id, address)
        return self._state_of.get(identity) if identity is not None else None

    def add_manual(self, address: DeviceAddress) -> DeviceState:
        """Add (or return the existing) device at `address`; its id is learnt when it first answers."""
        return self._state_of[self.registry.add_manual(address)]

    def on_announced(self, service: DiscoveredService) -> None:
        ignored = self.registry.announce(service) is None and self.registry.ignored_announcements
        if ignored and not self._ignored_timer.isActive():  # said at once, then at most every 30 s
            self._report_ignored()
            self._ignored_timer.start()

    def _report_ignored(self) -> None:
        ignored = len(self.registry.ignored_announcements)
        if ignored != self._ignored_reported:
            self._ignored_reported = ignored
            self.message.emit(f"{ignored} more device{'s' if ignored != 1 else ''} announced on the network "
                              f"{'are' if ignored != 1 else 'is'} not listed: the console lists at most "
                              f"{self.registry.max_discovered} devices found by mDNS (add one by address to list it)")

    def _restore(self, restored: RestoredDevices) -> None:
        self.registry.restore(restored.records)
        if restored.problems:
            count = len(restored.problems)
            self.database_problem.emit(
                f"{count} problem{'s' if count != 1 else ''} reading the remembered devices from {self.database}; "
                f"{len(restored.records)} device{'s' if len(restored.records) != 1 else ''} could be read and "
                "are listed. " + " ".join(restored.problems[:5]) + (" …" if count > 5 else ""), False)
        if restored.forgotten:
            self.message.emit(f"forgot {restored.forgotten} device(s) found by mDNS and not seen for "
                              f"{FORGET_DISCOVERED_AFTER_DAYS} days or more; they come back when announced again")

    def reset_database(self, on_done: Callable[[Path | None], None] | None = None) -> None:
        """Move an unreadable database aside, start a fresh one, and remember every listed device in it."""
        def done(moved: Path | None) -> None:
            self.pins_after_reset()
            for state in list(self.states):
                self._remember(state, force=True)
            if on_done is not None:
                on_done(moved)

        self.runtime.store.reset(done)

    def set_address(self, state: DeviceState, address: DeviceAddress) -> None:
        """The user corrected a device's address (it moved, or a typo in a manual add)."""
        self.registry.move(state.identity, address)

    def reconnect(self, state: DeviceState) -> None:
        handle = self._sessions.get(state)
        if handle is not None and state.address is not None:
            handle.set_address(state.address)
            handle.reconnect_now()

    def remove(self, state: DeviceState) -> None:
        """Stop talking to the device and drop it from the list (not from the database)."""
        self.registry.remove(state.identity)

    def forget(self, state: DeviceState) -> None:
        """Remove the device and its database row: it comes back only if it is announced or added again."""
        self.registry.forget(state.identity)

    # -- RegistryListener: what the registry decided, as signals, states and sessions ----------------------------

    def device_listed(self, device: DeviceIdentity) -> None:
        device.pinned = self.runtime.trust.pin_for(device.device_id or "") is not None
        state = DeviceState(identity=device, parent=self)
        state.ring_decoder = self._decode_kept_frame
        self._state_of[device] = state
        self.states.append(state)
        state.stream_wanted_changed.connect(lambda wanted, s=state: self._set_stream_wanted(s, wanted))
        self._start_session(state)
        self.device_added.emit(state)

    def device_unlisted(self, device: DeviceIdentity) -> None:
        state = self._state_of.pop(device, None)
        if state is None:
            return
        handle = self._sessions.pop(state, None)
        if handle is not None:
            handle.close()
        self.states.remove(state)
        self._last_written.pop(state, None)
        self.device_removed.emit(state)

    def identity_changed(self, device: DeviceIdentity) -> None:
        state = self._state_of.get(device)
        if state is not None:
            state.changed.emit()

    def address_changed(self, device: DeviceIdentity) -> None:
        state = self._state_of.get(device)
        handle = self._sessions.get(state) if state is not None else None
        if handle is not None and device.address is not None:
            handle.set_address(device.address)  # reconnects at once: the old address is gone

    def reconnect_device(self, device: DeviceIdentity) -> None:
        state = self._state_of.get(device)
        if state is not None:
            self.reconnect(state)

    def remember_device(self, device: DeviceIdentity) -> None:
        state = self._state_of.get(device)
        if state is not None:
            self._remember(state, force=True)

    def forget_record(self, record_id: str) -> None:
        self.runtime.store.submit(lambda store: store.forget(record_id))

    def identity_conflict(self, device: DeviceIdentity, message: str) -> None:
        state = self._state_of.get(device)
        if state is not None:
            state.add_error(message)

    # -- sessions ------------------------------------------------------------------------------------------------

    def _start_session(self, state: DeviceState) -> None:
        if state.address is None or self._closed:
            return
        bridge = SessionBridge(state, self.dispatcher, self._on_info, self._remember)
        address, wanted, runtime = state.address, state.stream_wanted, self.runtime
        decoder = self._stream_decoder()

        def create() -> DeviceSession:  # runs on the loop thread
            session = DeviceSession(runtime.http(), address, bridge, decoder, runtime.decode_pool, self.stream_params,
                                    trust=runtime.trust)
            if wanted:
                session.set_stream_wanted(True)
            return session

        self._sessions[state] = SessionHandle(self.runtime.network, create)

    def _stream_decoder(self) -> Callable[[bytes, float], DecodedFrame]:
        """Frames are checked against the width this console asked the agent to scale them to."""
        return functools.partial(decode_stream_message, max_width=self.stream_params.get("max_width") or None)

    def _decode_kept_frame(self, frame: ReceivedFrame, on_decoded: Callable[[DecodedFrame], None]) -> None:
        """Decode a frame of a device's ring again on the decoder pool, never on the GUI thread."""
        decoder, post = self._stream_decoder(), self.dispatcher.post

        def decode() -> None:
            try:
                decoded = decoder(frame.message, frame.received_at)
            except ValueError:  # it decoded once: only a changed rule could refuse it now; nothing to show
                return
            post(on_decoded, decoded)

        try:
            self.runtime.decode_pool.submit(decode)
        except RuntimeError:  # shutting down
            pass

    def _set_stream_wanted(self, state: DeviceState, wanted: bool) -> None:
        handle = self._sessions.get(state)
        if handle is not None:
            handle.set_stream_wanted(wanted)

    def _on_info(self, state: DeviceState, info: dict) -> None:
        if state.identity not in self._state_of:
            return  # removed meanwhile (merged, forgotten): a late answer of its closed session
        # Applied first, so the record the registry asks to remember carries the hardware and model; a duplicate
        # the registry then merges away is simply dropped with its info.
        state.apply_info(info)
        state.identity.pinned = self.runtime.trust.pin_for(str(info["id"])) is not None
        self.registry.identify(state.identity, str(info["id"]), str(info.get("name") or ""))

    def _remember(self, state: DeviceState, force: bool = False) -> None:
        """Write the device to the database; a live device at most every LAST_SEEN_WRITE_PERIOD_S."""
        now = time.monotonic()
        if not force and now - self._last_written.get(state, -1e9) < LAST_SEEN_WRITE_PERIOD_S:
            return
        if state.address is None or state not in self._sessions:
            return
        if not state.manual and state.last_seen is None:
            return  # found by mDNS and never answered: an announcement alone is not worth remembering
        self._last_written[state] = now
        hardware = state.info.get("hardware") if isinstance(state.info.get("hardware"), dict) else None
        record = DeviceRecord(
            id=state.identity.record_id, name=state.name, host=state.address.host,
            port=state.address.port, manual=state.manual,
            arch=str((hardware or {}).get("arch") or state.txt.get("arch", "")), hardware=hardware,
            model_name=state.model_name, model_version=state.model_version,
            first_seen=state.first_seen, last_seen=state.last_seen,
        )
        self.runtime.store.submit(lambda store: store.record_seen(record))
