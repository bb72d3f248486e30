"""User-facing errors: the base class the CLI reports as a message (exit 2) without a traceback.

Anything else raised inside the package is an internal bug and keeps its traceback. Each class
also derives from the built-in exception that callers already catch for that kind of problem,
so ``except ValueError`` around library calls keeps working.

Example:
    >>> err = InputError("--workers: -1 is not allowed; give 1 or more.")
    >>> isinstance(err, IQABenchError), isinstance(err, ValueError)
    (True, True)
"""

from __future__ import annotations


class IQABenchError(Exception):
    """Base of every error that is the user's to fix (bad option, bad data, busy run folder)."""


class InputError(IQABenchError, ValueError):
    """A bad option value or bad input data; the message names the argument or file and the fix."""


class RunDirBusyError(IQABenchError, RuntimeError):
    """Another process is writing the same run directory."""


class WeightsUnavailableError(IQABenchError, FileNotFoundError):
    """Weights could not be found locally nor downloaded; the message says where to put them.

    Under ``--metrics all`` the runner skips such a metric with this message as the reason.
    """
