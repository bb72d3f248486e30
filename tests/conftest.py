"""Shared fixtures: an isolated cache/data root per session, and paths to optional real weights."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from iqa_bench.datasets.bapps_layout import make_bapps_layout

REPO = Path(__file__).resolve().parent.parent


def _shared(env: str, default: Path) -> Path | None:
    value = os.environ.get(env)
    path = Path(value) if value else default
    return path if path.is_dir() else None


# A plugin file that tests load on purpose; collecting it for doctests would register its trunk.
collect_ignore = ["plugin_trunk.py"]

WEIGHTS_DIR = _shared("IQA_BENCH_WEIGHTS", REPO.parent / "shared" / "weights")
REFERENCE_DIR = _shared("IQA_BENCH_REFERENCE", REPO.parent / "shared" / "reference")


def weights_file(name: str) -> Path:
    """Path of a real features-only trunk file, or skip the test saying why."""
    if WEIGHTS_DIR is None:
        pytest.skip(
            "real trunk weights absent: set IQA_BENCH_WEIGHTS to a folder like ../shared/weights"
        )
    path = WEIGHTS_DIR / name
    if not path.is_file():
        pytest.skip(f"real trunk weights {name} absent from {WEIGHTS_DIR}")
    return path


def reference_dir() -> Path:
    """The folder of reference images and expected values, or skip the test saying why."""
    if REFERENCE_DIR is None:
        pytest.skip(
            "reference values absent: set IQA_BENCH_REFERENCE to a folder like ../shared/reference"
        )
    return REFERENCE_DIR


@pytest.fixture
def alex_weights() -> Path:
    """The real AlexNet trunk file that named ``lpips-alex*`` metrics load, or skip saying why."""
    return weights_file("alexnet-owt-7be5be79-features.pth")


def require_tool(*names: str, install: str) -> str:
    """Path of the first of ``names`` on PATH; else skip, or fail under CI, which installs them.

    A check that skips in CI could never fail there, so ``.ci/run`` installs these tools and a
    missing one is an error when ``CI`` is set.
    """
    for name in names:
        path = shutil.which(name)
        if path:
            return path
    message = f"{names[0]} not installed: {install}"
    if os.environ.get("CI"):
        pytest.fail(f"{message} (.ci/run installs it)")
    pytest.skip(message)


def compile_latex(tex: Path) -> Path:
    """Compile ``tex`` with pdflatex in its folder; fail with the log's end unless a PDF results."""
    require_tool("pdflatex", install="apt-get install texlive-latex-recommended")
    proc = subprocess.run(
        ["pdflatex", "-interaction=nonstopmode", "-halt-on-error", tex.name],
        cwd=tex.parent,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout[-2000:]
    pdf = tex.with_suffix(".pdf")
    assert pdf.stat().st_size > 0
    return pdf


@pytest.fixture
def bapps_layout(tmp_path: Path):
    """Factory of BAPPS-layout folders under ``tmp_path``: ``bapps_layout(twoafc, jnd, name=...,
    **make_bapps_layout options)`` returns the folder (see
    :func:`iqa_bench.datasets.bapps_layout.make_bapps_layout`)."""

    def make(twoafc: dict | None, jnd: dict | None, name: str = "bapps", **options) -> Path:
        return make_bapps_layout(tmp_path / name, twoafc, jnd, **options)

    return make


@pytest.fixture
def bapps_root(bapps_layout) -> Path:
    """The runner tests' small set: 10 2AFC triplets and 5 JND pairs in subset ``cnn`` (seed 2)."""
    return bapps_layout({"cnn": 10}, {"cnn": 5}, seed=2)
