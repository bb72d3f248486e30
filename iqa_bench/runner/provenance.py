"""Where a result came from: package version, git commit, environment."""

from __future__ import annotations

import platform
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING

from .. import __version__

if TYPE_CHECKING:
    import torch

_REPO = Path(__file__).resolve().parent.parent.parent


def git_state() -> tuple[str | None, bool | None]:
    """(commit, dirty) of the source tree iqa-bench runs from, or (None, None) outside git."""
    try:
        commit = subprocess.run(
            ["git", "-C", str(_REPO), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
        )
        if commit.returncode != 0:
            return None, None
        status = subprocess.run(
            ["git", "-C", str(_REPO), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=5,
        )
        return commit.stdout.strip(), bool(status.stdout.strip())
    except (OSError, subprocess.SubprocessError):
        return None, None


def package_info() -> dict:
    commit, dirty = git_state()
    return {"name": "iqa-bench", "version": __version__, "git_commit": commit, "git_dirty": dirty}


def environment_info(device: torch.device | None = None) -> dict:
    """Versions and hardware; ``gpu`` names ``device`` when it is a CUDA device (else GPU 0)."""
    import numpy
    import torch

    info = {
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "platform": f"{platform.system()}-{platform.machine()}",
        "cpu_threads": torch.get_num_threads(),
    }
    if torch.cuda.is_available():
        info["cuda"] = torch.version.cuda
        cuda = device is not None and device.type == "cuda"
        info["gpu"] = torch.cuda.get_device_name(device if cuda else 0)
    return info


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def new_run_id(dataset: str) -> str:
    return f"{datetime.now(timezone.utc):%Y%m%d-%H%M%S}-{dataset}"
