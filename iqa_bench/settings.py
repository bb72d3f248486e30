"""Every environment variable iqa-bench reads, in one module (read when asked, never cached).

| variable | meaning | default |
| --- | --- | --- |
| ``IQA_BENCH_CACHE`` | cache root: weights, decoded images, train-lin features | ``~/.cache/iqa-bench`` |
| ``IQA_BENCH_DATA`` | data root: each dataset in ``<root>/<name>/`` | ``<cache root>/data`` |
| ``IQA_BENCH_WEIGHTS`` | folder searched first for ``<stem>-features.pth`` trunk files | none |
| ``IQA_BENCH_OFFLINE`` | ``1``/``true``/``yes``/``on`` forbids downloads | off |
| ``IQA_BENCH_CARDS`` | folder holding ``metrics/`` and ``datasets/`` cards | the packaged cards |
| ``IQA_BENCH_PLUGINS`` | plugins (files or modules) to import, ``,`` or ``os.pathsep`` separated | none |

``torchrun``'s ``WORLD_SIZE``, ``RANK`` and ``LOCAL_RANK`` are read here too.

Example:
    >>> expected = os.environ.get("IQA_BENCH_DATA") or cache_dir() / "data"
    >>> data_dir() == Path(expected)
    True
"""

from __future__ import annotations

import os
from pathlib import Path

CACHE_ENV = "IQA_BENCH_CACHE"
DATA_ENV = "IQA_BENCH_DATA"
WEIGHTS_ENV = "IQA_BENCH_WEIGHTS"
OFFLINE_ENV = "IQA_BENCH_OFFLINE"
CARDS_ENV = "IQA_BENCH_CARDS"
PLUGINS_ENV = "IQA_BENCH_PLUGINS"


def _get(name: str) -> str:
    return os.environ.get(name, "").strip()


def cache_dir() -> Path:
    """Root of the iqa-bench cache (``$IQA_BENCH_CACHE`` or ``~/.cache/iqa-bench``)."""
    return Path(_get(CACHE_ENV) or Path.home() / ".cache" / "iqa-bench").expanduser()


def data_dir() -> Path:
    """Default data root: ``$IQA_BENCH_DATA``, else ``data/`` under the cache root."""
    env = _get(DATA_ENV)
    return Path(env).expanduser() if env else cache_dir() / "data"


def weights_dir() -> Path | None:
    """Folder of local trunk weight files (``$IQA_BENCH_WEIGHTS``), or None."""
    env = _get(WEIGHTS_ENV)
    return Path(env).expanduser() if env else None


def offline() -> bool:
    """True when ``IQA_BENCH_OFFLINE`` forbids downloads."""
    return _get(OFFLINE_ENV).lower() in ("1", "true", "yes", "on")


def cards_dir() -> Path | None:
    """Folder of card overrides (``$IQA_BENCH_CARDS``), or None for the packaged cards."""
    env = _get(CARDS_ENV)
    return Path(env).expanduser() if env else None


def plugin_refs_from_env() -> list[str]:
    """Plugin references in ``$IQA_BENCH_PLUGINS`` (separated by ``,`` or ``os.pathsep``)."""
    env = _get(PLUGINS_ENV)
    return [r.strip() for part in env.split(os.pathsep) for r in part.split(",") if r.strip()]


def torchrun_rank() -> tuple[int, int, int]:
    """``(WORLD_SIZE, RANK, LOCAL_RANK)`` as torchrun sets them; ``(1, 0, 0)`` outside torchrun."""
    return (
        int(_get("WORLD_SIZE") or 1),
        int(_get("RANK") or 0),
        int(_get("LOCAL_RANK") or 0),
    )
