"""Every sample an adapter leaves out is in ``bad_samples`` with its task and subset (issue 16).

One test per adapter builds a dataset holding each kind of bad sample that adapter can meet,
checks that opening it without ``skip_bad`` raises naming the file, and that with ``skip_bad``
each one is recorded with ``task`` and ``subset`` (what the reports count per task and subset).
"""

from __future__ import annotations

import dataclasses
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest

from iqa_bench.config import load_dataset_card
from iqa_bench.datasets import BadSample, open_dataset
from iqa_bench.datasets.bapps_layout import make_bapps_layout
from iqa_bench.datasets.synthetic import SyntheticDataset
from iqa_bench.errors import InputError
from tests.mos_fixture import (
    NightsRow,
    make_csiq,
    make_kadid10k,
    make_live,
    make_mos_csv,
    make_nights,
    make_tid2013,
)


def _recorded(ds) -> set[tuple[str, str, str]]:
    return {(b.sample_id, b.task, b.subset) for b in ds.bad_samples}


def _open_fails_then_records(path: Path, **kwargs) -> object:
    with pytest.raises((InputError, FileNotFoundError)):
        open_dataset(path, **kwargs)
    return open_dataset(path, skip_bad=True, **kwargs)


def test_bad_sample_carries_task_and_subset_into_the_manifest_record() -> None:
    bad = BadSample("val/cnn/000001", Path("x.npy"), "judgment nan", "2afc", "cnn")
    assert asdict(bad) == {
        "sample_id": "val/cnn/000001",
        "path": Path("x.npy"),
        "reason": "judgment nan",
        "task": "2afc",
        "subset": "cnn",
    }
    with pytest.raises(ValueError, match=r"task 'two' must be one of 2afc, jnd, mos"):
        BadSample("a", Path("x"), "r", "two", "")


def test_bapps_records_every_dropped_sample_and_stray_file_with_task_and_subset(
    tmp_path: Path,
) -> None:
    root = make_bapps_layout(tmp_path / "bapps", {"cnn": 3, "deblur": 2}, {"traditional": 3})
    np.save(root / "2afc/val/deblur/judge/000001.npy", np.array([np.nan]))  # NaN judgment
    (root / "2afc/val/cnn/p1/000002.png").unlink()  # incomplete triplet
    (root / "2afc/val/cnn/ref/notes.txt").write_text("x")  # stray file in a role folder
    (root / "2afc/val/README.txt").write_text("x")  # stray file beside the subset folders
    (root / "jnd/val/traditional/extra").mkdir()  # stray folder in a subset folder
    np.save(root / "jnd/val/traditional/same/000000.npy", np.array([1.5]))  # out of range
    ds = _open_fails_then_records(root)
    assert _recorded(ds) == {
        ("val/deblur/000001", "2afc", "deblur"),
        ("val/cnn/000002", "2afc", "cnn"),
        ("val/cnn/notes", "2afc", "cnn"),
        ("val/README.txt", "2afc", ""),
        ("val/traditional/extra", "jnd", "traditional"),
        ("val/traditional/000000", "jnd", "traditional"),
    }
    assert len(ds.samples("2afc")) == 5 - 2 and len(ds.samples("jnd")) == 3 - 1


def test_synthetic_records_a_damaged_judgment_with_task_and_subset(tmp_path: Path) -> None:
    card = dataclasses.replace(
        load_dataset_card("synthetic"),
        params={
            "val_per_subset": 2,
            "train_per_subset": 1,
            "jnd_per_subset": 2,
            "val_subsets": ["blur"],
            "train_subsets": ["noise"],
            "jnd_subsets": ["noise"],
        },
    )
    root = tmp_path / "synthetic"
    SyntheticDataset.generate(root, card)
    (root / "jnd/val/noise/same/000001.npy").write_text("<html>404</html>")
    with pytest.raises(InputError, match=r"000001.npy: judgment file is not a NumPy array file"):
        SyntheticDataset(root, card=card)
    ds = SyntheticDataset(root, card=card, skip_bad=True)
    assert _recorded(ds) == {("val/noise/000001", "jnd", "noise")}


def test_folder_records_bad_judgments_and_missing_images_with_task_and_subset(
    tmp_path: Path,
) -> None:
    for name in ("r", "a", "b"):
        (tmp_path / f"{name}.png").write_bytes(b"")
    (tmp_path / "2afc.csv").write_text(
        "ref,p0,p1,h,subset\n"
        "r.png,a.png,b.png,nan,faces\n"  # NaN judgment
        "r.png,a.png,gone.png,0.5,cars\n"  # missing image
        "r.png,,b.png,0.5,cars\n"  # empty image cell
        "r.png,a.png,b.png,0.5,cars\n"
    )
    (tmp_path / "jnd.csv").write_text("p0,p1,same\na.png,b.png,2\na.png,b.png,1\n")
    ds = _open_fails_then_records(tmp_path)
    assert _recorded(ds) == {
        ("2afc/faces/000002", "2afc", "faces"),
        ("2afc/cars/000003", "2afc", "cars"),
        ("2afc/cars/000004", "2afc", "cars"),
        ("jnd/all/000002", "jnd", "all"),
    }


def test_mos_folder_records_nan_scores_and_missing_images_with_their_type(
    tmp_path: Path,
) -> None:
    root = make_mos_csv(tmp_path / "study", types=("blur", "noise"), n=2)
    csv = root / "mos.csv"
    lines = csv.read_text().splitlines()
    lines[1] = lines[1].replace(lines[1].split(",")[2], "nan")  # blur, level 1: NaN MOS
    csv.write_text("\n".join(lines) + "\n")
    (root / "dist" / "noise2.png").unlink()
    ds = _open_fails_then_records(root)
    assert _recorded(ds) == {
        ("mos/blur/000002", "mos", "blur"),
        ("mos/noise/000005", "mos", "noise"),
    }


def test_tid2013_and_kadid10k_record_bad_scores_and_missing_images_with_their_type(
    tmp_path: Path,
) -> None:
    tid = make_tid2013(tmp_path / "tid", types=(1, 8), refs=1, levels=2)
    scores = tid / "mos_with_names.txt"
    line = next(t for t in scores.read_text().splitlines() if t.endswith("i01_08_2.bmp"))
    scores.write_text(scores.read_text().replace(line, "nan i01_08_2.bmp"))
    (tid / "distorted_images" / "i01_01_2.bmp").unlink()
    assert _recorded(_open_fails_then_records(tid)) == {
        ("gaussian-blur/i01_08_2", "mos", "gaussian-blur"),
        ("gaussian-noise/i01_01_2", "mos", "gaussian-noise"),
    }

    kadid = make_kadid10k(tmp_path / "kadid", types=(1,), refs=1, levels=2)
    lines = (kadid / "dmos.csv").read_text().splitlines()
    lines[2] = "I01_01_02.png,I01.png,,0.5"  # no score
    (kadid / "dmos.csv").write_text("\n".join(lines) + "\n")
    (kadid / "images" / "I01_01_01.png").unlink()
    assert _recorded(_open_fails_then_records(kadid)) == {
        ("gaussian-blur/i01_01_02", "mos", "gaussian-blur"),
        ("gaussian-blur/i01_01_01", "mos", "gaussian-blur"),
    }


def test_csiq_records_missing_images_and_scores_without_an_image_name(tmp_path: Path) -> None:
    root = make_csiq(tmp_path / "csiq", images=("1600",), levels=2, xlsx=False)
    with (root / "csiq_dmos.csv").open("a") as fh:
        fh.write(",2,jpeg,3,0.05,0.5\n")  # a score whose image name is missing
        fh.write(",,,,,\n")  # an empty spreadsheet row holds no sample
    (root / "dst_imgs" / "blur" / "1600.BLUR.2.png").unlink()
    ds = _open_fails_then_records(root)
    assert _recorded(ds) == {
        ("csiq_dmos.csv/line-14", "mos", "jpeg"),
        ("blur/1600.blur.2", "mos", "blur"),
    }


def test_live_records_nan_dmos_and_missing_images_with_their_folder(tmp_path: Path) -> None:
    from scipy.io import loadmat, savemat

    root = make_live(tmp_path / "live", per_folder=2)
    scores = loadmat(root / "dmos_realigned.mat")
    scores["dmos_new"][0, 1] = np.nan  # jp2k/img2
    savemat(root / "dmos_realigned.mat", {"dmos_new": scores["dmos_new"], "orgs": scores["orgs"]})
    (root / "wn" / "img1.bmp").unlink()
    ds = _open_fails_then_records(root)
    assert _recorded(ds) == {("jp2k/img2", "mos", "jp2k"), ("wn/img1", "mos", "wn")}


def test_nights_records_bad_votes_unknown_splits_and_flags_and_missing_images(
    tmp_path: Path,
) -> None:
    rows = [
        NightsRow(0, 0.0, 6.0, 6, "test", True),
        NightsRow(1, 0.0, 0.0, 6, "test", False),  # no votes either way
        NightsRow(2, 1.0, 5.0, 6, "Test", True),  # a split that is none of NIGHTS' three
        NightsRow(3, 1.0, 5.0, 6, "test", True),  # is_imagenet unreadable (below)
        NightsRow(4, 1.0, 5.0, 6, "test", False),  # image missing (below)
    ]
    home = make_nights(tmp_path / "nights", rows)
    csv = home / "data.csv"
    csv.write_text(
        csv.read_text()
        .replace(",test,True\n", ",test,maybe\n", 2)
        .replace(",test,maybe\n", ",test,True\n", 1)
    )
    (home / "distort" / "000" / "004_0.png").unlink()
    ds = _open_fails_then_records(tmp_path / "nights", split="test")
    assert _recorded(ds) == {
        ("test/no-imagenet/1", "2afc", "no-imagenet"),
        ("Test/imagenet/2", "2afc", "imagenet"),
        ("test/unknown/3", "2afc", ""),
        ("test/no-imagenet/4", "2afc", "no-imagenet"),
    }
    assert [s.sample_id for s in ds.samples("2afc")] == ["test/imagenet/0"]
