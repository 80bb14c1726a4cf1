"""DESIGN.md section 2: edge_console.core and edge_console.agent never import Qt; edge_console.core never imports a network library.

Checked two ways: import-linter's static contracts (pyproject.toml) and a real import in a fresh interpreter,
which also catches imports hidden inside functions at module load.
"""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_import_linter_contracts_hold():
    lint = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run([str(lint)], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Contracts: 3 kept, 0 broken" in result.stdout


def loaded_after_import(modules: list[str]) -> set[str]:
    code = "import importlib, pkgutil, sys\n"
    code += f"for pkg in {modules!r}:\n"
    code += "    m = importlib.import_module(pkg)\n"
    code += "    for info in pkgutil.walk_packages(m.__path__, pkg + '.'):\n"
    code += "        importlib.import_module(info.name)\n"
    code += "print('\\n'.join(sys.modules))\n"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    return {name.split(".")[0] for name in out.stdout.split()}


def test_core_and_agent_load_without_qt():
    loaded = loaded_after_import(["edge_console.core", "edge_console.agent"])
    assert not loaded & {"PySide6", "pyqtgraph", "shiboken6"}


def test_core_loads_without_network_libraries():
    loaded = loaded_after_import(["edge_console.core"])
    assert not loaded & {"aiohttp", "zeroconf", "PySide6"}
