"""The package's import graph: no module imports, at run time, one that imports it back.

A cycle works only while the import order happens to suit it, and a lazy import inside a
function only hides one, so those count too: the graph holds every import that runs, at
load time or when a function is called, leaving out those under ``if TYPE_CHECKING:``
(never run). It is read from the source (``ast``), so the test needs no import to succeed.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "ketadash"


def _modules() -> dict[str, Path]:
    modules = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def _is_type_checking(test: ast.expr) -> bool:
    return isinstance(test, ast.Name | ast.Attribute) and ast.unparse(test).endswith(
        "TYPE_CHECKING"
    )


def _run_time_statements(body: list[ast.stmt]):
    """The statements that can run: the module's body, its functions' and classes' bodies,
    and the branches of their ifs, trys, loops and withs, but not ``if TYPE_CHECKING:``."""
    for node in body:
        if isinstance(node, ast.If):
            if not _is_type_checking(node.test):
                yield from _run_time_statements(node.body)
            yield from _run_time_statements(node.orelse)
        elif isinstance(node, ast.Try):
            for block in (node.body, node.orelse, node.finalbody):
                yield from _run_time_statements(block)
            for handler in node.handlers:
                yield from _run_time_statements(handler.body)
        elif isinstance(
            node,
            ast.FunctionDef
            | ast.AsyncFunctionDef
            | ast.ClassDef
            | ast.For
            | ast.AsyncFor
            | ast.While
            | ast.With
            | ast.AsyncWith,
        ):
            yield from _run_time_statements(node.body)
            yield from _run_time_statements(getattr(node, "orelse", []))
        else:
            yield node


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The package's modules that ``name`` imports, when it loads or when it runs."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    targets: set[str] = set()
    for node in _run_time_statements(ast.parse(path.read_text()).body):
        if isinstance(node, ast.Import):
            targets.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*up, *([node.module] if node.module else [])])
            targets.add(base)
            targets.update(f"{base}.{alias.name}" for alias in node.names)
    return {t for t in targets if t in modules and t != name}


def import_graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of the graph as a path that ends where it starts, or None."""
    done: set[str] = set()
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        if node in path:
            return [*path[path.index(node) :], node]
        if node in done:
            return None
        path.append(node)
        for target in sorted(graph[node]):
            if (cycle := visit(target)) is not None:
                return cycle
        path.pop()
        done.add(node)
        return None

    for node in sorted(graph):
        if (cycle := visit(node)) is not None:
            return cycle
    return None


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set(), "c": {"a", "b"}}) is None


def test_the_graph_sees_the_package_and_its_imports():
    graph = import_graph()
    assert "ketadash.lifecycle" in graph["ketadash.rides"]
    assert "ketadash.ui.shell" in graph["ketadash.ui.auth"]
    # Imported inside a function only (the demo is built on a page's first run).
    assert "ketadash.demo" in graph["ketadash.ui.shell"]


def test_no_module_of_ketadash_imports_itself_back():
    assert find_cycle(import_graph()) is None


ROOT = PACKAGE.parent


def _imports_streamlit(path: Path) -> bool:
    """Whether the file imports streamlit anywhere (module level or inside a function)."""
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and not node.level:
            names = [node.module or ""]
        else:
            continue
        if any(name == "streamlit" or name.startswith("streamlit.") for name in names):
            return True
    return False


def test_only_ketadash_ui_imports_streamlit():
    """The pages, the entry point and the rest of the package draw through ketadash.ui."""
    app = [ROOT / "dashboard.py", *(ROOT / "pages").glob("*.py"), *PACKAGE.rglob("*.py")]
    outside = sorted(
        path.relative_to(ROOT).as_posix()
        for path in app
        if PACKAGE / "ui" not in path.parents and _imports_streamlit(path)
    )
    assert outside == []


def test_the_streamlit_check_sees_an_import(tmp_path):
    page = tmp_path / "page.py"
    page.write_text("def draw():\n    from streamlit import columns\n")
    assert _imports_streamlit(page)
    page.write_text("import streamlit_like\n")
    assert not _imports_streamlit(page)
