"""Fixtures for the whole suite, the tests in tests/ and the docstring examples in iqa_bench/."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent
WEIGHTS_DIR = (
    Path(os.environ["IQA_BENCH_WEIGHTS"])
    if os.environ.get("IQA_BENCH_WEIGHTS")
    else REPO.parent / "shared" / "weights"
)


@pytest.fixture(autouse=True, scope="session")
def _isolated_environment(tmp_path_factory: pytest.TempPathFactory):
    """Keep tests off the user's cache and the network; expose the real weights folder if any."""
    saved = {
        k: os.environ.get(k) for k in ("IQA_BENCH_CACHE", "IQA_BENCH_DATA", "IQA_BENCH_OFFLINE")
    }
    os.environ["IQA_BENCH_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    os.environ["IQA_BENCH_DATA"] = str(tmp_path_factory.mktemp("data"))
    os.environ["IQA_BENCH_OFFLINE"] = "1"
    if WEIGHTS_DIR.is_dir():
        os.environ["IQA_BENCH_WEIGHTS"] = str(WEIGHTS_DIR)
    yield
    for key, value in saved.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


@pytest.fixture(autouse=True)
def _doctest_in_a_fresh_folder(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch) -> None:
    """Docstring examples run in an empty folder of their own, with ``tmp_path`` defined."""
    if type(request.node).__name__ == "DoctestItem":
        monkeypatch.chdir(tmp_path)
        request.node.dtest.globs["tmp_path"] = tmp_path
