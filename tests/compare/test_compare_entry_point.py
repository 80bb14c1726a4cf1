"""`edge-console compare ...` is the headless comparison: dispatched before the console's own arguments are
parsed, and without loading Qt (it runs in scripts, on machines without a display)."""

from __future__ import annotations

import json
import subprocess
import sys

from tests.support.agent_harness import ROOT

PROBE = """
import json, sys
from edge_console.console.cli import main
rc = main(["compare", "--device", "127.0.0.1:9", "--frames", "1"])
print(json.dumps({"rc": rc, "qt": sorted(m for m in sys.modules if m.split(".")[0] in ("PySide6", "pyqtgraph"))}))
"""


def test_compare_subcommand_runs_headless_without_qt():
    run = subprocess.run([sys.executable, "-c", PROBE], cwd=ROOT, capture_output=True, text=True, timeout=120)
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result == {"rc": 3, "qt": []}, run.stderr
    assert "cannot reach the device at 127.0.0.1:9" in run.stderr


def test_console_flags_still_parse_and_help_names_the_subcommand():
    run = subprocess.run([sys.executable, "-m", "edge_console.console.cli", "--help"], cwd=ROOT, capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 0 and "--demo" in run.stdout and "\n  compare --device" in run.stdout
    run = subprocess.run([sys.executable, "-m", "edge_console.console.cli", "compare", "--help"], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0 and "--save-frames" in run.stdout and "--json" in run.stdout
