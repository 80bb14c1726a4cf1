"""Issue 23: the headless commands run on the client package alone (`pip install 'edge-console[client]'`, no Qt).

Each command runs as `edge-console` in its own interpreter where PySide6, shiboken6 and pyqtgraph cannot be
imported (tests/support/without_qt.py); it must work, attempt no Qt import and print no Qt error. Without Qt the
window itself says which extra it needs, in one line. The full rollout (pair, release, push, rollback, audit against
real agents) runs the same way in tests/releases/test_console_release_cli.py.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess

import pytest

from tests.support.agent_harness import ROOT
from tests.support.without_qt import EDGE_CONSOLE_WITHOUT_QT, QT_IMPORT_ATTEMPT, python_without_qt


def edge_console(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*EDGE_CONSOLE_WITHOUT_QT, *args], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env=env)


def assert_no_qt(result: subprocess.CompletedProcess) -> None:
    said = result.stdout + result.stderr
    assert QT_IMPORT_ATTEMPT not in said, said
    assert "Traceback" not in said, said
    assert not any(name in said for name in ("PySide6", "shiboken6", "pyqtgraph")), said


@pytest.fixture
def data(tmp_path):
    return tmp_path / "console-data"  # made by the command itself, as on a fresh laptop


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed on leaving: nothing listens there


def test_help_lists_the_headless_commands_without_loading_qt():
    result = edge_console("--help")
    assert result.returncode == 0, result.stderr
    assert_no_qt(result)
    for command in ("compare --device", "pairings HOST:PORT", "release import", "push --release", "rollback",
                    "audit export"):
        assert command in result.stdout


@pytest.mark.parametrize("command", ["compare", "push", "rollback", "release", "pairings", "pair", "audit"])
def test_each_command_explains_itself_without_qt(command):
    result = edge_console(command, "--help")
    assert result.returncode == 0, result.stderr
    assert_no_qt(result)
    assert "usage:" in result.stdout


def test_an_empty_release_library_lists_nothing(data):
    result = edge_console("--data-dir", str(data), "release", "list", "--json")
    assert result.returncode == 0, result.stderr
    assert_no_qt(result)
    assert json.loads(result.stdout) == []


def test_the_audit_of_a_fresh_console_exports_an_intact_empty_chain(data):
    result = edge_console("--data-dir", str(data), "audit", "export")
    assert result.returncode == 0, result.stderr
    assert_no_qt(result)
    audit = json.loads(result.stdout)
    assert audit["entries"] == [] and all(chain["ok"] for chain in audit["chains"])


def test_the_delivery_key_is_made_and_printed(data):
    result = edge_console("--data-dir", str(data), "release-key")
    assert result.returncode == 0, result.stderr
    assert_no_qt(result)
    assert json.loads(result.stdout)["keytype"] == "ed25519"


def test_an_unreachable_device_is_one_clear_line_without_qt(data):
    port = _closed_port()
    for args in (("pairings", f"127.0.0.1:{port}"), ("rollback", "--device", f"127.0.0.1:{port}")):
        result = edge_console("--data-dir", str(data), *args)
        assert result.returncode == 2, result.stderr
        assert_no_qt(result)
        assert result.stderr.strip().count("\n") == 0 and "unreachable" in result.stderr


def test_every_client_module_loads_without_qt():
    # The client package whole, not a list of its modules: a new module that reaches Qt is caught too.
    program = ("import importlib, pkgutil, edge_console.client as client\n"
               "for m in pkgutil.walk_packages(client.__path__, 'edge_console.client.'):\n"
               "    importlib.import_module(m.name)\n")
    result = subprocess.run(python_without_qt(program), cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert_no_qt(result)


def test_the_window_without_qt_says_which_extra_it_needs(tmp_path):
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}  # a display is there: only Qt is missing
    result = edge_console("--no-discovery", "--db", str(tmp_path / "console.sqlite"), env=env)
    assert result.returncode == 2
    assert "Traceback" not in result.stdout + result.stderr
    message = [line for line in result.stderr.splitlines() if not line.startswith(QT_IMPORT_ATTEMPT)]
    assert len(message) == 1, result.stderr
    assert "edge-console: the window needs PySide6" in message[0]
    assert "pip install 'edge-console[console]'" in message[0] and "edge-console[client]" in message[0]
    assert not (tmp_path / "console.sqlite").exists()  # refused before anything was opened
