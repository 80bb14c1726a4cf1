"""The console's release library: release files imported from a USB stick, checked as a device would check them.

    <data>/releases/<line>-<version>-<sha12>/release.edgerelease   the file as imported
    <data>/releases/<...>/staged/                                  its metadata and unpacked bundle (model, card,
                                                                   golden frames: for the view and for Compare)
    <data>/releases/<...>/entry.json                               what the import found (verified or why not)
    <data>/release-trust/                                          the root the console trusts, and the newest
                                                                   metadata it has seen (TUF's memory)

A release is verified on import with the same code a device runs (core/release_stream.py and TUF). One that fails
is kept, listed with its reason, and can never be pushed. An older release imported after a newer one is judged
by the newest signed targets the console already trusts (the release tooling lists every bundle it signed there):
TUF would call the older metadata a replay, and it is one, but the bundle itself may still be a signed one.
Qt-free and blocking: the console runs it on its task pool; `edge-console release` runs it directly.
"""

from __future__ import annotations

import json
import shutil
import tarfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from tuf.api.metadata import Metadata, Root, Targets, Timestamp
from tuf.api.serialization import DeserializationError

from edge_console.core.errors import EdgeConsoleError
from edge_console.core.release_format import BundleError, manifest_summary
from edge_console.core.release_stream import stage_release, verify_staged
from edge_console.core.release_trust import ReleaseTrustError, install_root, trusted_root

SUFFIX = ".edgerelease"


class ReleaseImportError(EdgeConsoleError):
    pass


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

    # -- trust --------------------------------------------------------------------------------------------------
    def trust(self, root_json: bytes) -> Metadata[Root]:
        """Trust the release authority whose root this is (the same root.json its devices trust)."""
        return install_root(self.trust_dir, root_json)

    @property
    def trusted(self) -> bool:
        return (self.trust_dir / "root.json").exists()

    def roots(self) -> list[bytes]:
        """Every root version seen (oldest first): a delivery carries the chain so devices can rotate."""
        found: dict[int, bytes] = {}
        for entry in self.entries():
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
        work = self.folder / f".import-{time.time_ns()}"
        work.mkdir()
        try:
            shutil.copyfile(path, work / "release.edgerelease")
            entry = self._check(work, path)
            final = self.folder / entry.id
            if final.exists():
                shutil.rmtree(final)  # imported again: the newer check replaces the older
            work.rename(final)
            entry.file = str(final / "release.edgerelease")
            entry.golden = [{**g, "image": str(final / "staged" / "bundle" / g["image"])} for g in entry.golden]
            (final / "entry.json").write_text(json.dumps(entry.to_dict(), indent=1))
            return entry
        finally:
            shutil.rmtree(work, ignore_errors=True)

    def _check(self, work: Path, source: Path) -> ReleaseEntry:
        entry = ReleaseEntry(id="", file=str(work / "release.edgerelease"), source=str(source))
        try:
            with open(work / "release.edgerelease", "rb") as f:
                staged = stage_release(f, work / "staged")
        except (ReleaseTrustError, BundleError, OSError, tarfile.TarError) as exc:
            entry.id, entry.problem = f"unreadable-{time.time_ns()}", f"not a usable release file: {exc}"
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
            entry.problem = ("the console trusts no release authority yet: give it the authority's root.json "
                             "(edge-console release trust root.json, or Releases > Trust…) and import again")
            return entry
        try:
            verify_staged(self.trust_dir, staged)
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
