"""Safe archive extraction: tar (.tar, .tar.gz, .tgz), zip and RAR, all-or-nothing.

``extract_archive`` unpacks into a hidden sibling folder and renames the result into place, so a
half-extracted dataset is never visible. Absolute paths, ``..`` components, links and devices are
rejected before anything is written. The format is detected from the file's content, not its name.

RAR archives (TID2013 ships as ``tid2013.rar``) are read with the maintained pure-Python package
``rarfile`` (a dependency of iqa-bench). It reads uncompressed ("stored") members by itself; for
compressed members, which real RAR archives use, it runs one of these system tools, whichever is
found first on ``PATH``: ``unrar`` (RARLAB, non-free), ``unar`` (The Unarchiver; Debian/Ubuntu
``apt-get install unar``, macOS ``brew install unar``), ``7z``/``7zz`` (7-Zip) or ``bsdtar``
(libarchive; Debian/Ubuntu ``apt-get install libarchive-tools``). Without one, extraction fails with
a ``ValueError`` naming them and saying where to extract the archive by hand.

Example:
    >>> extract_archive(Path("cache/twoafc_val.tar.gz"), Path("data/bapps/2afc"))
    [PosixPath('data/bapps/2afc/val')]
"""

from __future__ import annotations

import shutil
import tarfile
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

__all__ = ["RAR_TOOLS", "extract_archive", "is_rar_file"]

#: System tools ``rarfile`` can use for compressed RAR members, in its order of preference.
RAR_TOOLS = ("unrar", "unar", "7z", "bsdtar")
_RAR_MAGIC = b"Rar!\x1a\x07"  # RAR 1.5-4.x add b"\x00", RAR 5 adds b"\x01\x00"


class _RarToolMissing(ValueError):
    """Raised by the RAR extractor when ``rarfile`` finds no tool for compressed members."""


def is_rar_file(path: Path) -> bool:
    """Whether ``path`` starts with a RAR signature (RAR 1.5-4.x or RAR 5).

    Example:
        >>> is_rar_file(Path("cache/tid2013.rar"))
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
        raise ValueError(
            f"archive {archive} holds an absolute path {name!r}; refusing to extract it."
        )
    if ".." in pure.parts:
        raise ValueError(
            f"archive {archive} holds a path with '..' ({name!r}); refusing to extract."
        )


def _extract_tar(archive: Path, into: Path) -> None:
    with tarfile.open(archive, "r:*") as tar:
        members = tar.getmembers()
        for member in members:
            _check_member_name(member.name, archive)
            if not (member.isfile() or member.isdir()):
                # Links and devices could point outside the target; datasets never need them.
                raise ValueError(
                    f"archive {archive} holds {member.name!r}, which is not a regular file or "
                    "folder (link or device); refusing to extract it."
                )
        if hasattr(tarfile, "data_filter"):
            tar.extractall(into, members=members, filter="data")
        else:  # pragma: no cover - Python < 3.11.4 lacks extraction filters; names checked above
            tar.extractall(into, members=members)


def _extract_zip(archive: Path, into: Path) -> None:
    with zipfile.ZipFile(archive) as zf:
        for name in zf.namelist():
            _check_member_name(name, archive)
        zf.extractall(into)


def _extract_rar(archive: Path, into: Path) -> None:
    try:
        import rarfile
    except ImportError:  # pragma: no cover - rarfile is a declared dependency
        raise ValueError(
            f"archive {archive} is a RAR file, which needs the Python package rarfile: "
            "`pip install rarfile`."
        ) from None
    try:
        with rarfile.RarFile(archive) as rf:
            for info in rf.infolist():
                _check_member_name(info.filename, archive)
                if info.is_symlink() or not (info.is_file() or info.is_dir()):
                    raise ValueError(
                        f"archive {archive} holds {info.filename!r}, which is not a regular file "
                        "or folder (link); refusing to extract it."
                    )
                if info.needs_password():
                    raise ValueError(
                        f"archive {archive} member {info.filename!r} is password-protected; "
                        "extract it by hand with the password."
                    )
            rf.extractall(into)
    except rarfile.RarCannotExec as exc:
        raise _RarToolMissing(
            f"archive {archive} has compressed RAR members, and rarfile found no tool to "
            f"decompress them ({exc}). Install one of {', '.join(RAR_TOOLS)} (e.g. "
            "`apt-get install unar`, `apt-get install libarchive-tools` for bsdtar, or "
            "`brew install unar`)"
        ) from exc
    except rarfile.Error as exc:
        raise ValueError(
            f"archive {archive} is not a readable RAR file ({type(exc).__name__}: {exc}); it may "
            "be corrupt: delete it and download it again."
        ) from exc


def extract_archive(archive: Path, dest_dir: Path, overwrite: bool = False) -> list[Path]:
    """Safely extract a ``.tar.gz``/``.tgz``/``.tar``/``.zip``/``.rar`` archive into ``dest_dir``.

    Members are unpacked into a hidden temporary folder beside ``dest_dir`` (same file system), then
    each top-level entry is renamed into ``dest_dir`` in one step, so readers never see a half
    extracted folder. Absolute paths, ``..`` components, links and devices are rejected before
    anything is written.

    Args:
        archive: The archive file; its format is detected from its content.
        dest_dir: Folder receiving the archive's top-level entries; created if missing.
        overwrite: Replace top-level entries that already exist in ``dest_dir``.

    Returns:
        The top-level paths created in ``dest_dir``, sorted.

    Raises:
        FileNotFoundError: If ``archive`` does not exist.
        ValueError: On an unsupported or unsafe archive, when an entry exists and ``overwrite``
            is false, or for a compressed RAR archive when no RAR tool is installed (the message
            names the tools and where to extract the archive by hand).

    Example:
        >>> extract_archive(Path("cache/twoafc_val.tar.gz"), Path("data/bapps/2afc"))
        [PosixPath('data/bapps/2afc/val')]
    """
    archive, dest_dir = Path(archive), Path(dest_dir)
    if not archive.is_file():
        raise FileNotFoundError(f"archive {archive} does not exist; download it first.")
    if zipfile.is_zipfile(archive):
        extract = _extract_zip
    elif is_rar_file(archive):
        extract = _extract_rar
    elif tarfile.is_tarfile(archive):
        extract = _extract_tar
    else:
        raise ValueError(
            f"archive {archive} is neither a tar (.tar, .tar.gz, .tgz) nor a zip file nor a RAR "
            "archive; it may be corrupt: delete it and download it again."
        )
    dest_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dest_dir.name}.extracting-", dir=dest_dir.parent))
    try:
        try:
            extract(archive, staging)
        except _RarToolMissing as exc:
            raise ValueError(
                f"{exc}; or extract {archive} by hand so that its top-level entries land in "
                f"{dest_dir}."
            ) from exc.__cause__
        entries = sorted(staging.iterdir())
        clashes = [dest_dir / e.name for e in entries if (dest_dir / e.name).exists()]
        if clashes and not overwrite:
            raise ValueError(
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
    finally:
        if staging.exists():
            shutil.rmtree(staging)
