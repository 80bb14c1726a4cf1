"""Every benchmark still imports: the benchmarks run by hand (`make bench`), not in the suite, so a test helper or a
package module that moves would otherwise break them unseen until the next figures are taken (it happened once:
tests/support/agents.py became tests/support/agent_harness.py). Cheap: nothing is measured, no agent starts."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"
MODULES = sorted(path for path in BENCHMARKS.glob("*.py") if path.name != "__init__.py")


def _tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), filename=str(path))


def _runs_at_import(tree: ast.Module) -> list[str]:
    """Calls at the module's top level outside `if __name__ == "__main__":`, other than the path set-up and
    environment defaults the benchmarks make before their imports (importing one must not start a measurement)."""
    allowed = ("sys.path.insert", "os.environ.setdefault")
    found = []
    for node in tree.body:
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Call):
            called = ast.unparse(node.value.func)
            if called not in allowed:
                found.append(f"line {node.lineno}: {called}(...)")
    return found


def _imports(tree: ast.Module) -> list[tuple[int, str, str | None]]:
    """(line, module, name or None) of every absolute import, those inside functions included (a benchmark imports
    some of its heavy packages only where it uses them, so importing the module alone would not reach them)."""
    out: list[tuple[int, str, str | None]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(node.lineno, alias.name, None) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module != "__future__":
            out += [(node.lineno, node.module, alias.name) for alias in node.names]
    return out


def test_there_are_benchmarks_to_check():
    assert {"bench_agent.py", "bench_compare.py", "bench_console.py", "bench_update.py"} <= {p.name for p in MODULES}


@pytest.mark.parametrize("path", MODULES, ids=lambda path: path.stem)
def test_benchmark_runs_nothing_when_imported(path):
    assert not _runs_at_import(_tree(path)), (
        f"{path.name} does work at import (guard it with `if __name__ == \"__main__\":`): {_runs_at_import(_tree(path))}")


@pytest.mark.parametrize("path", MODULES, ids=lambda path: path.stem)
def test_benchmark_imports(path):
    assert not _runs_at_import(_tree(path)), f"{path.name} would start measuring here; see the test above"
    importlib.import_module(f"benchmarks.{path.stem}")
    missing = []
    for line, module, name in _imports(_tree(path)):
        try:
            imported = importlib.import_module(module)
        except ImportError as exc:
            missing.append(f"line {line}: {module}: {exc}")
            continue
        if name is not None and not hasattr(imported, name):
            try:  # `from package import submodule`
                importlib.import_module(f"{module}.{name}")
            except ImportError:
                missing.append(f"line {line}: {module} has no {name}")
    assert not missing, f"{path.name} imports what is not there:\n" + "\n".join(missing)
