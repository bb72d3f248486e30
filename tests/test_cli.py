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


def test_score_runs_float32_without_tf32_like_run(tmp_path, capsys, monkeypatch):
    import torch

    import iqa_bench.metrics as metrics

    real = metrics.create_metric
    seen: list[bool] = []

    def spying_metric(*args, **kwargs):
        metric = real(*args, **kwargs)
        forward = metric.forward

        def spy(x, y):
            seen.append(torch.backends.cudnn.allow_tf32)
            return forward(x, y)

        metric.forward = spy
        return metric

    monkeypatch.setattr(metrics, "create_metric", spying_metric)
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", True)
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "a.png")
    assert main(["score", "--metric", "l2", str(tmp_path / "a.png"), str(tmp_path / "a.png")]) == 0
    assert seen == [False] and torch.backends.cudnn.allow_tf32


def test_score_with_unknown_metric_exits_with_a_clear_error(tmp_path, capsys):
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "a.png")
    assert (
        main(["score", "--metric", "ssim-papr", str(tmp_path / "a.png"), str(tmp_path / "a.png")])
        == 2
    )
    assert "Did you mean 'ssim-paper'" in capsys.readouterr().err
