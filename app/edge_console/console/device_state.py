"""What the console knows about one device, as a plain QObject that emits signals; widgets only read it and draw.

Lives on the GUI thread. Who the device is (id, name, address, how it was found) is its `DeviceIdentity`, which the
Qt-free `DeviceRegistry` decides; the attributes below read it through. The network layer never touches a state
directly: it posts `apply_*` calls through the `GuiDispatcher`. Frames are the exception made for speed: the
decoder fills `frame_slot` from its own thread and posts `take_new_frame` only when the GUI has not yet been told
(see `LatestFrameSlot`).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from PySide6.QtCore import QObject, Signal

from edge_console.client.device_registry import DeviceIdentity
from edge_console.client.frame_ring import FrameRing, ReceivedFrame
from edge_console.client.net.addresses import DeviceAddress
from edge_console.client.net.device_clock import console_time
from edge_console.client.telemetry_ring import TelemetryRing
from edge_console.client.untrusted_text import visible_text
from edge_console.console.frames import DecodedFrame, LatestFrameSlot, decode_stream_message

MAX_ERRORS_KEPT = 50
MAX_NAME_CHARS = 100  # a device name shown in a table row and a tab title
MAX_REASON_CHARS = 500  # why a device or its stream is not live: a sentence or two
# How a frame kept in the ring is decoded again: (frame, on_decoded) -> None, on_decoded called on the GUI thread.
RingDecoder = Callable[[ReceivedFrame, Callable[[DecodedFrame], None]], None]


@dataclass(frozen=True, slots=True)
class DeviceError:
    at: float  # console clock
    message: str


def _identity_field(name: str) -> property:
    def get(self: DeviceState):
        return getattr(self.identity, name)

    def set(self: DeviceState, value) -> None:
        setattr(self.identity, name, value)

    return property(get, set, doc=f"this device's identity.{name} (see DeviceIdentity)")


def _shown_name(self: DeviceState) -> str:
    raw = self.identity.name
    if raw is not self._name_shown_for:  # made visible once per name, not on every paint that shows it
        self._name_shown_for, self._name_shown = raw, visible_text(raw, MAX_NAME_CHARS)
    return self._name_shown


def _set_name(self: DeviceState, value: str) -> None:
    self.identity.name = value


# States in which the console does not talk to the device beyond its public /v1/info.
TRUST_BLOCKED = ("not paired", "certificate changed", "no longer paired")


class DeviceState(QObject):
    changed = Signal()  # identity, status, address, info, health, clock
    telemetry_added = Signal()
    frame_arrived = Signal()
    error_added = Signal(str)
    stream_wanted_changed = Signal(bool)

    device_id = _identity_field("device_id")
    # The name as every view shows it: a device's own name is untrusted text (see untrusted_text.py).
    name = property(_shown_name, _set_name, doc="this device's name, made safe to show")
    address = _identity_field("address")
    manual = _identity_field("manual")
    announced = _identity_field("announced")
    txt = _identity_field("txt")
    first_seen = _identity_field("first_seen")
    last_seen = _identity_field("last_seen")

    def __init__(self, address: DeviceAddress | None = None, *, device_id: str | None = None, name: str = "",
                 manual: bool = False, identity: DeviceIdentity | None = None, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.identity = identity or DeviceIdentity(address, device_id, name, manual)
        self._name_shown_for: str | None = None
        self._name_shown = ""
        self.info: dict = {}
        self.health: dict = {}
        self.trust = ""  # viewer / operator / admin, or a TRUST_BLOCKED state, or lab mode; "" until known
        self.trust_detail = ""
        self.connected = False
        self.ever_connected = False
        self.failed_since_start = False  # a connection attempt failed in this session: "offline", not "connecting"
        self.status_reason = ""
        self.clock_offset: float | None = None  # device clock minus console clock, s
        self.clock_round_trip: float | None = None
        self.telemetry = TelemetryRing()
        self.latest_sample: dict | None = None
        self.stream_live = False
        self.stream_reason = ""
        self.frame_slot = LatestFrameSlot()
        self.frame_ring = FrameRing()  # what a paused preview steps through (filled by the session bridge)
        self.ring_decoder: RingDecoder = _decode_now  # the fleet hands in its decoder pool
        self.latest_frame: DecodedFrame | None = None
        self.frames_received = 0
        self._frame_times: deque[float] = deque(maxlen=30)
        self.errors: deque[DeviceError] = deque(maxlen=MAX_ERRORS_KEPT)
        self._stream_users = 0

    # -- derived views -----------------------------------------------------------------------------------------

    @property
    def status(self) -> str:
        """online / degraded / failing (as the device's health says), offline, or connecting (never reached yet);
        or what stands between the console and the device: not paired, certificate changed, no longer paired."""
        if self.trust in TRUST_BLOCKED:
            return self.trust
        if not self.connected:
            return "offline" if self.ever_connected or self.failed_since_start else "connecting"
        return {"ok": "online", "degraded": "degraded", "failing": "failing"}.get(self.health.get("status"), "online")

    @property
    def model_name(self) -> str:
        return visible_text((self.info.get("model") or {}).get("name") or self.txt.get("model", ""), 100)

    @property
    def model_version(self) -> str:
        return visible_text((self.info.get("model") or {}).get("version") or self.txt.get("model_version", ""), 40)

    @property
    def class_names(self) -> list[str]:
        classes = (self.info.get("model") or {}).get("classes") or []
        return [visible_text(c, 64) for c in classes] if isinstance(classes, list) else []

    @property
    def health_reasons(self) -> list[str]:
        return list(self.health.get("reasons") or [])

    @property
    def receive_fps(self) -> float | None:
        """Frames per second arriving at this console (what the preview really gets)."""
        if len(self._frame_times) < 2:
            return None
        span = self._frame_times[-1] - self._frame_times[0]
        return (len(self._frame_times) - 1) / span if span > 0 else None

    # -- updates, all on the GUI thread ---------------------------------------------------------------------------

    def apply_info(self, info: dict) -> None:
        """What the device says about itself (its id and name went through the registry first)."""
        self.info = info
        self._seen()
        self.changed.emit()

    @property
    def role(self) -> str | None:
        """What this console may do with the device: viewer, operator, admin (lab mode: admin); None otherwise."""
        if self.trust in ("viewer", "operator", "admin"):
            return self.trust
        return "admin" if self.trust in ("insecure lab mode", "plain http") else None

    def may(self, needed: str) -> bool:
        """Whether this console's role on the device allows an action that needs `needed`."""
        order = ("viewer", "operator", "admin")
        return self.role is not None and order.index(self.role) >= order.index(needed)

    def apply_trust(self, trust: str, detail: str) -> None:
        if (trust, detail) != (self.trust, self.trust_detail):
            was_blocked = self.trust in TRUST_BLOCKED
            self.trust, self.trust_detail = trust, detail
            if trust in TRUST_BLOCKED and not was_blocked and detail:
                self.add_error(detail)
            self.changed.emit()

    def apply_connection(self, connected: bool, reason: str) -> None:
        was = self.connected
        self.connected = connected
        if connected:
            self.ever_connected = True
            self._seen()
            self.status_reason = ""
        else:
            # Why it is not connected, shown in the table, the tile and the details: it may quote the device (an
            # answer the console cannot read, an HTTP reason phrase), so it is made visible like any device text.
            self.status_reason = visible_text(reason, MAX_REASON_CHARS)
            self.failed_since_start = True
            if was:
                self.add_error(f"went offline: {reason}")
        self.changed.emit()

    def apply_health(self, health: dict) -> None:
        if health != self.health:
            self.health = health
            self.changed.emit()

    def apply_telemetry(self, samples: list[dict], from_history: bool) -> None:
        offset = self.clock_offset or 0.0
        added = False
        for sample in samples:
            added |= self.telemetry.append(console_time(float(sample["ts"]), offset), sample)
        if not from_history and samples:
            self.latest_sample = samples[-1]
            self._seen()
        if added or not from_history:
            self.telemetry_added.emit()

    def apply_clock(self, offset_s: float, round_trip_s: float) -> None:
        self.clock_offset = offset_s
        self.clock_round_trip = round_trip_s

    def apply_stream_state(self, live: bool, reason: str) -> None:
        reason = visible_text(reason, MAX_REASON_CHARS)
        if (live, reason) != (self.stream_live, self.stream_reason):
            self.stream_live = live
            self.stream_reason = reason
            self.changed.emit()

    def take_new_frame(self) -> None:
        frame = self.frame_slot.take()
        if frame is None:
            return
        self.latest_frame = frame
        self.frames_received += 1
        self._frame_times.append(frame.received_at)
        self.frame_arrived.emit()

    def add_error(self, message: str) -> None:
        message = visible_text(message, 500)  # it may quote what the device sent
        self.errors.append(DeviceError(time.time(), message))
        self.error_added.emit(message)

    def decode_kept_frame(self, frame: ReceivedFrame, on_decoded: Callable[[DecodedFrame], None]) -> None:
        """Decode a frame of the ring again (stepping back); `on_decoded` runs on the GUI thread."""
        self.ring_decoder(frame, on_decoded)

    def _seen(self) -> None:
        now = time.time()
        self.last_seen = now
        if self.first_seen is None:
            self.first_seen = now

    # -- stream demand: views say whether they need frames; the fleet opens or closes the stream ------------------

    def acquire_stream(self) -> None:
        self._stream_users += 1
        if self._stream_users == 1:
            self.stream_wanted_changed.emit(True)

    def release_stream(self) -> None:
        if self._stream_users == 0:
            return
        self._stream_users -= 1
        if self._stream_users == 0:
            self.frame_ring.clear()  # kept only for devices on screen
            self.stream_wanted_changed.emit(False)

    @property
    def stream_wanted(self) -> bool:
        return self._stream_users > 0


def _decode_now(frame: ReceivedFrame, on_decoded: Callable[[DecodedFrame], None]) -> None:
    """For a state that no fleet owns (a test's): decode at once. A fleet's states decode on its decoder pool."""
    try:
        on_decoded(decode_stream_message(frame.message, frame.received_at))
    except ValueError:  # ProtocolError: it decoded once, so only a changed rule could refuse it now
        pass
