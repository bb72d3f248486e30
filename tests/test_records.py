"""Tests for iqa_bench.records: the run contract's strict reading, schema 1, and its documentation."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from iqa_bench.records import (
    SCHEMA_VERSION,
    ContractError,
    RunManifest,
    parse_manifest,
    read_manifest,
    read_scores,
    to_json,
)
from iqa_bench.results import load_run
from iqa_bench.tasks import TASKS
from tests.run_fixture import make_run, schema1_manifest

DOC = Path(__file__).resolve().parent.parent / "docs" / "ARCHITECTURE.md"


@pytest.fixture
def run_dir(tmp_path: Path) -> Path:
    return make_run(tmp_path, bad_samples=[{"sample_id": "val/x", "path": "/x", "reason": "bad"}])


def _manifest(run_dir: Path) -> dict:
    return json.loads((run_dir / "manifest.json").read_text(encoding="utf-8"))


def _write(run_dir: Path, manifest: dict) -> Path:
    path = run_dir / "manifest.json"
    path.write_text(json.dumps(manifest), encoding="utf-8")
    return path


def test_fixture_manifest_is_schema_2_and_round_trips(run_dir: Path) -> None:
    data = _manifest(run_dir)
    record = read_manifest(run_dir / "manifest.json")
    assert data["schema"] == SCHEMA_VERSION == record.schema == 2
    assert to_json(record) == data


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (lambda m: m.update(colour="red"), "colour"),
        (lambda m: m["dataset"].update(content="sha256:..."), "dataset.content"),
        (lambda m: m["metrics"]["l2"].update(scale=2), "metrics.l2.scale"),
        (lambda m: m["failed_samples"][0].update(stage="x"), "failed_samples[0].stage"),
        (lambda m: m["tasks"]["2afc"].update(order=[]), "tasks.2afc.order"),
    ],
)
def test_unknown_field_is_an_error_naming_the_field_and_the_file(run_dir, edit, field) -> None:
    manifest = _manifest(run_dir)
    edit(manifest)
    path = _write(run_dir, manifest)
    with pytest.raises(ContractError) as info:
        load_run(run_dir)
    assert f"{path}: unknown field {field!r}" in str(info.value)
    assert "re-create the run with `iqa-bench run" in str(info.value)


@pytest.mark.parametrize(
    ("edit", "field"),
    [
        (lambda m: m.pop("timings"), "timings"),
        (lambda m: m["dataset"].pop("load_size"), "dataset.load_size"),
        (lambda m: m["metrics"]["ssim"].pop("higher_is_better"), "metrics.ssim.higher_is_better"),
        (lambda m: m["metrics"]["lpips-vgg"].pop("reason"), "metrics.lpips-vgg.reason"),
        (lambda m: m["bad_samples"][0].pop("subset"), "bad_samples[0].subset"),
        (lambda m: m["environment"].pop("gpu"), "environment.gpu"),
    ],
)
def test_missing_field_is_an_error_naming_the_field_and_the_file(run_dir, edit, field) -> None:
    manifest = _manifest(run_dir)
    edit(manifest)
    path = _write(run_dir, manifest)
    with pytest.raises(ContractError, match=re.escape(f"{path}: missing field {field!r}")):
        load_run(run_dir)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (
            lambda m: m["metrics"]["ssim"].update(higher_is_better="yes"),
            "'metrics.ssim.higher_is_better'",
        ),
        (
            lambda m: m["metrics"]["ssim"].update(status="fine"),
            "'fine' is not one of ['ok', 'skipped']",
        ),
        (lambda m: m["tasks"]["2afc"].update(n=True), "bool True is not a int in 'tasks.2afc.n'"),
        (lambda m: m.update(metrics=[]), "an object is needed, not list, in 'metrics'"),
    ],
)
def test_a_value_of_the_wrong_type_is_an_error_naming_the_field(run_dir, edit, message) -> None:
    manifest = _manifest(run_dir)
    edit(manifest)
    _write(run_dir, manifest)
    with pytest.raises(ContractError, match=re.escape(message)):
        load_run(run_dir)


def test_a_newer_schema_says_to_upgrade(run_dir: Path) -> None:
    _write(run_dir, _manifest(run_dir) | {"schema": 3})
    with pytest.raises(ContractError, match="schema 3; this version reads schemas 1 and 2"):
        load_run(run_dir)


def test_schema1_manifest_reads_as_the_same_run(run_dir: Path) -> None:
    new = load_run(run_dir)
    old_manifest = schema1_manifest(run_dir)
    assert old_manifest["schema"] == 1 and "workers" not in old_manifest
    assert "reason" not in old_manifest["metrics"]["l2"]
    _write(run_dir, old_manifest)
    old = load_run(run_dir)
    assert old.record.schema == 2
    assert old.metrics == new.metrics
    assert old.dataset == new.dataset
    assert old.skipped() == new.skipped() and old.failed_samples() == new.failed_samples()
    assert old.bad_samples() == []  # schema-1 runs of older versions recorded none
    assert old.manifest["workers"] is None and old.manifest["dataset"]["load_size"] is None
    for metric in new.metric_names():
        a, b = old.twoafc(metric), new.twoafc(metric)
        assert (
            np.array_equal(a.d0, b.d0) and np.array_equal(a.d1, b.d1) and a.n_failed == b.n_failed
        )


def test_schema1_bad_sample_without_task_or_subset_reads_them_empty(run_dir: Path) -> None:
    manifest = schema1_manifest(run_dir)
    manifest["bad_samples"] = [{"sample_id": "val/x", "path": "/x", "reason": "bad"}]
    _write(run_dir, manifest)
    assert load_run(run_dir).bad_samples()[0] == {
        "sample_id": "val/x",
        "path": "/x",
        "reason": "bad",
        "task": "",
        "subset": "",
    }


def test_schema1_manifest_without_a_metrics_orientation_says_how_to_recreate(run_dir) -> None:
    manifest = schema1_manifest(run_dir)
    del manifest["metrics"]["ssim"]["higher_is_better"]
    path = _write(run_dir, manifest)
    with pytest.raises(ContractError) as info:
        load_run(run_dir)
    message = str(info.value)
    assert str(path) in message and "'metrics.ssim.higher_is_better'" in message
    assert "re-create the run with `iqa-bench run <dataset> --out <new folder>`" in message


def test_scores_file_with_an_unknown_array_names_it(run_dir: Path) -> None:
    path = run_dir / "scores" / "l2" / "2afc.npz"
    with np.load(path) as raw:
        np.savez(path, **dict(raw), d2=raw["d0"])
    with pytest.raises(ContractError, match=r"2afc\.npz has unknown array\(s\) \['d2'\]"):
        read_scores(path, "2afc", "2afc scores of 'l2'")


def _doc_manifest() -> dict:
    section = DOC.read_text(encoding="utf-8").split("### `manifest.json` (schema 2)")[1]
    return json.loads(section.split("```json")[1].split("```")[0])


def test_architecture_doc_example_is_a_complete_schema_2_manifest() -> None:
    example = _doc_manifest()
    record = parse_manifest(example, DOC)  # strict: no unknown or missing field
    assert isinstance(record, RunManifest) and record.schema == SCHEMA_VERSION
    assert to_json(record) == example  # and nothing was filled in or dropped


def test_architecture_doc_layout_names_every_tasks_arrays() -> None:
    layout = DOC.read_text(encoding="utf-8").split("## Results on disk")[1].split("```")[1]
    for task, spec in TASKS.items():
        assert re.search(rf"\b{spec.judgment} \({task}\)", layout), (task, spec.judgment)
        assert all(re.search(rf"\b{name}\b", layout) for name in spec.scores), task
