"""Safe archive extraction: tar (.tar, .tar.gz, .tgz), zip and RAR, all-or-nothing and bounded.

``extract_archive`` unpacks into a hidden sibling folder and renames the result into place, so a
half-extracted dataset is never visible. Absolute paths, ``..`` components, links and devices are
rejected before anything is written. The format is detected from the file's content, not its name.

Every extraction is bounded: at most ``max_bytes`` uncompressed bytes and ``max_members`` entries
(defaults :data:`DEFAULT_MAX_BYTES` and :data:`DEFAULT_MAX_MEMBERS`, which fit every dataset card
except NIGHTS, whose card raises the byte limit). The totals are checked twice: from the archive's
headers before anything is written, and again from the bytes actually written, because headers
can lie. A damaged archive (bad CRC, truncated download) raises :class:`ArchiveError`, an
:class:`~iqa_bench.errors.InputError` naming the archive and the member, instead of the raw
``BadZipFile``/``EOFError`` of the standard library.

RAR archives (TID2013 ships as ``tid2013.rar``) are read with the maintained pure-Python package
``rarfile`` (a dependency of iqa-bench). It reads uncompressed ("stored") members by itself; for
compressed members, which real RAR archives use, it runs one of these system tools, whichever is
found first on ``PATH``: ``unrar`` (RARLAB, non-free), ``unar`` (The Unarchiver; Debian/Ubuntu
``apt-get install unar``, macOS ``brew install unar``), ``7z``/``7zz`` (7-Zip) or ``bsdtar``
(libarchive; Debian/Ubuntu ``apt-get install libarchive-tools``). Without one, extraction fails with
a ``ValueError`` naming them and saying where to extract the archive by hand. The tool writes the
files itself, so for RAR the written totals are checked after it finishes, not while it writes.

Example:
    >>> extract_archive(Path("cache/twoafc_val.tar.gz"), Path("data/bapps/2afc"))  # doctest: +SKIP
    [PosixPath('data/bapps/2afc/val')]
"""

from __future__ import annotations

import gzip
import lzma
import os
import shutil
import tarfile
import tempfile
import zipfile
import zlib
from pathlib import Path, PurePosixPath
from typing import IO, Any

from .errors import DataNotFoundError, InputError

__all__ = [
    "DEFAULT_MAX_BYTES",
    "DEFAULT_MAX_MEMBERS",
    "DEFAULT_MAX_RATIO",
    "RAR_TOOLS",
    "ArchiveError",
    "ArchiveLimitError",
    "extract_archive",
    "is_rar_file",
]

#: System tools ``rarfile`` can use for compressed RAR members, in its order of preference.
RAR_TOOLS = ("unrar", "unar", "7z", "bsdtar")
_RAR_MAGIC = b"Rar!\x1a\x07"  # RAR 1.5-4.x add b"\x00", RAR 5 adds b"\x01\x00"

#: Default cap on the uncompressed bytes of one archive: 16 GiB. The largest archives fetched
#: without a card override (BAPPS 2AFC train, about 6 GB of PNGs in a .tar.gz; KADID-10k, about
#: 3.1 GB of PNGs; TID2013, 3025 BMPs of 590 KB, about 1.8 GB) fit with room; NIGHTS (about 58 GB
#: unzipped) raises it in its card.
DEFAULT_MAX_BYTES = 16 * 2**30
#: Default cap on the entries (files and folders) of one archive. The largest, BAPPS 2AFC train,
#: holds 4 files per triplet (ref, p0, p1, judge) for about 151k triplets: about 606k files.
DEFAULT_MAX_MEMBERS = 1_000_000
#: Default cap on how many times its own size an archive may expand to (above
#: :data:`RATIO_FLOOR_BYTES`). Dataset archives hold PNG/JPEG files (ratio about 1) or BMPs in
#: RAR/zip (a few times); a bomb expands hundreds of times (a 381 KB archive to 300 MB is 790x).
DEFAULT_MAX_RATIO = 100.0
#: An archive may always expand to this many bytes, whatever its ratio (small test archives).
RATIO_FLOOR_BYTES = 64 * 2**20
_CHUNK = 1 << 20
# What the standard library raises for a damaged tar/zip (gzip.BadGzipFile is an OSError).
_DAMAGED = (
    tarfile.TarError,
    zipfile.BadZipFile,
    EOFError,
    zlib.error,
    gzip.BadGzipFile,
    lzma.LZMAError,
)


class ArchiveError(InputError):
    """An archive that is unsafe, damaged or unreadable; the message names it and the fix."""


class ArchiveLimitError(ArchiveError):
    """An archive that expands beyond the byte or member limit; the message says how to raise it.

    Attributes:
        key: The limit reached: ``max_bytes`` or ``max_members``.
    """

    def __init__(self, message: str, key: str) -> None:
        super().__init__(message)
        self.key = key


class _RarToolMissing(InputError):
    """Raised by the RAR extractor when ``rarfile`` finds no tool for compressed members."""


class _Budget:
    """Running totals of one pass over an archive, checked against its limits."""

    def __init__(self, archive: Path, max_bytes: int, max_members: int, when: str) -> None:
        self.archive = archive
        self.max_bytes = max_bytes
        self.max_members = max_members
        self.when = when
        self.bytes = 0
        self.members = 0

    def member(self, name: str, size: int = 0) -> None:
        """Count one entry of ``size`` bytes."""
        self.members += 1
        if self.members > self.max_members:
            self._refuse(f"more than {self.max_members:,} entries", "max_members", name)
        self.grow(name, size)

    def grow(self, name: str, size: int) -> None:
        """Count ``size`` more uncompressed bytes of the entry ``name``."""
        self.bytes += size
        if self.bytes > self.max_bytes:
            self._refuse(f"more than {self.max_bytes:,} bytes", "max_bytes", name)

    def _refuse(self, what: str, key: str, name: str) -> None:
        raise ArchiveLimitError(
            f"archive {self.archive} expands to {what} ({key} limit, {self.when}, reached at "
            f"{name!r}); nothing was extracted. If it is a genuine dataset archive, raise the "
            f"limit: `{key}: N` in the dataset card's download entry, or {key}=N in "
            "extract_archive()/fetch_archives(). Otherwise it is not the dataset (an archive "
            "bomb?): delete it.",
            key,
        )


def is_rar_file(path: Path) -> bool:
    """Whether ``path`` starts with a RAR signature (RAR 1.5-4.x or RAR 5).

    Example:
        >>> is_rar_file(Path("cache/tid2013.rar"))  # doctest: +SKIP
        True
    """
    try:
        with Path(path).open("rb") as fh:
            return fh.read(len(_RAR_MAGIC)) == _RAR_MAGIC
    except OSError:
        return False


def _check_member_name(name: str, archive: Path) -> None:
    pure = PurePosixPath(name.replace("\\", "/"))
    if pure.is_absolute() or name.startswith(("/", "\\")) or (pure.parts and ":" in pure.parts[0]):
        raise ArchiveError(
            f"archive {archive} holds an absolute path {name!r}; refusing to extract it."
        )
    if ".." in pure.parts:
        raise ArchiveError(
            f"archive {archive} holds a path with '..' ({name!r}); refusing to extract."
        )


def _damaged(archive: Path, where: str, exc: BaseException) -> ArchiveError:
    return ArchiveError(
        f"archive {archive} is damaged or incomplete: reading {where} failed "
        f"({type(exc).__name__}: {exc}); nothing was extracted. Delete {archive} and download it "
        "again (the same download command fetches it anew once the file is gone)."
    )


def _target(into: Path, name: str) -> Path:
    parts = [p for p in PurePosixPath(name).parts if p not in (".", "")]
    return into.joinpath(*parts)


def _copy(source: IO[bytes], path: Path, guard: _Budget, name: str) -> None:
    """Write ``source`` to ``path``, counting the bytes actually written against ``guard``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as out:
        while chunk := source.read(_CHUNK):
            guard.grow(name, len(chunk))
            out.write(chunk)


def _extract_tar(archive: Path, into: Path, max_bytes: int, max_members: int) -> None:
    where = "the first member's header"
    try:
        with tarfile.open(archive, "r:*") as tar:
            budget = _Budget(archive, max_bytes, max_members, "counted from the tar headers")
            for member in tar:  # reads the headers one by one, so a bomb stops at the limit
                _check_member_name(member.name, archive)
                if not (member.isfile() or member.isdir()):
                    # Links and devices could point outside the target; datasets never need them.
                    raise ArchiveError(
                        f"archive {archive} holds {member.name!r}, which is not a regular file or "
                        "folder (link or device); refusing to extract it."
                    )
                budget.member(member.name, member.size if member.isfile() else 0)
                where = f"past member {member.name!r} (its data, or the next header)"
            guard = _Budget(archive, max_bytes, max_members, "counted while extracting")
            for member in tar.getmembers():
                where = f"member {member.name!r}"
                guard.member(member.name)
                path = _target(into, member.name)
                if member.isdir():
                    path.mkdir(parents=True, exist_ok=True)
                    continue
                source = tar.extractfile(member)
                assert source is not None  # regular files always have a data stream
                with source:
                    _copy(source, path, guard, member.name)
                os.utime(path, (member.mtime, member.mtime))
    except _DAMAGED as exc:
        raise _damaged(archive, where, exc) from exc


def _extract_zip(archive: Path, into: Path, max_bytes: int, max_members: int) -> None:
    where = "the member list"
    try:
        with zipfile.ZipFile(archive) as zf:
            infos = zf.infolist()
            budget = _Budget(archive, max_bytes, max_members, "declared in the zip directory")
            for info in infos:
                _check_member_name(info.filename, archive)
                if info.flag_bits & 0x1:
                    raise ArchiveError(
                        f"archive {archive} member {info.filename!r} is password-protected; "
                        "extract it by hand with the password."
                    )
                budget.member(info.filename, info.file_size)
            guard = _Budget(archive, max_bytes, max_members, "counted while extracting")
            for info in infos:
                where = f"member {info.filename!r}"
                guard.member(info.filename)
                path = _target(into, info.filename)
                if info.is_dir():
                    path.mkdir(parents=True, exist_ok=True)
                    continue
                with zf.open(info) as source:
                    _copy(source, path, guard, info.filename)
    except NotImplementedError as exc:  # e.g. Deflate64, which Python's zipfile cannot read
        raise ArchiveError(
            f"archive {archive}: {where} uses a compression method Python cannot read ({exc}); "
            "extract the archive by hand (unzip, 7z) into the dataset folder."
        ) from exc
    except _DAMAGED as exc:
        raise _damaged(archive, where, exc) from exc


def _check_rar_members(rf: Any, archive: Path, max_bytes: int, max_members: int) -> None:
    budget = _Budget(archive, max_bytes, max_members, "declared in the RAR headers")
    for info in rf.infolist():
        _check_member_name(info.filename, archive)
        if info.is_symlink() or not (info.is_file() or info.is_dir()):
            raise ArchiveError(
                f"archive {archive} holds {info.filename!r}, which is not a regular file "
                "or folder (link); refusing to extract it."
            )
        if info.needs_password():
            raise ArchiveError(
                f"archive {archive} member {info.filename!r} is password-protected; "
                "extract it by hand with the password."
            )
        budget.member(info.filename, info.file_size if info.is_file() else 0)


def _check_written(archive: Path, into: Path, max_bytes: int, max_members: int) -> None:
    """Count what an external tool wrote (it may not honour the headers we checked)."""
    guard = _Budget(archive, max_bytes, max_members, "counted after extracting")
    for folder, dirs, files in os.walk(into):
        for name in dirs + files:
            path = Path(folder) / name
            guard.member(str(path.relative_to(into)), 0 if name in dirs else path.stat().st_size)


def _extract_rar(archive: Path, into: Path, max_bytes: int, max_members: int) -> None:
    try:
        import rarfile
    except ImportError:  # pragma: no cover - rarfile is a declared dependency
        raise InputError(
            f"archive {archive} is a RAR file, which needs the Python package rarfile: "
            "`pip install rarfile`."
        ) from None
    try:
        with rarfile.RarFile(archive) as rf:
            _check_rar_members(rf, archive, max_bytes, max_members)
            rf.extractall(into)
    except rarfile.RarCannotExec as exc:
        raise _RarToolMissing(
            f"archive {archive} has compressed RAR members, and rarfile found no tool to "
            f"decompress them ({exc}). Install one of {', '.join(RAR_TOOLS)} (e.g. "
            "`apt-get install unar`, `apt-get install libarchive-tools` for bsdtar, or "
            "`brew install unar`)"
        ) from exc
    except (rarfile.Error, EOFError) as exc:
        raise _damaged(archive, "its RAR members", exc) from exc
    _check_written(archive, into, max_bytes, max_members)


def _extractor(archive: Path) -> Any:
    if zipfile.is_zipfile(archive):
        return _extract_zip
    if is_rar_file(archive):
        return _extract_rar
    try:
        if tarfile.is_tarfile(archive):
            return _extract_tar
    except _DAMAGED:  # a damaged compressed stream can fail before the first header
        pass
    raise ArchiveError(
        f"archive {archive} is neither a tar (.tar, .tar.gz, .tgz) nor a zip file nor a RAR "
        "archive (a truncated zip, whose member directory sits at its end, looks like this, and "
        "so does an HTML error page saved in its place); delete it and download it again."
    )


def extract_archive(
    archive: Path,
    dest_dir: Path,
    overwrite: bool = False,
    *,
    max_bytes: int = DEFAULT_MAX_BYTES,
    max_members: int = DEFAULT_MAX_MEMBERS,
    max_ratio: float = DEFAULT_MAX_RATIO,
) -> list[Path]:
    """Safely extract a ``.tar.gz``/``.tgz``/``.tar``/``.zip``/``.rar`` archive into ``dest_dir``.

    Members are unpacked into a hidden temporary folder beside ``dest_dir`` (same file system), then
    each top-level entry is renamed into ``dest_dir`` in one step, so readers never see a half
    extracted folder; on any error the temporary folder is removed. Absolute paths, ``..``
    components, links, devices and archives over the limits are rejected before anything is
    written; the limits are checked again on the bytes actually written.

    Args:
        archive: The archive file; its format is detected from its content.
        dest_dir: Folder receiving the archive's top-level entries; created if missing.
        overwrite: Replace top-level entries that already exist in ``dest_dir``.
        max_bytes: Most uncompressed bytes the archive may expand to.
        max_members: Most entries (files and folders) the archive may hold.
        max_ratio: Most times its own size the archive may expand to, beyond
            :data:`RATIO_FLOOR_BYTES` (the smaller of this and ``max_bytes`` applies).

    Returns:
        The top-level paths created in ``dest_dir``, sorted.

    Raises:
        DataNotFoundError: If ``archive`` does not exist.
        ArchiveLimitError: If the archive exceeds ``max_bytes`` or ``max_members`` (the message
            says how to raise them).
        ArchiveError: On an unsupported, unsafe, password-protected or damaged archive (the
            message names the archive and the member, and says to delete it and download again).
        InputError: When an entry exists and ``overwrite`` is false, or for a compressed RAR
            archive when no RAR tool is installed (the message names the tools and where to
            extract the archive by hand).

    Example:
        >>> extract_archive(Path("cache/twoafc_val.tar.gz"), Path("data/2afc"))  # doctest: +SKIP
        [PosixPath('data/2afc/val')]
    """
    archive, dest_dir = Path(archive), Path(dest_dir)
    if not archive.is_file():
        raise DataNotFoundError(f"archive {archive} does not exist; download it first.")
    for key, value in (("max_bytes", max_bytes), ("max_members", max_members)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise InputError(f"{key}: {value!r} is not a positive integer; give 1 or more.")
    if not max_ratio > 0:
        raise InputError(f"max_ratio: {max_ratio!r} is not a positive number; give e.g. 100.")
    ratio_cap = max(int(max_ratio * archive.stat().st_size), RATIO_FLOOR_BYTES)
    extract = _ratio_bounded(_extractor(archive), archive, ratio_cap, max_ratio)
    dest_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dest_dir.name}.extracting-", dir=dest_dir.parent))
    try:
        try:
            extract(archive, staging, max_bytes, max_members)
        except _RarToolMissing as exc:
            raise InputError(
                f"{exc}; or extract {archive} by hand so that its top-level entries land in "
                f"{dest_dir}."
            ) from exc.__cause__
        return _move_into_place(archive, staging, dest_dir, overwrite)
    finally:
        if staging.exists():
            shutil.rmtree(staging)


def _ratio_bounded(extract: Any, archive: Path, ratio_cap: int, max_ratio: float) -> Any:
    """``extract`` with its byte limit lowered to ``ratio_cap`` where that is smaller."""

    def bounded(archive_: Path, into: Path, max_bytes: int, max_members: int) -> None:
        if ratio_cap >= max_bytes:
            return extract(archive_, into, max_bytes, max_members)
        try:
            return extract(archive_, into, ratio_cap, max_members)
        except ArchiveLimitError as exc:
            if exc.key != "max_bytes":
                raise
            raise ArchiveLimitError(
                f"archive {archive} ({archive.stat().st_size:,} bytes) expands to more than "
                f"{ratio_cap:,} bytes, over {max_ratio:g} times its size (max_ratio limit); "
                "nothing was extracted. Dataset archives of PNG/JPEG/BMP files expand a few times "
                "at most, so this is probably not the dataset (an archive bomb?): delete it. If "
                "it is genuine, pass a larger max_ratio to extract_archive().",
                "max_ratio",
            ) from exc

    return bounded


def _move_into_place(archive: Path, staging: Path, dest_dir: Path, overwrite: bool) -> list[Path]:
    entries = sorted(staging.iterdir())
    clashes = [dest_dir / e.name for e in entries if (dest_dir / e.name).exists()]
    if clashes and not overwrite:
        raise InputError(
            f"extracting {archive}: {clashes[0]} already exists; delete it or pass "
            "overwrite=True to replace it."
        )
    if not dest_dir.exists():
        staging.rename(dest_dir)
        return sorted(dest_dir / e.name for e in entries)
    created = []
    for entry in entries:
        target = dest_dir / entry.name
        if target.exists():
            trash = staging / f".{entry.name}.replaced"
            target.rename(trash)
        entry.rename(target)
        created.append(target)
    return created
