"""The model bundle: one file holding a model and everything a device needs to decide whether to run it.

    <line>-<version>.edgebundle    an uncompressed tar (ONNX weights do not compress) of:
        manifest.json              what the bundle is (below), with the sha256 and size of every other member
        model.onnx                 the model
        MODEL_CARD.md              the model card
        golden/0000.png ...        the golden set: frames with the detections this model must produce on them

The manifest (`BundleManifest`): model line and semantic version; the model's own description (classes, input
size, layout); compatibility (architectures, minimum agent version, execution providers it requires); the golden
set (frames, expected detections, the F1 they must reach); an optional latency budget (p95 ms).

Reading is defensive: a bundle is untrusted until its signature (release_trust.py) and every member's hash are
checked, and even then it is only unpacked under limits (sizes, names, no links, nothing outside the folder).
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import tarfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath

from edge_console.core import bounded_json
from edge_console.core.atomic_files import replacing
from edge_console.core.detection.record import Detection
from edge_console.core.errors import EdgeConsoleError
from edge_console.core.versions import parse_version

FORMAT = "edge-bundle/1"
SUFFIX = ".edgebundle"
MANIFEST = "manifest.json"
MAX_MANIFEST_BYTES = 2 * 1024 * 1024
MAX_MEMBERS = 512
MAX_BUNDLE_BYTES = 4 * 1024 ** 3
_MEMBER_NAME = re.compile(r"^(model\.onnx|MODEL_CARD\.md|golden/[A-Za-z0-9_.-]{1,80}\.(png|jpg|jpeg))$")
_LINE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,63}$")


class BundleError(EdgeConsoleError):
    """The bundle cannot be used; the message says what is wrong with it."""


@dataclass(frozen=True)
class GoldenFrame:
    image: str  # member name
    detections: list[Detection]


@dataclass(frozen=True)
class BundleManifest:
    model_line: str
    version: str
    model: dict  # name, model_version, sha256, classes, input {width, height}, layout
    members: dict[str, dict]  # name -> {sha256, size}
    golden: list[GoldenFrame]
    min_f1: float = 0.95
    iou: float = 0.5
    architectures: list[str] = field(default_factory=list)  # empty: any
    min_agent_version: str = "0"
    required_providers: list[str] = field(default_factory=list)
    latency_budget_p95_ms: float | None = None
    created_at: float = 0.0
    description: str = ""

    @property
    def file_name(self) -> str:
        return f"{self.model_line}-{self.version}{SUFFIX}"

    @property
    def label(self) -> str:
        return f"{self.model_line} {self.version}"

    def to_dict(self) -> dict:
        return {
            "format": FORMAT, "model_line": self.model_line, "version": self.version, "created_at": self.created_at,
            "description": self.description, "model": self.model, "members": self.members,
            "compatibility": {"architectures": self.architectures, "min_agent_version": self.min_agent_version,
                              "required_providers": self.required_providers},
            "golden": {"min_f1": self.min_f1, "iou": self.iou,
                       "frames": [{"image": g.image, "detections": [d.to_dict() for d in g.detections]}
                                  for g in self.golden]},
            "latency_budget_p95_ms": self.latency_budget_p95_ms,
        }

    @classmethod
    def from_dict(cls, data: object) -> BundleManifest:
        """Parse and check a manifest; BundleError names the first thing that is wrong."""
        try:
            if not isinstance(data, dict) or data.get("format") != FORMAT:
                raise BundleError(f"not an {FORMAT} manifest (format {data.get('format')!r})"
                                  if isinstance(data, dict) else "the manifest is not a JSON object")
            line, version = str(data["model_line"]), str(data["version"])
            if not _LINE.match(line):
                raise BundleError(f"model line {line!r} must be lower-case letters, digits, '.', '_' or '-'")
            parse_version(version)
            compat, golden = data.get("compatibility") or {}, data["golden"]
            members = {str(k): {"sha256": str(v["sha256"]), "size": int(v["size"])} for k, v in data["members"].items()}
            frames = [GoldenFrame(str(f["image"]), [Detection.from_dict(d) for d in f["detections"]])
                      for f in golden["frames"]]
            budget = data.get("latency_budget_p95_ms")
            manifest = cls(line, version, dict(data["model"]), members, frames, float(golden.get("min_f1", 0.95)),
                           float(golden.get("iou", 0.5)), [str(a) for a in compat.get("architectures", [])],
                           str(compat.get("min_agent_version", "0")),
                           [str(p) for p in compat.get("required_providers", [])],
                           float(budget) if budget is not None else None, float(data.get("created_at", 0)),
                           str(data.get("description", ""))[:2000])
        except BundleError:
            raise
        except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as exc:
            raise BundleError(f"the manifest is malformed: {exc!r:.200}") from None
        for name in manifest.members:
            if not _MEMBER_NAME.match(name):
                raise BundleError(f"the manifest lists a member named {name!r}, which a bundle may not hold")
        if "model.onnx" not in manifest.members:
            raise BundleError("the manifest lists no model.onnx")
        missing = [g.image for g in manifest.golden if g.image not in manifest.members]
        if missing:
            raise BundleError(f"golden frames listed but not in the bundle: {', '.join(missing[:5])}")
        if not 0 < manifest.min_f1 <= 1 or not 0 < manifest.iou <= 1:
            raise BundleError("golden min_f1 and iou must be in (0, 1]")
        return manifest


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def manifest_bytes(manifest: BundleManifest) -> bytes:
    """The manifest as a bundle holds it: compact JSON (indentation would double its size; a device reads at most
    MAX_MANIFEST_BYTES of it)."""
    return json.dumps(manifest.to_dict(), separators=(",", ":")).encode()


def manifest_size_problem(size: int) -> str | None:
    if size <= MAX_MANIFEST_BYTES:
        return None
    return (f"the bundle's manifest.json is too large: {size:,} bytes ({size / 2**20:.1f} MiB), and a device "
            f"accepts at most {MAX_MANIFEST_BYTES:,} bytes ({MAX_MANIFEST_BYTES / 2**20:.0f} MiB). Build the bundle "
            "again with fewer golden frames (`edge-bundle build` says how many fit)")


def write_bundle(path: Path, manifest: BundleManifest, files: dict[str, bytes]) -> Path:
    """Write the bundle atomically (a temp file renamed into place): it appears complete or not at all."""
    head = manifest_bytes(manifest)
    if problem := manifest_size_problem(len(head)):
        raise BundleError(problem)
    with replacing(path) as out, tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data in [(MANIFEST, head), *sorted(files.items())]:
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), int(manifest.created_at or time.time()), 0o644
            tar.addfile(info, io.BytesIO(data))
    return path


def _members(tar: tarfile.TarFile) -> dict[str, tarfile.TarInfo]:
    infos = tar.getmembers()
    if len(infos) > MAX_MEMBERS + 1:
        raise BundleError(f"the bundle holds {len(infos)} members; at most {MAX_MEMBERS} are allowed")
    out = {}
    for info in infos:
        name = info.name
        if not info.isfile() or name in out or PurePosixPath(name).is_absolute() or ".." in PurePosixPath(name).parts:
            raise BundleError(f"the bundle holds {name!r}, which is not a plain file of a bundle")
        out[name] = info
    return out


def read_manifest(path: Path) -> BundleManifest:
    """The manifest of a bundle file, checked for form (not for hashes: `unpack` checks those)."""
    try:
        with tarfile.open(path, "r:") as tar:
            infos = _members(tar)
            info = infos.get(MANIFEST)
            if info is None:
                raise BundleError("the bundle has no manifest.json")
            if problem := manifest_size_problem(info.size):
                raise BundleError(problem)
            return BundleManifest.from_dict(bounded_json.loads(tar.extractfile(info).read()))
    except (tarfile.TarError, OSError, ValueError) as exc:
        raise BundleError(f"{Path(path).name} is not a readable bundle: {exc}") from None


def unpack(path: Path, dest: Path) -> BundleManifest:
    """Unpack a bundle into `dest` (a new, empty folder), checking every member's size and sha256 against the
    manifest; BundleError on any difference (nothing extra, nothing missing, nothing altered)."""
    manifest = read_manifest(path)
    dest.mkdir(parents=True, exist_ok=False)
    with tarfile.open(path, "r:") as tar:
        infos = _members(tar)
        extra = set(infos) - set(manifest.members) - {MANIFEST}
        missing = set(manifest.members) - set(infos)
        if extra or missing:
            raise BundleError(f"the bundle's members do not match its manifest (extra: {sorted(extra)[:3]}, "
                              f"missing: {sorted(missing)[:3]})")
        for name, expected in manifest.members.items():
            info = infos[name]
            if info.size != expected["size"]:
                raise BundleError(f"{name} is {info.size} bytes; the manifest says {expected['size']}")
            digest = hashlib.sha256()
            target = dest / name
            target.parent.mkdir(parents=True, exist_ok=True)
            with tar.extractfile(info) as src, open(target, "wb") as out:
                while chunk := src.read(1 << 20):
                    digest.update(chunk)
                    out.write(chunk)
            if digest.hexdigest() != expected["sha256"]:
                raise BundleError(f"{name} does not match its sha256 in the manifest: the bundle was altered")
        (dest / MANIFEST).write_bytes(manifest_bytes(manifest))
    return manifest


def manifest_for(model_line: str, version: str, model: dict, files: dict[str, bytes], golden: list[GoldenFrame],
                 **options) -> BundleManifest:
    """A manifest describing `files` (member name -> bytes), as `edge-bundle build` makes it."""
    members = {name: {"sha256": sha256_bytes(data), "size": len(data)} for name, data in files.items()}
    manifest = BundleManifest(model_line, version, model, members, golden, created_at=time.time(), **options)
    return BundleManifest.from_dict(manifest.to_dict())  # the same checks a device will make


def manifest_summary(manifest: BundleManifest) -> dict:
    """What `inspect` shows and the console lists."""
    d = asdict(manifest)
    d.pop("members")
    d["golden"] = len(manifest.golden)
    return d
