"""localstage's modules import one another without cycles.

Every import counts: at module level, inside functions and under ``TYPE_CHECKING``. A
cycle (stage -> invoke -> stage) means two modules cannot be understood, tested or
loaded one without the other; the type-only side of one goes through a Protocol
(:mod:`localstage.stage_view`) instead.
"""

from __future__ import annotations

import ast
from pathlib import Path

import localstage

PACKAGE = "localstage"
SOURCE = Path(localstage.__file__).resolve().parent


def module_name(path: Path) -> str:
    parts = path.relative_to(SOURCE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(path: Path, name: str, modules: set[str]) -> set[str]:
    """localstage modules ``path`` imports, wherever the import statement is.

    ``from localstage.x import y`` imports ``localstage.x.y`` if that is a module, else
    ``localstage.x`` (``y`` is a name in it); ``from localstage import y`` imports
    ``localstage`` itself unless ``y`` is a module.
    """
    is_package = path.name == "__init__.py"
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[: len(base) - (node.level - 1)]
                origin = ".".join([*base, node.module] if node.module else base)
            else:
                origin = node.module or ""
            targets = [f"{origin}.{alias.name}" for alias in node.names]
        for target in targets:
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def import_graph() -> dict[str, set[str]]:
    paths = {module_name(path): path for path in sorted(SOURCE.rglob("*.py"))}
    modules = set(paths)
    return {name: imported_modules(path, name, modules) for name, path in paths.items()}


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as [a, b, ..., a], or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for neighbour in sorted(graph.get(node, ())):
            if state.get(neighbour) == 1:
                return [*path[path.index(neighbour) :], neighbour]
            if neighbour not in state:
                cycle = visit(neighbour)
                if cycle:
                    return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            cycle = visit(node)
            if cycle:
                return cycle
    return None


def test_the_graph_sees_imports_in_functions_and_under_type_checking() -> None:
    graph = import_graph()
    assert "localstage.stage" in graph
    # moto_patches imports its helpers at module level; _moto_process imports it in main().
    assert "localstage._moto_iam" in graph["localstage.moto_patches"]
    assert "localstage.moto_patches" in graph["localstage._moto_process"]


def test_localstage_has_no_import_cycle() -> None:
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_a_cycle_is_found_and_named() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}
    assert find_cycle(graph) == ["a", "b", "c", "a"]
