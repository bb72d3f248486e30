"""Keeping freed CPU buffers in the process, so large tensors are not page-faulted in again.

PyTorch has no caching allocator on CPU: every tensor comes from ``malloc``. glibc serves large
requests (a 64-image batch of VGG16 relu1_2 features is 100 MB) with fresh ``mmap`` pages and gives
them back on ``free``, so each new feature map, difference or normalised copy is faulted in and
zeroed by the kernel again. On the 2-core CI machine that made element-wise passes over such
tensors 4x slower than the arithmetic (20 ms instead of 5 ms for 13M floats). Raising glibc's mmap
and trim thresholds keeps freed blocks in the heap for reuse, as the jemalloc/tcmalloc set-ups that
CPU inference guides recommend do. The runner applies it to its own process (``RunOptions``'s
``keep_freed_memory``); it changes speed and resident memory, never values.

Example:
    >>> keep_freed_memory()["applied"]  # doctest: +SKIP
    True
"""

from __future__ import annotations

import ctypes
import platform

#: Requests up to this size come from the heap, and up to this much freed memory stays in it.
KEEP_BYTES = 1 << 30

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_state: dict | None = None


def keep_freed_memory(keep_bytes: int = KEEP_BYTES) -> dict:
    """Set glibc's mmap and trim thresholds to ``keep_bytes`` for this process (the first call
    decides; later calls return its outcome).

    Returns:
        What was done, for the run manifest: ``{"applied": True, "allocator": "glibc", ...}``, or
        ``{"applied": False, "reason": ...}`` where the C library is not glibc or refuses.
    """
    global _state
    if _state is not None:
        return _state
    libc_name, libc_version = platform.libc_ver()
    if platform.system() != "Linux" or libc_name != "glibc":
        _state = {"applied": False, "reason": f"C library {libc_name or 'unknown'} is not glibc"}
        return _state
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError) as exc:
        _state = {"applied": False, "reason": f"mallopt not found: {exc}"}
        return _state
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    ok = mallopt(_M_MMAP_THRESHOLD, keep_bytes) == 1 and mallopt(_M_TRIM_THRESHOLD, keep_bytes) == 1
    _state = (
        {"applied": True, "allocator": f"glibc {libc_version}", "threshold_bytes": keep_bytes}
        if ok
        else {"applied": False, "reason": f"glibc {libc_version} refused mallopt({keep_bytes})"}
    )
    return _state


def allocator_note(state: dict) -> str:
    """One line for the manifest and report, e.g. ``glibc 2.36, keeps freed blocks up to 1024 MiB``."""
    if state.get("applied"):
        return (
            f"{state['allocator']}, keeps freed blocks up to {state['threshold_bytes'] >> 20} MiB"
        )
    return f"default ({state.get('reason', 'not requested')})"
