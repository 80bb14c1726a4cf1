"""Whether a release can go to a device, judged before anything is sent by the device's own rules (agent/updates/_service.py,
model_store.py), from what the device reported: one set of rules for the push dialog, Fleet versions and the
headless push. Qt-free.

The device refuses a release that is not newer than the highest version of its line it has ever run (after a
rollback the highest is still the version it left), when it trusts no release root or one of another authority,
when the release is built for another architecture, agent or execution provider; and the console cannot send
anything to a device that is offline or on which it is not an operator. Until the device's `GET /v1/models` and
`GET /v1/release-trust` are known, the answer is "not known yet", never "yes".

Everything here reads what a device said: every field is checked for its type before it is used.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from tuf.api.metadata import Metadata, Root
from tuf.api.serialization import DeserializationError

from edge_console.core.releases.compatibility import compatibility_problem as release_compatibility
from edge_console.core.versions import version_key

KEY_PREFIX = 16  # GET /v1/release-trust names keys by the first 16 characters of their id


@dataclass
class DeviceFacts:
    """What the rules need to know of a device: its /v1/info, this console's role on it, whether it is online,
    and its answers to /v1/models and /v1/release-trust (None: not known yet; `*_problem` says why not)."""

    device_id: str
    name: str
    base_url: str
    arch: str = ""
    agent_version: str = ""
    providers: list[str] = field(default_factory=list)
    role: str | None = None  # the console's role on it; None: not paired
    running: str = ""  # "line version" now running (from /v1/info)
    online: bool = True
    offline_since: float | None = None  # time.time() it was last seen, when offline
    models: dict | None = None
    trust: dict | None = None
    models_problem: str = ""
    trust_problem: str = ""


class ReleaseFacts(Protocol):  # library.ReleaseEntry, as far as the rules need to know it
    line: str
    version: str
    summary: dict
    signers: list[str]


def _object(value: object) -> dict:
    return value if isinstance(value, dict) else {}


def _text(value: object) -> str:
    return value if isinstance(value, str) else ""


def when(at: float | None, now: float | None = None) -> str:
    """HH:MM today, else the date too: when a device was last seen."""
    if not at:
        return ""
    now = time.time() if now is None else now
    today = time.localtime(now)[:3] == time.localtime(at)[:3]
    return time.strftime("%H:%M" if today else "%Y-%m-%d %H:%M", time.localtime(at))


def offline_reason(device: DeviceFacts) -> str:
    since = when(device.offline_since)
    return f"offline since {since}" if since else "offline: not reached since the console started"


def compatibility_problem(summary: dict, device: DeviceFacts) -> str | None:
    """The device's own rule (core/releases/compatibility.py) on what it last reported; the release's summary is
    the console's library entry, read as untrusted as the file it came from."""
    return release_compatibility(
        [a for a in summary.get("architectures") or [] if isinstance(a, str)],
        _text(summary.get("min_agent_version")),
        [p for p in summary.get("required_providers") or [] if isinstance(p, str)],
        arch=device.arch or "", agent_version=device.agent_version or "", providers=device.providers or [])


def models_of_line(models: dict, line: str) -> list[dict]:
    """Every model the device names in /v1/models (running, previous, retained) of `line`."""
    found = [_object(models.get("running")), _object(models.get("previous"))]
    retained = models.get("retained")
    found += [_object(m) for m in retained] if isinstance(retained, list) else []
    return [m for m in found if m.get("line") == line and _text(m.get("version"))]


def highest_of_line(models: dict, line: str) -> str | None:
    """The highest version of `line` the device has run: its own `highest`, else the highest it names."""
    highest = models.get("highest")
    if isinstance(highest, dict):
        value = highest.get(line)
        return value if isinstance(value, str) and value else None
    versions = [_text(m.get("version")) for m in models_of_line(models, line) if not m.get("factory")]
    return max(versions, key=version_key) if versions else None


def version_problem(line: str, version: str, models: dict, rollback_words: str) -> str | None:
    running = _object(models.get("running"))
    if (running.get("line"), running.get("version")) == (line, version):
        return f"runs {line} {version} already"
    highest = highest_of_line(models, line)
    if highest is None or version_key(version) > version_key(highest):
        return None
    kept = any(m.get("version") == version and not m.get("factory") for m in models_of_line(models, line))
    back = f"; {rollback_words} can return it to {version}, which it keeps" if kept else ""
    return f"not newer than {line} {highest}, the highest it has had: a device takes only a newer version{back}"


def short_keys(keys: list[str], shown: int = 2) -> str:
    text = ", ".join(k[:8] + "…" for k in keys[:shown])
    return text + (f" and {len(keys) - shown} more" if len(keys) > shown else "")


def trust_problem(trust: dict, release: ReleaseFacts, console_keys: frozenset[str] | None) -> str | None:
    """None when the device trusts the authority that signed `release` (a key of the device's root is one that
    signed the release's targets, or a root key of the authority this console trusts)."""
    if trust.get("installed") is not True:
        return "trusts no release root: install this console's first (Install release trust…, as admin)"
    keys = trust.get("keys")
    device_keys = [k for k in keys if isinstance(k, str)] if isinstance(keys, list) else []
    ours = {s[:KEY_PREFIX] for s in release.signers if isinstance(s, str)} | set(console_keys or ())
    if not ours or set(device_keys) & ours:
        return None  # nothing to compare with (an older library entry), or the same authority
    version = trust.get("root_version")
    root = f"root v{version}" if isinstance(version, int) and not isinstance(version, bool) else "a root"
    return (f"trusts another release authority ({root}, keys {short_keys(sorted(device_keys)) or 'none named'}), "
            f"not the one that signed {release.line} {release.version}: install this console's (Install release "
            "trust…, as admin)")


def ineligible(release: ReleaseFacts, device: DeviceFacts, console_keys: frozenset[str] | None = None,
               rollback_words: str = "Roll back ▾") -> str | None:
    """Why `release` cannot go to `device` (checked before anything is sent), or None. `console_keys`: the root
    keys (16-character prefixes) of the authority this console's library trusts, when known."""
    if device.role not in ("operator", "admin"):
        return "this console is not paired with it as an operator" if device.role else "not paired"
    if not device.online:
        return offline_reason(device)
    problem = compatibility_problem(release.summary, device)
    if problem:
        return problem
    if device.models is None:
        return (f"not known yet: cannot read its versions ({device.models_problem})" if device.models_problem
                else "not known yet: waiting for its versions (GET /v1/models)")
    problem = version_problem(release.line, release.version, device.models, rollback_words)
    if problem:
        return problem
    if device.trust is None:
        return (f"not known yet: cannot read its release trust ({device.trust_problem})" if device.trust_problem
                else "not known yet: waiting for its release trust (GET /v1/release-trust)")
    return trust_problem(device.trust, release, console_keys)


def trusts_ours(trust: dict | None, console_keys: frozenset[str] | None) -> bool | None:
    """Whether a device's /v1/release-trust answer names a root key of this console's authority; None: unknown."""
    if trust is None or console_keys is None:
        return None
    keys = trust.get("keys")
    return trust.get("installed") is True and isinstance(keys, list) and bool(set(keys) & console_keys)


@dataclass(frozen=True)
class ConsoleTrust:
    """The release root this console's library trusts: what "Install release trust…" sends, and the root keys a
    device's trust is compared with (every root of that authority the library has seen, rotations included)."""

    root_json: bytes
    version: int
    keys: list[str]  # every key id of the trusted root, 16-character prefixes (as a device lists them)
    root_keys: frozenset[str]  # root-role key ids of every known root of the authority, 16-character prefixes


def console_trust(trust_dir: Path, chain: list[bytes]) -> ConsoleTrust | None:
    """The library's trusted root (`trust_dir/root.json`) and the root chain it holds (`ReleaseLibrary.roots()`);
    None when the console trusts no release authority."""
    path = Path(trust_dir) / "root.json"
    if not path.exists():
        return None
    data = path.read_bytes()
    trusted = Metadata[Root].from_bytes(data).signed
    root_keys = set(trusted.roles["root"].keyids)
    for raw in chain:
        try:
            root_keys |= set(Metadata[Root].from_bytes(raw).signed.roles["root"].keyids)
        except (DeserializationError, ValueError, KeyError):  # kept by the library, unreadable now: the others count
            continue
    return ConsoleTrust(data, trusted.version, sorted(k[:KEY_PREFIX] for k in trusted.keys),
                        frozenset(k[:KEY_PREFIX] for k in root_keys))
