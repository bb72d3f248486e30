"""benchmarks/device_agreement.py, the GPU part of device_check.sh, run CPU against CPU here so
that it cannot rot while no GPU is lent: same device, so every difference must be zero."""

from __future__ import annotations

import pytest

from benchmarks.device_agreement import main
from iqa_bench.errors import InputError


def test_cpu_against_cpu_prints_zero_differences_and_lists_what_cannot_be_built(
    capsys, monkeypatch, tmp_path
):
    monkeypatch.setenv("IQA_BENCH_WEIGHTS", str(tmp_path))  # no VGG16 (nor any) trunk here
    monkeypatch.setenv("IQA_BENCH_OFFLINE", "1")
    assert main(["--devices", "cpu,cpu", "--n", "4", "--metrics", "l2,gmsd,dists"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert any(line.startswith("not here: dists: trunk weights") for line in lines)
    rows = {line.split()[0]: line.split() for line in lines if line.split()[1:2] == ["cpu"]}
    assert set(rows) == {"l2", "gmsd"}
    for name, row in rows.items():
        assert [float(v) for v in row[2:5]] == [0.0, 0.0, 0.0], name
        assert all(float(v) > 0 for v in row[5:7]), name


def test_an_unknown_metric_is_an_error_not_a_metric_missing_here():
    with pytest.raises(InputError, match="gmsx"):
        main(["--devices", "cpu,cpu", "--n", "4", "--metrics", "gmsx"])
