"""Import rules that keep data flowing one way (see docs/ARCHITECTURE.md)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parent.parent / "iqa_bench"


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = "." * node.level + (node.module or "")
            names.add(base)
            names.update(
                f"{base}.{a.name}" if node.module else f"{base}{a.name}" for a in node.names
            )
    return names


@pytest.mark.parametrize("package", ["metrics", "functional", "backbones.py", "weights.py"])
def test_metrics_never_import_datasets(package):
    files = [PKG / package] if package.endswith(".py") else sorted((PKG / package).rglob("*.py"))
    for f in files:
        assert not any("datasets" in name for name in _imports(f)), f


@pytest.mark.parametrize(
    "module",
    [
        "iqa_bench.stats",
        "iqa_bench.datasets",
        "iqa_bench.results",
        "iqa_bench.records",
        "iqa_bench.reports",
    ],
)
def test_torch_free_layers_do_not_import_torch(module):
    if (
        not (PKG / module.split(".")[1]).exists()
        and not (PKG / f"{module.split('.')[1]}.py").exists()
    ):
        pytest.skip(f"{module} not present")
    code = f"import sys, {module}; sys.exit(1 if 'torch' in sys.modules else 0)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0, f"{module} imported torch"


def _module_graph() -> dict[str, set[str]]:
    """Every iqa_bench module -> the iqa_bench modules it imports, at module or function level."""
    modules = {}
    for path in PKG.rglob("*.py"):
        parts = path.relative_to(PKG.parent).with_suffix("").parts
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - max(node.level - 1, 0)])
                if not node.level:
                    module = node.module or ""
                else:
                    module = f"{base}.{node.module}" if node.module else base
                targets.add(module)
                targets.update(f"{module}.{a.name}" for a in node.names)
        graph[name] = {
            t for t in targets if t in modules and t != name and not name.startswith(t + ".")
        }
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def test_no_import_cycles_in_the_package() -> None:
    assert _cycles(_module_graph()) == []


def test_cycle_finder_finds_a_cycle() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert _cycles(graph) == [["a", "b", "c"]]


def _under(module: str, layer: str) -> bool:
    return module == layer or module.startswith(layer + ".")


#: (layer, layers it must not import), as docs/ARCHITECTURE.md states them.
LAYER_RULES = [
    ("iqa_bench.metrics", ("iqa_bench.datasets", "iqa_bench.training", "iqa_bench.runner")),
    ("iqa_bench.functional", ("iqa_bench.datasets", "iqa_bench.training", "iqa_bench.runner")),
    ("iqa_bench.backbones", ("iqa_bench.datasets", "iqa_bench.training", "iqa_bench.runner")),
    ("iqa_bench.runner", ("iqa_bench.stats", "iqa_bench.reports", "iqa_bench.results")),
    (
        "iqa_bench.stats",
        tuple(
            f"iqa_bench.{m}"
            for m in ("datasets", "metrics", "runner", "reports", "results", "training")
        ),
    ),
    (
        "iqa_bench.reports",
        ("iqa_bench.datasets", "iqa_bench.metrics", "iqa_bench.runner", "iqa_bench.training"),
    ),
    ("iqa_bench.datasets", ("iqa_bench.metrics", "iqa_bench.runner", "iqa_bench.reports")),
]


@pytest.mark.parametrize(("layer", "forbidden"), LAYER_RULES, ids=[r[0] for r in LAYER_RULES])
def test_layers_import_only_downwards(layer: str, forbidden: tuple[str, ...]) -> None:
    graph = _module_graph()
    bad = sorted(
        (src, dst)
        for src, targets in graph.items()
        if _under(src, layer)
        for dst in targets
        if any(_under(dst, f) for f in forbidden)
    )
    assert bad == []


def test_stats_imports_only_numpy_scipy_and_itself() -> None:
    allowed = {"numpy", "scipy", "math", "dataclasses", "collections", "typing", "functools"}
    for path in sorted((PKG / "stats").rglob("*.py")):
        for name in _imports(path):
            top = name.lstrip(".").split(".")[0]
            if name.startswith(".") or top in ("__future__", "iqa_bench") or not top:
                continue
            assert top in allowed or top in sys.stdlib_module_names, (path.name, name)
