"""The NIGHTS adapter (DreamSim's 2AFC data): layout, vote convention, splits, subsets, filter,
and scoring with the same 2AFC statistics and human ceiling as BAPPS."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from iqa_bench.config import dataset_cards
from iqa_bench.datasets import NIGHTSDataset, TwoAFCSample, open_dataset
from iqa_bench.errors import InputError
from tests.mos_fixture import NightsRow, make_nights

ROWS = (
    NightsRow(0, 0.0, 6.0, 6, "test", True),  # everyone: right (p1) is closer
    NightsRow(1, 5.0, 1.0, 6, "test", False),
    NightsRow(2, 1.0, 0.0, 7, "test", False),  # votes as fractions work too
    NightsRow(3, 2.0, 2.0, 4, "test", True),  # fewer than 6 votes: dropped like DreamSim
    NightsRow(4, 6.0, 0.0, 6, "val", True),
    NightsRow(5, 3.0, 3.0, 6, "test", True),
    NightsRow(1005, 0.0, 6.0, 6, "train", False),
)


@pytest.fixture
def nights_root(tmp_path: Path) -> Path:
    make_nights(tmp_path / "nights-data", ROWS)
    return tmp_path / "nights-data"


def test_left_is_p0_right_is_p1_and_h_is_the_right_vote_fraction(nights_root: Path) -> None:
    ds = open_dataset(nights_root, split="test")
    assert isinstance(ds, NIGHTSDataset) and ds.tasks() == ("2afc",)
    by_id = {s.sample_id: s for s in ds.samples("2afc")}
    assert set(by_id) == {
        "test/imagenet/0",
        "test/imagenet/5",
        "test/no-imagenet/1",
        "test/no-imagenet/2",
    }
    home = nights_root / "nights"
    assert by_id["test/imagenet/0"] == TwoAFCSample(
        "test/imagenet/0",
        "imagenet",
        home / "ref/000/000.png",
        home / "distort/000/000_0.png",
        home / "distort/000/000_1.png",
        1.0,
    )
    assert by_id["test/no-imagenet/1"].h == pytest.approx(1 / 6)
    assert by_id["test/no-imagenet/2"].h == 0.0


def test_subsets_split_filter_and_dropped_count(nights_root: Path) -> None:
    test = open_dataset(nights_root, split="test")
    assert test.subsets("2afc") == ("imagenet", "no-imagenet")
    assert test.dropped_low_votes == 1
    train = open_dataset(nights_root, split="train")
    assert [s.sample_id for s in train.samples("2afc")] == ["train/no-imagenet/1005"]
    assert train.samples("2afc")[0].ref.parent.name == "001"
    with pytest.raises(ValueError, match=r"split 'dev': NIGHTS has the splits train, val, test"):
        open_dataset(nights_root, split="dev")


def test_missing_image_and_bad_votes_name_the_line(nights_root: Path) -> None:
    (nights_root / "nights" / "distort" / "000" / "001_1.png").unlink()
    with pytest.raises(FileNotFoundError, match=r"001_1.png: image file missing \(line 3 of"):
        open_dataset(nights_root, split="test")
    ds = open_dataset(nights_root, split="test", skip_bad=True)
    assert [b.sample_id for b in ds.bad_samples] == ["test/no-imagenet/1"]
    csv = nights_root / "nights" / "data.csv"
    csv.write_text(csv.read_text().replace("\n2,1.0,0.0,", "\n2,0,0,"))
    ds = open_dataset(nights_root, split="test", skip_bad=True)
    assert [b.reason for b in ds.bad_samples][1] == (
        "line 4: left_vote + right_vote is 0, so no judgment exists"
    )


def test_card_has_the_official_zip_and_missing_data_says_where_it_goes(tmp_path: Path) -> None:
    card = dataset_cards()["nights"]
    assert card.adapter == "nights" and card.params == {"min_votes": 6}
    assert card.download[0]["url"] == "https://data.csail.mit.edu/nights/nights.zip"
    with pytest.raises(FileNotFoundError) as info:
        open_dataset("nights", data_root=tmp_path, split="test")
    assert "nights.zip" in str(info.value) and str(tmp_path / "nights") in str(info.value)


def test_nights_is_scored_like_bapps_with_the_human_ceiling(
    nights_root: Path, tmp_path: Path
) -> None:
    from iqa_bench.reports import summarize
    from iqa_bench.runner import RunOptions, run_benchmark
    from iqa_bench.stats import human_ceiling, twoafc_scores

    result = run_benchmark(
        str(nights_root),
        ["l2"],
        tmp_path / "run",
        RunOptions(progress=False, device="cpu"),
        split="test",
        log=lambda m: None,
    )
    summary = summarize(result.run_dir, n_boot=100, n_perm=100)
    two = summary.tasks["2afc"]
    assert two.subsets == ("imagenet", "no-imagenet")
    ds = open_dataset(nights_root, split="test")
    h = np.array([s.h for s in ds.samples("2afc")])
    subset = [s.subset for s in ds.samples("2afc")]
    with np.load(result.run_dir / "scores" / "l2" / "2afc.npz") as data:
        expected = twoafc_scores(data["d0"], data["d1"], h, subset)
    assert two.row("l2").avg.score == pytest.approx(100 * expected.mean)
    assert two.human.avg.score == pytest.approx(100 * human_ceiling(h, subset).mean)


@pytest.mark.parametrize(("cut", "fields"), [(-1, 9), (1, 11)])
def test_row_with_too_few_or_too_many_fields_names_the_line(
    nights_root: Path, cut: int, fields: int
) -> None:
    csv = nights_root / "nights" / "data.csv"
    lines = csv.read_text().splitlines()
    cells = lines[2].split(",")
    lines[2] = ",".join(cells[:cut] if cut < 0 else cells + ["extra"])
    csv.write_text("\n".join(lines) + "\n")
    with pytest.raises(
        InputError, match=rf"data.csv: line 3 has {fields} fields, the header has 10"
    ):
        open_dataset(nights_root, split="test")
