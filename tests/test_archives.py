"""Damaged and oversized archives: errors naming the archive and member, nothing left behind."""

from __future__ import annotations

import io
import os
import tarfile
import zipfile
from pathlib import Path

import pytest

from iqa_bench.archives import (
    DEFAULT_MAX_BYTES,
    ArchiveError,
    ArchiveLimitError,
    extract_archive,
)
from iqa_bench.errors import InputError
from tests.mos_fixture import write_stored_rar

NOISE = os.urandom(300_000)  # incompressible, so a truncated .tar.gz is cut inside the member


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


def _tar_gz(path: Path, members: dict[str, bytes]) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def _zip(path: Path, members: dict[str, bytes], method: int = zipfile.ZIP_DEFLATED) -> Path:
    with zipfile.ZipFile(path, "w", compression=method) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def _truncate(path: Path, keep: float = 0.5) -> Path:
    path.write_bytes(path.read_bytes()[: int(path.stat().st_size * keep)])
    return path


def test_corrupt_zip_member_names_the_archive_the_member_and_the_fix(tmp_path: Path) -> None:
    archive = _zip(
        tmp_path / "d.zip", {"d/ok.txt": b"fine", "d/bad.bin": NOISE}, zipfile.ZIP_STORED
    )
    data = bytearray(archive.read_bytes())
    at = data.find(NOISE[:64]) + 1000
    data[at : at + 8] = bytes(b ^ 0xFF for b in data[at : at + 8])  # CRC no longer matches
    archive.write_bytes(bytes(data))
    with pytest.raises(InputError) as info:
        extract_archive(archive, tmp_path / "out" / "d")
    text = str(info.value)
    assert f"archive {archive} is damaged" in text and "member 'd/bad.bin'" in text
    assert "BadZipFile" in text and f"Delete {archive} and download it again" in text
    assert _leftovers(tmp_path / "out") == []  # no staging folder, nothing half-extracted


def test_truncated_tar_gz_names_the_archive_and_the_member_being_read(tmp_path: Path) -> None:
    archive = _truncate(_tar_gz(tmp_path / "t.tar.gz", {"val/a.txt": b"a", "val/b.bin": NOISE}))
    with pytest.raises(InputError) as info:
        extract_archive(archive, tmp_path / "out" / "t")
    text = str(info.value)
    assert f"archive {archive} is damaged or incomplete" in text
    assert "past member 'val/b.bin'" in text and "EOFError" in text and "download it again" in text
    assert isinstance(info.value, ArchiveError) and _leftovers(tmp_path / "out") == []


def test_truncated_zip_and_rar_raise_input_errors_saying_to_download_again(
    tmp_path: Path,
) -> None:
    zipped = _truncate(_zip(tmp_path / "z.zip", {"z/a.bin": NOISE}))
    with pytest.raises(InputError, match=r"z\.zip is neither .* truncated zip.* download it again"):
        extract_archive(zipped, tmp_path / "out" / "z")
    rar = _truncate(write_stored_rar(tmp_path / "r.rar", {"r/a.bin": NOISE}), 0.7)
    with pytest.raises(InputError, match=r"r\.rar is damaged or incomplete.* download it again"):
        extract_archive(rar, tmp_path / "out" / "r")
    assert _leftovers(tmp_path / "out") == []


@pytest.mark.parametrize("fmt", ["tar.gz", "zip"])
def test_archive_over_the_byte_limit_is_refused_before_anything_is_written(
    tmp_path: Path, fmt: str
) -> None:
    members = {"big/zeros.bin": bytes(2_000_000)}  # 2 MB of zeros compress to a few KB
    archive = (_tar_gz if fmt == "tar.gz" else _zip)(tmp_path / f"bomb.{fmt}", members)
    assert archive.stat().st_size < 20_000
    with pytest.raises(ArchiveLimitError) as info:
        extract_archive(archive, tmp_path / "out" / "big", max_bytes=1_000_000)
    text = str(info.value)
    assert f"archive {archive} expands to more than 1,000,000 bytes (max_bytes limit" in text
    assert "'big/zeros.bin'" in text and "`max_bytes: N` in the dataset card" in text
    assert _leftovers(tmp_path / "out") == []
    assert extract_archive(archive, tmp_path / "ok", max_bytes=2_000_000) == [
        tmp_path / "ok" / "big"
    ]


def test_archive_over_the_member_limit_is_refused(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "many.zip", {f"m/{i}.txt": b"x" for i in range(5)})
    with pytest.raises(ArchiveLimitError, match=r"more than 4 entries \(max_members limit"):
        extract_archive(archive, tmp_path / "out" / "m", max_members=4)
    assert _leftovers(tmp_path / "out") == []
    assert len(list(extract_archive(archive, tmp_path / "ok", max_members=5)[0].iterdir())) == 5


def test_tar_declaring_more_than_the_default_limit_is_refused_from_its_header(
    tmp_path: Path,
) -> None:
    # A header that claims DEFAULT_MAX_BYTES + 1 bytes, followed by no data: refused at the
    # header, before tarfile would try to read (or we would try to write) any of it.
    info = tarfile.TarInfo("bomb/huge.bin")
    info.size = DEFAULT_MAX_BYTES + 1
    archive = tmp_path / "bomb.tar"
    archive.write_bytes(info.tobuf(format=tarfile.PAX_FORMAT) + bytes(1024))
    with pytest.raises(ArchiveLimitError, match=r"counted from the tar headers, reached at"):
        extract_archive(archive, tmp_path / "out" / "bomb", max_ratio=1e12)  # bytes limit only
    assert _leftovers(tmp_path / "out") == []


def test_rar_tool_writing_more_than_the_headers_declare_is_caught_after_extracting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import rarfile

    archive = write_stored_rar(tmp_path / "lie.rar", {"lie/a.txt": b"tiny"})

    def lying_tool(self: object, path: str) -> None:  # what a tool trusting lying data may do
        (Path(path) / "lie").mkdir()
        (Path(path) / "lie" / "a.txt").write_bytes(bytes(5000))

    monkeypatch.setattr(rarfile.RarFile, "extractall", lying_tool)
    with pytest.raises(
        ArchiveLimitError, match=r"more than 1,000 bytes .*counted after extracting"
    ):
        extract_archive(archive, tmp_path / "out" / "lie", max_bytes=1000)
    assert _leftovers(tmp_path / "out") == []


def test_limits_must_be_positive_integers(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "a.zip", {"a/x.txt": b"x"})
    with pytest.raises(InputError, match=r"max_members: 0 is not a positive integer"):
        extract_archive(archive, tmp_path / "out", max_members=0)


def test_small_archive_expanding_hundreds_of_times_is_refused_by_the_ratio_limit(
    tmp_path: Path,
) -> None:
    """A zip bomb under the 16 GiB default: 80 MB of zeros packed into about 80 KB."""
    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zf, zf.open("zeros.bin", "w") as f:
        for _ in range(80):
            f.write(bytes(2**20))
    assert bomb.stat().st_size < 200_000
    with pytest.raises(ArchiveLimitError, match=r"bomb\.zip .* over 100 times its size") as info:
        extract_archive(bomb, tmp_path / "out")
    assert info.value.key == "max_ratio" and _leftovers(tmp_path / "out") == []
    assert [p.name for p in extract_archive(bomb, tmp_path / "ok", max_ratio=2000)] == ["zeros.bin"]
