"""The device's model store: verified models only, and one small state file that says which one runs.

    <state>/models/store/<line>/<version>/   model.onnx, manifest.json, MODEL_CARD.md, golden/  (never edited)
    <state>/models/lifecycle.json            active, previous, retained, probation, highest version per line

Crash safety: a model folder is written under a temporary name, fsynced and renamed into place, so the store
never holds half a model; lifecycle.json is replaced atomically (temp file, fsync, rename, fsync of the folder),
so after a `kill -9` it says either the old or the new state, never a mix. At start the active model's file is
checked against its manifest's sha256; a damaged one is never loaded (the agent falls back, see lifecycle.py).

The model the agent was started with (`--model`) is the "factory" entry: always retained, never deleted, the
last resort of every rollback.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from edge_console.core.disk_reserve import essential
from edge_console.core.versions import version_key

RETAINED = 3  # installed versions kept to return to (besides the factory model)


@dataclass(frozen=True)
class StoredModel:
    line: str
    version: str
    path: str  # the model file
    sha256: str
    installed_at: float = 0.0
    factory: bool = False

    @property
    def label(self) -> str:
        return f"{self.line} {self.version}" + (" (factory)" if self.factory else "")

    def key(self) -> tuple[str, str]:
        return (self.line, self.version)


@dataclass
class Lifecycle:
    active: StoredModel | None = None
    state: str = "good"  # of the active model: "probation" or "good"
    previous: StoredModel | None = None  # what a rollback returns to
    retained: list[StoredModel] = field(default_factory=list)  # newest first, factory excluded
    probation_until: float | None = None  # wall clock
    probation_restarts: int = 0
    baseline_fps: float | None = None  # inferred fps before the switch, for the watchdog
    highest: dict[str, str] = field(default_factory=dict)  # line -> highest version ever activated

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Lifecycle:
        model = lambda m: StoredModel(**m) if m else None  # noqa: E731
        return cls(model(d.get("active")), d.get("state", "good"), model(d.get("previous")),
                   [StoredModel(**m) for m in d.get("retained", [])], d.get("probation_until"),
                   int(d.get("probation_restarts", 0)), d.get("baseline_fps"), dict(d.get("highest", {})))


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes) -> None:
    """Replace `path` with `data` atomically and durably; an essential write (core/disk_reserve.py)."""
    essential(lambda: _write_atomic(path, data))


def _write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):  # a full disk: leave no half-written copy taking what space is left
            tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


class ModelStore:
    def __init__(self, state_dir: Path) -> None:
        self.root = Path(state_dir) / "models"
        self.store = self.root / "store"
        self.store.mkdir(parents=True, exist_ok=True)
        self._state_path = self.root / "lifecycle.json"
        self._clean_partials()

    def _clean_partials(self) -> None:
        """Folders a crash left half-copied: they were never renamed into place, so nothing refers to them."""
        for partial in self.store.glob("*/.*.partial"):
            shutil.rmtree(partial, ignore_errors=True)

    def load(self) -> Lifecycle:
        try:
            return Lifecycle.from_dict(json.loads(self._state_path.read_text()))
        except FileNotFoundError:
            return Lifecycle()

    def save(self, lifecycle: Lifecycle) -> None:
        write_atomic(self._state_path, json.dumps(lifecycle.to_dict(), indent=1).encode())

    def folder(self, line: str, version: str) -> Path:
        return self.store / line / version

    def add(self, unpacked: Path, line: str, version: str, model_sha256: str) -> StoredModel:
        """Copy a verified, checked bundle folder into the store (atomically); returns its entry."""
        final = self.folder(line, version)
        if final.exists():  # a previous attempt got this far: its content was verified the same way
            shutil.rmtree(final)
        partial = final.with_name(f".{version}.partial")
        shutil.rmtree(partial, ignore_errors=True)
        shutil.copytree(unpacked, partial)
        for path in partial.rglob("*"):
            if path.is_file():
                with open(path, "rb") as f:
                    os.fsync(f.fileno())
        os.replace(partial, final)
        fsync_dir(final.parent)
        return StoredModel(line, version, str(final / "model.onnx"), model_sha256, time.time())

    def intact(self, model: StoredModel) -> bool:
        """The file is there and is the file that was verified (a damaged flash block, an edited file: no)."""
        path = Path(model.path)
        return path.is_file() and file_sha256(path) == model.sha256

    def prune(self, lifecycle: Lifecycle) -> None:
        """Keep the active, the previous and the RETAINED newest; delete the other stored versions."""
        keep = {m.key() for m in [lifecycle.active, lifecycle.previous, *lifecycle.retained[:RETAINED]] if m}
        lifecycle.retained = [m for m in lifecycle.retained if m.key() in keep or m.factory]
        for line_dir in self.store.iterdir() if self.store.exists() else []:
            for version_dir in line_dir.iterdir():
                if not version_dir.name.startswith(".") and (line_dir.name, version_dir.name) not in keep:
                    shutil.rmtree(version_dir, ignore_errors=True)

    @staticmethod
    def newer_than_highest(lifecycle: Lifecycle, line: str, version: str) -> bool:
        highest = lifecycle.highest.get(line)
        return highest is None or version_key(version) > version_key(highest)
