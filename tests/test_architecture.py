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
    "module", ["iqa_bench.stats", "iqa_bench.datasets", "iqa_bench.results", "iqa_bench.reports"]
)
def test_torch_free_layers_do_not_import_torch(module):
    if (
        not (PKG / module.split(".")[1]).exists()
        and not (PKG / f"{module.split('.')[1]}.py").exists()
    ):
        pytest.skip(f"{module} not present")
    code = f"import sys, {module}; sys.exit(1 if 'torch' in sys.modules else 0)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0, f"{module} imported torch"
