"""The seam between a device's network session (loop thread) and its `DeviceState` (GUI thread)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from edge_console.client.frame_ring import ReceivedFrame
from edge_console.client.net.addresses import DeviceAddress
from edge_console.client.net.device_session import DeviceSession
from edge_console.client.net.loop_thread import NetworkLoop
from edge_console.console.device_state import DeviceState
from edge_console.console.frames import DecodedFrame
from edge_console.console.gui_dispatch import GuiDispatcher


class SessionBridge:
    """Implements `net.device_session.SessionListener`; each call is posted, never run on the loop thread.

    Frames skip the queue: the slot keeps only the newest, and the GUI is woken at most once per pending frame.
    """

    def __init__(self, state: DeviceState, dispatcher: GuiDispatcher, on_info: Callable[[DeviceState, dict], None],
                 on_seen: Callable[[DeviceState], None]) -> None:
        self.state = state
        self._post = dispatcher.post
        self._on_info = on_info
        self._on_seen = on_seen

    def on_info(self, info: dict) -> None:
        self._post(self._on_info, self.state, info)

    def on_connection(self, connected: bool, reason: str) -> None:
        self._post(self.state.apply_connection, connected, reason)
        self._post(self._on_seen, self.state)

    def on_health(self, health: dict) -> None:
        self._post(self.state.apply_health, health)

    def on_telemetry(self, samples: list[dict], from_history: bool) -> None:
        self._post(self.state.apply_telemetry, samples, from_history)
        if not from_history:
            self._post(self._on_seen, self.state)

    def on_clock(self, offset_s: float, round_trip_s: float) -> None:
        self._post(self.state.apply_clock, offset_s, round_trip_s)

    def on_stream_state(self, live: bool, reason: str) -> None:
        self._post(self.state.apply_stream_state, live, reason)

    def on_frame(self, frame: DecodedFrame) -> None:
        # Every frame received goes into the ring (a paused preview steps through them), even one the slot then
        # replaces before the GUI takes it.
        self.state.frame_ring.add(ReceivedFrame(frame.header, frame.message, frame.received_at))
        if self.state.frame_slot.put(frame):
            self._post(self.state.take_new_frame)

    def on_error(self, message: str) -> None:
        self._post(self.state.add_error, message)

    def on_trust(self, trust: str, detail: str) -> None:
        self._post(self.state.apply_trust, trust, detail)


class SessionHandle:
    """The GUI thread's handle on a `DeviceSession` that lives on the network loop.

    The session is created on the loop thread (its tasks belong to that loop); every call through the handle is
    forwarded there with `call_soon`, so the GUI thread never waits for it.
    """

    def __init__(self, network: NetworkLoop, create: Callable[[], DeviceSession]) -> None:
        self._network = network
        self._session: DeviceSession | None = None

        def start() -> None:
            self._session = create()
            self._session.start()

        network.call_soon(start)

    def _call(self, method: str, *args: object) -> None:
        def run() -> None:
            if self._session is not None:
                getattr(self._session, method)(*args)
        self._network.call_soon(run)

    def set_stream_wanted(self, wanted: bool) -> None:
        self._call("set_stream_wanted", wanted)

    def set_address(self, address: DeviceAddress) -> None:
        self._call("set_address", address)

    def reconnect_now(self) -> None:
        self._call("reconnect_now")

    def close(self) -> None:
        """Stop the session without waiting for it (used when one device is removed)."""
        def run() -> None:
            session, self._session = self._session, None
            if session is not None:
                asyncio.get_running_loop().create_task(session.close())
        self._network.call_soon(run)

    async def aclose(self) -> None:
        """Awaited on the loop at shutdown, so every socket is closed before the loop stops."""
        session, self._session = self._session, None
        if session is not None:
            await session.close()
