"""The shape of the source tree: no import cycles, small modules, and the map in the docs is true."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

import httpx_resilience

PACKAGE = Path(httpx_resilience.__file__).resolve().parent
DOCS_MAP = Path(__file__).resolve().parents[2] / "docs" / "pipeline.md"
MAX_LINES = 400
# The root keeps the public modules and the package's own files; every other
# part lives in a folder that names it.
ROOT_MODULES = {
    "__init__.py", "__main__.py", "clock.py", "config.py", "exceptions.py", "models.py",
    "serializers.py",
}


def module_files() -> list[Path]:
    return sorted(p for p in PACKAGE.rglob("*.py") if "__pycache__" not in p.parts)


def module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path, modules: set[str]) -> set[str]:
    """Modules of the package that ``path`` imports at module level (TYPE_CHECKING included).

    Imports inside functions are left out: they run later, on first use (the
    optional extras are loaded that way), and cannot deadlock an import.
    """
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found: set[str] = set()

    def visit(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            if isinstance(node, ast.ClassDef):
                visit(node.body)
            elif isinstance(node, ast.If):
                visit(node.body)
                visit(node.orelse)
            elif isinstance(node, ast.Try):
                visit(node.body)
                visit(node.orelse)
                visit(node.finalbody)
                for handler in node.handlers:
                    visit(handler.body)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                for alias in node.names:
                    sub = f"{target}.{alias.name}"
                    if sub in modules:
                        found.add(sub)
                    elif target in modules:
                        found.add(target)
            elif isinstance(node, ast.Import):
                found.update(a.name for a in node.names if a.name in modules)

    visit(ast.parse(path.read_text(encoding="utf-8")).body)
    found.discard(name)
    return found


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph`` (as a path that returns to its start), or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def dfs(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt):], nxt]
            if nxt not in state and (cycle := dfs(nxt)) is not None:
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (cycle := dfs(node)) is not None:
            return cycle
    return None


def test_there_are_no_import_cycles() -> None:
    """No module imports, directly or through others, a module that imports it back."""
    files = module_files()
    modules = {module_name(p) for p in files}
    graph = {module_name(p): imports_of(p, modules) for p in files}
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph) or [])


def test_the_cycle_finder_finds_a_cycle() -> None:
    """The check above can fail: a two-module loop and a longer one are both found."""
    assert find_cycle({"a": {"b"}, "b": {"a"}}) == ["a", "b", "a"]
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_no_module_is_over_400_lines() -> None:
    """Past ~400 lines a module is split by concept."""
    long = {
        str(p.relative_to(PACKAGE)): n
        for p in module_files()
        if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert not long, long


def test_the_root_holds_only_public_modules() -> None:
    """Private helpers live in the package of the part they serve, not flat at the root."""
    root = {p.name for p in PACKAGE.glob("*.py")}
    assert root == ROOT_MODULES


def documented_tree() -> set[str]:
    """The files named in the "Where things live" map of docs/pipeline.md."""
    text = DOCS_MAP.read_text(encoding="utf-8")
    section = text.split("## Where things live", 1)[1]
    block = re.search(r"```text\n(.*?)```", section, re.S)
    assert block is not None, "the map is a ```text block under '## Where things live'"
    lines = [line for line in block.group(1).splitlines() if line.strip()]
    assert lines[0].strip() == "httpx_resilience/"
    stack: list[str] = []
    files: set[str] = set()
    for line in lines[1:]:
        indent = (len(line) - len(line.lstrip(" "))) // 2
        if indent >= 10:
            continue  # a description carried on to the next line, under its column
        name = line.split()[0]
        assert 1 <= indent <= len(stack) + 1, f"bad indentation in the map: {line!r}"
        del stack[indent - 1:]
        if name.endswith("/"):
            stack.append(name.rstrip("/"))
        else:
            files.add("/".join([*stack, name]))
    return files


def test_the_tree_matches_the_map_in_the_docs() -> None:
    """Every module is on the map in docs/pipeline.md, and everything on the map exists."""
    actual = {str(p.relative_to(PACKAGE)) for p in module_files()}
    documented = documented_tree()
    assert not actual - documented, f"not on the map: {sorted(actual - documented)}"
    assert not documented - actual, f"on the map but missing: {sorted(documented - actual)}"


@pytest.mark.parametrize("path", module_files(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_every_module_says_what_it_holds(path: Path) -> None:
    """Each module opens with a docstring, so it can be understood alone."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    assert ast.get_docstring(tree), f"{path.relative_to(PACKAGE)} has no module docstring"
