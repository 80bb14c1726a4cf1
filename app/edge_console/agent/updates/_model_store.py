"""The device's model store: verified models only, and one small state file that says which one runs.

    <state>/models/store/<line>/<version>/   model.onnx, manifest.json, MODEL_CARD.md, golden/  (never edited)
    <state>/models/lifecycle.json            active, previous, retained, probation, highest version per line

A release's bundle is staged (unpacked and checked) in <state>/updates/<id>/delivery/bundle, on the same
filesystem as the store: once verified and checked it is fsynced where it is and renamed into the store, so its
bytes are written once (an SD card's wear and an update's time), not copied a second time.

Crash safety: a model folder reaches its name in the store by one rename, after its files are durable, so the
store never holds half a model; lifecycle.json is replaced atomically (temp file, fsync, rename, fsync of the
folder), so after a `kill -9` it says either the old or the new state, never a mix, and it only names a model
after the model's rename. At start the active model's file is checked against its manifest's sha256; a damaged
one is never loaded (the agent falls back, see _lifecycle.py).

The model the agent was started with (`--model`) is the "factory" entry: always retained, never deleted, the
last resort of every rollback.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from edge_console.agent.updates._states import FACTORY, lifecycle_state_from_disk
from edge_console.core.atomic_files import file_sha256, fsync_dir, fsync_tree, write_atomic
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
    state: str = FACTORY  # "factory" (no release active), "probation" or "good": see _states.LIFECYCLE_TRANSITIONS
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
        active = model(d.get("active"))
        return cls(active, lifecycle_state_from_disk(d.get("state", ""), active is not None), model(d.get("previous")),
                   [StoredModel(**m) for m in d.get("retained", [])], d.get("probation_until"),
                   int(d.get("probation_restarts", 0)), d.get("baseline_fps"), dict(d.get("highest", {})))


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
        data = json.dumps(lifecycle.to_dict(), indent=1).encode()
        essential(lambda: write_atomic(self._state_path, data))  # which model runs: written even on a full disk

    def folder(self, line: str, version: str) -> Path:
        return self.store / line / version

    def add(self, staged: Path, line: str, version: str, model_sha256: str) -> StoredModel:
        """Move a verified, checked bundle folder into the store (durably, by one rename); returns its entry.
        `staged` is gone afterwards."""
        final = self.folder(line, version)
        final.parent.mkdir(parents=True, exist_ok=True)
        if final.exists():  # a previous attempt got this far and stopped before the switch: nothing refers to it
            leftover = final.with_name(f".{version}.replaced.partial")  # out of the way at once, removed after
            shutil.rmtree(leftover, ignore_errors=True)
            os.replace(final, leftover)
            shutil.rmtree(leftover, ignore_errors=True)
        fsync_tree(staged)  # its bytes and entries on the disk before its name in the store can be
        try:
            os.rename(staged, final)
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
            # Staging and store on different filesystems (a state folder split over mounts by hand): a rename
            # cannot cross them, so copy under a temporary name, sync, and rename that into place.
            partial = final.with_name(f".{version}.partial")
            shutil.rmtree(partial, ignore_errors=True)
            shutil.copytree(staged, partial)
            fsync_tree(partial)
            os.replace(partial, final)
            shutil.rmtree(staged, ignore_errors=True)
        fsync_dir(final.parent)
        fsync_dir(self.store)  # the line's folder may be new
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
