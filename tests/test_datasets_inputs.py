"""Bad input files give a clear ``InputError`` naming the file, never a raw library exception:
CSV encodings, text saved as ``.npy``, CSIQ's derived score files, damaged .xlsx/.mat files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from iqa_bench.datasets import CSIQDataset, open_dataset, read_judgment
from iqa_bench.datasets.bapps_layout import make_bapps_layout
from iqa_bench.datasets.base import MARKER_NAME, read_marker
from iqa_bench.errors import InputError
from tests.mos_fixture import (
    NightsRow,
    make_csiq,
    make_kadid10k,
    make_live,
    make_mos_csv,
    make_nights,
)

# -- CSV encodings ------------------------------------------------------------------------------


def _to_latin1(path: Path, old: str, new: str) -> None:
    path.write_bytes(path.read_text().replace(old, new, 1).encode("latin-1"))


@pytest.mark.parametrize("kind", ["folder", "mos-folder", "kadid10k", "nights", "csiq"])
def test_latin1_csv_is_refused_naming_the_file_line_and_the_fix(tmp_path: Path, kind: str) -> None:
    if kind == "folder":
        root = tmp_path / "s.csv"
        root.write_text("ref,p0,p1,h,subset\na.png,b.png,c.png,0.5,x\n")
        csv, old, new = root, ",x\n", ",caf\u00e9\n"
    elif kind == "mos-folder":
        root = make_mos_csv(tmp_path / "study", n=2)
        csv, old, new = root / "mos.csv", ",noise,1", ",bruit-r\u00e9el,1"
    elif kind == "kadid10k":
        root = make_kadid10k(tmp_path / "kadid", types=(1,), refs=1, levels=2)
        csv, old, new = root / "dmos.csv", ",0.5\n", ",0.5,\u00e9\n"
    elif kind == "nights":
        make_nights(tmp_path / "n", [NightsRow(0, 0.0, 6.0, 6, "test", True)])
        root, csv, old, new = tmp_path / "n", tmp_path / "n/nights/data.csv", "a cat", "a caf\u00e9"
    else:
        root = make_csiq(tmp_path / "csiq", images=("1600",), levels=1, xlsx=False)
        csv, old, new = root / "csiq_dmos.csv", "dmos\n", "dmos\n\u00e9,,,,,\n"
    _to_latin1(csv, old, new)
    line = 1 + csv.read_bytes()[: csv.read_bytes().index(b"\xe9")].count(b"\n")
    with pytest.raises(InputError) as info:
        open_dataset(root, split="test" if kind == "nights" else "val")
    message = str(info.value)
    assert str(csv) in message and f"line {line} " in message and "0xe9" in message
    assert "Re-save it as UTF-8" in message


def test_utf8_with_bom_and_utf16_with_bom_are_read_alike(tmp_path: Path) -> None:
    root = make_mos_csv(tmp_path / "study", n=2)
    text = (root / "mos.csv").read_text().replace(",noise,", ",bruit-r\u00e9el,")
    expected = [(s.sample_id, s.mos) for s in _write_and_open(root, text.encode("utf-8"))]
    assert expected[-1][0] == "mos/bruit-r\u00e9el/000005"
    assert [(s.sample_id, s.mos) for s in _write_and_open(root, text.encode("utf-8-sig"))] == (
        expected
    )
    # Excel's "Unicode Text" export: UTF-16 with a byte-order mark.
    assert [(s.sample_id, s.mos) for s in _write_and_open(root, text.encode("utf-16"))] == (
        expected
    )


def _write_and_open(root: Path, data: bytes) -> list:
    (root / "mos.csv").write_bytes(data)
    return open_dataset(root).samples("mos")


# -- .npy files that are not NumPy arrays -------------------------------------------------------


@pytest.mark.parametrize(
    "content",
    [b"<!DOCTYPE html>\n<html><body>403 Forbidden</body></html>\n", b""],
    ids=["html-error-page", "empty"],
)
def test_judgment_file_that_is_not_numpy_says_so_and_how_to_redownload(
    tmp_path: Path, content: bytes
) -> None:
    root = make_bapps_layout(tmp_path / "bapps", {"cnn": 2}, None)
    bad = root / "2afc/val/cnn/judge/000001.npy"
    bad.write_bytes(content)
    for call in (lambda: read_judgment(bad), lambda: open_dataset(root)):
        with pytest.raises(InputError) as info:
            call()
        message = str(info.value)
        assert message.startswith(f"{bad}: ") and "not a NumPy array file" in message
        assert "iqa-bench download <name> --force" in message
        assert "pickle" not in message  # numpy's hint would be wrong advice here


# -- CSIQ derived score files -------------------------------------------------------------------


def _label_lines(root: Path) -> list[str]:
    """The fixture's official table as csiq_label.txt lines (``<image>.<TYPE>.<level>.png dmos``)."""
    tokens = {"noise": "AWGN", "jpeg": "JPEG", "jpeg 2000": "jpeg2000", "f noise": "fnoise"}
    tokens |= {"blur": "BLUR", "contrast": "contrast"}
    rows = [r.split(",") for r in (root / "csiq_dmos.csv").read_text().splitlines()[1:]]
    return [f"{im}.{tokens[kind]}.{lev}.png {dmos}" for im, _, kind, lev, _, dmos in rows]


def test_csiq_label_txt_gives_the_same_samples_as_the_official_table(tmp_path: Path) -> None:
    root = make_csiq(tmp_path / "csiq", images=("1600", "aerial_city"), levels=3, xlsx=False)
    official = open_dataset(root).samples("mos")
    (root / "csiq_label.txt").write_text("\n".join(_label_lines(root)) + "\n")
    (root / "csiq_dmos.csv").unlink()
    ds = open_dataset(root)
    assert isinstance(ds, CSIQDataset) and ds.mos_higher_is_better is False
    assert ds.samples("mos") == official


def test_csiq_label_txt_that_is_rescaled_or_reoriented_says_how_to_get_the_official_file(
    tmp_path: Path,
) -> None:
    root = make_csiq(tmp_path / "csiq", images=("1600",), levels=3, xlsx=False)
    lines = _label_lines(root)
    (root / "csiq_dmos.csv").unlink()
    label = root / "csiq_label.txt"
    flipped = [f"{n} {1 - float(v):.6f}" for n, v in (t.split() for t in lines)]
    for content, problem in (
        (flipped, r"scores fall as the level rises in 12 of 12 level steps"),
        ([f"{n} {100 * float(v)}" for n, v in (t.split() for t in lines)], r"outside .* 0-1"),
        (["1600_awgn_1 0.1"], r"line 1: expected '<image>.<TYPE>.<level>.png <dmos>'"),
    ):
        label.write_text("\n".join(content) + "\n")
        with pytest.raises(InputError, match=problem) as info:
            open_dataset(root)
        assert str(label) in str(info.value)
        assert "official csiq.DMOS.xlsx" in str(info.value) and str(root) in str(info.value)


@pytest.mark.parametrize(
    ("name", "encoding"),
    [("csiq_dmos.csv", "utf-8"), ("csiq_dmos.tsv", "utf-8"), ("csiq.DMOS.txt", "utf-16")],
)
def test_csiq_tab_separated_export_of_the_sheet_is_read(
    tmp_path: Path, name: str, encoding: str
) -> None:
    root = make_csiq(tmp_path / "csiq", images=("1600",), levels=2, xlsx=False)
    official = open_dataset(root).samples("mos")
    table = (root / "csiq_dmos.csv").read_text().replace(",", "\t")
    (root / "csiq_dmos.csv").unlink()
    # Excel's tab-delimited export keeps the sheet's title rows above the header.
    (root / name).write_bytes(("CSIQ DMOS\n\n" + table).encode(encoding))
    assert open_dataset(root).samples("mos") == official


def test_damaged_csiq_xlsx_names_the_file_and_the_official_source(tmp_path: Path) -> None:
    root = make_csiq(tmp_path / "csiq", images=("1600",), levels=1, xlsx=True)
    (root / "csiq.DMOS.xlsx").write_bytes(b"<html>not a workbook</html>")
    with pytest.raises(InputError, match=r"csiq.DMOS.xlsx: not a readable .xlsx workbook") as info:
        open_dataset(root)
    assert "official csiq.DMOS.xlsx" in str(info.value)


# -- LIVE .mat files and the synthetic marker ---------------------------------------------------


@pytest.mark.parametrize("file", ["dmos_realigned.mat", "refnames_all.mat"])
def test_damaged_live_mat_file_names_the_file(tmp_path: Path, file: str) -> None:
    root = make_live(tmp_path / "live", per_folder=1)
    (root / file).write_bytes(b"<html>404</html>")
    with pytest.raises(InputError, match=rf"{file}: not a readable MATLAB .mat file"):
        open_dataset(root)


def test_live_refnames_without_its_variable_names_the_file(tmp_path: Path) -> None:
    from scipy.io import savemat

    root = make_live(tmp_path / "live", per_folder=1)
    savemat(root / "refnames_all.mat", {"names": np.zeros(3)})
    with pytest.raises(
        InputError, match=r"refnames_all.mat lacks 'refnames_all' \(has \['names'\]"
    ):
        open_dataset(root)


def test_marker_that_is_not_utf8_json_is_ignored_not_a_crash(tmp_path: Path) -> None:
    (tmp_path / MARKER_NAME).write_bytes(b"\xff\xfe\x00garbage")
    assert read_marker(tmp_path) is None
    (tmp_path / MARKER_NAME).write_text(json.dumps({"synthetic": True}))
    assert read_marker(tmp_path) == {"synthetic": True}
