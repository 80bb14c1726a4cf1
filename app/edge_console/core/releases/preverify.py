"""Checking a release's signatures before it is installed, without changing what the device trusts until it is.

TUF's client workflow remembers the newest metadata it accepted (that is how replays are refused), so running it
changes the trust folder. A device checks an upload's metadata the moment the upload ends, in parallel with the
console's request to install it; but the upload is not an update until that request comes, and another update
may run first. So the check runs against a copy of the trust folder, and its outcome is taken only if the trust
folder is still byte for byte what was copied, and soon: then the folder becomes what TUF left in the copy,
exactly as if the workflow had run on it at that moment. Otherwise the workflow runs again on the real folder.

Only a success is kept: whatever went wrong is found again, and reported, by the full check at install.
"""

from __future__ import annotations

import dataclasses
import logging
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from edge_console.core.atomic_files import write_atomic
from edge_console.core.releases.trust import VerifiedTarget, verify_target

log = logging.getLogger(__name__)
FRESH_S = 30.0  # older than this, the check is run again (expiry is judged against the clock of its moment)


@dataclass(frozen=True)
class PreVerified:
    target: VerifiedTarget
    trusted_before: dict[str, bytes]  # the trust folder the check ran against
    trusted_after: dict[str, bytes]  # what TUF left in its copy
    at: float  # time.monotonic() of the check


def _trust_files(folder: Path) -> dict[str, bytes]:
    if not folder.is_dir():
        return {}
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def preverify(trust_dir: Path, delivery: Path, target_name: str, length: int, sha256: str) -> PreVerified | None:
    """TUF's workflow over `delivery` against a copy of `trust_dir`; None when it does not pass (or cannot run)."""
    try:
        before = _trust_files(trust_dir)
        with tempfile.TemporaryDirectory(prefix=".trust-copy-", dir=delivery) as scratch:
            copy = Path(scratch)
            for name, data in before.items():
                (copy / name).parent.mkdir(parents=True, exist_ok=True)
                (copy / name).write_bytes(data)
            target = verify_target(copy, delivery, target_name, length, sha256)
            after = _trust_files(copy)
    except Exception as exc:  # noqa: BLE001 - the full check at install says what is wrong
        log.debug("pre-verification of %s did not pass: %s", target_name, exc)
        return None
    return PreVerified(target, before, after, time.monotonic())


def commit(trust_dir: Path, pre: PreVerified | None, bundle_dir: Path) -> VerifiedTarget | None:
    """The pre-verified target, with the trust folder brought to what TUF left in the copy; None when the check
    must run again (the folder changed since, or the check is stale)."""
    if pre is None or time.monotonic() - pre.at > FRESH_S or _trust_files(trust_dir) != pre.trusted_before:
        return None
    for name in pre.trusted_before.keys() - pre.trusted_after.keys():
        (trust_dir / name).unlink(missing_ok=True)
    for name, data in pre.trusted_after.items():
        if pre.trusted_before.get(name) != data:
            path = trust_dir / name
            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(path, data)  # as TUF persists metadata: a file is the old one or the new one
    return dataclasses.replace(pre.target, path=bundle_dir, checked_on_arrival=True)
