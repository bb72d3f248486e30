"""The ``folder`` adapter: user-study CSVs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from iqa_bench.datasets import FolderDataset, JNDSample, TwoAFCSample, open_dataset
from iqa_bench.images import write_png


@pytest.fixture
def study(tmp_path: Path) -> Path:
    for name in ("r1", "a1", "b1", "r2", "a2", "b2"):
        write_png(tmp_path / "img" / f"{name}.png", np.full((8, 8, 3), 100, dtype=np.uint8))
    return tmp_path


def _write(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def test_single_2afc_csv_is_inferred_from_columns_with_relative_paths(study: Path) -> None:
    csv = _write(
        study / "my_study.csv",
        "ref,p0,p1,h,subset\n"
        "img/r1.png,img/a1.png,img/b1.png,0.8,faces\n"
        "img/r2.png,img/a2.png,img/b2.png,0,cars\n"
        f"{study / 'img/r1.png'},img/a2.png,img/b1.png,1,faces\n",
    )
    ds = open_dataset(str(csv))
    assert isinstance(ds, FolderDataset) and ds.name == "my_study" and ds.card is None
    assert ds.tasks() == ("2afc",) and ds.subsets("2afc") == ("faces", "cars")
    first = ds.samples("2afc")[0]
    assert first == TwoAFCSample(
        "my_study/faces/000002",
        "faces",
        study / "img/r1.png",
        study / "img/a1.png",
        study / "img/b1.png",
        0.8,
    )
    assert [s.sample_id for s in ds.samples("2afc")] == [
        "my_study/faces/000002",
        "my_study/faces/000004",
        "my_study/cars/000003",
    ]


def test_folder_with_2afc_and_jnd_csvs_reads_both_with_ids_and_default_subset(study: Path) -> None:
    _write(study / "2afc.csv", "id,ref,p0,p1,h\nq1,img/r1.png,img/a1.png,img/b1.png,0.4\n")
    _write(study / "jnd.csv", "p0,p1,same,id\nimg/a1.png,img/b1.png,0.6667,pair-7\n")
    ds = open_dataset(study)
    assert ds.tasks() == ("2afc", "jnd")
    assert ds.samples("2afc")[0].sample_id == "2afc/all/q1"
    jnd = ds.samples("jnd")[0]
    assert isinstance(jnd, JNDSample) and jnd.sample_id == "jnd/all/pair-7" and jnd.same == 0.6667


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("p0,p1\na,b\n", r"bad.csv: cannot tell the task from the header p0,p1"),
        ("p0,p1,same,h\na,b,1,1\n", r"cannot tell the task"),
        ("ref,p0,p1\na,b,c\n", r"bad.csv: line 1 \(header\) has missing column 'h'"),
        ("ref,p0,h\na,b,1\n", r"bad.csv: line 1 \(header\) has missing column 'p1'"),
        ("p0,p1,same,notes\na,b,1,x\n", r"unexpected columns \['notes'\]"),
        ("p0,p1,same\n", r"bad.csv: no data rows"),
        ("", r"bad.csv: the file is empty"),
        ("p0,p1,same\nimg/a1.png,img/b1.png\n", r"bad.csv: line 2 has 2 fields, the header has 3"),
        (
            "p0,p1,same,id\nimg/a1.png,img/b1.png,1,x\nimg/a2.png,img/b2.png,0,x\n",
            r"bad.csv: line 3 repeats sample id 'bad/all/x' of line 2",
        ),
    ],
)
def test_malformed_csv_errors_name_the_file_and_line(study: Path, text: str, message: str) -> None:
    csv = _write(study / "bad.csv", text)
    with pytest.raises(ValueError, match=message):
        open_dataset(csv)


def test_csv_named_for_one_task_with_the_other_tasks_columns_is_rejected(study: Path) -> None:
    _write(study / "jnd.csv", "ref,p0,p1,h\nimg/r1.png,img/a1.png,img/b1.png,1\n")
    with pytest.raises(ValueError, match=r"named jnd.csv but its columns are 2afc ones"):
        open_dataset(study)


@pytest.mark.parametrize("value", ["1.5", "-0.2", "nan", "high", ""])
def test_bad_judgment_value_names_csv_line_and_column(study: Path, value: str) -> None:
    csv = _write(
        study / "s.csv",
        f"p0,p1,same\nimg/a1.png,img/b1.png,1\n\nimg/a2.png,img/b2.png,{value}\n",
    )
    with pytest.raises(ValueError, match=rf"s.csv: line 4: same = '{value}' is not a fraction"):
        open_dataset(csv)


def test_missing_image_raises_file_not_found_naming_image_and_line(study: Path) -> None:
    csv = _write(study / "s.csv", "ref,p0,p1,h\nimg/r1.png,img/a1.png,img/gone.png,1\n")
    with pytest.raises(
        FileNotFoundError, match=r"gone.png: image file missing \(column 'p1', line 2"
    ):
        open_dataset(csv)


def test_skip_bad_records_each_bad_row_once_and_keeps_the_rest(study: Path) -> None:
    csv = _write(
        study / "s.csv",
        "ref,p0,p1,h\n"
        "img/r1.png,img/a1.png,img/gone.png,7\n"
        "img/r1.png,img/gone.png,img/gone2.png,1\n"
        "img/r2.png,img/a2.png,img/b2.png,0.2\n",
    )
    ds = open_dataset(csv, skip_bad=True)
    assert [(b.sample_id, b.path.name) for b in ds.bad_samples] == [
        ("s/all/000002", "s.csv"),
        ("s/all/000003", "gone.png"),
    ]
    assert [s.sample_id for s in ds.samples("2afc")] == ["s/all/000004"]


def test_folder_datasets_have_no_splits(study: Path) -> None:
    csv = _write(study / "s.csv", "p0,p1,same\nimg/a1.png,img/b1.png,1\n")
    with pytest.raises(ValueError, match=r"split 'train': folder datasets have no splits"):
        open_dataset(csv, split="train")


def test_folder_without_study_csv_says_what_to_put_there(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"expected .*2afc.csv \(columns ref,p0,p1,h\)"):
        FolderDataset(tmp_path)
