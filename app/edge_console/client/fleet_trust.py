"""The fleet's side of trust (a mixin of `fleet.Fleet`): which devices are pinned, pinning one after pairing (or
from a local enrolment, as the demo does), how to reach a device outside its session, and following a paired
device to a new address only once its pinned certificate is found there.

Pins live in the console's database (`trust_store.PinStore`, on the store's thread) and, for the network loop, in
`runtime.trust` (an immutable mapping replaced on every change).
"""

from __future__ import annotations

import logging
import sqlite3
import ssl
from collections.abc import Callable
from typing import Any, Protocol

from edge_console.client.device_registry import DeviceIdentity
from edge_console.client.net.addresses import DeviceAddress
from edge_console.client.net.device_access import reach
from edge_console.client.net.pairing_client import fetch_certificate
from edge_console.client.store import StoreWorker
from edge_console.client.trust_store import Pin, PinStore
from edge_console.core.trust.tls_identity import certificate_fingerprint

log = logging.getLogger(__name__)


class FleetDevice(Protocol):
    """One device of the fleet as trust reads and marks it (the GUI's per-device state is one): who it is, where,
    what its session found about its trust, and its error list for what trust has to say about it."""

    identity: DeviceIdentity  # trust sets `identity.pinned`

    @property
    def name(self) -> str: ...
    @property
    def device_id(self) -> str | None: ...
    @property
    def address(self) -> DeviceAddress | None: ...
    @property
    def trust(self) -> str: ...  # session_terms.TRUST_STATES, or "" until known
    def add_error(self, message: str) -> None: ...


def device_transport(runtime, state: FleetDevice) -> tuple[str, ssl.SSLContext | None]:
    """How to reach `state`'s device: HTTPS with its pinned context (lab mode: plain HTTP); LookupError when the
    console may not talk to it (no address yet, or not paired)."""
    if state.address is None:
        raise LookupError(f"{state.name} has no known address yet")
    if state.trust in ("insecure lab mode", "plain http"):
        return f"http://{state.address}", None
    pin = runtime.trust.pin_for(state.device_id or "")
    if pin is None:
        raise LookupError(f"{state.name} is not paired with this console: pair it first (Pair…)")
    return f"https://{state.address}", runtime.trust.contexts.pinned(pin)


class FleetTrust:
    """Mixed into Fleet: uses its runtime, registry, states and signals."""

    _pin_store: PinStore | None = None  # touched only on the store's thread

    def _pin_job(self, job: Callable[[PinStore], Any], on_done: Callable[[Any], None] | None = None) -> None:
        """Run `job` on the store's thread, on its connection. A database that cannot be opened was already
        reported, once, by the store worker (with its "start a fresh one" action): pins are then kept in memory
        only, and skipped here."""
        def run(_task: object) -> Any:
            try:
                database = self.runtime.store.database()
            except sqlite3.DatabaseError as exc:
                log.info("pairings not read from %s: %s", self.database, exc)
                return None
            if database is None:  # the console is closing
                return None
            if self._pin_store is None or self._pin_store.database is not database:
                self._pin_store = PinStore(database)  # a new connection after a reset: the fresh file's
            return job(self._pin_store)

        self.runtime.tasks.run(run, lane=StoreWorker.LANE, on_done=on_done)

    def load_pins(self) -> None:
        self._pin_job(lambda pins: pins.all(), on_done=lambda pins: self._pins_loaded(pins or []))

    def pins_after_reset(self) -> None:
        """The database was moved aside and started afresh: write the pairings held in memory into the new one."""
        for pin in self.runtime.trust.all():
            self._pin_job(lambda pins, p=pin: pins.pin(p.device_id, p.certificate, p.role, p.address))

    def _pins_loaded(self, pins: list[Pin]) -> None:
        self.runtime.trust.load(pins)
        for state in self.states:
            if self.runtime.trust.pin_for(state.device_id or "") is not None:
                state.identity.pinned = True
                if state.trust == "not paired":
                    self.reconnect(state)

    def pin_device(self, device_id: str, certificate: bytes, role: str, address: str = "") -> None:
        """Trust this device from now on (its pairing just succeeded); its session reconnects at once."""
        pin = Pin(device_id, certificate, certificate_fingerprint(certificate), role, 0.0, address)
        self.runtime.trust.remember(pin)
        self._pin_job(lambda pins: pins.pin(device_id, certificate, role, address))
        state = self.find(device_id=device_id)
        if state is not None:
            state.identity.pinned = True
            self.reconnect(state)

    def unpin(self, state: FleetDevice) -> None:
        """Forget this device's pairing on the console's side (after a reinstall: pair again)."""
        device_id = state.device_id
        if not device_id:
            return
        self.runtime.trust.drop(device_id)
        self._pin_job(lambda pins: pins.unpin(device_id))
        state.identity.pinned = False
        self.reconnect(state)

    def pin_by_fingerprint(self, address: DeviceAddress, fingerprint: str, role: str) -> None:
        """Pin the device at `address` if it presents the certificate with this fingerprint (a local enrolment:
        the simulator printed it). Anything else is refused and said."""
        async def fetch() -> tuple[bytes, dict]:
            certificate = await fetch_certificate(address)
            access = await reach(self.runtime.http(), address, self.runtime.trust.contexts, lambda _id: None)
            return certificate, access.info

        def done(result: tuple[bytes, dict]) -> None:
            certificate, info = result
            if certificate_fingerprint(certificate) != fingerprint:
                self.message.emit(f"{address} does not present the certificate it was enrolled with; not paired")
                return
            self.pin_device(str(info["id"]), certificate, role, str(address))

        self.runtime.tasks.run_async(lambda _t: fetch(), on_done=done,
                                     on_failed=lambda exc: self.message.emit(f"cannot pin {address}: {exc}"))

    def transport(self, state: FleetDevice) -> tuple[str, ssl.SSLContext | None]:
        """(base URL, TLS context) for talking to the device outside its session (pushes, rollbacks, audit)."""
        return device_transport(self.runtime, state)

    # -- RegistryListener -----------------------------------------------------------------------------------------
    def verify_move(self, device: DeviceIdentity, address: DeviceAddress) -> None:
        """A paired device was announced at another address: follow it only if the pinned certificate is there."""
        trust = self.runtime.trust

        async def check() -> bool:
            access = await reach(self.runtime.http(), address, trust.contexts, trust.pin_for)
            return access.pin is not None and access.device_id == device.device_id

        def done(genuine: bool) -> None:
            if genuine:
                self.registry.follow(device, address)
            else:
                self._impostor(device, address, "it is not paired with this console there")

        self.runtime.tasks.run_async(lambda _t: check(), on_done=done,
                                     on_failed=lambda exc: self._impostor(device, address, str(exc)))

    def _impostor(self, device: DeviceIdentity, address: DeviceAddress, why: str) -> None:
        state = self._state_of.get(device)
        text = (f"something at {address} announces itself as this device, but does not present its pinned "
                f"certificate ({why}); the console stays with the device at {device.address}. This can be a "
                "misconfigured device, or an impostor on the network.")
        if state is not None:
            state.add_error(text)
        self.message.emit(f"{device.name}: possible impostor at {address}")

