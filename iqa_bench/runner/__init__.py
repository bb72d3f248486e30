"""The batched runner (adapter -> metric -> per-sample results on disk)."""

from .run import RunOptions, RunResult, run_benchmark

__all__ = ["RunOptions", "RunResult", "run_benchmark"]
