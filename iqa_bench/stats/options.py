"""How reports resample: one frozen set of bootstrap and permutation settings.

Example:
    >>> StatsOptions(n_boot=200, n_perm=500).confidence
    0.95
    >>> StatsOptions(n_boot=10)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    iqa_bench.errors.InputError: n_boot=10 is too small for a stable result; use at least 100 ...
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ..errors import InputError
from .bootstrap import _check_confidence, _check_count

__all__ = ["StatsOptions"]


@dataclass(frozen=True)
class StatsOptions:
    """Resampling settings shared by every statistic of a report or comparison.

    Attributes:
        n_boot: Bootstrap resamples per confidence interval (at least 100; 1000+ for
            published numbers).
        n_perm: Random sign flips per paired permutation test (at least 100).
        seed: Seed of every resampling, so reports are reproducible.
        confidence: Coverage of the intervals, in (0, 1).
    """

    n_boot: int = 1000
    n_perm: int = 10000
    seed: int = 0
    confidence: float = 0.95

    def __post_init__(self) -> None:
        _check_count("n_boot", self.n_boot)
        _check_count("n_perm", self.n_perm)
        if isinstance(self.seed, bool) or not isinstance(self.seed, int):
            raise InputError(f"seed must be an integer, got {self.seed!r}; pass e.g. seed=0.")
        _check_confidence(self.confidence)

    def with_overrides(
        self,
        n_boot: int | None = None,
        n_perm: int | None = None,
        seed: int | None = None,
        confidence: float | None = None,
    ) -> StatsOptions:
        """A copy with every argument that is not ``None`` replaced.

        Example:
            >>> StatsOptions().with_overrides(n_boot=200, seed=None).n_boot
            200
        """
        given = {"n_boot": n_boot, "n_perm": n_perm, "seed": seed, "confidence": confidence}
        return replace(self, **{k: v for k, v in given.items() if v is not None})
