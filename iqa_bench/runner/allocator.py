"""Keeping freed CPU buffers in the process, so large tensors are not page-faulted in again.

PyTorch has no caching allocator on CPU: every tensor comes from ``malloc``. glibc serves large
requests (a 64-image batch of VGG16 relu1_2 features is 100 MB) with fresh ``mmap`` pages and gives
them back on ``free``, so each new feature map, difference or normalised copy is faulted in and
zeroed by the kernel again. On the 2-core CI machine that made element-wise passes over such
tensors 4x slower than the arithmetic (20 ms instead of 5 ms for 13M floats). Raising glibc's mmap
and trim thresholds keeps freed blocks in the heap for reuse, as the jemalloc/tcmalloc set-ups that
CPU inference guides recommend do. It changes speed and resident memory, never values.

The setting belongs to the whole process and cannot be undone, so only an entry point makes it
(``iqa-bench run``/``bench`` unless ``--return-freed-memory``); a library call never does. The
runner records :func:`allocator_in_force`, which probes what glibc does now rather than trusting
who asked for what.

Example:
    >>> allocator_in_force().startswith(("glibc", "default"))
    True
"""

from __future__ import annotations

import ctypes
import platform

#: Requests up to this size come from the heap, and up to this much freed memory stays in it.
KEEP_BYTES = 1 << 30

#: Larger than glibc's largest automatic mmap threshold (32 MiB on 64-bit), so only a threshold
#: raised by ``mallopt`` (or ``GLIBC_TUNABLES``) serves it from the heap.
PROBE_BYTES = 64 << 20

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_applied: dict | None = None  # what keep_freed_memory did; the probe says whether it holds


class _MallInfo2(ctypes.Structure):
    _fields_ = [
        (name, ctypes.c_size_t)
        for name in (
            "arena", "ordblks", "smblks", "hblks", "hblkhd",
            "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost",
        )
    ]  # fmt: skip


def _glibc() -> tuple[ctypes.CDLL | None, str]:
    """The C library and its version, or (None, why not) where it is not glibc."""
    libc_name, libc_version = platform.libc_ver()
    if platform.system() != "Linux" or libc_name != "glibc":
        return None, f"C library {libc_name or 'unknown'} is not glibc"
    try:
        return ctypes.CDLL(None), libc_version
    except OSError as exc:
        return None, f"C library not loadable: {exc}"


def keep_freed_memory(keep_bytes: int = KEEP_BYTES) -> dict:
    """Set glibc's mmap and trim thresholds to ``keep_bytes`` for this whole process.

    For entry points only (the CLI's ``run``/``bench``): the setting outlives the call.

    Returns:
        ``{"applied": True, "allocator": "glibc 2.36", "threshold_bytes": ...}``, or
        ``{"applied": False, "reason": ...}`` where the C library is not glibc or refuses.
    """
    global _applied
    libc, version = _glibc()
    if libc is None or not hasattr(libc, "mallopt"):
        return {"applied": False, "reason": version if libc is None else "mallopt not found"}
    libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    libc.mallopt.restype = ctypes.c_int
    ok = (
        libc.mallopt(_M_MMAP_THRESHOLD, keep_bytes) == 1
        and libc.mallopt(_M_TRIM_THRESHOLD, keep_bytes) == 1
    )
    if not ok:
        return {"applied": False, "reason": f"glibc {version} refused mallopt({keep_bytes})"}
    _applied = {"applied": True, "allocator": f"glibc {version}", "threshold_bytes": keep_bytes}
    return _applied


def heap_serves_large_blocks() -> bool | None:
    """Whether a ``PROBE_BYTES`` request comes from the heap (thresholds raised) now.

    Allocates and frees one untouched block (no page is faulted in) and compares glibc's count
    of mmapped blocks before and after; None where that cannot be read (not glibc, or a glibc
    before 2.33 without ``mallinfo2``). Call it from the main thread: other threads' arenas
    map large blocks whatever the threshold.
    """
    libc, _ = _glibc()
    if libc is None or not hasattr(libc, "mallinfo2"):
        return None
    libc.mallinfo2.restype = _MallInfo2
    libc.malloc.restype = ctypes.c_void_p
    libc.malloc.argtypes = [ctypes.c_size_t]
    libc.free.argtypes = [ctypes.c_void_p]
    before = libc.mallinfo2().hblkhd
    block = libc.malloc(PROBE_BYTES)
    if not block:
        return None
    mapped = libc.mallinfo2().hblkhd - before >= PROBE_BYTES
    libc.free(block)
    return not mapped


def allocator_in_force() -> str:
    """One line for the manifest and report on what glibc does with large freed blocks now.

    E.g. ``glibc 2.36, keeps freed blocks up to 1024 MiB`` or ``default (not requested)``.
    """
    libc, version = _glibc()
    if libc is None:
        return f"default ({version})"
    kept = heap_serves_large_blocks()
    if kept is None:
        return f"unknown (glibc {version} cannot report its mmap threshold)"
    if not kept:
        return "default (" + ("reset after iqa-bench raised it)" if _applied else "not requested)")
    if _applied is not None:
        mib = _applied["threshold_bytes"] >> 20
        return f"{_applied['allocator']}, keeps freed blocks up to {mib} MiB"
    return (
        f"glibc {version}, keeps freed blocks of {PROBE_BYTES >> 20} MiB or more "
        "(set outside iqa-bench)"
    )
