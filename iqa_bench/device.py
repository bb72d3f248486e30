"""Devices and numeric precision: which device to run on, dtypes, autocast and TF32 settings.

Shared by the runner, the CLI and training (``train-lin``), none of which owns the others.

Example:
    >>> resolve_device("cpu"), sorted(DTYPES)
    (device(type='cpu'), ['bf16', 'fp16', 'fp32', 'tf32'])
"""

from __future__ import annotations

import contextlib
import os
import warnings
from collections.abc import Iterator

import torch

from .errors import InputError


def default_workers() -> int:
    """Decoding threads when none are given: one per core, at least 2 and at most 8."""
    return max(2, min(8, os.cpu_count() or 2))


#: ``--dtype`` -> autocast dtype (None: no autocast). ``tf32`` differs from ``fp32`` only on CUDA.
DTYPES = {"fp32": None, "tf32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


def check_autocast(device: torch.device, dtype: str) -> None:
    """Autocast to ``dtype`` must take effect on ``device``, or the run would be mislabelled.

    Where torch does not support a dtype on a device it turns autocast off with only a warning
    (as older releases did for float16 on CPU; 2.2 autocasts to it), and the run would score in
    float32 under an fp16 label; on CUDA, bf16 on a GPU without it raises. A tiny matrix product
    under the same context shows what torch really does.

    Raises:
        InputError: Naming the dtype, the device, the torch version and the fix.

    Example:
        >>> check_autocast(torch.device("cpu"), "bf16")
    """
    fast = DTYPES[dtype]
    if fast is None:
        return
    fix = f"use --dtype fp32 or {'bf16' if dtype == 'fp16' else 'fp16'}"
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the disabling warning becomes this error instead
            with torch.autocast(device.type, dtype=fast):
                probe = torch.ones(2, 2, device=device)
                got = (probe @ probe).dtype
    except RuntimeError as err:  # e.g. bf16 asked of a CUDA GPU without it
        raise InputError(
            f"dtype: {dtype} autocast is not available on {device} (torch {torch.__version__}: "
            f"{err}); {fix}."
        ) from err
    if got != fast:
        raise InputError(
            f"dtype: torch {torch.__version__} does not autocast to {dtype} on {device} (it would "
            f"silently compute in {str(got).removeprefix('torch.')}); {fix}, or a newer torch."
        )


@contextlib.contextmanager
def cuda_float32_precision(dtype: str) -> Iterator[None]:
    """Float32 convolutions and matrix products on CUDA: IEEE float32 unless ``dtype`` is tf32.

    PyTorch lets cuDNN run float32 convolutions in TF32 (10-bit mantissa) by default on Ampere and
    newer GPUs, which shifts LPIPS values by about 1e-3 relative; here that is an explicit choice.
    The previous settings are restored on exit.
    """
    cudnn, matmul = torch.backends.cudnn, torch.backends.cuda.matmul
    saved = (cudnn.allow_tf32, matmul.allow_tf32)
    cudnn.allow_tf32 = matmul.allow_tf32 = dtype == "tf32"
    try:
        yield
    finally:
        cudnn.allow_tf32, matmul.allow_tf32 = saved


def resolve_device(
    device: str | torch.device | None, local_rank: int | None = None
) -> torch.device:
    """The device to run on, checked to exist on this machine.

    Args:
        device: ``cpu``, ``cuda``, ``cuda:1``, ``mps``...; None picks CUDA when present, else CPU.
        local_rank: Under torchrun, this process's ``LOCAL_RANK``: a bare ``cuda`` becomes that
            GPU. None (a single process) leaves it to torch's current device.

    Raises:
        InputError: ``device`` is not a torch device name, or names one this machine lacks (for
            ``cuda``: no GPU, no driver, or a CPU-only torch build); the message lists the
            devices there are.

    Example:
        >>> resolve_device("cpu")
        device(type='cpu')
    """
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    available = ["cpu"]
    for kind in ("cuda", "xpu", "mps"):
        backend = getattr(torch, kind, None)
        if backend is not None and backend.is_available():
            available += [kind, *(f"{kind}:{i}" for i in range(backend.device_count()))]
    fix = (
        f"devices here: {', '.join(available)}; pass one of them, or no device to use "
        f"{'cuda' if 'cuda' in available else 'cpu'}"
    )
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise InputError(f"device: {device!r} is not a torch device name; {fix}.") from None
    if dev.type != "cpu" and str(dev) not in available:
        count = sum(name.startswith(f"{dev.type}:") for name in available)
        found = (
            f"torch finds {count} {dev.type} device(s)"
            if count
            else f"torch finds no {dev.type} device: no GPU, no driver, or a torch build without it"
        )
        raise InputError(f"device: {device!r} is not available ({found}); {fix}.")
    if dev.type == "cuda" and dev.index is None and local_rank is not None:
        dev = torch.device("cuda", local_rank)
    return dev
