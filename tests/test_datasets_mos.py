"""MOS/DMOS adapters (TID2013, KADID-10k, CSIQ, LIVE, mos-folder), their cards, and their
downloads (zip and RAR) against a local HTTP server on 127.0.0.1."""

from __future__ import annotations

import threading
import zipfile
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from iqa_bench.archives import RAR_TOOLS, extract_archive
from iqa_bench.config import dataset_cards
from iqa_bench.datasets import (
    DATASETS,
    CSIQDataset,
    KADID10kDataset,
    LIVEDataset,
    MOSFolderDataset,
    MOSSample,
    TID2013Dataset,
    download_dataset,
    open_dataset,
)
from iqa_bench.download import DownloadError
from tests.mos_fixture import (
    make_csiq,
    make_kadid10k,
    make_live,
    make_mos_csv,
    make_tid2013,
    write_stored_rar,
)

# -- TID2013 ------------------------------------------------------------------------------------


def test_tid2013_reads_mos_with_names_with_mixed_letter_case(tmp_path: Path) -> None:
    root = make_tid2013(tmp_path / "tid", types=(10, 1, 8), refs=3, levels=5)
    ds = open_dataset(root)
    assert isinstance(ds, TID2013Dataset) and ds.tasks() == ("mos",)
    assert ds.mos_higher_is_better is True and ds.mos_range == (0.0, 9.0)
    # Subsets follow TID2013's numbering (1, 8, 10), not the order of the file.
    assert ds.subsets("mos") == ("gaussian-noise", "gaussian-blur", "jpeg")
    samples = ds.samples("mos")
    assert len(samples) == 45 and ds.split == "all"
    first = samples[0]
    assert first.sample_id == "gaussian-noise/i01_01_1" and first.level == 1
    assert first.dist.name == "I01_01_1.bmp" and first.ref.name == "I01.BMP"
    assert samples[-1].ref.name == "i03.bmp"  # lower-case reference, as I25 in the real data
    lines = (root / "mos_with_names.txt").read_text().splitlines()
    line = next(t for t in lines if t.endswith(" I01_01_1.bmp"))
    assert first.mos == float(line.split()[0])


def test_tid2013_malformed_line_names_file_and_line(tmp_path: Path) -> None:
    root = make_tid2013(tmp_path / "tid", types=(1,), refs=1, levels=2)
    with (root / "mos_with_names.txt").open("a") as fh:
        fh.write("5.0 i01_99_1.bmp\n")
    with pytest.raises(
        ValueError, match=r"mos_with_names.txt, line 3: expected 'MOS iXX_YY_Z.bmp'"
    ):
        open_dataset(root)


def test_missing_image_names_file_and_line_or_is_skipped(tmp_path: Path) -> None:
    root = make_tid2013(tmp_path / "tid", types=(1,), refs=2, levels=2)
    (root / "distorted_images" / "i02_01_2.bmp").unlink()
    with pytest.raises(FileNotFoundError, match=r"i02_01_2.bmp: image file missing .*line 4"):
        open_dataset(root)
    ds = open_dataset(root, skip_bad=True)
    assert len(ds.samples("mos")) == 3
    assert [b.sample_id for b in ds.bad_samples] == ["gaussian-noise/i02_01_2"]


def test_mos_datasets_have_no_splits(tmp_path: Path) -> None:
    root = make_tid2013(tmp_path / "tid", types=(1,), refs=1, levels=2)
    assert open_dataset(root, split="all").split == "all"
    with pytest.raises(ValueError, match=r"split 'train': MOS datasets have no splits"):
        open_dataset(root, split="train")


# -- KADID-10k, CSIQ, LIVE ----------------------------------------------------------------------


def test_kadid10k_reads_dmos_csv_in_archive_subfolder_as_higher_is_better(tmp_path: Path) -> None:
    make_kadid10k(tmp_path / "kadid" / "kadid10k", types=(25, 1), refs=2, levels=5)
    ds = open_dataset(tmp_path / "kadid")  # found one folder down, as kadid10k.zip extracts
    assert isinstance(ds, KADID10kDataset)
    assert ds.mos_higher_is_better is True and ds.mos_range == (1.0, 5.0)
    assert ds.subsets("mos") == ("gaussian-blur", "contrast-change")
    sample = ds.samples("mos")[0]
    assert sample.sample_id == "gaussian-blur/i01_01_01" and sample.level == 1
    assert 1.0 <= sample.mos <= 5.0


@pytest.mark.parametrize("xlsx", [True, False])
def test_csiq_reads_spreadsheet_or_csv_export_as_dmos(tmp_path: Path, xlsx: bool) -> None:
    root = make_csiq(tmp_path / "csiq", images=("1600", "boston"), levels=4, xlsx=xlsx)
    ds = open_dataset(root)
    assert isinstance(ds, CSIQDataset)
    assert ds.mos_higher_is_better is False and ds.mos_range == (0.0, 1.0)
    assert ds.subsets("mos") == ("awgn", "jpeg", "jpeg2000", "fnoise", "blur", "contrast")
    samples = {s.sample_id: s for s in ds.samples("mos")}
    assert len(samples) == 2 * 6 * 4
    # "1600" is a number in the spreadsheet; "f noise" maps to dst_imgs/fnoise/.
    noise = samples["awgn/1600.awgn.1"]
    assert noise.dist == root / "dst_imgs" / "awgn" / "1600.AWGN.1.png"
    assert noise.ref == root / "src_imgs" / "1600.png"
    assert samples["fnoise/boston.fnoise.4"].dist.parent.name == "fnoise"


def test_live_skips_reference_entries_and_uses_realigned_dmos(tmp_path: Path) -> None:
    root = make_live(tmp_path / "databaserelease2", per_folder=2)
    ds = open_dataset(root)
    assert isinstance(ds, LIVEDataset) and ds.mos_higher_is_better is False
    assert ds.subsets("mos") == ("jp2k", "jpeg", "wn", "gblur", "fastfading")
    assert [s.sample_id for s in ds.samples("mos")][:3] == ["jp2k/img1", "jp2k/img2", "jpeg/img1"]
    assert all(s.level is None and s.ref.parent.name == "refimgs" for s in ds.samples("mos"))
    (root / "dmos_realigned.mat").rename(root / "elsewhere.mat")
    with pytest.raises(
        FileNotFoundError, match=r"dmos_realigned.mat not found.*realigned to false"
    ):
        open_dataset(root)


def test_live_with_wrong_entry_count_is_rejected(tmp_path: Path) -> None:
    from scipy.io import savemat

    root = make_live(tmp_path / "live", per_folder=1)
    savemat(root / "dmos_realigned.mat", {"dmos_new": np.zeros((1, 10)), "orgs": np.ones((1, 10))})
    with pytest.raises(ValueError, match=r"LIVE release 2 has 982"):
        open_dataset(root)


# -- mos-folder ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("column", "higher"), [("mos", True), ("dmos", False)])
def test_mos_csv_column_name_states_the_direction(
    tmp_path: Path, column: str, higher: bool
) -> None:
    root = make_mos_csv(tmp_path / "study", column=column, types=("blur", "noise"), n=3)
    ds = open_dataset(root / "mos.csv")
    assert isinstance(ds, MOSFolderDataset) and ds.name == "mos"
    assert ds.mos_higher_is_better is higher
    first = ds.samples("mos")[0]
    assert first == MOSSample(
        "mos/blur/000002", "blur", root / "refs/blur1.png", root / "dist/blur1.png", first.mos, 1
    )
    scores = [s.mos for s in ds.samples("mos")]
    assert ds.mos_range == (min(scores), max(scores))  # observed, as no card gives one
    assert open_dataset(root).subsets("mos") == ("blur", "noise")  # the folder holding mos.csv


def _card_root(tmp_path: Path, *cards: str) -> Path:
    root = tmp_path / "cards"
    (root / "metrics").mkdir(parents=True)
    (root / "datasets").mkdir()
    for text in cards:
        name = text.split("name: ", 1)[1].split("\n", 1)[0]
        (root / "datasets" / f"{name}.yaml").write_text(text)
    return root


def test_score_column_without_direction_is_refused_and_a_card_can_give_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = tmp_path / "data"
    study = make_mos_csv(data / "study", column="score", n=2)
    with pytest.raises(ValueError, match=r"'score' has no direction; rename it to mos"):
        open_dataset(study / "mos.csv")
    card = (
        "name: study\nversion: 2\nadapter: mos-folder\ndescription: my study\n"
        "params: {higher_is_better: false, score_range: [0, 100]}\n"
    )
    monkeypatch.setenv("IQA_BENCH_CARDS", str(_card_root(tmp_path, card)))
    ds = open_dataset("study", data_root=data)
    assert ds.mos_higher_is_better is False and ds.mos_range == (0.0, 100.0) and ds.version == 2


def test_card_contradicting_the_column_name_is_an_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_mos_csv(tmp_path / "data" / "study", column="mos", n=2)
    card = (
        "name: study\nversion: 1\nadapter: mos-folder\ndescription: x\n"
        "params: {higher_is_better: false}\n"
    )
    monkeypatch.setenv("IQA_BENCH_CARDS", str(_card_root(tmp_path, card)))
    with pytest.raises(ValueError, match=r"column 'mos' means higher_is_better=True"):
        open_dataset("study", data_root=tmp_path / "data")


def test_mos_csv_bad_header_and_bad_score(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("ref,dist,mos,dmos\nx.png,y.png,1,2\n")
    with pytest.raises(ValueError, match=r"exactly one score column"):
        MOSFolderDataset(tmp_path / "a.csv")
    root = make_mos_csv(tmp_path / "s", column="mos", types=("blur",), n=2)
    lines = (root / "mos.csv").read_text().splitlines()
    cells = lines[2].split(",")
    lines[2] = ",".join([*cells[:2], "n/a", *cells[3:]])
    (root / "mos.csv").write_text("\n".join(lines) + "\n")
    with pytest.raises(ValueError, match=r"mos.csv: line 3: score nan is not a finite number"):
        open_dataset(root)


# -- cards --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "higher", "low_high"),
    [
        ("tid2013", True, (0, 9)),
        ("kadid10k", True, (1, 5)),
        ("csiq", False, (0, 1)),
        ("live", False, (0, 100)),
    ],
)
def test_cards_record_direction_range_types_and_agree_with_adapters(
    name: str, higher: bool, low_high: tuple[int, int]
) -> None:
    card = dataset_cards()[name]
    adapter = DATASETS.get(card.adapter)
    assert card.params["higher_is_better"] is higher is adapter.default_higher_is_better
    assert tuple(card.params["score_range"]) == low_high == adapter.default_range
    assert tuple(card.params["distortion_types"]) == adapter.default_types
    assert card.params["distortion_column"] and card.source and not card.synthetic
    # Either a download or instructions for a form-protected dataset, never neither.
    assert bool(card.download) != bool(card.params.get("how_to_obtain"))


def test_missing_form_protected_data_says_where_files_go(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError) as info:
        open_dataset("csiq", data_root=tmp_path, download=True)
    text = str(info.value)
    assert "cannot be downloaded automatically" in text and "csiq.DMOS.xlsx" in text
    assert str(tmp_path / "csiq") in text and "IQA_BENCH_DATA" in text
    with pytest.raises(FileNotFoundError) as info:
        download_dataset("live", data_root=tmp_path)
    assert "databaserelease2.zip" in str(info.value)
    assert "https://live.ece.utexas.edu/research/quality/subjective.htm" in str(info.value)


def test_missing_downloadable_data_names_the_url_and_the_command(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError) as info:
        open_dataset("tid2013", data_root=tmp_path)  # no download requested
    text = str(info.value)
    assert "https://www.ponomarenko.info/tid2013/tid2013.rar" in text
    assert "iqa-bench download tid2013" in text and "mos_with_names.txt" in text


# -- downloads: zip and RAR from 127.0.0.1 -------------------------------------------------------


class _Files(BaseHTTPRequestHandler):
    files: dict[str, bytes] = {}

    def do_GET(self) -> None:  # noqa: N802 - the http.server API
        body = self.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[dict[str, bytes], str]]:
    for name in ("http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY"):
        monkeypatch.delenv(name, raising=False)
    files: dict[str, bytes] = {}
    handler = type("Handler", (_Files,), {"files": files})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield files, f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def _card(name: str, adapter: str, url: str, provides: str) -> str:
    return (
        f"name: {name}\nversion: 1\nadapter: {adapter}\ndescription: test copy\n"
        f"download:\n  - {{part: all, url: '{url}', extract_to: '', provides: {provides}}}\n"
    )


def test_kadid_style_zip_downloads_verifies_extracts_and_opens(
    server: tuple[dict[str, bytes], str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files, base = server
    source = make_kadid10k(tmp_path / "src" / "kadid10k", types=(1,), refs=1, levels=2)
    archive = tmp_path / "kadid10k.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(source.rglob("*")):
            zf.write(path, path.relative_to(source.parent).as_posix())
    files["/kadid10k.zip"] = archive.read_bytes()
    card = _card("mini-kadid", "kadid10k", f"{base}/kadid10k.zip", "kadid10k/dmos.csv")
    monkeypatch.setenv("IQA_BENCH_CARDS", str(_card_root(tmp_path, card)))
    ds = open_dataset("mini-kadid", data_root=tmp_path / "data", download=True, progress=False)
    assert len(ds.samples("mos")) == 2 and ds.root == tmp_path / "data" / "mini-kadid"
    ledger = tmp_path / "data" / "mini-kadid" / ".downloads" / "hashes.json"
    assert "kadid10k.zip" in ledger.read_text()  # verified and recorded for next time


def test_tid_style_rar_downloads_extracts_and_opens(
    server: tuple[dict[str, bytes], str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files, base = server
    source = make_tid2013(tmp_path / "src", types=(1, 10), refs=1, levels=2)
    members = {p.relative_to(source).as_posix(): p.read_bytes() for p in source.rglob("*.*")}
    files["/tid2013.rar"] = write_stored_rar(tmp_path / "tid2013.rar", members).read_bytes()
    card = _card("mini-tid", "tid2013", f"{base}/tid2013.rar", "mos_with_names.txt")
    monkeypatch.setenv("IQA_BENCH_CARDS", str(_card_root(tmp_path, card)))
    ds = open_dataset("mini-tid", data_root=tmp_path / "data", download=True, progress=False)
    assert ds.subsets("mos") == ("gaussian-noise", "jpeg") and len(ds.samples("mos")) == 4


def test_offline_download_names_url_and_where_extracted_files_go(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/tid2013.rar"
    monkeypatch.setenv(
        "IQA_BENCH_CARDS",
        str(_card_root(tmp_path, _card("t", "tid2013", url, "mos_with_names.txt"))),
    )
    monkeypatch.setattr("iqa_bench.download.time.sleep", lambda s: None)
    with pytest.raises(DownloadError) as info:
        open_dataset("t", data_root=tmp_path / "data", download=True, progress=False)
    text = str(info.value)
    assert f"{url} extracted into {tmp_path / 'data' / 't'}" in text
    assert "mos_with_names.txt" in text and "distorted_images" in text


def test_unsafe_rar_member_is_rejected_before_writing(tmp_path: Path) -> None:
    archive = write_stored_rar(tmp_path / "evil.rar", {"../evil.txt": b"x"})
    with pytest.raises(ValueError, match=r"evil.rar holds a path with '\.\.'"):
        extract_archive(archive, tmp_path / "out")
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path / "out").exists()


def test_compressed_rar_without_a_tool_names_the_tools_and_manual_route(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import rarfile

    def no_tool(*args: object, **kwargs: object) -> None:
        raise rarfile.RarCannotExec("Cannot find working tool")

    monkeypatch.setattr(rarfile, "tool_setup", no_tool)
    archive = write_stored_rar(tmp_path / "c.rar", {"a.txt": b"payload"}, method=0x33)
    with pytest.raises(ValueError) as info:
        extract_archive(archive, tmp_path / "dest")
    text = str(info.value)
    assert all(tool in text for tool in RAR_TOOLS)
    assert f"extract {archive} by hand" in text and str(tmp_path / "dest") in text
    assert not (tmp_path / "dest").exists()


def test_live_realigned_dmos_range_is_stated_plainly_in_docs_card_and_docstring() -> None:
    from iqa_bench.datasets import mos_public

    repo = Path(__file__).resolve().parent.parent
    texts = {
        "docs/DATASETS.md": (repo / "docs" / "DATASETS.md").read_text(),
        "live card": dataset_cards()["live"].description,
        "adapter docstring": " ".join((mos_public.__doc__ or "").split()),
    }
    for where, text in texts.items():
        assert "-2.64 to 111.78" in text, where
        assert "slightly" not in text and "about 0-100" not in text, where
