"""The run contract: what a run directory holds, as typed frozen records (no torch).

A run directory holds ``manifest.json`` (a :class:`RunManifest`), ``judgments/<task>.npz`` (a
:class:`JudgmentArrays`) and ``scores/<metric>/<task>.npz`` (a :class:`ScoreArrays`); the array
names per task come from :data:`iqa_bench.tasks.TASKS`. The runner writes through these records,
:mod:`iqa_bench.results` reads through them, and the test fixtures build them, so writer, reader
and the example in ``docs/ARCHITECTURE.md`` (checked by a test) cannot drift apart.

Reading is strict: a missing or unknown field, or a value of the wrong type, is a
:class:`ContractError` naming the file, the field and how to re-create the run. Manifests of
schema 1 (written before these records) are read by filling in the fields added since, as
documented in :func:`upgrade_schema1`.

Example:
    >>> record = MetricRecord(name="l2", status="ok", group="classical", higher_is_better=False)
    >>> manifest = RunManifest(run_id="r1", created="2026-01-01T00:00:00+00:00",
    ...                        dataset=DatasetRecord("synthetic"), metrics={"l2": record})
    >>> text = manifest_json(manifest)
    >>> parse_manifest(json.loads(text), Path("manifest.json")) == manifest
    True
    >>> parse_manifest({**json.loads(text), "colour": 1}, Path("run/manifest.json"))
    Traceback (most recent call last):
    ...
    iqa_bench.records.ContractError: run/manifest.json: unknown field 'colour'; re-create ...
"""

from __future__ import annotations

import dataclasses
import json
import types
import typing
import zipfile
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Union

import numpy as np

from .errors import DataNotFoundError, InputError
from .tasks import TASKS

__all__ = [
    "SCHEMA_VERSION",
    "BadSampleRecord",
    "ContractError",
    "DatasetRecord",
    "EnvironmentRecord",
    "FailedSampleRecord",
    "JudgmentArrays",
    "LayerArrays",
    "MetricRecord",
    "PackageRecord",
    "RunManifest",
    "ScoreArrays",
    "TaskRecord",
    "TimingsRecord",
    "manifest_json",
    "parse_manifest",
    "read_judgments",
    "read_layer_scores",
    "read_manifest",
    "read_scores",
    "upgrade_schema1",
]

#: The manifest schema this version writes; it also reads schema 1 (see :func:`upgrade_schema1`).
SCHEMA_VERSION = 2

#: The fix every contract error ends with.
RECREATE = (
    "re-create the run with `iqa-bench run <dataset> --out <new folder>` (or with --out this "
    "folder and --recompute)"
)


class ContractError(InputError):
    """A run directory's file breaks the run contract; the message names file, field and fix.

    Attributes:
        problem: The message without the fix (for callers that know a better one).
    """

    def __init__(self, problem: str, fix: str = RECREATE) -> None:
        super().__init__(f"{problem}; {fix}.")
        self.problem = problem


def _key(**kw: Any) -> Any:
    """A field stored as its record's key in the enclosing mapping, not inside the entry."""
    return field(metadata={"key": True}, **kw)


def _added_later() -> Any:
    """A None-default field added within a schema: always written, read as None when absent."""
    return field(default=None, metadata={"optional": True})


@dataclass(frozen=True)
class PackageRecord:
    """The iqa-bench that wrote the run (``git_*`` None outside a git checkout)."""

    name: str = "iqa-bench"
    version: str | None = None
    git_commit: str | None = None
    git_dirty: bool | None = None


@dataclass(frozen=True)
class EnvironmentRecord:
    """Versions and hardware; None where not recorded (no GPU, or a schema-1 run)."""

    python: str | None = None
    torch: str | None = None
    numpy: str | None = None
    platform: str | None = None
    cpu_threads: int | None = None
    cuda: str | None = None
    gpu: str | None = None
    cpu_allocator: str | None = None


@dataclass(frozen=True)
class DatasetRecord:
    """The dataset card and folder that were scored.

    Attributes:
        name: Dataset name, e.g. ``"bapps"``.
        card_version: Version of the dataset card.
        adapter: The adapter that read the folder.
        synthetic: True when the judgments were constructed, not collected from people.
        notice: The dataset's own warning, shown first in every report ("": none; a synthetic
            set without one gets the generic synthetic banner).
        human_ceiling: False when the judgments are set by a rule, so reports omit the ceiling.
        root: The data folder.
        split: Split that was scored, e.g. ``"val"``.
        load_size: Side images were resized to when loaded (NIGHTS), else None.
        mos_higher_is_better: True for MOS, False for DMOS, None without a MOS task.
        description: Card description.
        source: Card source / citation.
    """

    name: str
    card_version: int | None = None
    adapter: str = ""
    synthetic: bool = False
    notice: str = ""
    human_ceiling: bool = True
    root: str = ""
    split: str | None = None
    load_size: int | None = None
    mos_higher_is_better: bool | None = None
    description: str = ""
    source: str = ""


@dataclass(frozen=True, kw_only=True)
class MetricRecord:
    """One metric of the run, stored under its name in the manifest's ``metrics``.

    Attributes:
        name: Metric (card) name; the key in ``metrics``.
        status: ``"ok"`` (scored) or ``"skipped"`` (see ``reason``).
        group: Report group: classical, deep-baseline, lpips or custom.
        higher_is_better: True for similarities (SSIM, PSNR): their scores are negated on load.
        card_version: Version of the metric card.
        type: Metric type of the card.
        description: Card description.
        params: Card parameters.
        weight_hashes: SHA-256 of each weight file used (``{}`` when skipped).
        timings: Seconds of scoring per task.
        compiled: ``torch.compile`` mode it ran under, or None (eager).
        reason: Why it was skipped, else None.
        library: The library that computed a bridged metric (``"piq"``), None for the suite's own.
        library_version: That library's installed version, None if not installed or native.
            Both may be absent from manifests written before bridges existed (read as None).
    """

    name: str = _key()
    status: Literal["ok", "skipped"]
    reason: str | None = None
    card_version: int | None = None
    type: str = ""
    group: str
    higher_is_better: bool
    description: str = ""
    params: dict[str, Any] = field(default_factory=dict)
    weight_hashes: dict[str, str] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    compiled: str | None = None
    library: str | None = _added_later()
    library_version: str | None = _added_later()


@dataclass(frozen=True)
class TaskRecord:
    """A task of the run: its sample count and samples per subset (in judgments order)."""

    n: int
    subsets: dict[str, int]


@dataclass(frozen=True)
class FailedSampleRecord:
    """A sample that failed while scoring: NaN in the scores of ``metrics`` (empty: unknown)."""

    task: str
    sample_id: str
    path: str
    reason: str
    metrics: tuple[str, ...] = ()


@dataclass(frozen=True)
class BadSampleRecord:
    """A sample dropped when the dataset was opened: in no judgments or scores file.

    ``task`` and ``subset`` are ``""`` when unknown (a stray file, or a schema-1 run).
    """

    sample_id: str
    path: str
    reason: str
    task: str = ""
    subset: str = ""


@dataclass(frozen=True)
class TimingsRecord:
    """Seconds: ``decode_s`` waiting for decoded batches, ``decode_cpu_s`` CPU time of decoding
    threads and the decoded-image cache, ``cpu_s`` the process's CPU time."""

    total_s: float | None = None
    cpu_s: float | None = None
    decode_s: float | None = None
    decode_cpu_s: float | None = None
    decode_cache_chunks_reused: int | None = None


@dataclass(frozen=True, kw_only=True)
class RunManifest:
    """``manifest.json``: provenance of a run and the list of what it holds.

    Run settings (``device`` to ``world_size``) are None only in runs read from schema 1.
    """

    schema: int = SCHEMA_VERSION
    run_id: str
    created: str
    package: PackageRecord = PackageRecord()
    environment: EnvironmentRecord = EnvironmentRecord()
    dataset: DatasetRecord
    device: str | None = None
    dtype: str | None = None
    batch_size: int | None = None
    max_batch_pixels: int | None = None
    workers: int | None = None
    resize: int | None = None
    compile: str | None = None
    world_size: int | None = None
    tasks: dict[str, TaskRecord] = field(default_factory=dict)
    metrics: dict[str, MetricRecord]
    failed_samples: tuple[FailedSampleRecord, ...] = ()
    bad_samples: tuple[BadSampleRecord, ...] = ()
    timings: TimingsRecord = TimingsRecord()


#: Run settings that schema-1 runs may lack (read as None).
_SETTINGS = ("device", "dtype", "batch_size", "max_batch_pixels", "workers", "resize", "compile")


# -- JSON <-> records -------------------------------------------------------------------------


def to_json(record: Any) -> Any:
    """A record (or a mapping/tuple of them) as JSON-ready dicts, lists and scalars."""
    if dataclasses.is_dataclass(record):
        return {
            f.name: to_json(getattr(record, f.name))
            for f in dataclasses.fields(record)
            if not f.metadata.get("key")
        }
    if isinstance(record, Mapping):
        return {str(k): to_json(v) for k, v in record.items()}
    if isinstance(record, (tuple, list)):
        return [to_json(v) for v in record]
    return record


def manifest_json(manifest: RunManifest) -> str:
    """The text of ``manifest.json`` for ``manifest``."""
    return json.dumps(to_json(manifest), indent=2)


def _fail(path: Path, where: str, problem: str) -> ContractError:
    return ContractError(f"{path}: {problem} {where!r}")


def _parse(hint: Any, value: Any, where: str, path: Path) -> Any:
    """``value`` checked against the type ``hint`` (records, dict/tuple of them, scalars)."""
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if hint is Any:
        return value
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]  # one type or None, by design
        return _parse(inner, value, where, path)
    if origin is Literal:
        if value not in args:
            raise _fail(path, where, f"{value!r} is not one of {list(args)} in")
        return value
    if dataclasses.is_dataclass(hint):
        return _record(hint, value, where, path)
    if origin is dict:
        if not isinstance(value, dict):
            raise _fail(path, where, f"an object is needed, not {type(value).__name__}, in")
        key_of = _key_field(args[1])
        return {
            k: _parse(args[1], v, f"{where}.{k}", path)
            if key_of is None
            else _record(args[1], v, f"{where}.{k}", path, {key_of: k})
            for k, v in value.items()
        }
    if origin is tuple:
        if not isinstance(value, list):
            raise _fail(path, where, f"a list is needed, not {type(value).__name__}, in")
        return tuple(_parse(args[0], v, f"{where}[{i}]", path) for i, v in enumerate(value))
    ok = isinstance(value, hint) and not (hint in (int, float) and isinstance(value, bool))
    if hint is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if not ok:
        raise _fail(path, where, f"{type(value).__name__} {value!r} is not a {hint.__name__} in")
    return value


def _key_field(cls: Any) -> str | None:
    if not dataclasses.is_dataclass(cls):
        return None
    return next((f.name for f in dataclasses.fields(cls) if f.metadata.get("key")), None)


def _record(cls: Any, value: Any, where: str, path: Path, keys: dict | None = None) -> Any:
    """A ``cls`` record from a JSON object: every stored field present, no other field."""
    if not isinstance(value, dict):
        raise _fail(path, where or "manifest", f"an object is needed, not {value!r}, in")
    hints = typing.get_type_hints(cls)
    stored = [f.name for f in dataclasses.fields(cls) if not f.metadata.get("key")]
    prefix = f"{where}." if where else ""
    unknown = [k for k in value if k not in stored]
    if unknown:
        raise _fail(path, prefix + str(unknown[0]), "unknown field")
    optional = {f.name for f in dataclasses.fields(cls) if f.metadata.get("optional")}
    stored_here = [k for k in stored if k in value or k not in optional]
    missing = [k for k in stored_here if k not in value]
    if missing:
        raise _fail(path, prefix + missing[0], "missing field")
    fields = {k: _parse(hints[k], value[k], prefix + k, path) for k in stored_here}
    return cls(**fields, **(keys or {}))


def parse_manifest(data: Any, path: Path) -> RunManifest:
    """A :class:`RunManifest` from the JSON of ``path`` (schema 1 or 2), strictly checked.

    Raises:
        ContractError: Naming ``path``, the field and the fix.
    """
    if not isinstance(data, dict):
        raise ContractError(f"{path} must hold a JSON object")
    schema = data.get("schema")
    if schema == 1:
        data = upgrade_schema1(data, path)
    elif schema != SCHEMA_VERSION:
        raise ContractError(
            f"{path} has schema {schema!r}; this version reads schemas 1 and {SCHEMA_VERSION}. "
            "Upgrade iqa-bench if the run is newer",
            f"else {RECREATE}",
        )
    return _record(RunManifest, data, "", path)


def upgrade_schema1(data: dict, path: Path) -> dict:
    """A schema-1 manifest as schema 2: fields added to schema 1 over time, or new in 2, filled.

    Filled when absent: ``environment``'s entries, run settings after ``batch_size``, the
    dataset's ``load_size`` and ``mos_higher_is_better`` (None), ``bad_samples`` (none) with
    ``task``/``subset`` (``""``), failed samples' ``metrics`` (unknown: empty), timings (None),
    metrics' ``reason``/``compiled`` (None) and a skipped metric's ``weight_hashes``/``timings``.
    What decides the numbers is required as in schema 1: ``run_id``, ``dataset.name`` and every
    scored metric's ``higher_is_better`` (a guessed orientation would flip a similarity).
    """
    for required in ("run_id", "dataset", "metrics"):
        if required not in data:
            raise _fail(path, required, "schema-1 manifest lacks the field")
    out = {k: v for k, v in data.items() if k != "schema"}
    out["schema"] = SCHEMA_VERSION
    for name in (*_SETTINGS, "world_size"):
        out.setdefault(name, None)
    out.setdefault("created", "")
    out.setdefault("tasks", {})
    out.setdefault("failed_samples", [])
    out["package"] = (
        {f: None for f in ("version", "git_commit", "git_dirty")}
        | {"name": "iqa-bench"}
        | dict(out.get("package") or {})
    )
    out["environment"] = dict.fromkeys(_fields(EnvironmentRecord)) | dict(
        out.get("environment") or {}
    )
    out["timings"] = dict.fromkeys(_fields(TimingsRecord)) | dict(out.get("timings") or {})
    if isinstance(out["dataset"], dict):
        defaults = to_json(DatasetRecord(name="")) | {"card_version": None, "split": None}
        out["dataset"] = defaults | {"name": None} | out["dataset"]
    out["failed_samples"] = [_with(e, metrics=[]) for e in out["failed_samples"]]
    out["bad_samples"] = [_with(e, task="", subset="") for e in out.get("bad_samples") or []]
    metrics = out["metrics"] if isinstance(out["metrics"], dict) else {}
    for name, entry in metrics.items():
        if (
            isinstance(entry, dict)
            and entry.get("status") == "ok"
            and "higher_is_better" not in entry
        ):
            raise _fail(path, f"metrics.{name}.higher_is_better", "schema-1 manifest lacks")
    out["metrics"] = {
        n: _with(e, reason=None, compiled=None, weight_hashes={}, timings={})
        for n, e in metrics.items()
    }
    return out


def _fields(cls: Any) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


def _with(entry: Any, **defaults: Any) -> Any:
    return defaults | entry if isinstance(entry, dict) else entry


def read_manifest(path: Path) -> RunManifest:
    """The manifest at ``path`` (a file that exists), parsed by :func:`parse_manifest`.

    Raises:
        ContractError: The file is not JSON, or breaks the contract (naming field and fix).
    """
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ContractError(f"{path} is not valid JSON ({exc})") from None
    return parse_manifest(data, Path(path))


# -- per-task arrays --------------------------------------------------------------------------

#: Provenance the runner stores beside a metric's scores (its fingerprints and failures).
SCORE_PROVENANCE = ("fingerprint", "chunk_fps", "failed")


def layer_field(field: str) -> str:
    """The (N, L) per-layer array stored beside score array ``field`` by ``run --per-layer``;
    the file's ``taps`` array (L,) names its columns."""
    return f"{field}_layers"


def _layer_arrays(task: str) -> tuple[str, ...]:
    return ("taps", *(layer_field(k) for k in TASKS[task].scores))


@dataclass(frozen=True, eq=False)
class JudgmentArrays:
    """``judgments/<task>.npz``: human judgments, one per sample, sample ids unique.

    Attributes:
        task: Task name (a key of ``TASKS``); its ``judgment`` names the values' array.
        sample_id: Sample ids (str).
        subset: Subset per sample (str).
        values: ``h`` (2afc), ``same`` (jnd) or ``mos`` (mos), float64.
    """

    task: str
    sample_id: np.ndarray
    subset: np.ndarray
    values: np.ndarray

    def arrays(self) -> dict[str, np.ndarray]:
        """The arrays as stored (``np.savez(path, **arrays)``)."""
        return {
            "sample_id": np.asarray(self.sample_id, dtype=str),
            "subset": np.asarray(self.subset, dtype=str),
            TASKS[self.task].judgment: np.asarray(self.values, dtype=np.float64),
        }


@dataclass(frozen=True, eq=False)
class ScoreArrays:
    """``scores/<metric>/<task>.npz``: a metric's raw per-sample output (NaN where it failed).

    Similarities stay similarities on disk; readers orient them by the metric's record.

    Attributes:
        task: Task name; its ``scores`` name the arrays (``d0``, ``d1`` or ``d``).
        sample_id: Sample ids (str).
        values: Score array per name, float64.
        provenance: The runner's ``fingerprint``, ``chunk_fps`` and ``failed`` (JSON) arrays,
            kept for reuse on later runs; readers of the numbers ignore them.
    """

    task: str
    sample_id: np.ndarray
    values: dict[str, np.ndarray]
    provenance: dict[str, np.ndarray] = field(default_factory=dict)

    def arrays(self) -> dict[str, np.ndarray]:
        """The arrays as stored (``np.savez(path, **arrays)``)."""
        out = {"sample_id": np.asarray(self.sample_id, dtype=str)}
        out |= {k: np.asarray(self.values[k], dtype=np.float64) for k in TASKS[self.task].scores}
        return out | dict(self.provenance)


def _read_npz(
    path: Path, required: tuple[str, ...], optional: tuple[str, ...], what: str
) -> dict[str, np.ndarray]:
    """The arrays of ``path``: all of ``required``, nothing outside ``required + optional``."""
    if not path.is_file():
        raise DataNotFoundError(
            f"{path} not found: the run has no {what}; re-run the benchmark for it or pass "
            "a complete run directory."
        )
    try:
        with np.load(path, allow_pickle=False) as npz:
            names = list(npz.files)
            arrays = {k: np.asarray(npz[k]).reshape(-1) for k in required if k in names}
    # A file cut short by a killed run or a full disk fails inside zipfile/zlib, whose messages
    # name neither the file nor the fix.
    except (OSError, EOFError, ValueError, zipfile.BadZipFile, zlib.error) as exc:
        raise ContractError(
            f"{path} ({what}) is not a readable .npz file ({type(exc).__name__}: {exc}); it is "
            "truncated or damaged",
            "re-run `iqa-bench run` with --out set to this run folder, which recomputes it",
        ) from None
    missing = [k for k in required if k not in arrays]
    unknown = sorted(set(names) - set(required) - set(optional))
    if missing or unknown:
        problem = f"lacks array(s) {missing}" if missing else f"has unknown array(s) {unknown}"
        raise ContractError(
            f"{path} {problem} (has {sorted(names)}); the contract for {what} is "
            f"{list(required)}, see docs/ARCHITECTURE.md"
        )
    lengths = {k: len(v) for k, v in arrays.items()}
    if len(set(lengths.values())) != 1:
        raise ContractError(f"{path} has arrays of different lengths {lengths}")
    arrays["sample_id"] = arrays["sample_id"].astype(str)
    return arrays


def read_judgments(path: Path, task: str) -> JudgmentArrays:
    """``judgments/<task>.npz`` checked: arrays present, ids unique, judgments finite.

    Raises:
        FileNotFoundError: The file does not exist.
        ContractError: The file is damaged or breaks the contract (naming it and the fix).
    """
    name = TASKS[task].judgment
    arrays = _read_npz(path, ("sample_id", "subset", name), (), f"{task} judgments")
    sid = arrays["sample_id"]
    uniq, counts = np.unique(sid, return_counts=True)
    if (counts > 1).any():
        raise ContractError(
            f"{path} repeats sample_id {uniq[counts > 1][:3].tolist()}; each sample must "
            f"appear once"
        )
    values = arrays[name].astype(np.float64)
    if not np.isfinite(values).all():
        raise ContractError(f"{path}: {name} has NaN/inf judgments")
    return JudgmentArrays(task, sid, arrays["subset"].astype(str), values)


def read_scores(path: Path, task: str, what: str) -> ScoreArrays:
    """``scores/<metric>/<task>.npz`` checked: the task's arrays present, of one length.

    Args:
        path: The file.
        task: Its task.
        what: The file's role for messages, e.g. ``"2afc scores of 'l2'"``.

    Raises:
        FileNotFoundError: The file does not exist.
        ContractError: The file is damaged or breaks the contract (naming it and the fix).
    """
    keys = TASKS[task].scores
    arrays = _read_npz(path, ("sample_id", *keys), SCORE_PROVENANCE + _layer_arrays(task), what)
    return ScoreArrays(task, arrays["sample_id"], {k: arrays[k] for k in keys})


@dataclass(frozen=True, eq=False)
class LayerArrays:
    """Per-layer distances stored beside a metric's scores (``run --per-layer``).

    Attributes:
        task: Task name.
        sample_id: Sample ids (str), in the order of the scores file.
        taps: (L,) tap names, the columns.
        values: Per score array name (``d0``, ``d1`` or ``d``), float64 (N, L).
    """

    task: str
    sample_id: np.ndarray
    taps: tuple[str, ...]
    values: dict[str, np.ndarray]


def read_layer_scores(path: Path, task: str, what: str) -> LayerArrays | None:
    """The per-layer arrays of ``scores/<metric>/<task>.npz``; None when the run stored none.

    Raises:
        ContractError: The arrays are incomplete or of the wrong shape (naming file and fix).
    """
    scores = read_scores(path, task, what)  # checks the file and its sample ids
    names = [layer_field(k) for k in TASKS[task].scores]
    with np.load(path, allow_pickle=False) as npz:
        present = [k for k in ("taps", *names) if k in npz.files]
        if not present:
            return None
        if len(present) != 1 + len(names):
            raise ContractError(f"{path} ({what}) has only {present} of {['taps', *names]}")
        taps = tuple(str(t) for t in npz["taps"].reshape(-1))
        values = {k: np.asarray(npz[layer_field(k)], dtype=np.float64) for k in scores.values}
    n = len(scores.sample_id)
    for k, v in values.items():
        if v.shape != (n, len(taps)):
            raise ContractError(
                f"{path} ({what}): {layer_field(k)} has shape {v.shape}, expected {(n, len(taps))}"
            )
    return LayerArrays(task, scores.sample_id, taps, values)
