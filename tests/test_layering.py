"""The house's import rules, checked on every project module's source.

Imports go one way: ``accounts`` and ``creatorflow`` at the bottom, then ``inventory``, ``orders``,
``realtime``, and ``demo`` on top; ``creatorflow/asgi.py`` and ``creatorflow/urls.py`` wire the apps
together. No module imports one that (directly or not) imports it back. Every import counts,
including one inside a function: hiding an import in a function does not make a circle go away.
"""

import ast
from pathlib import Path

from django.conf import settings

ROOT = Path(settings.BASE_DIR)
LAYERS = {"accounts": 0, "creatorflow": 0, "inventory": 1, "orders": 2, "realtime": 3, "demo": 4}
WIRING = {"creatorflow.asgi", "creatorflow.urls", "creatorflow.settings"}


def _modules() -> dict[str, Path]:
    modules = {}
    for app in LAYERS:
        for path in (ROOT / app).rglob("*.py"):
            if "migrations" in path.parts:
                continue
            parts = list(path.relative_to(ROOT).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            modules[".".join(parts)] = path
    return modules


def _imports(name: str, path: Path, known: set[str]) -> set[str]:
    """Name every project module that ``name`` imports, anywhere in its source."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, *([base] if base else [])])
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
        else:
            continue
        for target in targets:
            # "import a.b.c" reaches a.b.c; count the deepest project module named.
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, set(modules)) for name, path in modules.items()}


def _layer(module: str) -> int:
    return LAYERS[module.split(".")[0]]


def test_no_app_imports_an_app_above_it():
    upward = [
        f"{module} ({_layer(module)}) imports {target} ({_layer(target)})"
        for module, targets in _graph().items()
        if module not in WIRING
        for target in targets
        if _layer(target) > _layer(module)
    ]
    assert upward == []


def test_no_import_circles():
    graph = _graph()
    index, low, stack, on_stack, circles = {}, {}, [], set(), []

    def visit(node: str) -> None:  # Tarjan's strongly connected components
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph[node]:
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                circles.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    assert circles == []


def test_the_checks_see_the_whole_house():
    graph = _graph()
    assert {"orders.inbox", "orders.services", "realtime.publisher", "creatorflow.changes"} <= set(graph)
    # The walk finds real edges (or both tests above would pass on an empty graph).
    assert "creatorflow.changes" in graph["orders.services"]
    assert "inventory.services.stock" in graph["orders.services"]
