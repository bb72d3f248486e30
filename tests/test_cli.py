"""The ``iqa-bench`` command line."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from iqa_bench.cli import main


def test_list_shows_orientation_and_card_version(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "lpips-alex" in out and "psnr" in out
    line = next(line for line in out.splitlines() if line.startswith("psnr "))
    assert "higher=better" in line and "v1" in line


def test_score_prints_the_distance_of_two_files(tmp_path, capsys):
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)
    b = np.clip(a.astype(int) + 10, 0, 255).astype(np.uint8)
    Image.fromarray(a).save(tmp_path / "a.png")
    Image.fromarray(b).save(tmp_path / "b.png")
    assert main(["score", "--metric", "l2", str(tmp_path / "a.png"), str(tmp_path / "b.png")]) == 0
    value = float(capsys.readouterr().out)
    want = np.mean((a / 255.0 - b / 255.0) ** 2)
    assert value == pytest.approx(want, abs=1e-6)


def test_score_with_unknown_metric_exits_with_a_clear_error(tmp_path, capsys):
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "a.png")
    assert (
        main(["score", "--metric", "ssim-papr", str(tmp_path / "a.png"), str(tmp_path / "a.png")])
        == 2
    )
    assert "Did you mean 'ssim-paper'" in capsys.readouterr().err
