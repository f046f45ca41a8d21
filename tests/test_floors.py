"""The floors of docs/architecture.md, read off the source: imports point down, never up.

Every ``import``/``from … import`` under ``monitor/`` is collected with ``ast``. The floor
checks count in-function and ``TYPE_CHECKING`` imports too (an upward import dodged inside a
function is still upward); the cycle check follows the imports run at import time, so a lazy
plugin import (``consume.source`` loading a broker's module on demand) is not a cycle.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "monitor"

# the application's wiring and its entry points: nothing else may import these
TOP = (
    "monitor.services",
    "monitor.api",
    "monitor.server",
    "monitor.cli",
    "monitor.commands",
    "monitor.demo",
    "monitor.bulk",
    "monitor.reports",
    "monitor.consume.run",
    "monitor.__main__",
)
# the runner and the scheduler drive jobs and hand results to the webhook triggers/dispatcher
SCHEDULING = ("monitor.jobs.runner", "monitor.jobs.scheduler")
CONSUMERS = ("monitor.exporter", "monitor.webhooks", "monitor.dashboards", "monitor.alerts")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


@cache
def modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def _resolve(module: str, node: ast.ImportFrom) -> list[str]:
    if node.level:
        package = module.split(".")
        if modules()[module].name != "__init__.py":
            package.pop()
        base = ".".join(package[: len(package) - node.level + 1])
        target = f"{base}.{node.module}" if node.module else base
    else:
        target = node.module or ""
    names = [f"{target}.{a.name}" for a in node.names]
    # ``from monitor.alerts import promql`` imports the submodule, not just the package
    return [n for n in names if n in modules()] or [target]


def _import_time(tree: ast.Module) -> Iterator[ast.stmt]:
    """The module's statements run at import time (not functions, not ``if TYPE_CHECKING``)."""
    for node in tree.body:
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            continue
        if isinstance(node, ast.If | ast.Try):
            yield node
            yield from (n for n in ast.walk(node) if isinstance(n, ast.Import | ast.ImportFrom))
        elif not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            yield node


@cache
def imports_of(module: str, *, eager: bool = False) -> frozenset[str]:
    tree = ast.parse(modules()[module].read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in _import_time(tree) if eager else ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            found.update(_resolve(module, node))
    return frozenset(n for n in found if n == "monitor" or n.startswith("monitor."))


def _within(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def _edges(of: tuple[str, ...]) -> Iterator[tuple[str, str]]:
    for module in modules():
        if _within(module, of):
            for target in imports_of(module):
                yield module, target


def test_the_walk_sees_the_imports() -> None:
    # the check below could pass by reading nothing; it does read the known edges
    assert "monitor.jobs.context" in imports_of("monitor.jobs.base")
    assert "monitor.storage.database" in imports_of("monitor.jobs.context")
    assert "monitor.jobs.context" in imports_of("monitor.services")
    assert "monitor.alerts.promql" in imports_of("monitor.alerts.rules")
    assert "monitor.consume.nats_source" in imports_of("monitor.consume.source")
    assert "monitor.consume.nats_source" not in imports_of("monitor.consume.source", eager=True)


@pytest.mark.parametrize(
    ("floor", "forbidden"),
    [
        (("monitor.storage",), (*TOP, *SCHEDULING, *CONSUMERS, "monitor.jobs")),
        (("monitor.stats",), (*TOP, *SCHEDULING, *CONSUMERS, "monitor.jobs", "monitor.storage")),
        (("monitor.ingest", "monitor.integrations"), (*TOP, *SCHEDULING, *CONSUMERS)),
        (("monitor.jobs",), (*TOP, "monitor.exporter")),
        (CONSUMERS, (*TOP, *SCHEDULING)),
    ],
    ids=["storage", "stats", "ingest", "jobs", "consumers"],
)
def test_no_floor_imports_a_higher_one(floor: tuple[str, ...], forbidden: tuple[str, ...]) -> None:
    upward = sorted(f"{m} -> {t}" for m, t in _edges(floor) if _within(t, forbidden))
    assert upward == []


def test_jobs_other_than_the_runner_know_no_consumer() -> None:
    jobs = [m for m in modules() if _within(m, ("monitor.jobs",)) and m not in SCHEDULING]
    upward = sorted(f"{m} -> {t}" for m in jobs for t in imports_of(m) if _within(t, CONSUMERS))
    assert upward == []


def test_only_the_top_floor_imports_the_wiring() -> None:
    everything = tuple(modules())
    users = sorted(
        f"{m} -> {t}"
        for m, t in _edges(everything)
        if _within(t, ("monitor.services",)) and not _within(m, TOP)
    )
    assert users == []


def test_the_wiring_does_not_reach_into_the_api() -> None:
    # the API floor adds what only HTTP needs (the token verifier) on top of the wiring
    assert sorted(t for t in imports_of("monitor.services") if _within(t, ("monitor.api",))) == []


def test_the_module_graph_has_no_cycle() -> None:
    graph = {
        m: sorted(t for t in imports_of(m, eager=True) if t in modules() and t != m)
        for m in modules()
    }
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    cycles: list[list[str]] = []

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        path.append(node)
        for nxt in graph[node]:
            if state.get(nxt) == 1:
                cycles.append([*path[path.index(nxt) :], nxt])
            elif nxt not in state:
                visit(nxt, path)
        path.pop()
        state[node] = 2

    for module in graph:
        if module not in state:
            visit(module, [])
    assert [" -> ".join(c) for c in cycles] == []
