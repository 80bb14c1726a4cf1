"""The laptop's model library: every ONNX model in a set of folders, indexed by name, version and sha256.

It answers "which local file is the model this device runs?" (sha256 first, then name and version) and lists
candidates to compare against. Folders can be the shipped models/, a models folder of the user's, or a USB stick.
Reading a model's metadata opens it with onnxruntime once; the result is cached by path, size and mtime.
One library is shared by the console's Compare panels, each asking from its own worker thread: a lock keeps
the folder list, file list and cache consistent.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path

from edge_console.core.atomic_files import file_sha256
from edge_console.core.detection.model_spec import model_identity
from edge_console.core.detection.onnx_runtime import open_metadata_session
from edge_console.core.errors import ModelNotFoundError
from edge_console.core.versions import version_key

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LibraryModel:
    path: Path
    name: str
    version: str
    sha256: str
    classes: tuple[str, ...]

    @property
    def label(self) -> str:
        return f"{self.name} {self.version}"


def read_model(path: Path) -> LibraryModel:
    """Metadata of one ONNX file (ModelError for a file that is not a model)."""
    session = open_metadata_session(path)
    identity = model_identity(dict(session.get_modelmeta().custom_metadata_map), path)
    return LibraryModel(path, identity.name, identity.version, file_sha256(path), identity.class_names)


class ModelLibrary:
    def __init__(self, folders: list[Path] | None = None):
        self.folders: list[Path] = []
        self.files: list[Path] = []
        self._cache: dict[Path, tuple[tuple[int, float], LibraryModel]] = {}
        self.problems: dict[Path, str] = {}  # files that look like models but are not: shown, not fatal
        self._lock = threading.RLock()
        for folder in folders or []:
            self.add_folder(folder)

    def add_folder(self, folder: Path) -> None:
        folder = Path(folder)
        if not folder.is_dir():
            raise FileNotFoundError(f"model folder not found: {folder}")
        with self._lock:
            if folder not in self.folders:
                self.folders.append(folder)

    def add_file(self, path: Path) -> LibraryModel:
        path = Path(path)
        with self._lock:
            model = self._read(path)  # raises for a bad file: adding one by hand deserves a clear error
            if path not in self.files:
                self.files.append(path)
            return model

    def _read(self, path: Path) -> LibraryModel:
        stat = path.stat()
        key = (stat.st_size, stat.st_mtime)
        cached = self._cache.get(path)
        if cached and cached[0] == key:
            return cached[1]
        model = read_model(path)
        self._cache[path] = (key, model)
        return model

    def models(self) -> list[LibraryModel]:
        """Every readable model, scanning the folders now (a USB stick may have been plugged in since)."""
        with self._lock:
            return self._scan()

    def _scan(self) -> list[LibraryModel]:
        paths = list(self.files)
        for folder in self.folders:
            if folder.is_dir():
                paths += sorted(p for p in folder.rglob("*.onnx") if p.is_file())
        found, seen = [], set()
        for path in paths:
            if path in seen:
                continue
            seen.add(path)
            try:
                found.append(self._read(path))
                self.problems.pop(path, None)
            except Exception as exc:  # a broken file on a stick must not hide the good ones
                self.problems[path] = str(exc).strip()[:200]
                log.warning("model library: skipping %s: %s", path, self.problems[path])
        return found

    def find(self, name: str, version: str, sha256: str | None = None) -> LibraryModel | None:
        """The exact file (same sha256) if there is one, else the same name and version."""
        models = self.models()
        if sha256:
            exact = [m for m in models if m.sha256 == sha256]
            if exact:
                return exact[0]
        same = [m for m in models if m.name == name and m.version == version]
        return same[0] if same else None

    def resolve(self, reference: str) -> Path:
        """A model given as a path, or by name: a file stem (`parts-v2`), a model name, or `name:version`.

        Several versions of one name: the highest. ModelNotFoundError lists what the library holds."""
        path = Path(reference).expanduser()
        if path.is_file() or path.suffix.lower() == ".onnx" or len(path.parts) > 1:
            return path  # a path: the detector says clearly if it is missing or not a model
        name, _, version = reference.partition(":")
        models = self.models()
        candidates = [m for m in models if m.path.stem == reference] or [
            m for m in models if m.name == name and (not version or m.version == version)]
        if not candidates:
            known = ", ".join(sorted({m.path.stem for m in models} | {f"{m.name}:{m.version}" for m in models}))
            folders = ", ".join(str(f) for f in self.folders) or "no folders"
            raise ModelNotFoundError(f"no model called {reference!r} in the model library ({folders}). "
                                     f"Known: {known or 'none'}. Give a path to an .onnx file, or one of these names.")
        return max(candidates, key=lambda m: version_key(m.version)).path
