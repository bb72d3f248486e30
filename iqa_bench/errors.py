"""User-facing errors: the base class the CLI reports as a message (exit 2) without a traceback.

Anything else raised inside the package is an internal bug and keeps its traceback. Each class
also derives from the built-in exception that callers already catch for that kind of problem,
so ``except ValueError`` around library calls keeps working.

What is the user's to fix (a bad option or card, bad or missing data, a failed download, a busy
run folder) raises one of these; a broken invariant inside the package raises a plain exception.

Example:
    >>> err = InputError("--workers: -1 is not allowed; give 1 or more.")
    >>> isinstance(err, IQABenchError), isinstance(err, ValueError)
    (True, True)
    >>> isinstance(DataNotFoundError("data.csv is missing"), FileNotFoundError)
    True
"""

from __future__ import annotations


class IQABenchError(Exception):
    """Base of every error that is the user's to fix (bad option, bad data, busy run folder)."""


class InputError(IQABenchError, ValueError):
    """A bad option value or bad input data; the message names the argument or file and the fix."""


class DataNotFoundError(IQABenchError, FileNotFoundError):
    """A file or folder the user must provide is missing: dataset data, an image, a card file, a
    plugin, a weights file named in a card; the message says where it was expected and how to get it.
    """


class DownloadError(IQABenchError, OSError):
    """A network failure (unreachable host, HTTP error, repeated interruption) or a download that
    fails its checksum; the message names the URL and where the file can be placed by hand instead.
    """


class RunDirBusyError(IQABenchError, RuntimeError):
    """Another process is writing the same run directory."""


class WeightsUnavailableError(IQABenchError, FileNotFoundError):
    """Weights could not be found locally nor downloaded; the message says where to put them.

    Under ``--metrics all`` the runner skips such a metric with this message as the reason.
    """


class MissingExtraError(IQABenchError, ImportError):
    """An optional library a metric needs is not installed; the message names the pip extra."""
