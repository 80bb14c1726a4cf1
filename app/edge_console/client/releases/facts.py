"""What the release views need to know of a device, read from its state (`KnownDevice`) and from what it reported
to the fleet's versions poller (`Reports`): Qt-free logic on plain reads.

Whether a release can go to a device is judged before anything is sent, by the device's own rules
(`releases.eligibility.ineligible`: one set for the push dialog, Fleet versions and the headless push), from what
the device said about itself in /v1/info, /v1/models and /v1/release-trust, whether it is online, and this
console's paired role. A device the console has not reached, or whose answers are not in yet, is never judged
able to take a release by default: it is "not known yet".
"""

from __future__ import annotations

from typing import Protocol

from edge_console.client.releases.eligibility import DeviceFacts, ineligible
from edge_console.client.releases.library import ReleaseEntry
from edge_console.client.untrusted_text import visible_text


class KnownDevice(Protocol):
    """A device as the rules read it (the GUI's per-device state is one): who it is, what its /v1/info said,
    whether it is online. Its `role` (the session's paired role) is read when it has one: see `role_of`."""

    info: dict  # its checked /v1/info; {} until reached

    @property
    def device_id(self) -> str | None: ...
    @property
    def name(self) -> str: ...
    @property
    def connected(self) -> bool: ...
    @property
    def last_seen(self) -> float | None: ...


class Reports(Protocol):  # the fleet's versions poller, as far as the rules need it
    models: dict[str, dict]
    errors: dict[str, str]
    trust: dict[str, dict]
    trust_errors: dict[str, str]

    @property
    def console_keys(self) -> frozenset[str] | None: ...

ROLES = ("viewer", "operator", "admin")


def role_of(state: KnownDevice) -> str | None:
    """The console's role on the device: the session's trust when it knows it, else what /v1/info said."""
    role = getattr(state, "role", None)
    if role in ROLES:
        return role
    info = state.info
    if info.get("insecure_lab_mode"):
        return "admin"  # lab mode: every route is open to everyone
    role = info.get("caller_role")
    return role if role in ROLES else None


def device_facts(state: KnownDevice, reports: Reports | None = None, base_url: str = "") -> DeviceFacts:
    info = state.info
    hardware = info.get("hardware") if isinstance(info.get("hardware"), dict) else {}
    model = info.get("model") if isinstance(info.get("model"), dict) else {}
    providers = hardware.get("providers_available")
    device_id = state.device_id or ""
    return DeviceFacts(device_id, state.name, base_url, str(hardware.get("arch") or ""),
                       str(info.get("agent_version") or ""),
                       [str(p) for p in providers] if isinstance(providers, list) else [], role_of(state),
                       f"{model.get('name', '')} {model.get('version', '')}".strip(),
                       online=state.connected, offline_since=None if state.connected else state.last_seen,
                       models=reports.models.get(device_id) if reports else None,
                       trust=reports.trust.get(device_id) if reports else None,
                       models_problem=reports.errors.get(device_id, "") if reports else "",
                       trust_problem=reports.trust_errors.get(device_id, "") if reports else "")


def why_not(entry: ReleaseEntry | None, state: KnownDevice, reports: Reports | None = None) -> str | None:
    """Why `entry` cannot go to the device (shown greyed, with this as the reason), or None: the device's own rules
    on what it reported (`reports`: the fleet's versions; without them nothing is known yet)."""
    if entry is None:
        return None
    if not entry.verified:
        return f"the release did not verify: {entry.problem}"
    if not state.device_id or not state.info.get("hardware"):
        return "not reached yet: the console does not know its hardware"
    reason = ineligible(entry, device_facts(state, reports), reports.console_keys if reports else None)
    return visible_text(reason, 300) if reason else None


def hardware_kind(state: KnownDevice) -> str:
    """Devices of one kind behave alike: one canary per kind tries a release on each kind first."""
    hardware = state.info.get("hardware") if isinstance(state.info.get("hardware"), dict) else {}
    parts = [str(hardware.get(k) or "?") for k in ("arch", "cpu_model")]
    return visible_text(" · ".join(parts), 120)


def canaries_per_kind(states: list[KnownDevice]) -> list[KnownDevice]:
    """The first device of each hardware kind, in the order given."""
    seen: set[str] = set()
    chosen = []
    for state in states:
        kind = hardware_kind(state)
        if kind not in seen:
            seen.add(kind)
            chosen.append(state)
    return chosen
