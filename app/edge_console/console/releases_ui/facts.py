"""What the release views need to know of a device, read from its `DeviceState` (Qt-free logic on plain reads).

A release's compatibility is judged before anything is sent (`rollout.ineligible`), from what the device said
about itself in /v1/info (architecture, agent version, execution providers) and from this console's paired role.
A device the console has not reached yet has no facts: it is never judged compatible by default.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..releases.library import ReleaseEntry
from ..releases.rollout import DeviceFacts, ineligible
from ..untrusted_text import visible_text

if TYPE_CHECKING:
    from ..device_state import DeviceState

ROLES = ("viewer", "operator", "admin")


def role_of(state: DeviceState) -> str | None:
    """The console's role on the device: the session's trust when it knows it, else what /v1/info said."""
    role = getattr(state, "role", None)
    if role in ROLES:
        return role
    info = state.info
    if info.get("insecure_lab_mode"):
        return "admin"  # lab mode: every route is open to everyone
    role = info.get("caller_role")
    return role if role in ROLES else None


def device_facts(state: DeviceState, base_url: str = "") -> DeviceFacts:
    info = state.info
    hardware = info.get("hardware") if isinstance(info.get("hardware"), dict) else {}
    model = info.get("model") if isinstance(info.get("model"), dict) else {}
    providers = hardware.get("providers_available")
    return DeviceFacts(state.device_id or "", state.name, base_url, str(hardware.get("arch") or ""),
                       str(info.get("agent_version") or ""),
                       [str(p) for p in providers] if isinstance(providers, list) else [], role_of(state),
                       f"{model.get('name', '')} {model.get('version', '')}".strip())


def why_not(entry: ReleaseEntry | None, state: DeviceState) -> str | None:
    """Why `entry` cannot go to the device (shown greyed, with this as the reason), or None."""
    if entry is None:
        return None
    if not entry.verified:
        return f"the release did not verify: {entry.problem}"
    if not state.device_id or not state.info.get("hardware"):
        return "not reached yet: the console does not know its hardware"
    reason = ineligible(entry.summary, device_facts(state))
    return visible_text(reason, 300) if reason else None


def hardware_kind(state: DeviceState) -> str:
    """Devices of one kind behave alike: one canary per kind tries a release on each kind first."""
    hardware = state.info.get("hardware") if isinstance(state.info.get("hardware"), dict) else {}
    parts = [str(hardware.get(k) or "?") for k in ("arch", "cpu_model")]
    return visible_text(" · ".join(parts), 120)


def canaries_per_kind(states: list[DeviceState]) -> list[DeviceState]:
    """The first device of each hardware kind, in the order given."""
    seen: set[str] = set()
    chosen = []
    for state in states:
        kind = hardware_kind(state)
        if kind not in seen:
            seen.add(kind)
            chosen.append(state)
    return chosen
