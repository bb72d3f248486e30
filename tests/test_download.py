"""Verified downloads and safe extraction, against a local HTTP server on 127.0.0.1 only."""

from __future__ import annotations

import hashlib
import io
import json
import re
import socket
import tarfile
import threading
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from iqa_bench.archives import ArchiveLimitError
from iqa_bench.cli import build_parser, main
from iqa_bench.datasets import download_dataset, open_dataset
from iqa_bench.datasets.bapps_layout import make_bapps_layout
from iqa_bench.download import (
    DEFAULT_STALL_TIMEOUT,
    LEDGER_NAME,
    DownloadError,
    download_file,
    extract_archive,
    fetch_archives,
    parse_archive_specs,
    recorded_sha256,
)
from iqa_bench.errors import InputError

PAYLOAD = bytes(range(256)) * 4096  # 1 MiB, so a dropped transfer really is partial
PAYLOAD_SHA = hashlib.sha256(PAYLOAD).hexdigest()


@dataclass
class ServerState:
    """What the local server serves and how it misbehaves; records every request."""

    files: dict[str, bytes] = field(default_factory=dict)
    requests: list[tuple[str, str | None]] = field(default_factory=list)
    drop_after: dict[str, int] = field(default_factory=dict)  # path -> bytes sent, once
    ignore_range: bool = False
    stall_seconds: float = 0.0
    # path -> bytes sent without a Content-Length header before closing (a cut-short transfer
    # the client cannot tell from a complete one)
    cut_without_length: dict[str, int] = field(default_factory=dict)


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - the http.server API
        state: ServerState = self.server.state  # type: ignore[attr-defined]
        state.requests.append((self.path, self.headers.get("Range")))
        if state.stall_seconds:
            # Not time.sleep, which tests patch to skip the client's retry delays.
            threading.Event().wait(state.stall_seconds)
        body = state.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        start = 0
        match = re.fullmatch(r"bytes=(\d+)-", self.headers.get("Range") or "")
        if match and not state.ignore_range:
            start = int(match[1])
            if start >= len(body):
                self.send_error(416)
                return
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        cut = state.cut_without_length.get(self.path)
        if cut is not None:
            self.end_headers()
            self.wfile.write(body[:cut])
            return
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        payload = body[start:]
        drop = state.drop_after.pop(self.path, None)
        # Dropping: send a prefix, then close although Content-Length promised more.
        self.wfile.write(payload if drop is None else payload[:drop])

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@pytest.fixture(autouse=True)
def _no_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    # urllib honours proxy variables; loopback requests must never leave the machine.
    for name in (
        "http_proxy",
        "https_proxy",
        "all_proxy",
        "HTTP_PROXY",
        "HTTPS_PROXY",
        "ALL_PROXY",
    ):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def server() -> Iterator[tuple[ServerState, str]]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.daemon_threads = True
    httpd.state = ServerState()  # type: ignore[attr-defined]
    thread = threading.Thread(target=httpd.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    try:
        yield httpd.state, f"http://127.0.0.1:{httpd.server_address[1]}"  # type: ignore[attr-defined]
    finally:
        httpd.shutdown()
        httpd.server_close()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _fetch(url: str, dest: Path, **kwargs: object) -> str:
    return download_file(url, dest, progress=False, retry_delay=0.0, timeout=5.0, **kwargs)


def test_full_download_verifies_published_hash_and_renames_atomically(
    server: tuple[ServerState, str], tmp_path: Path
) -> None:
    state, base = server
    state.files["/w.bin"] = PAYLOAD
    dest = tmp_path / "cache" / "w.bin"
    assert (
        _fetch(f"{base}/w.bin", dest, sha256=PAYLOAD_SHA.upper(), size=len(PAYLOAD)) == PAYLOAD_SHA
    )
    assert dest.read_bytes() == PAYLOAD
    assert not dest.with_name("w.bin.part").exists()
    assert sorted(p.name for p in dest.parent.iterdir()) == ["w.bin"]  # no ledger when published
    assert state.requests == [("/w.bin", None)]


def test_interrupted_transfer_resumes_with_a_range_request(
    server: tuple[ServerState, str], tmp_path: Path
) -> None:
    state, base = server
    state.files["/big.bin"] = PAYLOAD
    state.drop_after["/big.bin"] = 300_000
    digest = _fetch(f"{base}/big.bin", tmp_path / "big.bin", sha256=PAYLOAD_SHA)
    assert digest == PAYLOAD_SHA and (tmp_path / "big.bin").read_bytes() == PAYLOAD
    assert state.requests == [("/big.bin", None), ("/big.bin", "bytes=300000-")]


def test_partial_file_left_by_an_earlier_run_is_resumed(
    server: tuple[ServerState, str], tmp_path: Path
) -> None:
    state, base = server
    state.files["/big.bin"] = PAYLOAD
    (tmp_path / "big.bin.part").write_bytes(PAYLOAD[:1000])
    assert _fetch(f"{base}/big.bin", tmp_path / "big.bin") == PAYLOAD_SHA
    assert state.requests == [("/big.bin", "bytes=1000-")]


def test_repeated_drops_fail_but_keep_the_partial_for_next_time(
    server: tuple[ServerState, str], tmp_path: Path
) -> None:
    state, base = server
    state.files["/big.bin"] = PAYLOAD
    state.drop_after["/big.bin"] = 1000
    with pytest.raises(DownloadError, match=r"failed after 1 attempt.*kept and resumed"):
        _fetch(f"{base}/big.bin", tmp_path / "big.bin", retries=0)
    assert (tmp_path / "big.bin.part").stat().st_size == 1000
    assert _fetch(f"{base}/big.bin", tmp_path / "big.bin") == PAYLOAD_SHA


def test_server_ignoring_range_makes_the_download_restart_cleanly(
    server: tuple[ServerState, str], tmp_path: Path
) -> None:
    state, base = server
    state.files["/big.bin"] = PAYLOAD
    state.ignore_range = True
    (tmp_path / "big.bin.part").write_bytes(b"garbage that must not stay in front")
    assert _fetch(f"{base}/big.bin", tmp_path / "big.bin", sha256=PAYLOAD_SHA) == PAYLOAD_SHA
    assert state.requests[0][1] == "bytes=35-"


def test_hash_mismatch_deletes_the_download_and_names_url_expected_and_actual(
    server: tuple[ServerState, str], tmp_path: Path
) -> None:
    state, base = server
    state.files["/w.bin"] = PAYLOAD
    wrong = "0" * 64
    with pytest.raises(ValueError, match=rf"SHA-256 mismatch for {base}/w.bin: expected {wrong}"):
        _fetch(f"{base}/w.bin", tmp_path / "w.bin", sha256=wrong)
    with pytest.raises(ValueError, match=rf"got {PAYLOAD_SHA}"):
        _fetch(f"{base}/w.bin", tmp_path / "w.bin", sha256=wrong)
    assert list(tmp_path.iterdir()) == []


def test_size_mismatch_deletes_the_download_and_names_both_sizes(
    server: tuple[ServerState, str], tmp_path: Path
) -> None:
    state, base = server
    state.files["/w.bin"] = b"12345"
    with pytest.raises(ValueError, match=r"size mismatch for .*/w.bin: expected 7 bytes, got 5"):
        _fetch(f"{base}/w.bin", tmp_path / "w.bin", size=7)
    assert list(tmp_path.iterdir()) == []


def test_hash_recorded_at_first_download_is_enforced_afterwards(
    server: tuple[ServerState, str], tmp_path: Path
) -> None:
    state, base = server
    state.files["/w.bin"] = b"original"
    dest = tmp_path / "w.bin"
    first = _fetch(f"{base}/w.bin", dest)
    assert recorded_sha256(dest) == first
    ledger = json.loads((tmp_path / LEDGER_NAME).read_text())
    assert ledger["w.bin"] == {"url": f"{base}/w.bin", "sha256": first, "size": 8}
    dest.unlink()
    state.files["/w.bin"] = b"tampered"
    with pytest.raises(ValueError, match=r"expected [0-9a-f]{64} \(recorded at first download"):
        _fetch(f"{base}/w.bin", dest)


def test_existing_file_is_verified_instead_of_downloaded_and_kept_if_bad(
    server: tuple[ServerState, str], tmp_path: Path
) -> None:
    state, base = server
    dest = tmp_path / "w.bin"
    dest.write_bytes(PAYLOAD)
    assert _fetch(f"{base}/w.bin", dest, sha256=PAYLOAD_SHA) == PAYLOAD_SHA
    dest.write_bytes(b"placed by hand, but wrong")
    with pytest.raises(ValueError, match=r"SHA-256 mismatch.*delete .*w.bin or replace it"):
        _fetch(f"{base}/w.bin", dest, sha256=PAYLOAD_SHA)
    assert dest.exists() and state.requests == []


def test_unreachable_url_raises_download_error_saying_where_to_put_the_file(
    tmp_path: Path,
) -> None:
    url = f"http://127.0.0.1:{_closed_port()}/jnd.tar.gz"
    with pytest.raises(DownloadError, match=r"download of .*jnd.tar.gz failed") as info:
        _fetch(url, tmp_path / "jnd.tar.gz", retries=1)
    assert f"place it at {tmp_path / 'jnd.tar.gz'}" in str(info.value)
    assert isinstance(info.value, OSError)


def test_http_error_and_stalled_server_raise_download_error(
    server: tuple[ServerState, str], tmp_path: Path
) -> None:
    state, base = server
    with pytest.raises(DownloadError, match=r"HTTP 404"):
        _fetch(f"{base}/missing.bin", tmp_path / "m.bin")
    state.files["/slow.bin"] = b"x"
    state.stall_seconds = 1.0
    with pytest.raises(DownloadError, match=r"slow.bin failed after 1 attempt.*timed out"):
        download_file(
            f"{base}/slow.bin", tmp_path / "s.bin", progress=False, retries=0, timeout=0.2
        )


def test_non_http_url_is_rejected(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"must start with http:// or https://"):
        download_file("ftp://127.0.0.1/x", tmp_path / "x")


def _tar_folder(archive: Path, folder: Path, arcname: str) -> Path:
    with tarfile.open(archive, "w:gz") as tar:
        tar.add(folder, arcname=arcname)
    return archive


def test_bapps_style_tar_gz_archives_extract_into_place_and_open(tmp_path: Path) -> None:
    source = make_bapps_layout(tmp_path / "src", {"cnn": 2, "color": 1}, {"cnn": 2})
    jnd = _tar_folder(tmp_path / "jnd.tar.gz", source / "jnd", "jnd")
    val = _tar_folder(tmp_path / "twoafc_val.tar.gz", source / "2afc" / "val", "val")
    root = tmp_path / "data" / "bapps"
    assert extract_archive(jnd, root) == [root / "jnd"]
    assert extract_archive(val, root / "2afc") == [root / "2afc" / "val"]
    ds = open_dataset(root)
    assert ds.subsets("2afc") == ("cnn", "color") and len(ds.samples("jnd")) == 2
    assert [p.name for p in root.iterdir() if p.name.startswith(".")] == []
    assert [p.name for p in (root / "2afc").iterdir()] == ["val"]


def test_existing_entries_are_not_clobbered_unless_overwrite(tmp_path: Path) -> None:
    (tmp_path / "src" / "val").mkdir(parents=True)
    (tmp_path / "src" / "val" / "new.txt").write_text("new")
    archive = _tar_folder(tmp_path / "a.tar", tmp_path / "src" / "val", "val")
    (tmp_path / "dest" / "val").mkdir(parents=True)
    (tmp_path / "dest" / "val" / "old.txt").write_text("old")
    with pytest.raises(ValueError, match=r"dest/val already exists; delete it or pass overwrite"):
        extract_archive(archive, tmp_path / "dest")
    assert (tmp_path / "dest" / "val" / "old.txt").exists()
    extract_archive(archive, tmp_path / "dest", overwrite=True)
    assert [p.name for p in (tmp_path / "dest" / "val").iterdir()] == ["new.txt"]
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def _evil_tar(path: Path, kind: str) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        info = tarfile.TarInfo(
            {"dotdot": "ok/../../evil.txt", "absolute": "/tmp/evil.txt"}.get(kind, "link")
        )
        if kind == "symlink":
            info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
            tar.addfile(info)
        else:
            info.size = 4
            tar.addfile(info, io.BytesIO(b"evil"))
    return path


@pytest.mark.parametrize(
    ("kind", "message"),
    [
        ("dotdot", r"holds a path with '\.\.'"),
        ("absolute", r"holds an absolute path '/tmp/evil.txt'"),
        ("symlink", r"holds 'link', which is not a regular file or folder"),
    ],
)
def test_unsafe_tar_members_are_rejected_before_anything_is_written(
    tmp_path: Path, kind: str, message: str
) -> None:
    archive = _evil_tar(tmp_path / "evil.tar.gz", kind)
    with pytest.raises(ValueError, match=message):
        extract_archive(archive, tmp_path / "out" / "dest")
    assert list((tmp_path / "out").iterdir()) == []
    assert not (tmp_path / "evil.txt").exists()


def test_zip_archives_extract_and_unsafe_zip_members_are_rejected(tmp_path: Path) -> None:
    good = tmp_path / "good.zip"
    with zipfile.ZipFile(good, "w") as zf:
        zf.writestr("jnd/val/readme.txt", "ok")
    assert extract_archive(good, tmp_path / "root") == [tmp_path / "root" / "jnd"]
    evil = tmp_path / "evil.zip"
    with zipfile.ZipFile(evil, "w") as zf:
        zf.writestr("../evil.txt", "evil")
    with pytest.raises(ValueError, match=r"evil.zip holds a path with '\.\.'"):
        extract_archive(evil, tmp_path / "root2")
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path / "root2").exists()


def test_non_archive_file_is_rejected(tmp_path: Path) -> None:
    (tmp_path / "x.tar.gz").write_bytes(b"<html>not found</html>")
    with pytest.raises(ValueError, match=r"x.tar.gz is neither a tar .* nor a zip file"):
        extract_archive(tmp_path / "x.tar.gz", tmp_path / "out")
    with pytest.raises(FileNotFoundError, match=r"archive .*nothing.zip does not exist"):
        extract_archive(tmp_path / "nothing.zip", tmp_path / "out")


def _mini_card_root(
    tmp_path: Path, base: str, provides_jnd: str = "jnd/val", jnd_extra: str = ""
) -> Path:
    cards = tmp_path / "cards"
    (cards / "metrics").mkdir(parents=True)
    (cards / "datasets").mkdir()
    (cards / "datasets" / "mini.yaml").write_text(
        "name: mini\nversion: 3\nadapter: bapps\ndescription: tiny BAPPS copy for tests\n"
        "download:\n"
        f"  - {{part: jnd, url: '{base}/jnd.tar.gz', extract_to: '', provides: {provides_jnd}"
        f"{jnd_extra}}}\n"
        f"  - {{part: 2afc-val, url: '{base}/twoafc_val.tar.gz', extract_to: 2afc,"
        " provides: 2afc/val}\n"
        f"  - {{part: 2afc-train, url: '{base}/twoafc_train.tar.gz', extract_to: 2afc,"
        " provides: 2afc/train, default: false}\n"
    )
    return cards


def test_open_dataset_downloads_default_parts_from_a_card_then_reuses_them(
    server: tuple[ServerState, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state, base = server
    source = make_bapps_layout(tmp_path / "src", {"cnn": 2}, {"cnn": 3})
    make_bapps_layout(source, {"mix": 1}, None, split="train")
    for name, folder, arcname in [
        ("jnd.tar.gz", source / "jnd", "jnd"),
        ("twoafc_val.tar.gz", source / "2afc" / "val", "val"),
        ("twoafc_train.tar.gz", source / "2afc" / "train", "train"),
    ]:
        state.files[f"/{name}"] = _tar_folder(tmp_path / name, folder, arcname).read_bytes()
    monkeypatch.setenv("IQA_BENCH_CARDS", str(_mini_card_root(tmp_path, base)))
    data = tmp_path / "data"
    ds = open_dataset("mini", data_root=data, download=True, progress=False)
    assert ds.version == 3 and ds.tasks() == ("2afc", "jnd") and len(ds.samples("jnd")) == 3
    assert sorted(path for path, _ in state.requests) == ["/jnd.tar.gz", "/twoafc_val.tar.gz"]
    downloads = data / "mini" / ".downloads"
    assert [p.name for p in downloads.iterdir()] == [LEDGER_NAME]  # archives deleted, hashes kept
    open_dataset("mini", data_root=data, download=True, progress=False)
    assert len(state.requests) == 2  # installed parts are not fetched again
    train = open_dataset("mini", data_root=data, split="train", download=True, progress=False)
    assert train.subsets("2afc") == ("mix",) and state.requests[-1][0] == "/twoafc_train.tar.gz"
    with pytest.raises(ValueError, match=r"unknown download part '2afc-vall'.*Did you mean"):
        download_dataset("mini", data, parts=["2afc-vall"], progress=False)


@pytest.mark.parametrize("failure", ["html_error_page", "cut_short_without_length"])
def test_a_bad_download_records_no_hash_so_the_real_archive_is_accepted_later(
    server: tuple[ServerState, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, failure: str
) -> None:
    state, base = server
    source = make_bapps_layout(tmp_path / "src", None, {"cnn": 2})
    good = _tar_folder(tmp_path / "jnd.tar.gz", source / "jnd", "jnd").read_bytes()
    if failure == "html_error_page":
        state.files["/jnd.tar.gz"] = b"<html><body>503 Service Unavailable</body></html>"
    else:
        state.files["/jnd.tar.gz"] = good
        state.cut_without_length["/jnd.tar.gz"] = len(good) // 2
    monkeypatch.setenv("IQA_BENCH_CARDS", str(_mini_card_root(tmp_path, base)))
    data, root = tmp_path / "data", tmp_path / "data" / "mini"
    archive = root / ".downloads" / "jnd.tar.gz"
    with pytest.raises(ValueError) as info:
        download_dataset("mini", data, parts=["jnd"], progress=False)
    assert recorded_sha256(archive) is None  # the bad file's hash is not trusted
    assert f"archive {archive}" in str(info.value) and "download it again" in str(info.value)
    assert isinstance(info.value, InputError)
    assert sorted(p.name for p in root.iterdir()) == [".downloads"]  # nothing (half) extracted
    archive.unlink()  # what the message asks for
    state.files["/jnd.tar.gz"] = good
    state.cut_without_length.clear()
    download_dataset("mini", data, parts=["jnd"], progress=False)
    assert recorded_sha256(archive) == hashlib.sha256(good).hexdigest()
    assert len(open_dataset("mini", data_root=data, split="val").samples("jnd")) == 2


def test_archive_that_does_not_provide_the_declared_path_is_an_error_leaving_nothing(
    server: tuple[ServerState, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state, base = server
    source = make_bapps_layout(tmp_path / "src", None, {"cnn": 1})
    state.files["/jnd.tar.gz"] = _tar_folder(tmp_path / "j.tgz", source / "jnd", "jnd").read_bytes()
    monkeypatch.setenv("IQA_BENCH_CARDS", str(_mini_card_root(tmp_path, base, "jnd/test")))
    root = tmp_path / "data" / "mini"
    with pytest.raises(ValueError, match=r"did not create .*jnd/test.*was removed"):
        download_dataset("mini", tmp_path / "data", parts=["jnd"], progress=False)
    assert sorted(p.name for p in root.iterdir()) == [".downloads"]
    assert recorded_sha256(root / ".downloads" / "jnd.tar.gz") is None


def _stalling_mini(
    server: tuple[ServerState, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state, base = server
    source = make_bapps_layout(tmp_path / "src", None, {"cnn": 1})
    state.files["/jnd.tar.gz"] = _tar_folder(tmp_path / "j.tgz", source / "jnd", "jnd").read_bytes()
    state.stall_seconds = 3.0  # longer than the stall timeout under test, far below the default
    monkeypatch.setenv("IQA_BENCH_CARDS", str(_mini_card_root(tmp_path, base)))
    monkeypatch.setattr("iqa_bench.download.time.sleep", lambda s: None)  # no retry delays


def test_stalled_server_fails_after_the_given_stall_timeout(
    server: tuple[ServerState, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _stalling_mini(server, tmp_path, monkeypatch)
    start = time.perf_counter()
    with pytest.raises(DownloadError, match=r"jnd.tar.gz failed after 4 attempt.*timed out"):
        download_dataset("mini", tmp_path / "data", ["jnd"], progress=False, stall_timeout=0.5)
    elapsed = time.perf_counter() - start
    # 4 attempts x 0.5 s. Measured 2.028-2.038 s over 5 runs; with the default 60 s timeout
    # the first attempt would get the file after the server's 3 s pause instead.
    assert 2.0 <= elapsed < 2.9, elapsed
    assert len(server[0].requests) == 4


@pytest.mark.parametrize("command", ["download", "bench"])
def test_stall_timeout_option_reaches_the_download(
    server: tuple[ServerState, str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    command: str,
) -> None:
    _stalling_mini(server, tmp_path, monkeypatch)
    data = str(tmp_path / "data")
    argv = (
        ["download", "mini", "--parts", "jnd", "--data-root", data]
        if command == "download"
        else ["bench", "--dataset", "mini", "--metrics", "l2", "--out", str(tmp_path / "run")]
        + ["--data-root", data, "--quiet", "--device", "cpu"]
    )
    assert main([*argv, "--stall-timeout", "0.5"]) == 2
    # Four attempts timed out; with the default 60 s the first would get the file after 3 s.
    assert "failed after 4 attempt(s) (TimeoutError: timed out)" in capsys.readouterr().err
    assert len(server[0].requests) == 4


@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf", "soon"])
def test_stall_timeout_option_must_be_a_positive_number_of_seconds(
    value: str, capsys: pytest.CaptureFixture[str]
) -> None:
    for command in (["download", "bapps"], ["run", "--dataset", "synthetic"], ["bench"]):
        with pytest.raises(SystemExit):
            build_parser().parse_args([*command, "--stall-timeout", value])
        assert "is not a positive number of seconds" in capsys.readouterr().err
    args = build_parser().parse_args(["run", "--dataset", "synthetic"])
    assert args.stall_timeout == DEFAULT_STALL_TIMEOUT
    assert build_parser().parse_args(["bench", "--stall-timeout", "2.5"]).stall_timeout == 2.5


def test_card_limits_apply_to_their_archive_and_the_caller_can_override_them(
    server: tuple[ServerState, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state, base = server
    source = make_bapps_layout(tmp_path / "src", None, {"cnn": 2})
    state.files["/jnd.tar.gz"] = _tar_folder(tmp_path / "j.tgz", source / "jnd", "jnd").read_bytes()
    cards = _mini_card_root(tmp_path, base, jnd_extra=", max_members: 3")
    monkeypatch.setenv("IQA_BENCH_CARDS", str(cards))
    with pytest.raises(ArchiveLimitError, match=r"more than 3 entries \(max_members limit"):
        download_dataset("mini", tmp_path / "data", ["jnd"], progress=False)
    root = tmp_path / "data" / "mini"
    assert sorted(p.name for p in root.iterdir()) == [".downloads"]
    card = (cards / "datasets" / "mini.yaml").read_text()
    import yaml

    specs = parse_archive_specs(yaml.safe_load(card)["download"], "mini")
    assert fetch_archives(specs, root, ["jnd"], progress=False, max_members=100) == specs[:1]
    assert len(open_dataset(root).samples("jnd")) == 2


def test_bapps_card_pins_published_hashes_that_a_download_is_checked_against(
    server: tuple[ServerState, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    state, base = server
    real = Path(__file__).resolve().parents[1] / "datasets" / "bapps.yaml"
    text = real.read_text().replace(
        "https://perceptual-similarity.s3.us-west-2.amazonaws.com/dataset", base
    )
    cards = tmp_path / "cards"
    (cards / "metrics").mkdir(parents=True)
    (cards / "datasets").mkdir()
    (cards / "datasets" / "bapps.yaml").write_text(text)
    monkeypatch.setenv("IQA_BENCH_CARDS", str(cards))
    source = make_bapps_layout(tmp_path / "src", {"cnn": 1}, None)
    impostor = _tar_folder(tmp_path / "v.tgz", source / "2afc" / "val", "val").read_bytes()
    for name in ("twoafc_val.tar.gz", "twoafc_train.tar.gz"):
        state.files[f"/{name}"] = impostor
        part = "2afc-" + name.split("_")[1].split(".")[0]
        with pytest.raises(ValueError, match=rf"SHA-256 mismatch for {base}/{name}.*\(published\)"):
            download_dataset("bapps", tmp_path / "data", [part], progress=False)
    assert not (tmp_path / "data" / "bapps" / "2afc").exists()
