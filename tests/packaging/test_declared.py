"""What pyproject.toml declares matches the code: every package folder is listed, every import is a dependency
of the install extra that program ships in (the agent must install on a device without the console's)."""

from __future__ import annotations

import ast
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
SOURCE = ROOT / "app" / "edge_console"


def test_every_package_folder_is_listed():
    listed = set(PYPROJECT["tool"]["setuptools"]["packages"])
    folders = {".".join(("edge_console", *p.parent.relative_to(SOURCE).parts))
               for p in SOURCE.rglob("__init__.py")}
    assert folders <= listed, f"add to [tool.setuptools] packages: {sorted(folders - listed)}"
    assert {"edge_console.models", "edge_console.resources"} <= listed


def _extra(name: str, seen: frozenset = frozenset()) -> set[str]:
    """Distribution names an extra brings, following `edge-console[...]` self-references."""
    names: set[str] = set()
    for text in PYPROJECT["project"]["optional-dependencies"][name]:
        req = Requirement(text)
        if req.name == "edge-console":
            for inner in req.extras - seen:
                names |= _extra(inner, seen | {name})
        else:
            names.add(canonicalize_name(req.name))
    return names


def _base() -> set[str]:
    return {canonicalize_name(Requirement(t).name) for t in PYPROJECT["project"]["dependencies"]}


def _third_party_imports(folder: Path) -> dict[str, str]:
    """Top-level module name -> a file importing it, for every non-stdlib, non-project import in `folder`."""
    found: dict[str, str] = {}
    for path in folder.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top not in sys.stdlib_module_names and top != "edge_console":
                    found.setdefault(top, str(path.relative_to(ROOT)))
    return found


@pytest.mark.parametrize("package,allowed", [
    ("core", lambda: _base() | _extra("runtime")),
    ("agent", lambda: _base() | _extra("agent")),
    ("client", lambda: _base() | _extra("client")),  # the headless commands on a laptop without Qt (issue 23)
    ("console", lambda: _base() | _extra("console")),
])
def test_every_import_is_a_declared_dependency(package, allowed):
    distributions = packages_distributions()
    missing = {}
    for module, where in _third_party_imports(SOURCE / package).items():
        dists = {canonicalize_name(d) for d in distributions.get(module, [module])}
        if not dists & allowed():
            missing[module] = where
    assert not missing, f"imported but not declared for {package}: {missing}"


def test_the_agent_extra_can_leave_onnxruntime_to_the_device():
    # A Jetson brings onnxruntime-gpu: `agent-base` must not pull the CPU wheel on top of it.
    assert "onnxruntime" not in _extra("agent-base") | _base()
    assert "onnxruntime" in _extra("agent")
    assert not {"pyside6-essentials", "pyside6", "pyqtgraph"} & _extra("agent")
    assert not {"pyside6-essentials", "pyside6", "shiboken6", "pyqtgraph"} & _extra("client")
