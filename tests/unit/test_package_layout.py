"""The package's shape, kept so a newcomer can find their way (issue 23): no import cycles between modules, no
module over 450 lines, every folder a package whose docstring is a map of what it holds, and the Qt-free client
never referring to the console, not even for a type.

Imports under `if TYPE_CHECKING:` count here (import-linter's contracts leave them out): two modules that need each
other only for annotations are still two modules nobody can read one at a time. A module that needs only part of
another object says what it needs as a `typing.Protocol` of its own.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import grimp
import pytest

APP = Path(__file__).resolve().parents[2] / "app"
PACKAGE = APP / "edge_console"
MAX_LINES = 450

# None is left. Should one ever have to be allowed for a while, list it here (frozensets of module names): a cycle
# not listed fails, and so does a listed one that is gone.
KNOWN_CYCLES: set[frozenset[str]] = set()


@pytest.fixture(scope="module")
def graph() -> grimp.ImportGraph:
    return grimp.build_graph("edge_console", include_external_packages=True, exclude_type_checking_imports=False,
                             cache_dir=None)


def import_cycles(graph: grimp.ImportGraph) -> list[set[str]]:
    """Every set of modules that import one another, directly or round a loop (strongly connected components of
    the module import graph, Tarjan's algorithm, iterative so a long chain cannot overflow the stack)."""
    ours = sorted(m for m in graph.modules if m.split(".")[0] == "edge_console")
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []
    for root in ours:
        if root in index:
            continue
        work = [(root, iter(sorted(graph.find_modules_directly_imported_by(root))))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            module, targets = work[-1]
            target = next(targets, None)
            if target is not None:
                if target.split(".")[0] != "edge_console":
                    continue
                if target not in index:
                    index[target] = low[target] = len(index)
                    stack.append(target)
                    on_stack.add(target)
                    work.append((target, iter(sorted(graph.find_modules_directly_imported_by(target)))))
                elif target in on_stack:
                    low[module] = min(low[module], index[target])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[module])
            if low[module] == index[module]:
                component = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == module:
                        break
                if len(component) > 1:
                    found.append(component)
    return found


def describe_cycle(graph: grimp.ImportGraph, cycle: set[str]) -> str:
    lines = []
    for importer in sorted(cycle):
        for imported in sorted(graph.find_modules_directly_imported_by(importer) & cycle):
            where = sorted({d["line_number"] for d in graph.get_import_details(importer=importer, imported=imported)})
            lines.append(f"  {importer} -> {imported} (line {', '.join(map(str, where))})")
    return "\n".join(lines)


def test_no_import_cycles_between_modules(graph):
    cycles = import_cycles(graph)
    new = [c for c in cycles if frozenset(c) not in KNOWN_CYCLES]
    assert not new, "import cycles (TYPE_CHECKING imports included):\n" + "\n\n".join(
        describe_cycle(graph, c) for c in new)
    gone = KNOWN_CYCLES - {frozenset(c) for c in cycles}
    assert not gone, f"these cycles are gone: remove them from KNOWN_CYCLES: {[sorted(c) for c in gone]}"


def test_the_cycle_finder_finds_a_cycle_through_a_type_checking_import():
    graph = grimp.ImportGraph()
    for name in ("edge_console.a", "edge_console.b", "edge_console.c", "edge_console.d"):
        graph.add_module(name)
    for importer, imported in (("a", "b"), ("b", "c"), ("c", "a"), ("c", "d")):
        graph.add_import(importer=f"edge_console.{importer}", imported=f"edge_console.{imported}")
    assert import_cycles(graph) == [{"edge_console.a", "edge_console.b", "edge_console.c"}]


def test_the_client_never_refers_to_the_console_or_qt_even_for_types(graph):
    forbidden = ("edge_console.console", "PySide6", "shiboken6", "pyqtgraph")
    found = []
    for module in sorted(graph.find_descendants("edge_console.client")):
        for imported in sorted(graph.find_modules_directly_imported_by(module)):
            if any(imported == f or imported.startswith(f + ".") for f in forbidden):
                found.append(f"{module} -> {imported}")
    assert not found, "the client refers to the console or Qt (say what it needs as a Protocol):\n" + "\n".join(found)


def test_no_module_over_450_lines():
    long = {str(p.relative_to(APP)): n for p in sorted(APP.rglob("*.py"))
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines (split them along a real seam): {long}"


def package_folders() -> list[Path]:
    """Every folder of the package that holds Python code (data folders, if any, are not packages)."""
    return sorted(d for d in [PACKAGE, *PACKAGE.rglob("*")] if d.is_dir() and any(d.glob("*.py")))


def contents(folder: Path) -> list[str]:
    """What a newcomer opening the folder sees: its modules and its subpackages."""
    modules = [p.name for p in folder.glob("*.py") if p.name != "__init__.py"]
    packages = [d.name for d in folder.iterdir() if d.is_dir() and (d / "__init__.py").exists()]
    return sorted(modules + packages)


def names(docstring: str, entry: str) -> bool:
    """Whether the docstring names `entry` as this folder's own: bare, not inside another folder's path or a dotted
    name (compare/cli.py or agent.cli do not name this folder's cli.py)."""
    stem = entry.removesuffix(".py")
    return re.search(rf"(?<![\w./]){re.escape(stem)}(?![\w])", docstring) is not None


def top_level_names(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in tree.body:
        if isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            found.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            found.update(t.id for t in targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.Import | ast.ImportFrom):
            found.update((a.asname or a.name).split(".")[0] for a in node.names)
    return found


def stale_reference(dotted: str) -> str | None:
    """Why `edge_console.x.y[.Name]` names nothing in the tree, or None: the longest part of it that is a module or
    package must be followed by nothing, or by a name that module defines."""
    parts = dotted.split(".")
    for end in range(len(parts), 0, -1):
        path = APP.joinpath(*parts[:end])
        source = path / "__init__.py" if path.is_dir() else path.with_suffix(".py")
        if source.exists():
            rest = parts[end:]
            if rest and rest[0] not in top_level_names(source):
                return f"{'.'.join(parts[:end])} has no {rest[0]}"
            return None
    return "no such module"


def test_every_folder_is_a_package_whose_docstring_maps_it():
    problems = []
    for folder in package_folders():
        where = folder.relative_to(APP)
        init = folder / "__init__.py"
        if not init.exists():
            problems.append(f"{where}: no __init__.py")
            continue
        doc = ast.get_docstring(ast.parse(init.read_text(encoding="utf-8"))) or ""
        if not doc:
            problems.append(f"{where}/__init__.py: no docstring saying what the folder holds")
            continue
        missing = [e for e in contents(folder) if not names(doc, e)]
        if missing:
            problems.append(f"{where}/__init__.py: its docstring does not name {missing}")
        # A bare file name is one of this folder's (others are written with their folder: compare/cli.py).
        absent = sorted({m for m in re.findall(r"(?<![\w./-])(\w+\.py)\b", doc) if not (folder / m).exists()})
        if absent:
            problems.append(f"{where}/__init__.py: its docstring names files that are not here: {absent}")
        for dotted in sorted(set(re.findall(r"\bedge_console(?:\.\w+)+", doc))):
            why = stale_reference(dotted)
            if why:
                problems.append(f"{where}/__init__.py: its docstring names {dotted}: {why}")
    assert not problems, "\n".join(problems)
