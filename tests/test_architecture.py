"""The import graph, read from the code's own `import` statements: no cycle, and each layer
imports only what lies beneath it, so a second channel or a second store can be added without
touching the payment methods.

Every import counts, including those under `if TYPE_CHECKING:` and inside functions: a cycle
hidden there is still a knot for the reader.
"""

from __future__ import annotations

import ast
import functools
from collections.abc import Iterator, Mapping
from collections.abc import Set as AbstractSet
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "itinerabot"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, modules: set[str]) -> Iterator[str]:
    """The project modules `path` imports (`from a.b import c` counts as a.b.c when c is a
    module of ours, else as a.b)."""
    name = _module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            yield from (a.name for a in node.names if a.name.split(".")[0] == "itinerabot")
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            if base.split(".")[0] != "itinerabot":
                continue
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                yield sub if sub in modules else base


@functools.cache
def import_graph() -> dict[str, frozenset[str]]:
    paths = sorted(PACKAGE.rglob("*.py"))
    modules = {_module_name(p) for p in paths}
    return {
        _module_name(p): frozenset(m for m in _imports(p, modules) if m != _module_name(p))
        for p in paths
    }


def _cycle(graph: Mapping[str, AbstractSet[str]]) -> list[str] | None:
    """One import cycle of `graph`, as the list of modules around it, or None."""
    done: set[str] = set()
    path: list[str] = []
    on_path: set[str] = set()

    def visit(module: str) -> list[str] | None:
        if module in on_path:
            return [*path[path.index(module) :], module]
        if module in done:
            return None
        path.append(module)
        on_path.add(module)
        for target in sorted(graph.get(module, ())):
            found = visit(target)
            if found:
                return found
        path.pop()
        on_path.discard(module)
        done.add(module)
        return None

    for module in sorted(graph):
        found = visit(module)
        if found:
            return found
    return None


def _importers(graph: Mapping[str, AbstractSet[str]], importer: str, imported: str) -> list[str]:
    """Edges from modules under `importer` to modules under `imported`."""

    return sorted(
        f"{source} -> {target}"
        for source, targets in graph.items()
        if _under(source, importer)
        for target in targets
        if _under(target, imported)
    )


def _under(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def test_the_graph_is_read_from_the_code() -> None:
    """The reader finds the edges it should (a broken reader would pass every rule below)."""
    graph = import_graph()
    assert "itinerabot.messages" in graph["itinerabot.payments.fulfilment"]
    assert "itinerabot.adapters.telegram.sender" in graph["itinerabot.runtime"]
    assert "itinerabot.store.outbox" in graph["itinerabot.messages"]
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_no_import_cycle() -> None:
    assert _cycle(import_graph()) is None


def test_every_project_import_names_a_module_that_exists() -> None:
    """An import of a module that moved away (or a typo) would otherwise be an edge to
    nowhere, which no rule below can see."""
    graph = import_graph()
    missing = sorted(
        f"{source} -> {target}"
        for source, targets in graph.items()
        for target in targets
        if target not in graph
    )
    assert missing == []


def test_no_module_is_imported_by_name_at_run_time() -> None:
    """`importlib.import_module` or `__import__` would hide an edge from this reader."""
    found = sorted(
        f"{path.relative_to(PACKAGE.parent)}:{node.lineno}"
        for path in PACKAGE.rglob("*.py")
        for node in ast.walk(ast.parse(path.read_text(), str(path)))
        if isinstance(node, ast.Call)
        and (
            (isinstance(node.func, ast.Name) and node.func.id == "__import__")
            or (isinstance(node.func, ast.Attribute) and node.func.attr == "import_module")
        )
    )
    assert found == []


def _reachable(graph: Mapping[str, AbstractSet[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = [start]
    while todo:
        module = todo.pop()
        for target in graph.get(module, ()):
            if target not in seen:
                seen.add(target)
                todo.append(target)
    return seen


@pytest.mark.parametrize(
    ("importer", "imported"),
    [
        # the payment methods speak to the traveller through messages + notify, never a channel
        ("itinerabot.payments", "itinerabot.adapters.telegram"),
        ("itinerabot.payments", "itinerabot.runtime"),
        ("itinerabot.payments", "itinerabot.wiring"),
        # the store serves everyone and knows none of them (a second store must fit under it)
        ("itinerabot.store", "itinerabot.payments"),
        ("itinerabot.store", "itinerabot.adapters"),
        ("itinerabot.store", "itinerabot.messages"),
        # the dialogue is pure: no store, no network, no channel
        ("itinerabot.dialogue", "itinerabot.store"),
        ("itinerabot.dialogue", "itinerabot.adapters"),
        ("itinerabot.dialogue", "itinerabot.payments"),
        # the outside services' adapters know nothing of our payment logic
        ("itinerabot.adapters.circle", "itinerabot.payments"),
        ("itinerabot.adapters.stripe", "itinerabot.payments"),
        # one payment method does not reach into another
        ("itinerabot.payments.card", "itinerabot.payments.usdc"),
        ("itinerabot.payments.usdc", "itinerabot.payments.card"),
        # the operator's commands work on the store alone, without a running bot
        ("itinerabot.operator", "itinerabot.runtime"),
        ("itinerabot.operator", "itinerabot.adapters.telegram"),
    ],
)
def test_layer_does_not_import(importer: str, imported: str) -> None:
    graph = import_graph()
    assert _importers(graph, importer, imported) == []
    # nor through a module in between
    reached = sorted(
        f"{source} ->* {target}"
        for source in graph
        if _under(source, importer)
        for target in _reachable(graph, source)
        if _under(target, imported)
    )
    assert reached == []
