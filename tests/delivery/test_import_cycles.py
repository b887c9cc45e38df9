"""No import cycle among the app's modules (localstage checks its own package).

Every import counts: at module level, inside functions and under ``TYPE_CHECKING``. A
Lambda code root (``patterns/<name>/runtime/``) imports its modules top-level, so its
modules are named within their pattern.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.support.repo_files import tracked_app_modules

REPO_ROOT = Path(__file__).resolve().parents[2]
LAYER_PYTHON = Path("blocks/handler_layer/python")


def _module_name(path: Path) -> str:
    if path.parent.name == "runtime":
        return f"{path.parent.parent.name}:{path.stem}"
    if path.is_relative_to(LAYER_PYTHON):
        path = path.relative_to(LAYER_PYTHON)
    return ".".join(path.with_suffix("").parts).removesuffix(".__init__")


def _imported(tree: ast.AST, module: str, is_package: bool) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = module.split(".")[: len(module.split(".")) - node.level + is_package]
                base = ".".join([*parts, *([node.module] if node.module else [])])
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    if ":" in module:  # a code root's modules import each other by their bare names
        pattern = module.split(":")[0]
        names |= {f"{pattern}:{name}" for name in names}
    return names


def import_graph() -> dict[str, set[str]]:
    listed = tracked_app_modules(REPO_ROOT)
    paths = {_module_name(Path(f)): Path(f) for f in listed}
    return {
        module: {
            other
            for other in _imported(
                ast.parse((REPO_ROOT / path).read_text()), module, path.name == "__init__.py"
            )
            if other in paths and other != module
        }
        for module, path in paths.items()
    }


def find_cycle(graph: dict[str, set[str]]) -> list[str]:
    """One cycle of ``graph`` as ``[a, b, a]``, or ``[]``."""
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(node: str) -> list[str]:
        state[node] = 1
        path.append(node)
        for successor in sorted(graph[node]):
            if state.get(successor) == 1:
                return [*path[path.index(successor) :], successor]
            if successor not in state and (cycle := visit(successor)):
                return cycle
        path.pop()
        state[node] = 2
        return []

    for node in sorted(graph):
        if node not in state and (cycle := visit(node)):
            return cycle
    return []


def test_the_finder_finds_a_cycle() -> None:
    assert find_cycle({"a": {"b"}, "b": {"a"}}) == ["a", "b", "a"]


def test_the_app_has_no_import_cycle() -> None:
    graph = import_graph()
    # Every pattern's runtime modules are in it, named <pattern>:<module>.
    runtimes = sorted(REPO_ROOT.glob("patterns/*/runtime/*.py"))
    assert "blocks.function" in graph and runtimes
    assert all(f"{p.parent.parent.name}:{p.stem}" in graph for p in runtimes)
    assert " -> ".join(find_cycle(graph)) == ""
