"""Per-sample results on disk: judgments, chunked scores with fingerprints, the manifest.

Scores are written per (metric, task) in chunks (``scores/<metric>/<task>.chunks/00000.npz``), each
stamped with a fingerprint of everything that decides its numbers (metric card version and
parameters, weight hashes, dataset version and root, the sample ids, dtype, and the identity,
size and modification times of the chunk's image files). A rerun reuses chunks whose fingerprint
matches, so a killed run resumes, a changed card version recomputes and an edited image
recomputes the chunk holding it. The finished file of a (metric, task) keeps each chunk's
fingerprint, so its unchanged chunks are reused too. Chunks with failed samples are never reused:
those samples are tried again on every run.

Writers use unique temporary files in the same folder (renamed into place), and a run holds
:class:`RunDirLock` on its directory, so two runs never write one run directory at once.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import tempfile
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np

from .. import records
from ..errors import InputError, RunDirBusyError
from ..records import JudgmentArrays, RunManifest, ScoreArrays, manifest_json
from ..tasks import TASKS

try:  # POSIX only; elsewhere runs are not locked against each other
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None  # type: ignore[assignment]


def score_fields(task: str) -> tuple[str, ...]:
    """The stored score arrays of ``task`` (read from the task registry, which may grow)."""
    return TASKS[task].scores


def layer_field(field: str) -> str:
    """Name of the (N, L) per-layer array stored beside score array ``field`` (``run
    --per-layer``); the file's ``taps`` array names its columns.

    Example:
        >>> layer_field("d0")
        'd0_layers'
    """
    return records.layer_field(field)


#: What reading a torn, truncated or foreign ``.npz`` can raise (it is then recomputed).
UNREADABLE = (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile)

LOCK_NAME = ".iqa-bench.lock"


def fingerprint(payload: dict) -> str:
    """Stable SHA-256 of a JSON-serialisable description."""
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def ids_digest(sample_ids: list[str]) -> str:
    return hashlib.sha256("\n".join(sample_ids).encode()).hexdigest()


def file_stamps(paths: Iterable[str | os.PathLike]) -> list[str]:
    """Per file: its path, device, inode, size, mtime and ctime (ns), or ``missing``.

    The fields git uses to notice a changed file without reading it: an edit changes the
    mtime and ctime (also when the size stays and the mtime is set back), another folder or a
    replaced file changes the device or inode. About 5 us a file (0.6 s for the 128,232 images
    of BAPPS val), where hashing their contents would read them all. Paths are taken as given
    (the dataset's resolved root is part of the fingerprints beside them).

    Example:
        >>> file_stamps(["/no/such/file.png"])
        ['/no/such/file.png\\x00missing']
    """
    out = []
    stat = os.stat
    for path in map(os.fspath, paths):  # one tight loop: this runs for every image on reruns
        try:
            st = stat(path)
        except OSError:
            out.append(f"{path}\0missing")
            continue
        out.append(
            f"{path}\0{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}:{st.st_ctime_ns}"
        )
    return out


def stamps_digest(stamps: Sequence[str]) -> str:
    """SHA-256 of file stamps (see :func:`file_stamps`), in order."""
    return hashlib.sha256("\n".join(stamps).encode()).hexdigest()


def _save_npz(path: Path, **arrays) -> None:
    """Write ``arrays`` to ``path`` through a unique temporary file beside it (atomic rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as handle:
            np.savez(handle, **arrays)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_judgments(run_dir: Path, task: str, samples: list) -> None:
    """Write ``judgments/<task>.npz`` (a :class:`~iqa_bench.records.JudgmentArrays`)."""
    field = TASKS[task].judgment
    record = JudgmentArrays(
        task,
        sample_id=np.array([s.sample_id for s in samples]),
        subset=np.array([s.subset for s in samples]),
        values=np.array([getattr(s, field) for s in samples], dtype=np.float64),
    )
    _save_npz(run_dir / "judgments" / f"{task}.npz", **record.arrays())


def final_path(run_dir: Path, metric: str, task: str) -> Path:
    return run_dir / "scores" / metric / f"{task}.npz"


def chunk_path(run_dir: Path, metric: str, task: str, index: int) -> Path:
    return run_dir / "scores" / metric / f"{task}.chunks" / f"{index:05d}.npz"


def _read(path: Path, keys: Sequence[str]) -> dict | None:
    """``keys`` of an ``.npz`` (``failed`` decoded from JSON), or None if absent or unreadable."""
    if not path.is_file():
        return None
    try:
        data = np.load(path)
        if not isinstance(data, np.lib.npyio.NpzFile):  # a bare .npy array under our name
            return None
        with data:
            out = {k: data[k] for k in keys if k in data.files}
        if "fingerprint" not in out:
            return None
        out["fingerprint"] = str(out["fingerprint"])
        if "failed" in out:
            out["failed"] = [tuple(f) for f in json.loads(str(out["failed"]))]
        return out
    except UNREADABLE:  # JSONDecodeError is a ValueError
        return None  # a torn or foreign file is recomputed, not trusted


def load_chunk(
    run_dir: Path, metric: str, task: str, index: int, fp: str, fields: Sequence[str] = ()
) -> dict | None:
    """The chunk's arrays (``fields``, default the task's scores) and failures if it exists
    with fingerprint ``fp``, else None."""
    keys = ("fingerprint", "failed", *(fields or score_fields(task)))
    out = _read(chunk_path(run_dir, metric, task, index), keys)
    if out is None or out["fingerprint"] != fp or len(out) != len(keys):
        return None
    return out


def save_chunk(
    run_dir: Path, metric: str, task: str, index: int, fp: str, values: dict, failed: list
) -> None:
    _save_npz(
        chunk_path(run_dir, metric, task, index),
        fingerprint=np.array(fp),
        failed=np.array(json.dumps(failed)),
        **{k: np.asarray(v, dtype=np.float64) for k, v in values.items()},
    )


def load_final(
    run_dir: Path, metric: str, task: str, scores: bool = True, fields: Sequence[str] = ()
) -> dict | None:
    """A finished scores file: ``fingerprint``, ``failed`` and ``chunk_fps`` (empty for files
    written before they were stored), with the score arrays if ``scores`` (and the other
    ``fields`` it holds, e.g. per-layer ones); None if absent or unreadable."""
    wanted = [*score_fields(task), *fields] if scores else []
    keys = ["fingerprint", "failed", "chunk_fps", *dict.fromkeys(wanted)]
    out = _read(final_path(run_dir, metric, task), keys)
    if out is None or (scores and not all(k in out for k in score_fields(task))):
        return None
    out.setdefault("failed", [])
    out["chunk_fps"] = [str(c) for c in out.get("chunk_fps", [])]
    return out


def save_final(
    run_dir: Path,
    metric: str,
    task: str,
    fp: str,
    sample_ids: list[str],
    values: dict,
    chunk_fps: list[str],
    failed: list,
    taps: Sequence[str] | None = None,
) -> None:
    """Write the merged per-sample scores (a :class:`~iqa_bench.records.ScoreArrays`), its
    chunks' fingerprints and failures, and with ``taps`` the per-layer arrays of ``values``;
    drop the chunk files."""
    provenance = {
        "fingerprint": np.array(fp),
        "chunk_fps": np.array(chunk_fps),
        "failed": np.array(json.dumps(failed)),
    }
    if taps is not None:
        provenance["taps"] = np.array(taps, dtype=str)
        for k in score_fields(task):
            provenance[layer_field(k)] = np.asarray(values[layer_field(k)], dtype=np.float64)
    record = ScoreArrays(task, np.array(sample_ids), values, provenance)
    _save_npz(final_path(run_dir, metric, task), **record.arrays())
    shutil.rmtree(final_path(run_dir, metric, task).with_suffix(".chunks"), ignore_errors=True)


def write_manifest(run_dir: Path, manifest: RunManifest) -> None:
    """Write ``manifest.json`` through a temporary file beside it (atomic rename)."""
    path = run_dir / "manifest.json"
    fd, tmp = tempfile.mkstemp(dir=run_dir, prefix=".manifest.json.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(manifest_json(manifest))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_manifest(run_dir: Path) -> RunManifest | None:
    """The run directory's manifest (schema 1 or 2), or None when there is none yet.

    Raises:
        InputError: The file breaks the run contract (naming it, the field and the fix).
    """
    path = run_dir / "manifest.json"
    if not path.is_file():
        return None
    try:
        return records.read_manifest(path)
    except records.ContractError as exc:
        problem = exc.problem
    raise InputError(
        f"{problem}, so the finished results in {run_dir} cannot be matched to it: "
        "delete it (finished score files are checked again and reused) or pass another --out."
    )


class RunDirLock:
    """An exclusive ``flock`` on ``<run_dir>/.iqa-bench.lock`` for the length of a run.

    The lock file records who holds it (pid, host, start time) so a second run can say whom
    it waits for. The kernel drops the lock when the holder exits, also when it is killed, so
    a stale file never blocks. Without ``fcntl`` (Windows) nothing is locked.

    Args:
        run_dir: The run directory (must exist).
        started: When the run started (ISO time), written into the lock file.

    Raises:
        RunDirBusyError: Another process holds the lock.

    Example:
        >>> with RunDirLock(Path("runs/demo"), "2026-12-03T10:00:00+00:00"):  # doctest: +SKIP
        ...     pass
    """

    def __init__(self, run_dir: Path, started: str) -> None:
        self.path = Path(run_dir) / LOCK_NAME
        self.started = started
        self.fd: int | None = None

    def __enter__(self) -> RunDirLock:
        if fcntl is None:  # pragma: no cover - Windows
            return self
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:  # BlockingIOError: held elsewhere
            holder = os.pread(fd, 4096, 0).decode("utf-8", "replace")
            os.close(fd)
            raise RunDirBusyError(self._busy_message(holder)) from None
        holder = {"pid": os.getpid(), "host": socket.gethostname(), "started": self.started}
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(holder).encode(), 0)
        self.fd = fd
        return self

    def __exit__(self, *exc) -> None:
        if self.fd is not None:
            os.close(self.fd)  # releases the lock; the file stays (unlinking it would race)
            self.fd = None

    def _busy_message(self, holder: str) -> str:
        try:
            info = json.loads(holder)
            who = f"process {info['pid']} on {info['host']}, started {info['started']}"
        except (ValueError, KeyError, TypeError):
            who = "another process (it has not written its pid yet)"
        return (
            f"--out {self.path.parent} is in use by {who} (lock file {self.path}); wait for "
            "that run to finish, or pass another --out."
        )
