"""What each evaluation task holds: image fields, the comparisons scored, the stored fields.

One table for the runner, the result store and the results loader (no torch here).

Example:
    >>> TASKS["2afc"].pairs
    (('ref', 'p0'), ('ref', 'p1'))
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TaskSpec:
    """One task's layout.

    Attributes:
        images: Image attributes of a sample, in batching order.
        pairs: The (a, b) image pairs a metric scores per sample.
        scores: Stored score arrays, one per pair (``d0``, ``d1`` or ``d``).
        judgment: The human-judgment attribute of a sample (``h``, ``same``, ``mos``).
    """

    images: tuple[str, ...]
    pairs: tuple[tuple[str, str], ...]
    scores: tuple[str, ...]
    judgment: str


TASKS: dict[str, TaskSpec] = {
    "2afc": TaskSpec(("ref", "p0", "p1"), (("ref", "p0"), ("ref", "p1")), ("d0", "d1"), "h"),
    "jnd": TaskSpec(("p0", "p1"), (("p0", "p1"),), ("d",), "same"),
    "mos": TaskSpec(("ref", "dist"), (("ref", "dist"),), ("d",), "mos"),
}


def task_spec(task: str) -> TaskSpec:
    """The spec of ``task`` (``ValueError`` naming the known tasks otherwise)."""
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; known tasks: {', '.join(TASKS)}.")
    return TASKS[task]
