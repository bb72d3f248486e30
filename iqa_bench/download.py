"""Verified downloads and safe archive extraction (datasets now, model weights later).

``download_file`` streams over HTTP(S) into ``<dest>.part``, resumes an interrupted transfer with a
``Range`` request, checks size and SHA-256, then renames atomically. When no checksum is published
the first verified download records the observed hash in ``hashes.json`` beside the file, and later
downloads are checked against it (trust on first use). For dataset archives (``fetch_archives``) the
hash is recorded only once the archive has extracted and provided what its card promises, so an
HTML error page or a transfer cut short never becomes the trusted hash. ``extract_archive`` (from
:mod:`iqa_bench.archives`, re-exported here) unpacks tar/zip/RAR archives into a hidden sibling
folder and renames the result into place, rejecting absolute paths, ``..``, links and archives over
the size and member limits, so a half-extracted dataset is never visible.

Example:
    >>> digest = download_file("https://x.org/jnd.tar.gz", Path("jnd.tar.gz"))  # doctest: +SKIP
    >>> extract_archive(Path("jnd.tar.gz"), Path("data/bapps"))  # doctest: +SKIP
    [PosixPath('data/bapps/jnd')]
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import shutil
import socket
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from tqdm import tqdm

from .archives import DEFAULT_MAX_BYTES, DEFAULT_MAX_MEMBERS, extract_archive
from .config import from_mapping
from .errors import DownloadError, InputError
from .registry import suggest

__all__ = [
    "DEFAULT_STALL_TIMEOUT",
    "LEDGER_NAME",
    "ArchiveSpec",
    "DownloadError",
    "download_file",
    "extract_archive",
    "fetch_archives",
    "file_sha256",
    "parse_archive_specs",
    "recorded_sha256",
]

LEDGER_NAME = "hashes.json"
#: Seconds without a byte from the server before a download attempt gives up (then it is retried,
#: resuming where it stopped, up to ``retries`` times).
DEFAULT_STALL_TIMEOUT = 60.0
_CHUNK = 1 << 20
_USER_AGENT = "iqa-bench"


def file_sha256(path: Path) -> str:
    """SHA-256 hex digest of a file, read in 1 MiB chunks.

    Example:
        >>> file_sha256(Path("cache/jnd.tar.gz"))[:8]  # doctest: +SKIP
        '3f2a9c1e'
    """
    hasher = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            hasher.update(chunk)
    return hasher.hexdigest()


def _read_ledger(folder: Path) -> dict[str, Any]:
    ledger = folder / LEDGER_NAME
    if not ledger.is_file():
        return {}
    try:
        data = json.loads(ledger.read_text())
    except json.JSONDecodeError as exc:
        raise InputError(f"hash ledger {ledger} is not valid JSON ({exc}); delete it.") from exc
    if isinstance(data, dict):
        return data
    raise InputError(f"hash ledger {ledger} must hold a JSON object, not {data!r}; delete it.")


def recorded_sha256(dest: Path) -> str | None:
    """The SHA-256 recorded for ``dest`` by an earlier verified download, if any.

    Example:
        >>> recorded_sha256(Path("cache/jnd.tar.gz")) is None  # doctest: +SKIP
        True
    """
    entry = _read_ledger(Path(dest).parent).get(Path(dest).name)
    return entry.get("sha256") if isinstance(entry, dict) else None


def _record_sha256(dest: Path, url: str, digest: str, size: int) -> None:
    ledger = _read_ledger(dest.parent)
    ledger[dest.name] = {"url": url, "sha256": digest, "size": size}
    tmp = dest.parent / f".{LEDGER_NAME}.{os.getpid()}.tmp"
    tmp.write_text(json.dumps(ledger, indent=2, sort_keys=True) + "\n")
    os.replace(tmp, dest.parent / LEDGER_NAME)


def _by_hand(url: str, dest: Path) -> str:
    return f"Download {url} yourself (browser, curl, wget) and place it at {dest}, then retry."


def _expected_hash(dest: Path, sha256: str | None) -> tuple[str | None, str]:
    if sha256:
        return sha256.lower(), "published"
    recorded = recorded_sha256(dest)
    ledger = dest.parent / LEDGER_NAME
    return recorded, f"recorded at first download in {ledger}"


def _verify(
    url: str,
    path: Path,
    digest: str,
    want_hash: str | None,
    want_size: int | None,
    origin: str,
    delete: bool,
) -> None:
    size = path.stat().st_size
    fate = "the file was deleted" if delete else f"delete {path} or replace it"
    if want_size is not None and size != want_size:
        if delete:
            path.unlink()
        raise InputError(
            f"size mismatch for {url}: expected {want_size} bytes, got {size}; {fate}. Retry, or "
            "fix the expected size if the upstream file changed."
        )
    if want_hash is not None and digest != want_hash:
        if delete:
            path.unlink()
        raise InputError(
            f"SHA-256 mismatch for {url}: expected {want_hash} ({origin}), got {digest}; {fate}. "
            "Retry; if the upstream file legitimately changed, remove its entry from "
            f"{path.parent / LEDGER_NAME} or update the published checksum."
        )


def _hash_part(part: Path) -> Any:
    hasher = hashlib.sha256()
    if part.exists():
        with part.open("rb") as fh:
            for chunk in iter(lambda: fh.read(_CHUNK), b""):
                hasher.update(chunk)
    return hasher


def _open(url: str, start: int, timeout: float) -> http.client.HTTPResponse:
    request = urllib.request.Request(url, headers={"User-Agent": _USER_AGENT})
    if start:
        request.add_header("Range", f"bytes={start}-")
    return urllib.request.urlopen(request, timeout=timeout)


def _fetch_into(url: str, part: Path, timeout: float, progress: bool) -> Any:
    """Append the rest of ``url`` to ``part`` and return the SHA-256 hasher of the whole part.

    Network exceptions propagate so the caller can retry; ``part`` keeps what arrived.
    """
    have = part.stat().st_size if part.exists() else 0
    try:
        response = _open(url, have, timeout)
    except urllib.error.HTTPError as exc:
        if exc.code != 416 or not have:
            raise
        # "Range not satisfiable": our partial is no prefix of the file, so start over.
        part.unlink()
        have = 0
        response = _open(url, have, timeout)
    with response:
        content_range = response.headers.get("Content-Range", "")
        if have and (response.status != 206 or not content_range.startswith(f"bytes {have}-")):
            # The server ignored the Range header and sends the whole file: restart cleanly.
            part.unlink()
            have = 0
        hasher = _hash_part(part)
        length = response.headers.get("Content-Length")
        total = have + int(length) if length is not None else None
        received = have
        with (
            part.open("ab" if have else "wb") as fh,
            tqdm(
                total=total,
                initial=have,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                desc=part.name.removesuffix(".part"),
                file=sys.stderr,
                disable=not progress,
                leave=False,
            ) as bar,
        ):
            while chunk := response.read(_CHUNK):
                fh.write(chunk)
                hasher.update(chunk)
                received += len(chunk)
                bar.update(len(chunk))
        if total is not None and received < total:
            # http.client returns short reads silently when the peer closes early.
            raise http.client.IncompleteRead(b"", total - received)
    return hasher


def download_file(
    url: str,
    dest: Path,
    sha256: str | None = None,
    size: int | None = None,
    progress: bool = True,
    *,
    retries: int = 3,
    retry_delay: float = 1.0,
    timeout: float = DEFAULT_STALL_TIMEOUT,
    record_hash: bool = True,
) -> str:
    """Download ``url`` to ``dest`` with resume, size and SHA-256 checks; return the SHA-256.

    If ``dest`` already exists it is verified instead of downloaded again. A ``<dest>.part`` left by
    an interrupted run is resumed with an HTTP ``Range`` request (a server answering 200 instead of
    206 makes it restart from zero). Without ``sha256`` the hash recorded in ``hashes.json`` by the
    first verified download is enforced; the first download records it unless ``record_hash`` is
    false (then the caller records it once it has checked the content, see :func:`fetch_archives`).

    Args:
        url: ``http://`` or ``https://`` URL.
        dest: Final file path; its folder is created.
        sha256: Published SHA-256 hex digest, or ``None``/empty when none is published.
        size: Expected size in bytes, or ``None`` when unknown.
        progress: Show a tqdm progress bar on stderr.
        retries: Extra attempts after an interruption (each resumes where the last one stopped).
        retry_delay: Seconds to wait before the first retry, doubled each time.
        timeout: Stall timeout: seconds to wait for the connection and for each read before the
            attempt fails (and is retried).
        record_hash: Record the observed hash in ``hashes.json`` when none is published or
            recorded yet.

    Returns:
        The SHA-256 hex digest of the verified file.

    Raises:
        InputError: On a bad URL scheme, or a size/hash mismatch (a downloaded
            bad file is deleted; a file already at ``dest`` is left for you to inspect).
        DownloadError: When the server cannot be reached, answers an HTTP error, or keeps
            dropping the connection; the message says where to put the file by hand.

    Example:
        >>> download_file("https://x.org/w.pth", Path("w.pth"), sha256="ab12...")  # doctest: +SKIP
        'ab12...'
    """
    dest = Path(dest)
    if not url.startswith(("http://", "https://")):
        raise InputError(f"url {url!r} must start with http:// or https://.")
    want_hash, origin = _expected_hash(dest, sha256)
    if dest.exists():
        digest = file_sha256(dest)
        _verify(url, dest, digest, want_hash, size, origin, delete=False)
        if want_hash is None and record_hash:
            _record_sha256(dest, url, digest, dest.stat().st_size)
        return digest

    dest.parent.mkdir(parents=True, exist_ok=True)
    part = dest.with_name(dest.name + ".part")
    if size is not None and part.exists() and part.stat().st_size > size:
        part.unlink()
    for attempt in range(retries + 1):
        try:
            if size is not None and part.exists() and part.stat().st_size == size:
                hasher = _hash_part(part)  # complete already; asking for more would get a 416
            else:
                hasher = _fetch_into(url, part, timeout, progress)
            break
        except urllib.error.HTTPError as exc:
            if exc.code < 500 or attempt == retries:
                raise DownloadError(
                    f"download of {url} failed: HTTP {exc.code} {exc.reason}. {_by_hand(url, dest)}"
                ) from exc
        except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
            # An unknown host will not resolve a second later: no point waiting to retry.
            unresolvable = isinstance(getattr(exc, "reason", None), socket.gaierror)
            if attempt == retries or unresolvable:
                reason = getattr(exc, "reason", None) or exc
                raise DownloadError(
                    f"download of {url} failed after {attempt + 1} attempt(s) "
                    f"({type(exc).__name__}: {reason}); any partial file {part} is kept and "
                    f"resumed next time. {_by_hand(url, dest)}"
                ) from exc
        time.sleep(retry_delay * 2**attempt)

    digest = hasher.hexdigest()
    _verify(url, part, digest, want_hash, size, origin, delete=True)
    os.replace(part, dest)
    if want_hash is None and record_hash:
        _record_sha256(dest, url, digest, dest.stat().st_size)
    return digest


@dataclass(frozen=True)
class ArchiveSpec:
    """One downloadable archive of a dataset card's ``download`` list.

    Attributes:
        part: Short name used to pick archives (``iqa-bench download bapps --part 2afc-val``).
        url: ``http(s)`` URL of the archive.
        sha256: Published SHA-256, or empty when none is published (then the first download's
            hash is recorded and enforced afterwards).
        size: Size in bytes, or 0 when unknown.
        extract_to: Folder, relative to the dataset root, that receives the archive's content.
        provides: Path, relative to the dataset root, that exists once the archive is extracted;
            an existing one means the part is installed and is not fetched again.
        default: Fetched when no parts are named.
        description: One line for listings (what the part holds and roughly how big it is).
        max_bytes: Most uncompressed bytes the archive may expand to, or 0 for
            :data:`~iqa_bench.archives.DEFAULT_MAX_BYTES`.
        max_members: Most entries the archive may hold, or 0 for
            :data:`~iqa_bench.archives.DEFAULT_MAX_MEMBERS`.
    """

    part: str
    url: str
    provides: str
    sha256: str = ""
    size: int = 0
    extract_to: str = ""
    default: bool = True
    description: str = ""
    max_bytes: int = 0
    max_members: int = 0

    @property
    def filename(self) -> str:
        """The archive's file name, taken from the URL."""
        return self.url.rstrip("/").rsplit("/", 1)[-1]


def parse_archive_specs(entries: Iterable[Mapping[str, Any]], where: str) -> list[ArchiveSpec]:
    """Validate a card's ``download`` entries into :class:`ArchiveSpec` records.

    Args:
        entries: Mappings as written in the YAML card.
        where: The card's name or file, for error messages.

    Raises:
        InputError: On unknown or missing keys, wrong types, duplicate parts, a negative size or
            limit, or a relative path that is absolute or contains ``..``.

    Example:
        >>> parse_archive_specs([{"part": "jnd", "url": "https://x/jnd.tar.gz", "provides": "jnd"}],
        ...                     "bapps")[0].filename
        'jnd.tar.gz'
    """
    specs = [from_mapping(ArchiveSpec, e, f"{where}: download[{i}]") for i, e in enumerate(entries)]
    seen: set[str] = set()
    for spec in specs:
        if spec.part in seen:
            raise InputError(f"{where}: download part {spec.part!r} appears twice; rename one.")
        seen.add(spec.part)
        for key in ("size", "max_bytes", "max_members"):
            if getattr(spec, key) < 0:
                raise InputError(
                    f"{where}: download part {spec.part!r}: {key} {getattr(spec, key)} is "
                    "negative; give a positive number, or 0 (or leave it out) for the default."
                )
        for key in ("extract_to", "provides"):
            value = PurePosixPath(getattr(spec, key))
            if value.is_absolute() or ".." in value.parts:
                raise InputError(
                    f"{where}: download part {spec.part!r}: {key} {str(value)!r} must be a path "
                    "inside the dataset root (relative, without '..')."
                )
    return specs


def _check_stall_timeout(stall_timeout: float) -> None:
    if (
        isinstance(stall_timeout, bool)
        or not isinstance(stall_timeout, (int, float))
        or not 0 < stall_timeout < float("inf")
    ):
        raise InputError(
            f"stall_timeout: {stall_timeout!r} is not a positive number of seconds; give e.g. "
            f"{DEFAULT_STALL_TIMEOUT:g} (the default)."
        )


def _install(
    spec: ArchiveSpec,
    root: Path,
    progress: bool,
    force: bool,
    keep_archives: bool,
    stall_timeout: float,
    limits: tuple[int, int],
) -> None:
    """Download, verify and extract one archive; record its hash only once it proved good."""
    archive = root / ".downloads" / spec.filename
    digest = download_file(
        spec.url,
        archive,
        sha256=spec.sha256 or None,
        size=spec.size or None,
        progress=progress,
        timeout=stall_timeout,
        record_hash=False,
    )
    max_bytes, max_members = limits
    created = extract_archive(
        archive,
        root / spec.extract_to,
        overwrite=force,
        max_bytes=max_bytes,
        max_members=max_members,
    )
    if not (root / spec.provides).exists():
        # Leave nothing that would pass for an installed part, nor block the next extraction.
        for path in created:
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink()
        raise InputError(
            f"archive {archive} from {spec.url} did not create {root / spec.provides}; the "
            f"card's 'provides' or 'extract_to' for part {spec.part!r} is wrong, or the archive "
            "changed upstream. What it extracted was removed."
        )
    if not spec.sha256:
        # Only now is the content known to be the dataset: trust this hash from here on.
        _record_sha256(archive, spec.url, digest, archive.stat().st_size)
    if not keep_archives:
        archive.unlink()


def fetch_archives(
    specs: list[ArchiveSpec],
    root: Path,
    parts: Iterable[str] | None = None,
    progress: bool = True,
    force: bool = False,
    keep_archives: bool = False,
    *,
    stall_timeout: float = DEFAULT_STALL_TIMEOUT,
    max_bytes: int | None = None,
    max_members: int | None = None,
) -> list[ArchiveSpec]:
    """Download, verify and extract archives into ``root``, skipping parts already installed.

    Archives are stored in ``<root>/.downloads/`` (with the ``hashes.json`` ledger, kept for later
    verification) and deleted after a successful extraction unless ``keep_archives``. Without a
    published SHA-256, an archive's hash is recorded only after it extracted and created its
    ``provides`` path; a failed extraction records nothing and leaves nothing in place.

    Args:
        specs: Archives from :func:`parse_archive_specs`.
        root: The dataset root folder.
        parts: Part names to fetch; ``None`` fetches the parts marked ``default``.
        progress: Show download progress bars on stderr.
        force: Download and extract again even if ``provides`` already exists.
        keep_archives: Keep the archive files after extraction.
        stall_timeout: Seconds without data from the server before an attempt fails (each
            archive gets up to 4 attempts, each resuming where the last stopped).
        max_bytes: Uncompressed-size limit for every archive, overriding the cards' ``max_bytes``
            and the default (:data:`~iqa_bench.archives.DEFAULT_MAX_BYTES`).
        max_members: Entry-count limit, overriding likewise.

    Returns:
        The specs that were fetched (installed parts that were skipped are not listed).

    Raises:
        InputError: On an unknown part name, a verification or extraction failure
            (:class:`~iqa_bench.archives.ArchiveError` for a damaged or oversized archive), or a
            non-positive ``stall_timeout``.
        DownloadError: On network failures.

    Example:
        >>> fetch_archives(specs, Path("data/bapps"), parts=["jnd"])  # doctest: +SKIP
        [ArchiveSpec(part='jnd', ...)]
    """
    _check_stall_timeout(stall_timeout)
    by_part = {spec.part: spec for spec in specs}
    wanted = [s.part for s in specs if s.default] if parts is None else list(parts)
    for part in wanted:
        if part not in by_part:
            raise InputError(
                f"unknown download part {part!r}.{suggest(part, list(by_part))} "
                f"Available: {', '.join(by_part) or '(none)'}."
            )
    fetched = []
    for part in dict.fromkeys(wanted):
        spec = by_part[part]
        if (root / spec.provides).exists() and not force:
            continue
        limits = (
            max_bytes or spec.max_bytes or DEFAULT_MAX_BYTES,
            max_members or spec.max_members or DEFAULT_MAX_MEMBERS,
        )
        _install(spec, root, progress, force, keep_archives, stall_timeout, limits)
        fetched.append(spec)
    return fetched
