"""The pieces the broken-release corpus (corpus.py) is made with: tar plumbing (read, rebuild, flip members of a
release held in memory), a signer that chooses keys and metadata versions itself, and a device's own update path
(`agent/updates/_service.py`'s UpdateManager, in-process, on a real state folder) to deliver releases to."""

from __future__ import annotations

import io
import json
import tarfile
import time
from pathlib import Path

from edge_console.agent import AGENT_VERSION
from edge_console.agent.updates._lifecycle import ModelLifecycle, factory_entry
from edge_console.agent.updates._model_store import ModelStore
from edge_console.agent.updates._service import UpdateManager
from edge_console.core.audit.log import AuditLog
from edge_console.core.detection.detector import Detector
from edge_console.core.detection.model_library import read_model
from edge_console.core.paths import demo_model
from edge_console.core.releases.trust import (
    install_root,
)

# -- tar plumbing ------------------------------------------------------------------------------------------------


def members(data: bytes) -> list[tuple[str, int, int, int]]:
    """(name, header offset, data offset, size) of each member of a tar held in `data`."""
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
        return [(m.name, m.offset, m.offset_data, m.size) for m in tar.getmembers()]


def read_members(data: bytes) -> list[tuple[str, bytes]]:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
        return [(m.name, tar.extractfile(m).read()) for m in tar.getmembers()]


def make_tar(items: list[tuple[str, bytes] | tarfile.TarInfo]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for item in items:
            if isinstance(item, tarfile.TarInfo):
                tar.addfile(item)
            else:
                name, data = item
                info = tarfile.TarInfo(name)
                info.size, info.mtime, info.mode = len(data), 1_700_000_000, 0o644
                tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def replace_members(data: bytes, replace: dict[str, bytes] | None = None, drop: tuple[str, ...] = (),
                    add: list | None = None, order=None) -> bytes:
    items = [(n, replace.get(n, d) if replace else d) for n, d in read_members(data) if n not in drop]
    if order:
        items = order(items)
    return make_tar(items + list(add or []))


def bundle_member(release: bytes) -> tuple[str, bytes]:
    return next((n, d) for n, d in read_members(release) if n.startswith("targets/"))


def _normal(name: str, data: bytes):
    """A member's meaning: metadata as parsed JSON with signature hex in one case (hex is case-blind)."""
    if not name.endswith(".json"):
        return data
    try:
        doc = json.loads(data)
    except ValueError:
        return data
    for sig in doc.get("signatures", []) if isinstance(doc, dict) else []:
        if isinstance(sig, dict) and isinstance(sig.get("sig"), str):
            sig["sig"] = sig["sig"].lower()
    return doc


def same_meaning(a: bytes, b: bytes) -> bool:
    """Whether two release files hold the same members with the same meaning: a mutation that changes nothing a
    device acts on (a tar checksum's leading '0' turned into ' ', a signature's hex digit into upper case) is not a
    broken release, and accepting it is right."""
    try:
        ma, mb = read_members(a), read_members(b)
    except (tarfile.TarError, OSError, ValueError):
        return False
    return [n for n, _ in ma] == [n for n, _ in mb] and all(
        da == db or _normal(n, da) == _normal(n, db) for (n, da), (_, db) in zip(ma, mb))


def flip(data: bytes, offset: int, mask: int) -> bytes:
    out = bytearray(data)
    out[offset] ^= mask
    return bytes(out)


# -- the device ------------------------------------------------------------------------------------------------------


class CorpusDevice:
    """A device's update path on a state folder: deliver a release file, get its final record."""

    def __init__(self, state: Path, root_json: bytes) -> None:
        self.state = state
        install_root(state / "release-trust", root_json)
        self.activated: list = []
        self._open()

    def _open(self) -> None:
        audit = AuditLog(self.state / "audit.log")
        factory_path = demo_model("parts-v1")
        entry = read_model(factory_path)
        factory = factory_entry(str(factory_path), entry.name, entry.version, entry.sha256)
        lifecycle = ModelLifecycle(ModelStore(self.state), audit, factory, probation_s=60)
        self.manager = UpdateManager(self.state, lifecycle, audit, AGENT_VERSION, self)

    # -- UpdateHost: what the manager needs of the agent; the switch of a running pipeline is recorded ------------
    detector = None

    def load_detector(self, path: str) -> Detector:
        return Detector(path, provider="cpu", intra_op_threads=1)

    def swap_from_worker(self, detector: Detector) -> None:
        self.activated.append(detector)

    def pipeline_figures(self) -> dict:
        return {"inferred_fps": None, "model_errors": 0}

    def deliver(self, data: bytes, name: str = "case.edgerelease") -> dict:
        drop = self.state.parent / f"incoming-{time.monotonic_ns()}-{name}"
        drop.write_bytes(data)
        record = self.manager.submit_release(drop, "upload", "corpus", name=name)
        self.manager._busy.result(timeout=120)
        return record.to_dict()  # the manager steps this very object (the folder may be pruned after 50 records)

    def mark_good(self) -> None:
        self.manager._mark_good()

    def close(self) -> None:
        self.manager.close()

    def store_snapshot(self) -> dict:
        root = self.state / "models"
        out = {}
        for path in sorted(root.rglob("*")):
            st = path.stat()
            out[str(path.relative_to(root))] = (st.st_size, st.st_mtime_ns, path.read_bytes() if st.st_size < 65536
                                                else None) if path.is_file() else "folder"
        return out
