"""End to end: runner + stats equal the reference loop's 2AFC and JND scores on BAPPS-layout data."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch

from benchmarks.reference_loop import score_reference
from iqa_bench.datasets.bapps_layout import make_bapps_layout
from iqa_bench.results import load_run
from iqa_bench.runner import RunOptions, run_benchmark
from iqa_bench.stats import jnd_map, twoafc_scores
from tests.conftest import weights_file


@pytest.fixture(scope="module")
def bapps(tmp_path_factory):
    root = tmp_path_factory.mktemp("bapps")
    return make_bapps_layout(
        root, twoafc={"traditional": 23, "cnn": 14}, jnd={"traditional": 17, "cnn": 12}, seed=11
    )


def _states() -> dict:
    path = weights_file("alexnet-owt-7be5be79-features.pth")
    return {"alex": torch.load(path, weights_only=True)}


@pytest.mark.parametrize("metric", ["l2", "lpips-alex"])
def test_runner_and_stats_equal_the_reference_scores(bapps, tmp_path, metric):
    states = _states() if metric == "lpips-alex" else {}
    os.environ.setdefault("TQDM_DISABLE", "1")
    want = score_reference(bapps, metric, states, batch_size=8, workers=0)
    run_benchmark(
        str(bapps), [metric], tmp_path / "run", RunOptions(progress=False), log=lambda m: None
    )
    run = load_run(tmp_path / "run")
    two, jnd = run.twoafc(metric), run.jnd(metric)
    # The reference holds judgments as float32 tensors (0.2 -> 0.20000000298...); given the same
    # float32 judgments the scores agree to 1e-9, and iqa-bench's float64 answer is within 1e-7.
    as_ref = lambda a: a.astype(np.float32).astype(np.float64)
    got_2afc = twoafc_scores(two.d0, two.d1, as_ref(two.h), two.subset)
    got_jnd = jnd_map(jnd.d, as_ref(jnd.same), jnd.subset)
    exact_2afc = twoafc_scores(two.d0, two.d1, two.h, two.subset)
    for subset in ("traditional", "cnn"):
        assert got_2afc.scores[subset] == pytest.approx(want[f"2afc/{subset}"], abs=1e-9)
        assert got_jnd.scores[subset] == pytest.approx(want[f"jnd/{subset}"], abs=1e-9)
        assert exact_2afc.scores[subset] == pytest.approx(want[f"2afc/{subset}"], abs=1e-7)
