"""Tests for iqa_bench.results: reading, checking and aligning a run directory."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from iqa_bench.results import load_run
from tests.run_fixture import make_run


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    return make_run(tmp_path)


def test_load_run_reads_manifest_and_dataset(run_dir: Path) -> None:
    run = load_run(run_dir)
    assert run.run_id == "20261126-131500-synthetic"
    assert run.dataset.name == "synthetic"
    assert run.dataset.synthetic is True
    assert run.dataset.split == "val"
    assert run.tasks() == ["2afc", "jnd"]


def test_metric_names_are_grouped_classical_deep_lpips_custom_in_card_order(run_dir: Path) -> None:
    # The fixture's manifest lists lpips-alex, l2, my_metric, ssim, lpips-vgg-baseline.
    assert load_run(run_dir).metric_names() == [
        "l2",
        "ssim",
        "lpips-vgg-baseline",
        "lpips-alex",
        "my_metric",
    ]


def test_metric_names_without_status_filter_include_skipped(run_dir: Path) -> None:
    names = load_run(run_dir).metric_names(status=None)
    assert names.index("lpips-vgg") == names.index("lpips-alex") + 1
    assert load_run(run_dir).metric_names(status="skipped") == ["lpips-vgg"]


def test_skipped_lists_names_with_reasons(run_dir: Path) -> None:
    assert load_run(run_dir).skipped() == [
        ("lpips-vgg", "trunk weights vgg16-397923af-features.pth not found in IQA_BENCH_WEIGHTS")
    ]


def test_subset_order_is_first_appearance_in_judgments_not_alphabetical(tmp_path: Path) -> None:
    run = load_run(make_run(tmp_path, twoafc_subsets=("traditional", "cnn", "color")))
    assert run.subsets("2afc") == ("traditional", "cnn", "color")
    assert run.twoafc("l2").subset_order == ("traditional", "cnn", "color")


def test_twoafc_aligns_scores_to_judgments_by_sample_id(run_dir: Path) -> None:
    run = load_run(run_dir)
    data = run.twoafc("l2")
    with np.load(run_dir / "scores" / "l2" / "2afc.npz") as raw:
        by_id = dict(zip(raw["sample_id"].tolist(), raw["d0"].tolist(), strict=True))
    judged_ids, _, judged_h = run.judgments("2afc")
    assert data.sample_id.tolist() == [s for s in judged_ids.tolist() if s in data.sample_id]
    np.testing.assert_array_equal(data.d0, [by_id[s] for s in data.sample_id.tolist()])
    h_by_id = dict(zip(judged_ids.tolist(), judged_h.tolist(), strict=True))
    np.testing.assert_array_equal(data.h, [h_by_id[s] for s in data.sample_id.tolist()])


def test_similarity_metric_is_negated_into_a_distance(run_dir: Path) -> None:
    data = load_run(run_dir).twoafc("ssim")
    with np.load(run_dir / "scores" / "ssim" / "2afc.npz") as raw:
        by_id = dict(zip(raw["sample_id"].tolist(), raw["d1"].tolist(), strict=True))
    np.testing.assert_array_equal(data.d1, [-by_id[s] for s in data.sample_id.tolist()])


def test_failed_nan_samples_are_excluded_and_counted(run_dir: Path) -> None:
    run = load_run(run_dir)
    data = run.twoafc("lpips-alex")
    assert data.n_failed == 1
    assert len(data.d0) == len(run.judgments("2afc")[0]) - 1
    assert "val/traditional/000003" not in data.sample_id.tolist()
    assert np.isfinite(data.d0).all() and np.isfinite(data.d1).all()
    assert run.failed_samples()[0]["sample_id"] == "val/traditional/000003"


def test_jnd_data_is_aligned_and_complete(run_dir: Path) -> None:
    data = load_run(run_dir).jnd("my_metric")
    assert data.n_failed == 0
    assert len(data.d) == len(data.same) == 80
    assert data.subset_order == ("traditional", "cnn")


def test_missing_run_dir_raises_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_run(tmp_path / "nope")


def test_run_dir_without_manifest_names_the_file_and_fix(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"manifest\.json is missing.*Pass the folder"):
        load_run(tmp_path)


def test_invalid_manifest_json_raises_value_error(tmp_path: Path) -> None:
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_run(tmp_path)


def test_ok_metric_without_orientation_is_rejected(run_dir: Path) -> None:
    manifest = json.loads((run_dir / "manifest.json").read_text())
    del manifest["metrics"]["ssim"]["higher_is_better"]
    (run_dir / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError, match=r"missing field 'metrics\.ssim\.higher_is_better'"):
        load_run(run_dir)


def test_scores_whose_sample_ids_do_not_match_judgments_raise(run_dir: Path) -> None:
    path = run_dir / "scores" / "l2" / "2afc.npz"
    with np.load(path) as raw:
        arrays = dict(raw)
    arrays["sample_id"] = np.array([s.replace("val/", "train/") for s in arrays["sample_id"]])
    np.savez(path, **arrays)
    with pytest.raises(ValueError, match=r"scores/l2/2afc\.npz: sample_ids do not match"):
        load_run(run_dir).twoafc("l2")


def test_missing_scores_file_raises_file_not_found_naming_it(run_dir: Path) -> None:
    (run_dir / "scores" / "my_metric" / "jnd.npz").unlink()
    with pytest.raises(FileNotFoundError, match=r"my_metric/jnd\.npz not found"):
        load_run(run_dir).jnd("my_metric")


def test_scores_file_missing_an_array_names_it(run_dir: Path) -> None:
    path = run_dir / "scores" / "l2" / "2afc.npz"
    with np.load(path) as raw:
        np.savez(path, sample_id=raw["sample_id"], d0=raw["d0"])
    with pytest.raises(ValueError, match=r"lacks array\(s\) \['d1'\]"):
        load_run(run_dir).twoafc("l2")


def test_skipped_metric_has_no_scores(run_dir: Path) -> None:
    with pytest.raises(ValueError, match="was skipped in this run"):
        load_run(run_dir).twoafc("lpips-vgg")


def test_unknown_metric_suggests_a_close_name(run_dir: Path) -> None:
    with pytest.raises(ValueError, match="Did you mean 'lpips-alex'"):
        load_run(run_dir).twoafc("lpips-alx")


def test_records_results_and_reports_do_not_import_torch() -> None:
    code = (
        "import sys, iqa_bench.records, iqa_bench.results, iqa_bench.reports, "
        "iqa_bench.reports.figures; "
        "sys.exit(1 if 'torch' in sys.modules else 0)"
    )
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


@pytest.mark.parametrize("which", ["scores/l2/2afc.npz", "judgments/2afc.npz"])
@pytest.mark.parametrize("keep", [0.5, 0.95])
def test_truncated_npz_raises_input_error_naming_the_file_and_the_rerun(
    run_dir: Path, which: str, keep: float
) -> None:
    from iqa_bench.errors import InputError

    path = run_dir / which
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])  # a run killed while writing the file
    with pytest.raises(InputError) as info:
        load_run(run_dir).twoafc("l2")
    message = str(info.value)
    assert str(path) in message
    assert "iqa-bench run" in message and "recomputes" in message
