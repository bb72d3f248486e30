"""A task registered at run time is opened, scored and stored by the runner like a built-in one."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from iqa_bench.datasets import Dataset
from iqa_bench.images import read_image_uint8, write_png
from iqa_bench.results import load_run
from iqa_bench.runner import RunOptions, run_benchmark
from iqa_bench.tasks import TASKS, TaskSpec, register_task


@dataclass(frozen=True)
class ABXSample:
    sample_id: str
    subset: str
    x: Path
    a: Path
    b: Path
    h: float


@pytest.fixture
def abx_task():
    spec = register_task(
        TaskSpec("abx", ("x", "a", "b"), (("x", "a"), ("x", "b")), ("da", "db"), "h")
    )
    yield spec
    TASKS.pop("abx", None)


def test_a_task_registered_at_run_time_is_scored_and_stored(abx_task, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    samples = []
    for i in range(5):
        paths = {}
        for role in ("x", "a", "b"):
            paths[role] = tmp_path / "abx" / role / f"{i}.png"
            write_png(paths[role], rng.integers(0, 256, (16, 16, 3), dtype=np.uint8))
        samples.append(ABXSample(f"val/toy/{i}", "toy", paths["x"], paths["a"], paths["b"], 1.0))

    class ABXStudy(Dataset):
        def _load(self):
            return {"abx": samples}

    ds = ABXStudy(tmp_path / "abx")
    result = run_benchmark(ds, ["l2"], tmp_path / "run", RunOptions(progress=False))
    assert result.manifest["tasks"]["abx"]["n"] == 5
    data = load_run(result.run_dir).aligned("l2", "abx")
    x, a = (read_image_uint8(samples[2].x) / 255.0, read_image_uint8(samples[2].a) / 255.0)
    # The runner scales uint8 by 1/255 in float32 before the float64 metric: 1.6e-8 relative here.
    assert data.distances["da"][2] == pytest.approx(((x - a) ** 2).mean(), rel=1e-6)
    assert data.judgment.tolist() == [1.0] * 5
