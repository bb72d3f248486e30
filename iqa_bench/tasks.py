"""What each evaluation task holds: image fields, the comparisons scored, the stored fields.

The one table of tasks, read by the runner, the result store and the results loader (no
imports from the package here, so the runner can use it without the analysis layers). What a
report computes for a task (its aligned-data loader, headline statistic and bootstrap) is
registered against the same :class:`TaskSpec` in :mod:`iqa_bench.reports.analyses`.

Example:
    >>> TASKS["2afc"].pairs
    (('ref', 'p0'), ('ref', 'p1'))
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import InputError

__all__ = ["TASKS", "TaskSpec", "register_task", "task_spec"]


@dataclass(frozen=True)
class TaskSpec:
    """One task's layout.

    Attributes:
        name: Task name, as in ``judgments/<name>.npz`` (``"2afc"``, ``"jnd"``, ``"mos"``).
        images: Image attributes of a sample, in batching order.
        pairs: The (a, b) image pairs a metric scores per sample.
        scores: Stored score arrays, one per pair (``d0``, ``d1`` or ``d``).
        judgment: The human-judgment attribute of a sample (``h``, ``same``, ``mos``).
    """

    name: str
    images: tuple[str, ...]
    pairs: tuple[tuple[str, str], ...]
    scores: tuple[str, ...]
    judgment: str

    def __post_init__(self) -> None:
        if len(self.pairs) != len(self.scores):
            raise InputError(
                f"task {self.name!r}: {self.pairs} and {self.scores} differ in length."
            )
        unknown = {a for pair in self.pairs for a in pair} - set(self.images)
        if unknown:
            raise InputError(f"task {self.name!r}: pairs use {sorted(unknown)}, not in images.")


TASKS: dict[str, TaskSpec] = {
    spec.name: spec
    for spec in (
        TaskSpec("2afc", ("ref", "p0", "p1"), (("ref", "p0"), ("ref", "p1")), ("d0", "d1"), "h"),
        TaskSpec("jnd", ("p0", "p1"), (("p0", "p1"),), ("d",), "same"),
        TaskSpec("mos", ("ref", "dist"), (("ref", "dist"),), ("d",), "mos"),
    )
}


def task_spec(task: str) -> TaskSpec:
    """The spec of ``task`` (``ValueError`` naming the known tasks otherwise)."""
    if task not in TASKS:
        raise InputError(f"unknown task {task!r}; known tasks: {', '.join(TASKS)}.")
    return TASKS[task]


def register_task(spec: TaskSpec) -> TaskSpec:
    """Adds ``spec`` to :data:`TASKS` (registering the same spec again is a no-op).

    Raises:
        ValueError: When another spec already has the name.

    Example:
        >>> register_task(TASKS["jnd"]) is TASKS["jnd"]
        True
    """
    known = TASKS.get(spec.name)
    if known is not None and known != spec:
        raise InputError(f"task {spec.name!r} is already registered as {known}; pick another name.")
    TASKS[spec.name] = spec
    return spec
