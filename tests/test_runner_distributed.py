"""torchrun sharding: two CPU processes on gloo give the same results as one process."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from iqa_bench.datasets.bapps_layout import make_bapps_layout
from iqa_bench.runner import RunOptions, run_benchmark, store


@pytest.mark.slow
@pytest.mark.weights
def test_two_gloo_processes_equal_a_single_process(tmp_path, alex_weights):
    torchrun = shutil.which("torchrun", path=os.path.dirname(sys.executable))
    if torchrun is None:
        pytest.skip("torchrun not found beside the Python interpreter")
    root = tmp_path / "bapps"
    make_bapps_layout(root, twoafc={"traditional": 11, "cnn": 6}, jnd={"cnn": 7}, seed=5)
    metrics = "l2,ssim,lpips-alex"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "CUDA_VISIBLE_DEVICES": ""}
    cmd = [
        torchrun,
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "iqa_bench.cli",
        "run",
        "--dataset",
        str(root),
        "--metrics",
        metrics,
        "--out",
        str(tmp_path / "dist"),
        "--batch-size",
        "3",
        "--chunk-size",
        "5",
        "--no-report",
        "--quiet",
        "--device",
        "cpu",
    ]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    single = run_benchmark(
        str(root),
        metrics.split(","),
        tmp_path / "single",
        RunOptions(progress=False, device="cpu"),
        log=lambda m: None,
    )
    for name in metrics.split(","):
        for task in ("2afc", "jnd"):
            fields = store.score_fields(task)
            a = np.load(store.final_path(tmp_path / "dist", name, task))
            b = np.load(store.final_path(single.run_dir, name, task))
            assert list(a["sample_id"]) == list(b["sample_id"])
            for f in fields:
                np.testing.assert_allclose(a[f], b[f], rtol=1e-6, atol=1e-6)
    manifest = (tmp_path / "dist" / "manifest.json").read_text()
    assert '"world_size": 2' in manifest


@pytest.mark.parametrize(
    ("device", "cuda_present", "backend", "current_gpu"),
    [
        (None, True, "nccl", 1),  # one GPU per process: LOCAL_RANK
        ("cuda", True, "nccl", 1),
        ("cuda:0", True, "nccl", 0),  # the device the user named
        ("cpu", True, "gloo", None),  # CPU sharding on a CUDA machine
        (None, False, "gloo", None),
    ],
)
def test_torchrun_process_joins_with_the_backend_and_gpu_of_its_device(
    monkeypatch, device, cuda_present, backend, current_gpu
):
    """NCCL's collectives run on the process's current GPU: without set_device every rank would
    use GPU 0 and gathering the results would fail."""
    import torch
    import torch.distributed as dist

    from iqa_bench.runner.distributed import dist_context

    calls: dict = {}
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "1")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda_present)
    monkeypatch.setattr(torch.cuda, "set_device", lambda index: calls.setdefault("gpu", index))
    monkeypatch.setattr(dist, "is_initialized", lambda: False)
    monkeypatch.setattr(dist, "init_process_group", lambda backend: calls.setdefault("be", backend))
    monkeypatch.setattr(dist, "get_rank", lambda: 1)
    monkeypatch.setattr(dist, "get_world_size", lambda: 2)
    ctx = dist_context(device)
    assert (ctx.rank, ctx.world_size, ctx.local_rank) == (1, 2, 1)
    assert calls.get("be") == backend and calls.get("gpu") == current_gpu


@pytest.mark.parametrize("caller_made_it", [False, True])
def test_a_run_leaves_the_process_group_it_joined_and_keeps_a_callers(monkeypatch, caller_made_it):
    """Left to process exit, gloo aborted a finished rank about 1 torchrun run in 10 here
    (3 of 30 before, 0 of 90 after leaving the group)."""
    import torch.distributed as dist

    from iqa_bench.runner.distributed import dist_context

    def one_rank_group(backend: str = "gloo") -> None:
        join(backend, store=dist.HashStore(), rank=0, world_size=1)

    join = dist.init_process_group
    monkeypatch.setenv("WORLD_SIZE", "2")  # as torchrun sets it; the group itself has one rank
    monkeypatch.setenv("LOCAL_RANK", "0")
    monkeypatch.setattr(dist, "init_process_group", one_rank_group)
    if caller_made_it:
        one_rank_group()
    ctx = dist_context("cpu")
    assert dist.is_initialized() and ctx.owns_group is not caller_made_it
    ctx.close()
    assert dist.is_initialized() is caller_made_it
    if caller_made_it:
        dist.destroy_process_group()
