"""The embedded equal-mse default: equal 8-bit MSE, a balanced coin toss for L2, honest labels."""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import json
import re
import time
from pathlib import Path

import numpy as np
import pytest

from iqa_bench.cli import build_parser
from iqa_bench.config import load_dataset_card
from iqa_bench.datasets import MARKER_NAME, BAPPSDataset, EqualMSEDataset, open_dataset
from iqa_bench.datasets.equal_mse import (
    BENIGN,
    BENIGN_CAP,
    MSE_TOLERANCE,
    NOTICE,
    generate_equal_mse,
    resolve_params,
)
from iqa_bench.errors import InputError
from iqa_bench.images import read_image_uint8
from iqa_bench.stats import twoafc_credit

TINY = {"per_subset": 12}
REPO = Path(__file__).resolve().parent.parent


def _digest(root: Path) -> str:
    """Hash of every file but the marker (which records library versions)."""
    hasher = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file() and p.name != MARKER_NAME):
        hasher.update(str(path.relative_to(root)).encode() + path.read_bytes())
    return hasher.hexdigest()


def _mse(a: Path, b: Path) -> float:
    """MSE of two stored files as the l2 metric sees them (decoded 8-bit, scaled to [0, 1])."""
    return float(np.mean((read_image_uint8(a) / 255.0 - read_image_uint8(b) / 255.0) ** 2))


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> EqualMSEDataset:
    root = tmp_path_factory.mktemp("data") / "equal-mse"
    card = dataclasses.replace(load_dataset_card("equal-mse"), params=TINY)
    EqualMSEDataset.generate(root, card)
    return EqualMSEDataset(root, card=card)


def _construction(root: Path) -> dict[str, dict[str, str]]:
    with (root / "construction.csv").open() as fh:
        return {row["sample_id"]: row for row in csv.DictReader(fh)}


def test_stored_sides_have_equal_mse_within_tolerance_and_never_tie(tiny: EqualMSEDataset) -> None:
    gaps = []
    for s in tiny.samples("2afc"):
        m0, m1 = _mse(s.ref, s.p0), _mse(s.ref, s.p1)
        gaps.append(abs(m0 - m1) / max(m0, m1))
    assert min(gaps) > 0 and max(gaps) <= MSE_TOLERANCE


def test_l2_is_exactly_a_coin_toss_per_subset_without_ties(tiny: EqualMSEDataset) -> None:
    samples = tiny.samples("2afc")
    d0 = np.array([_mse(s.ref, s.p0) for s in samples])
    d1 = np.array([_mse(s.ref, s.p1) for s in samples])
    h = np.array([s.h for s in samples])
    subset = np.array([s.subset for s in samples])
    assert not np.any(d0 == d1)
    credit = twoafc_credit(d0, d1, h)
    for name in BENIGN:
        assert credit[subset == name].mean() == 0.5


def test_rule_judges_the_benign_side_closer_with_balanced_sides(tiny: EqualMSEDataset) -> None:
    rows = _construction(tiny.root)
    samples = tiny.samples("2afc")
    assert [s.sample_id for s in samples] == list(rows)
    for s in samples:
        row = rows[s.sample_id]
        assert s.h == (1.0 if row["closer_by_rule"] == "p1" else 0.0)
        assert 0 < float(row["benign_amount"]) <= BENIGN_CAP[row["benign"]]
        assert row["benign"] in BENIGN[s.subset]
    for name in BENIGN:
        h = [s.h for s in samples if s.subset == name]
        assert sorted(set(h)) == [0.0, 1.0] and sum(h) == len(h) / 2


def test_every_label_says_constructed_not_human_and_no_ceiling(tiny: EqualMSEDataset) -> None:
    marker = json.loads((tiny.root / MARKER_NAME).read_text())
    assert marker["synthetic"] is True and marker["human_ceiling"] is False
    assert marker["notice"] == NOTICE and "NOT collected from people" in NOTICE
    readme = (tiny.root / "README.md").read_text()
    assert NOTICE in readme and "Wang and A. C. Bovik" in readme
    assert tiny.synthetic and tiny.notice == NOTICE and tiny.human_ceiling is False
    assert tiny.tasks() == ("2afc",) and tiny.subsets("2afc") == tuple(BENIGN)
    by_path = open_dataset(tiny.root)  # read by the BAPPS adapter, labels from the marker
    assert type(by_path) is BAPPSDataset
    assert (by_path.synthetic, by_path.notice, by_path.human_ceiling) == (True, NOTICE, False)
    card = load_dataset_card("equal-mse")
    assert card.synthetic and "CONSTRUCTED" in card.description


def test_generation_is_deterministic_and_reuses_a_current_folder(
    tiny: EqualMSEDataset, tmp_path: Path
) -> None:
    again = generate_equal_mse(tmp_path / "equal-mse", TINY)
    assert _digest(again) == _digest(tiny.root)
    stamp = (again / MARKER_NAME).stat().st_mtime_ns
    generate_equal_mse(again, TINY)
    assert (again / MARKER_NAME).stat().st_mtime_ns == stamp
    other = generate_equal_mse(tmp_path / "seed1", {**TINY, "seed": 1})
    assert _digest(other) != _digest(again)


@pytest.mark.slow
def test_default_set_generates_under_30_s_with_a_stable_hash(tmp_path: Path) -> None:
    # CPU time, not wall time: this machine's cores are shared, and waiting is not generating.
    start = time.process_time()
    first = open_dataset("equal-mse", data_root=tmp_path / "a")
    seconds = time.process_time() - start
    second = generate_equal_mse(tmp_path / "b" / "equal-mse", load_dataset_card("equal-mse").params)
    assert seconds < 30.0
    assert len(first.samples("2afc")) == 320
    assert _digest(first.root) == _digest(second)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"per_subet": 4}, "unknown param 'per_subet'"),
        ({"per_subset": 5}, "per_subset 5 must be even"),
        ({"patch_size": 8}, "patch_size 8 must be >= 16"),
        ({"seed": "0"}, "param 'seed' = '0' must be an integer"),
    ],
)
def test_bad_params_are_input_errors_naming_the_param(params: dict, message: str) -> None:
    with pytest.raises(InputError, match=message):
        resolve_params(params)


def test_bench_and_make_bench_default_to_equal_mse(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit):
        build_parser().parse_args(["bench", "--help"])
    assert "(default equal-mse)" in " ".join(capsys.readouterr().out.split())
    makefile = (REPO / "Makefile").read_text()
    assert re.search(r"^DATASET \?= equal-mse$", makefile, re.MULTILINE)


def test_reports_carry_the_notice_and_omit_the_human_ceiling(
    tiny: EqualMSEDataset, tmp_path: Path
) -> None:
    from iqa_bench.reports import markdown_report, summarize, terminal_summary
    from iqa_bench.reports.summary import NO_HUMAN_CEILING
    from iqa_bench.reports.tables import score_table
    from iqa_bench.runner import RunOptions, run_benchmark

    options = RunOptions(progress=False, batch_size=16, decode_cache=False)
    result = run_benchmark(str(tiny.root), ["l2", "psnr"], tmp_path / "run", options)
    summary = summarize(result.run_dir, n_boot=100, n_perm=100)
    assert summary.tasks["2afc"].human is None
    text = terminal_summary(summary)
    assert f"!! {NOTICE} !!" in text and NO_HUMAN_CEILING in text
    assert "human-ceiling" not in text.split(NO_HUMAN_CEILING)[0]
    markdown = markdown_report(summary)
    assert f"WARNING: {NOTICE}." in markdown and "SYNTHETIC judgments, not human:" not in markdown
    assert NO_HUMAN_CEILING[1:] in markdown and "| human-ceiling |" not in markdown
    assert [row.metric for row in score_table(summary, "2afc").rows] == ["l2", "psnr"]
