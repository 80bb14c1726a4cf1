"""The screens the console tests run on: Qt's offscreen platform, told (through its JSON configuration) that
there are two of them, the two sizes the console is checked at: a 1920x1080 desktop (the primary, where windows
open) and a 1366x768 laptop to its right. Imported by the conftests before anything imports Qt."""

from __future__ import annotations

import atexit
import json
import os
import tempfile
from pathlib import Path

DESKTOP = {"name": "desktop-1920x1080", "x": 0, "y": 0, "width": 1920, "height": 1080}
LAPTOP = {"name": "laptop-1366x768", "x": 1920, "y": 0, "width": 1366, "height": 768}


def use_test_screens() -> None:
    """Unless the run asked for another platform: offscreen, with the two screens above."""
    if os.environ.get("QT_QPA_PLATFORM", "offscreen") != "offscreen":
        return
    screens = [{**s, "logicalDpi": 96, "logicalBaseDpi": 96, "dpr": 1} for s in (DESKTOP, LAPTOP)]
    path = Path(tempfile.gettempdir()) / f"edge-console-test-screens-{os.getpid()}.json"
    path.write_text(json.dumps({"screens": screens}))
    atexit.register(path.unlink, missing_ok=True)
    os.environ["QT_QPA_PLATFORM"] = f"offscreen:configfile={path}"
