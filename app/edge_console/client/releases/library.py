"""The console's release library: release files imported from a USB stick, checked as a device would check them.

    <data>/releases/<line>-<version>-<sha12>/release.edgerelease   the file as imported
    <data>/releases/<...>/staged/                                  its metadata and unpacked bundle (model, card,
                                                                   golden frames: for the view and for Compare)
    <data>/releases/<...>/entry.json                               what the import found (verified or why not)
    <data>/release-trust/                                          the root the console trusts, and the newest
                                                                   metadata it has seen (TUF's memory)

A release is verified on import with the same code a device runs (core/releases/stream.py and TUF), read once
from where it is, under the same limits (size, members, metadata, nothing carried after its end), copied into
the library as it is read. One that fails is listed with its reason (its entry.json alone: nothing of its bytes is
kept) and can never be pushed; except one refused only because the console trusted no release authority yet: its
copy is kept, so it can be checked again. When the console trusts an authority, every refused release is checked
again (`recheck`), from that copy or from the file it was imported from. An older release imported after a newer
one is judged
by the newest signed targets the console already trusts (the release tooling lists every bundle it signed there):
TUF would call the older metadata a replay, and it is one, but the bundle itself may still be a signed one.
Releases are removed with `remove` (their folder, renamed away first so a crash never leaves half an entry);
`rollouts_holding` says which rollouts still need a release's file (running, or resumable), which the callers
refuse to remove. Qt-free and blocking: the console runs it on its release lane; `edge-console release` runs it
directly.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import tarfile
import time
from collections.abc import Container, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Protocol

from tuf.api.metadata import Metadata, Root, Targets, Timestamp
from tuf.api.serialization import DeserializationError

from edge_console.core.atomic_files import write_atomic
from edge_console.core.errors import EdgeConsoleError
from edge_console.core.releases.file_format import BundleError, manifest_summary
from edge_console.core.releases.stream import MAX_RELEASE_BYTES, MAX_TRAILING_BYTES, stage_release, verify_staged
from edge_console.core.releases.trust import ReleaseTrustError, install_root, recover_trust, trusted_root

SUFFIX = ".edgerelease"
HOLDER = "this console's release library"
STALE_IMPORT_S = 6 * 3600  # an import folder this old was left by a console that stopped mid-import
UNTRUSTED = ("the console trusts no release authority yet: give it the authority's root.json (edge-console release "
             "trust authority/metadata/1.root.json, or Releases > Trust release authority…); this release is "
             "checked again then")
_RECHECK_NOTE = "; checked again"  # starts what `recheck` adds to a reason when the release's file is gone


class ReleaseImportError(EdgeConsoleError):
    pass


class RolloutLike(Protocol):  # releases.rollout.Rollout, as far as the library needs to know it
    id: str
    release_id: str
    status: str
    created_at: float


@dataclass
class ReleaseEntry:
    id: str
    file: str  # the release file in the library
    line: str = ""
    version: str = ""
    verified: bool = False
    problem: str = ""  # why it cannot be pushed
    imported_at: float = field(default_factory=time.time)
    source: str = ""  # where it was imported from
    sha256: str = ""  # of the bundle
    summary: dict = field(default_factory=dict)  # manifest_summary: model, compatibility, golden, budget
    signers: list[str] = field(default_factory=list)  # keyids that signed its targets metadata
    expires: str = ""  # the earliest expiry among its metadata (ISO)
    golden: list[dict] = field(default_factory=list)  # [{image: path, detections: [...]}]

    @property
    def label(self) -> str:
        return f"{self.line} {self.version}" if self.line else Path(self.source).name

    @property
    def folder(self) -> Path:
        return Path(self.file).parent

    @property
    def model_path(self) -> Path:
        return self.folder / "staged" / "bundle" / "model.onnx"

    @property
    def card_path(self) -> Path:
        return self.folder / "staged" / "bundle" / "MODEL_CARD.md"

    def compatibility(self) -> dict:
        return {k: self.summary.get(k) for k in ("architectures", "min_agent_version", "required_providers")}

    def to_dict(self) -> dict:
        return asdict(self)


def _earliest_expiry(metadata: Path) -> str:
    dates = []
    for name, cls in (("targets.json", Targets), ("timestamp.json", Timestamp)):
        path = metadata / name
        if path.exists():
            dates.append(Metadata[cls].from_bytes(path.read_bytes()).signed.expires)
    return min(dates).isoformat() if dates else ""


def _signers(metadata: Path) -> list[str]:
    path = metadata / "targets.json"
    return sorted(Metadata[Targets].from_bytes(path.read_bytes()).signatures) if path.exists() else []


class ReleaseLibrary:
    def __init__(self, data_dir: Path) -> None:
        self.folder = Path(data_dir) / "releases"
        self.trust_dir = Path(data_dir) / "release-trust"
        self.folder.mkdir(parents=True, exist_ok=True)
        recover_trust(self.trust_dir)  # an install of release trust cut short by a crash: the old trust is back
        for stale in self.folder.glob(".import-*"):
            try:
                if time.time() - stale.stat().st_mtime > STALE_IMPORT_S:
                    shutil.rmtree(stale, ignore_errors=True)
            except OSError:
                continue
        for removed in self.folder.glob(".removed-*"):  # a removal the console did not finish deleting
            shutil.rmtree(removed, ignore_errors=True)

    # -- trust --------------------------------------------------------------------------------------------------
    def trust(self, root_json: bytes) -> Metadata[Root]:
        """Trust the release authority whose root this is (the same root.json its devices trust)."""
        return install_root(self.trust_dir, root_json)

    @property
    def trusted(self) -> bool:
        return (self.trust_dir / "root.json").exists()

    def roots(self) -> list[bytes]:
        """Every root version seen in a verified release (oldest first): a delivery carries the chain so devices
        can rotate."""
        found: dict[int, bytes] = {}
        for entry in self.entries():
            if not entry.verified:
                continue
            for path in (entry.folder / "staged" / "metadata").glob("*.root.json"):
                found.setdefault(int(path.name.split(".")[0]), path.read_bytes())
        return [found[v] for v in sorted(found)]

    # -- importing ------------------------------------------------------------------------------------------------
    def import_release(self, path: Path) -> ReleaseEntry:
        path = Path(path)
        if path.is_dir():
            files = sorted(path.glob(f"*{SUFFIX}"))
            if not files:
                raise ReleaseImportError(f"{path} holds no release file (*{SUFFIX})")
            return [self.import_release(f) for f in files][-1]
        if not path.is_file():
            raise ReleaseImportError(f"release file not found: {path}")
        return self._import(path, str(path.absolute()))

    def _import(self, path: Path, source: str, imported_at: float | None = None) -> ReleaseEntry:
        """Check `path` into the library, listed as imported from `source` (at `imported_at`: now if None)."""
        work = self.folder / f".import-{time.time_ns()}"
        work.mkdir()
        try:
            entry = self._check(work, path)
            entry.source = source
            entry.imported_at = imported_at or entry.imported_at
            if not entry.verified:  # listed with its reason; none of its bytes are kept, unless it waits for trust
                if entry.problem != UNTRUSTED:
                    (work / "release.edgerelease").unlink(missing_ok=True)
                shutil.rmtree(work / "staged", ignore_errors=True)
                entry.golden = []
            final = self.folder / entry.id
            entry.file = str(final / "release.edgerelease")
            entry.golden = [{**g, "image": str(final / "staged" / "bundle" / g["image"])} for g in entry.golden]
            (work / "entry.json").write_text(json.dumps(entry.to_dict(), indent=1))
            if final.exists():  # imported again: the newer check replaces the older, never leaving neither
                self._discard(final, then=lambda: work.rename(final))
            else:
                work.rename(final)
            return entry
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def _discard(self, folder: Path, then=None) -> None:
        """Delete a release's folder: renamed away first (one step, so it is listed whole or not at all), then
        `then()` (its replacement moves in), then deleted."""
        gone = self.folder / f".removed-{time.time_ns()}"
        folder.rename(gone)
        if then is not None:
            try:
                then()
            except BaseException:
                gone.rename(folder)  # the replacement did not move in: the old entry stays
                raise
        shutil.rmtree(gone, ignore_errors=True)

    def _check(self, work: Path, source: Path) -> ReleaseEntry:
        entry = ReleaseEntry(id="", file=str(work / "release.edgerelease"), source=str(source))
        unreadable = f"unreadable-{hashlib.sha256(str(source.resolve()).encode()).hexdigest()[:12]}"  # one per file
        try:
            size = source.stat().st_size
            if size > MAX_RELEASE_BYTES + MAX_TRAILING_BYTES:  # judged before a byte is read
                entry.id, entry.problem = unreadable, (f"not a usable release file: it is {size:,} bytes, and a "
                                                       f"release is at most {MAX_RELEASE_BYTES // 2**30} GiB")
                return entry
            with open(source, "rb") as f, open(work / "release.edgerelease", "wb") as copy:
                staged = stage_release(f, work / "staged", copy)
        except (ReleaseTrustError, BundleError, OSError, tarfile.TarError) as exc:
            entry.id, entry.problem = unreadable, f"not a usable release file: {exc}"
            return entry
        entry.sha256 = staged.bundle_sha256
        if staged.manifest is not None:
            m = staged.manifest
            entry.line, entry.version, entry.summary = m.model_line, m.version, manifest_summary(m)
            entry.golden = [{"image": g.image, "detections": [d.to_dict() for d in g.detections]} for g in m.golden]
        entry.id = f"{entry.line or 'release'}-{entry.version or 'x'}-{staged.bundle_sha256[:12]}"
        metadata = work / "staged" / "metadata"
        try:  # facts to show, read before verification: metadata that cannot even be parsed is refused here
            entry.signers = _signers(metadata)
            entry.expires = _earliest_expiry(metadata) if metadata.exists() else ""
        except (DeserializationError, ValueError, TypeError, KeyError, AttributeError, OSError) as exc:
            entry.problem = f"its signed metadata cannot be read ({type(exc).__name__}: {str(exc)[:200]}); refused"
            return entry
        if not self.trusted:
            entry.problem = UNTRUSTED
            return entry
        try:
            verify_staged(self.trust_dir, staged, HOLDER)
        except ReleaseTrustError as exc:
            if "replayed or old" in str(exc) and self._listed_in_trusted_targets(staged):
                entry.verified = True
                return entry
            entry.problem = str(exc)
            return entry
        except BundleError as exc:
            entry.problem = f"the bundle's own checks failed: {exc}"
            return entry
        entry.verified = True
        return entry

    def _listed_in_trusted_targets(self, staged) -> bool:
        path = self.trust_dir / "targets.json"
        if not path.exists() or staged.problem:
            return False
        targets = Metadata[Targets].from_bytes(path.read_bytes())
        info = targets.signed.targets.get(staged.bundle_name)
        return info is not None and info.length == staged.bundle_length and \
            info.hashes.get("sha256") == staged.bundle_sha256

    # -- listing ----------------------------------------------------------------------------------------------------
    def entries(self) -> list[ReleaseEntry]:
        out = []
        for path in sorted(self.folder.glob("*/entry.json")):
            try:
                out.append(ReleaseEntry(**json.loads(path.read_text())))
            except (ValueError, TypeError):
                continue
        return sorted(out, key=lambda e: e.imported_at)

    def get(self, entry_id: str) -> ReleaseEntry | None:
        return next((e for e in self.entries() if e.id == entry_id or e.label == entry_id
                     or f"{e.line}:{e.version}" == entry_id), None)

    def trusted_root_version(self) -> int | None:
        root = trusted_root(self.trust_dir)
        return root.signed.version if root else None

    # -- checking again and removing --------------------------------------------------------------------------------
    def refused(self) -> list[ReleaseEntry]:
        return [e for e in self.entries() if not e.verified]

    def recheck(self, entry: ReleaseEntry) -> ReleaseEntry:
        """Verify a refused release again, exactly as on import (after the console came to trust an authority):
        from the library's own copy when it kept one, else from the file it was imported from. Its row keeps its
        place (import time) and source; when the file is gone, its reason says so."""
        copy = self.folder / entry.id / "release.edgerelease"
        source = copy if _plain_name(entry.id) and copy.is_file() else Path(entry.source)
        if not source.is_file():
            return self._note_gone(entry)
        again = self._import(source, entry.source, entry.imported_at)
        if again.id != entry.id and _plain_name(entry.id) and (self.folder / entry.id).is_dir():
            self._discard(self.folder / entry.id)  # the file changed since: the new check is its row now
        return again

    def _note_gone(self, entry: ReleaseEntry) -> ReleaseEntry:
        before = entry.problem.split(_RECHECK_NOTE)[0]
        if before == UNTRUSTED:
            before = "imported before the console trusted a release authority"
        entry.problem = (f"{before}{_RECHECK_NOTE} when the console trusted an authority, but the file it was "
                         f"imported from ({entry.source}) is not there now (a USB stick taken out?): import it again")
        folder = self.folder / entry.id
        if _plain_name(entry.id) and folder.is_dir():
            write_atomic(folder / "entry.json", json.dumps(entry.to_dict(), indent=1).encode())
        return entry

    def remove(self, entry_id: str) -> ReleaseEntry:
        """Delete a release from the library: its files and its entry. The file it was imported from is not
        touched. ReleaseImportError when there is no such release; the caller checks `rollouts_holding` first."""
        entry = next((e for e in self.entries() if e.id == entry_id), None)
        folder = self.folder / entry_id
        if entry is None or not _plain_name(entry_id) or not folder.is_dir():
            raise ReleaseImportError(f"no release {entry_id!r} in the library; `edge-console release list` shows "
                                     "what it holds")
        self._discard(folder)
        # The delivery a headless push signed for it, unless another release of that line and version still needs it.
        if entry.line and not any(e.line == entry.line and e.version == entry.version for e in self.entries()):
            (self.folder / f"{entry.line}-{entry.version}-delivery.edgerelease").unlink(missing_ok=True)
        return entry


def _plain_name(entry_id: str) -> bool:
    """An id that names a folder right inside the library (entry.json is ours, but a folder is deleted by it)."""
    return bool(entry_id) and Path(entry_id).name == entry_id and not entry_id.startswith(".")


def rollouts_holding(entry_id: str, rollouts: Iterable[RolloutLike], running: Container[str] = ()) -> list:
    """The rollouts that still need release `entry_id`'s file: those running now (ids in `running`) and those saved
    as running (left unfinished: resumable)."""
    return [r for r in rollouts if r.release_id == entry_id and (r.status == "running" or r.id in running)]


def held_reason(entry: ReleaseEntry, holding: list, running: Container[str] = ()) -> str:
    """Why `entry` is not removed, for the person who asked."""
    rollout = holding[0]
    started = time.strftime("%Y-%m-%d %H:%M", time.localtime(rollout.created_at))
    if rollout.id in running:
        state = "is running: cancel it (Releases ▸ Rollouts) or let it finish first"
    else:  # saved as running: a console runs it now, or one closed under it and it can be resumed
        state = ("is not finished (running in a console, or left unfinished and resumable): let it finish, or "
                 "cancel it (Releases ▸ Rollouts), first")
    more = f" ({len(holding) - 1} more rollout(s) of it too)" if len(holding) > 1 else ""
    return f"{entry.label} is not removed: the rollout of it started {started} ({rollout.id}) {state}{more}"
