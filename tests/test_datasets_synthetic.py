"""The embedded synthetic dataset: deterministic, BAPPS layout, honestly labelled as not human."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from iqa_bench.config import load_dataset_card
from iqa_bench.datasets import (
    MARKER_NAME,
    BAPPSDataset,
    SyntheticDataset,
    download_dataset,
    generate_synthetic,
    open_dataset,
)
from iqa_bench.datasets.synthetic import DEFAULT_PARAMS, resolve_params
from iqa_bench.images import read_image_uint8

TINY = {
    "val_per_subset": 8,
    "train_per_subset": 2,
    "jnd_per_subset": 8,
    "val_subsets": ["blur", "jpeg"],
    "train_subsets": ["noise"],
    "jnd_subsets": ["noise"],
}


@pytest.fixture(scope="module")
def default_synthetic(tmp_path_factory: pytest.TempPathFactory) -> tuple[SyntheticDataset, float]:
    data = tmp_path_factory.mktemp("data")
    start = time.perf_counter()
    ds = open_dataset("synthetic", data_root=data)
    return ds, time.perf_counter() - start


def _digest(root: Path) -> str:
    hasher = hashlib.sha256()
    for path in sorted(p for p in root.rglob("*") if p.is_file() and p.name != MARKER_NAME):
        hasher.update(str(path.relative_to(root)).encode() + path.read_bytes())
    return hasher.hexdigest()


def _l2(a: Path, b: Path) -> float:
    return float(np.mean((read_image_uint8(a) / 255.0 - read_image_uint8(b) / 255.0) ** 2))


def test_card_and_everything_written_say_judgments_are_synthetic_not_human(
    default_synthetic: tuple[SyntheticDataset, float],
) -> None:
    ds, _ = default_synthetic
    card = load_dataset_card("synthetic")
    assert card.synthetic is True and ds.synthetic is True and ds.card == card
    assert "SYNTHETIC" in card.description and "not human" in card.description
    marker = json.loads((ds.root / MARKER_NAME).read_text())
    assert marker["synthetic"] is True and "NOT collected from people" in marker["judgments"]
    assert "NOT collected from people" in (ds.root / "README.txt").read_text()


def test_first_use_generates_default_sizes_quickly_in_bapps_layout(
    default_synthetic: tuple[SyntheticDataset, float],
) -> None:
    ds, seconds = default_synthetic
    assert seconds < 10.0
    assert ds.root.name == "synthetic" and ds.tasks() == ("2afc", "jnd")
    assert ds.subsets("2afc") == tuple(DEFAULT_PARAMS["val_subsets"])
    assert len(ds.samples("2afc")) == 6 * 64 and len(ds.samples("jnd")) == 2 * 100
    assert (ds.root / "2afc/val/blur/judge/000063.npy").is_file()
    assert read_image_uint8(ds.samples("2afc")[0].ref).shape == (64, 64, 3)
    assert ds.load_size is None  # generated at its size; bapps' load size is not inherited
    train = open_dataset("synthetic", data_root=ds.root.parent, split="train")
    assert train.subsets("2afc") == ("blur", "noise", "jpeg") and len(train.samples("2afc")) == 96
    leftovers = [p.name for p in ds.root.parent.iterdir() if p.name.startswith(".")]
    assert leftovers == []


def test_judgments_follow_construction_weaker_distortion_is_closer(
    default_synthetic: tuple[SyntheticDataset, float],
) -> None:
    ds, _ = default_synthetic
    samples = ds.samples("2afc")
    assert {s.h for s in samples} == {0.0, 0.2, 0.4, 0.5, 0.6, 0.8, 1.0}
    ties = [s for s in samples if s.h == 0.5]
    assert len(ties) == len(samples) // 8
    assert all(s.p0.read_bytes() == s.p1.read_bytes() for s in ties)  # exact ties
    decided = [s for s in samples if s.h != 0.5]
    agree = [(_l2(s.ref, s.p1) < _l2(s.ref, s.p0)) == (s.h > 0.5) for s in decided]
    assert np.mean(agree) > 0.9


def test_jnd_pairs_are_tiny_changes_when_same_and_visible_changes_when_different(
    default_synthetic: tuple[SyntheticDataset, float],
) -> None:
    ds, _ = default_synthetic
    by_same: dict[float, list[float]] = {}
    for s in ds.samples("jnd"):
        by_same.setdefault(round(s.same, 4), []).append(_l2(s.p0, s.p1))
    assert sorted(by_same) == [0.0, 0.3333, 0.6667, 1.0]
    assert max(by_same[1.0]) < min(by_same[0.0])
    assert np.median(by_same[0.6667]) < np.median(by_same[0.3333])


def test_generation_is_deterministic_for_a_seed_and_changes_with_it(tmp_path: Path) -> None:
    first = generate_synthetic(tmp_path / "a", TINY)
    second = generate_synthetic(tmp_path / "b", TINY)
    other = generate_synthetic(tmp_path / "c", {**TINY, "seed": 1})
    assert _digest(first) == _digest(second) != _digest(other)


def test_matching_marker_skips_generation_and_changed_params_regenerate(tmp_path: Path) -> None:
    root = generate_synthetic(tmp_path / "synthetic", TINY)
    stamp = (root / MARKER_NAME).stat().st_mtime_ns
    generate_synthetic(root, TINY)
    assert (root / MARKER_NAME).stat().st_mtime_ns == stamp
    generate_synthetic(root, {**TINY, "jnd_per_subset": 4})
    marker = json.loads((root / MARKER_NAME).read_text())
    assert marker["params"]["jnd_per_subset"] == 4
    assert len(list((root / "jnd/val/noise/same").iterdir())) == 4
    assert sorted(p.name for p in tmp_path.iterdir()) == ["synthetic"]


def test_concurrent_generators_leave_one_complete_dataset(tmp_path: Path) -> None:
    root = tmp_path / "synthetic"
    errors: list[BaseException] = []

    def generate() -> None:
        try:
            generate_synthetic(root, TINY)
        except BaseException as exc:  # noqa: BLE001 - surfaced through the assert below
            errors.append(exc)

    threads = [threading.Thread(target=generate) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert len(BAPPSDataset(root).samples("2afc")) == 16
    assert sorted(p.name for p in tmp_path.iterdir()) == ["synthetic"]


def test_generated_folder_opened_by_path_is_still_marked_synthetic(tmp_path: Path) -> None:
    root = generate_synthetic(tmp_path / "copy", TINY)
    ds = open_dataset(root)
    assert isinstance(ds, BAPPSDataset) and ds.card is None and ds.synthetic is True
    assert ds.subsets("2afc") == ("blur", "jpeg")  # the generator's order, not alphabetical


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"val_per_subst": 3}, r"unknown param 'val_per_subst'.*Did you mean 'val_per_subset'"),
        ({"val_subsets": ["blur", "warp"]}, r"'val_subsets'.*must list distinct families"),
        ({"jnd_per_subset": 0}, r"'jnd_per_subset' = 0 must be an integer >= 1"),
        ({"seed": 1.5}, r"'seed' = 1.5 must be an integer"),
    ],
)
def test_invalid_params_name_the_key(params: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        resolve_params(params)


def test_download_dataset_generates_and_rejects_parts(tmp_path: Path) -> None:
    card = load_dataset_card("synthetic")
    with pytest.raises(ValueError, match=r"is generated, it has no download parts"):
        download_dataset(card, tmp_path, parts=["2afc-val"])
    root = download_dataset(dataclasses.replace(card, params=TINY), tmp_path)
    assert root == tmp_path / "synthetic" and (root / MARKER_NAME).is_file()
