"""The console's model and network layers load without Qt (only the console's views may; napari runs such a headless
suite): importing them in a fresh interpreter loads no PySide6, shiboken6 or pyqtgraph. This folder's tests
import none of them either, so they run on a machine without a display or without Qt installed."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
QT_FREE = [
    "edge_console.client.tasks", "edge_console.client.runtime", "edge_console.client.device_registry",
    "edge_console.client.store", "edge_console.client.telemetry_ring", "edge_console.client.image_headers",
    "edge_console.client.untrusted_text", "edge_console.client.frame_ring",
    "edge_console.client.net.addresses", "edge_console.client.net.backoff", "edge_console.client.net.device_clock",
    "edge_console.client.net.device_info", "edge_console.client.net.device_session",
    "edge_console.client.net.loop_thread", "edge_console.client.net.mdns_browser",
    "edge_console.client.compare.fetch", "edge_console.client.compare.session", "edge_console.client.compare.cli",
    "edge_console.client.compare.saved_frames", "edge_console.client.compare.worker",
    "edge_console.client.compare.hard_frames",
]
PROBE = """
import importlib, json, sys
for name in sys.argv[1:]:
    importlib.import_module(name)
print(json.dumps(sorted(m for m in sys.modules if m.split(".")[0] in ("PySide6", "shiboken6", "pyqtgraph"))))
"""


def test_model_and_network_layers_load_no_qt():
    run = subprocess.run([sys.executable, "-c", PROBE, *QT_FREE], cwd=ROOT, capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout.strip().splitlines()[-1]) == []


def test_this_folder_imports_no_qt():
    for path in Path(__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                assert not any(n.split(".")[0] in ("PySide6", "shiboken6", "pyqtgraph") for n in names), path
