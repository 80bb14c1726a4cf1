"""Issue 22 (12): `edge-console --help` did not list the headless commands (release, push, pair, rollback, audit,
pairings, compare). Each is listed, and each one's own --help works, without a display."""

from __future__ import annotations

import subprocess
import sys

from edge_console.console.cli import HEADLESS_COMMANDS
from tests.support.agent_harness import ROOT


def _console(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "edge_console.console.cli", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=60, env={"PATH": "/usr/bin:/bin", "QT_QPA_PLATFORM": "offscreen"})


def test_help_lists_every_command_and_each_has_its_own_help():
    shown = _console("--help")
    assert shown.returncode == 0
    listed = shown.stdout.split("commands (headless", 1)[1]
    for command in (*HEADLESS_COMMANDS, "compare"):
        assert f"\n  {command} " in listed or f"\n  {command}\n" in listed, command
        own = _console(command, "--help")
        assert own.returncode == 0 and "usage: edge-console" in own.stdout, (command, own.stderr[-300:])
