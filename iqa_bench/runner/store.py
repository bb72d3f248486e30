"""Per-sample results on disk: judgments, chunked scores with fingerprints, the manifest.

Scores are written per (metric, task) in chunks (``scores/<metric>/<task>.chunks/00000.npz``), each
stamped with a fingerprint of everything that decides its numbers (metric card version and
parameters, weight hashes, dataset version, the chunk's sample ids, dtype). A rerun reuses chunks
whose fingerprint matches, so a killed run resumes and a changed card version recomputes.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import numpy as np

from ..tasks import TASKS

SCORE_FIELDS = {name: spec.scores for name, spec in TASKS.items()}
JUDGMENT_FIELD = {name: spec.judgment for name, spec in TASKS.items()}


def fingerprint(payload: dict) -> str:
    """Stable SHA-256 of a JSON-serialisable description."""
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


def ids_digest(sample_ids: list[str]) -> str:
    return hashlib.sha256("\n".join(sample_ids).encode()).hexdigest()


def _save_npz(path: Path, **arrays) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, path)


def write_judgments(run_dir: Path, task: str, samples: list) -> None:
    field = JUDGMENT_FIELD[task]
    _save_npz(
        run_dir / "judgments" / f"{task}.npz",
        sample_id=np.array([s.sample_id for s in samples]),
        subset=np.array([s.subset for s in samples]),
        **{field: np.array([getattr(s, field) for s in samples], dtype=np.float64)},
    )


def final_path(run_dir: Path, metric: str, task: str) -> Path:
    return run_dir / "scores" / metric / f"{task}.npz"


def chunk_path(run_dir: Path, metric: str, task: str, index: int) -> Path:
    return run_dir / "scores" / metric / f"{task}.chunks" / f"{index:05d}.npz"


def _matches(path: Path, fp: str) -> bool:
    if not path.is_file():
        return False
    try:
        with np.load(path) as data:
            return str(data["fingerprint"]) == fp
    except (OSError, ValueError, KeyError):
        return False  # a torn or foreign file is recomputed, not trusted


def has_final(run_dir: Path, metric: str, task: str, fp: str) -> bool:
    return _matches(final_path(run_dir, metric, task), fp)


def load_chunk(run_dir: Path, metric: str, task: str, index: int, fp: str) -> dict | None:
    """The chunk's arrays and failures if it exists with fingerprint ``fp``, else None."""
    path = chunk_path(run_dir, metric, task, index)
    if not _matches(path, fp):
        return None
    with np.load(path) as data:
        out = {k: data[k] for k in SCORE_FIELDS[task]}
        out["failed"] = json.loads(str(data["failed"]))
    return out


def save_chunk(
    run_dir: Path, metric: str, task: str, index: int, fp: str, values: dict, failed: list
) -> None:
    _save_npz(
        chunk_path(run_dir, metric, task, index),
        fingerprint=np.array(fp),
        failed=np.array(json.dumps(failed)),
        **{k: np.asarray(values[k], dtype=np.float64) for k in SCORE_FIELDS[task]},
    )


def save_final(
    run_dir: Path, metric: str, task: str, fp: str, sample_ids: list[str], values: dict
) -> None:
    """Write the merged per-sample scores and drop the chunk files."""
    _save_npz(
        final_path(run_dir, metric, task),
        fingerprint=np.array(fp),
        sample_id=np.array(sample_ids),
        **{k: np.asarray(values[k], dtype=np.float64) for k in SCORE_FIELDS[task]},
    )
    shutil.rmtree(final_path(run_dir, metric, task).with_suffix(".chunks"), ignore_errors=True)


def load_final_failures(run_dir: Path, metric: str, task: str) -> list[int]:
    """Positions whose score is NaN in a finished scores file (samples that failed)."""
    with np.load(final_path(run_dir, metric, task)) as data:
        first = data[SCORE_FIELDS[task][0]]
    return [int(i) for i in np.flatnonzero(np.isnan(first))]


def write_manifest(run_dir: Path, manifest: dict) -> None:
    path = run_dir / "manifest.json"
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(manifest, indent=2, sort_keys=False, default=str))
    os.replace(tmp, path)


def read_manifest(run_dir: Path) -> dict | None:
    path = run_dir / "manifest.json"
    return json.loads(path.read_text()) if path.is_file() else None
