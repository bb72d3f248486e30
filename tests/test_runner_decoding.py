"""Per-sample decoding problems in the runner: recorded under ``skip_bad``, else a named error."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from iqa_bench.datasets import TwoAFCSample
from iqa_bench.errors import InputError
from iqa_bench.runner import RunOptions, run_benchmark, store
from iqa_bench.runner.batches import decoded_batches
from tests.test_images import bomb_png

BAD = "val/cnn/000002"
ROLES = ("ref", "p0", "p1")


def _opts(**kw) -> RunOptions:
    return RunOptions(progress=False, **{"batch_size": 4, "chunk_size": 8, **kw})


@pytest.fixture
def bapps(bapps_layout) -> tuple[Path, Path]:
    """A 5-triplet BAPPS-layout folder (native size, opened by path) and its sample 2's p1."""
    root = bapps_layout({"cnn": 5}, None)
    return root, root / "2afc" / "val" / "cnn" / "p1" / "000002.png"


def _run_skipping(root: Path, out: Path) -> tuple[list[dict], np.ndarray]:
    result = run_benchmark(str(root), ["l2"], out, _opts(skip_bad=True), log=lambda m: None)
    d1 = np.load(store.final_path(result.run_dir, "l2", "2afc"))["d1"]
    return result.manifest["failed_samples"], d1


def test_images_of_one_sample_differing_in_size_are_skipped_with_skip_bad(
    bapps: tuple[Path, Path], tmp_path: Path
) -> None:
    root, bad = bapps
    Image.new("RGB", (32, 48)).save(bad)
    sizes = rf"ref {root}\S+ 64x64, p0 \S+ 64x64, p1 {bad} 32x48"
    with pytest.raises(InputError, match=rf"sample {BAD}: images differ in size \({sizes}\)"):
        run_benchmark(str(root), ["l2"], tmp_path / "run", _opts(), log=lambda m: None)
    failed, d1 = _run_skipping(root, tmp_path / "run2")
    assert [(f["sample_id"], f["path"]) for f in failed] == [(BAD, str(bad))]
    assert "32x48" in failed[0]["reason"]
    assert np.isnan(d1[2]) and np.isfinite(np.delete(d1, 2)).all()


def test_decompression_bomb_is_skipped_with_skip_bad_and_named_without(
    bapps: tuple[Path, Path], tmp_path: Path
) -> None:
    root, bad = bapps
    bomb_png(bad)
    with pytest.raises(InputError, match=rf"sample {BAD}: image file {bad} is too large"):
        run_benchmark(str(root), ["l2"], tmp_path / "run", _opts(), log=lambda m: None)
    failed, d1 = _run_skipping(root, tmp_path / "run2")
    assert [(f["sample_id"], f["path"]) for f in failed] == [(BAD, str(bad))]
    assert "400000000 pixels" in failed[0]["reason"]
    assert np.isnan(d1[2]) and np.isfinite(np.delete(d1, 2)).all()


def test_symbolic_link_loop_is_a_failed_sample_naming_the_link(
    bapps: tuple[Path, Path],
) -> None:
    """At the decoder, for samples built by any adapter."""
    root, _ = bapps
    cnn = root / "2afc" / "val" / "cnn"
    loop = cnn / "p1" / "loop.png"
    loop.symlink_to(loop)
    samples = [
        TwoAFCSample(f"val/cnn/{i:06d}", "cnn", *(cnn / r / f"{i:06d}.png" for r in ROLES), 0.5)
        for i in range(3)
    ]
    samples[1] = dataclasses.replace(samples[1], p1=loop)
    batches = list(decoded_batches(samples, [0, 1, 2], "2afc", 4, skip_bad=True))
    assert [b.positions for b in batches] == [[0, 2]]
    [(position, path, reason)] = batches[0].failed
    assert (position, path) == (1, str(loop)) and "is a symbolic link loop" in reason
    with pytest.raises(
        InputError, match=rf"sample val/cnn/000001: image file {loop} is a symbolic"
    ):
        list(decoded_batches(samples, [0, 1, 2], "2afc", 4, skip_bad=False))


def test_symbolic_link_loop_in_a_bapps_folder_is_a_failed_sample_of_the_run(
    bapps: tuple[Path, Path], tmp_path: Path
) -> None:
    """The adapter's folder listing lists the loop as the sample's file; decoding names it."""
    root, bad = bapps
    bad.unlink()
    bad.symlink_to(bad)
    with pytest.raises(InputError, match=rf"image file {bad} is a symbolic link loop"):
        run_benchmark(str(root), ["l2"], tmp_path / "run", _opts(), log=lambda m: None)
    failed, d1 = _run_skipping(root, tmp_path / "run2")
    assert [(f["sample_id"], f["path"]) for f in failed] == [(BAD, str(bad))]
    assert np.isnan(d1[2]) and np.isfinite(np.delete(d1, 2)).all()
