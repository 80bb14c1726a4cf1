"""`edge-console` as on a laptop or CI runner with only the client extra installed: no PySide6, shiboken6, pyqtgraph.

A command runs in its own interpreter, as the user runs it, where importing any of those packages fails exactly as
if it were not installed, and each attempt is also said on stderr (QT_IMPORT_ATTEMPT): a headless command that
tried, even one that then recovered from the failure, is caught by the test reading its output. No venv or wheel is
built (slow): what is proved is the import graph; that the client extra declares what that graph needs is
tests/packaging/test_declared.py's part.
"""

from __future__ import annotations

import sys

QT_PACKAGES = ("PySide6", "shiboken6", "pyqtgraph")
QT_IMPORT_ATTEMPT = "[test] Qt import attempted:"

_REFUSE_QT = f"""
import importlib.abc, sys

class _RefuseQt(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in {QT_PACKAGES!r}:
            print({QT_IMPORT_ATTEMPT!r}, name, file=sys.stderr)
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)
        return None

sys.meta_path.insert(0, _RefuseQt())
"""

_CONSOLE_MAIN = """
sys.argv[0] = "edge-console"
from edge_console.console.cli import main
sys.exit(main(sys.argv[1:]))
"""


def python_without_qt(program: str) -> list[str]:
    """The command line running `program` in an interpreter where the Qt packages cannot be imported."""
    return [sys.executable, "-c", _REFUSE_QT + program]


# `edge-console ARGS...` (the installed script's entry point, edge_console.console.cli:main) without Qt.
EDGE_CONSOLE_WITHOUT_QT = python_without_qt(_CONSOLE_MAIN)
