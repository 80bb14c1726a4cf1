"""Where the shipped demo models and resources live, whether running from a checkout or an installed package."""

from __future__ import annotations

import os
import sys
from pathlib import Path


def _shipped(folder: str) -> Path:
    """The checkout's top-level folder when running from one, else the copy a wheel installs under <prefix>/share."""
    checkout = Path(__file__).resolve().parents[2] / folder
    if checkout.is_dir():
        return checkout
    return Path(sys.prefix) / "share" / "edge-console" / folder


def models_dir() -> Path:
    """EDGE_MODELS_DIR if set, else the shipped models/."""
    if env := os.environ.get("EDGE_MODELS_DIR"):
        return Path(env)
    return _shipped("models")


def resources_dir() -> Path:
    """Icons, style sheet and desktop entry."""
    return _shipped("resources")


def demo_model(name: str) -> Path:
    """`parts-v1` or `parts-v2` -> the shipped ONNX file."""
    return models_dir() / f"{name}.onnx"
