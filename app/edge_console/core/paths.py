"""Where the shipped demo models and the console's resources are: package data, found through importlib.resources.

The same code path serves a checkout (editable install), a wheel in a venv, a `pip install --user` and a frozen
console build, because the files travel inside the package (`edge_console.models`, `edge_console.resources`).
"""

from __future__ import annotations

import os
from importlib.resources import files
from pathlib import Path


def _package_folder(package: str) -> Path:
    # Installed as plain files (never zipped: setuptools writes a folder), so the Traversable is a real path.
    return Path(str(files(package)))


def shipped_models_dir() -> Path:
    """The demo models that come with the product."""
    return _package_folder("edge_console.models")


def models_dir() -> Path:
    """EDGE_MODELS_DIR if set (a site's own model folder), else the shipped models."""
    if env := os.environ.get("EDGE_MODELS_DIR"):
        return Path(env)
    return shipped_models_dir()


def resources_dir() -> Path:
    """Icons, style sheet and desktop entry."""
    return _package_folder("edge_console.resources")


def demo_model(name: str) -> Path:
    """`parts-v1` or `parts-v2` -> the shipped ONNX file."""
    return shipped_models_dir() / f"{name}.onnx"
