"""Where the shipped demo models live, whether running from a checkout or from an installed package."""

from __future__ import annotations

import os
import sys
from pathlib import Path


def models_dir() -> Path:
    """EDGE_MODELS_DIR if set, else the checkout's models/, else the copy installed under <prefix>/share."""
    if env := os.environ.get("EDGE_MODELS_DIR"):
        return Path(env)
    checkout = Path(__file__).resolve().parents[2] / "models"
    if checkout.is_dir():
        return checkout
    return Path(sys.prefix) / "share" / "edge-console" / "models"


def demo_model(name: str) -> Path:
    """`parts-v1` or `parts-v2` -> the shipped ONNX file."""
    return models_dir() / f"{name}.onnx"
