"""Finding, downloading and hashing model weights.

Trunk weights are looked up in this order:

1. ``$IQA_BENCH_WEIGHTS/<stem>-features.pth`` (a folder of features-only files, as in ``shared/weights``);
2. ``<cache>/weights/<stem>-features.pth`` (cache = ``$IQA_BENCH_CACHE`` or ``~/.cache/iqa-bench``);
3. download of torchvision's full checkpoint into the cache (progress bar, SHA-256 checked against the
   hash prefix in its name), cut down to the ``features.*`` tensors. ``IQA_BENCH_OFFLINE=1`` forbids it.

Zoo backbones (``torchvision:<model>``) keep the whole checkpoint under torchvision's own file name
``<stem>.pth`` (e.g. ``resnet18-f37072fd.pth``), so a torch hub folder
(``~/.cache/torch/hub/checkpoints``) works as ``IQA_BENCH_WEIGHTS``; its SHA-256 prefix is checked.

LPIPS linear layers come from the installed reference ``lpips`` package's data files (the package
itself is not imported: it imports scipy and torchvision).

Example:
    >>> path = trunk_weights_path(BACKBONES.get("alex").weights)  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import zipfile
from functools import cache
from pathlib import Path

import torch

from .errors import InputError, WeightsUnavailableError
from .settings import OFFLINE_ENV, WEIGHTS_ENV, cache_dir, offline, weights_dir
from .trunk_spec import TrunkWeights

# A download that failed once in this process is not retried for every metric sharing the trunk.
_FAILED_DOWNLOADS: dict[str, str] = {}


@cache
def _sha256_cached(path: str, mtime_ns: int, size: int) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def sha256_file(path: Path) -> str:
    """SHA-256 of a file (memoised on path, modification time and size)."""
    st = Path(path).stat()
    return _sha256_cached(str(path), st.st_mtime_ns, st.st_size)


def _check_features_hash(path: Path, weights: TrunkWeights) -> None:
    prefix = weights.checkpoint_sha256_prefix
    # A whole torchvision checkpoint: its name promises a SHA-256 prefix.
    if not weights.keep_prefix and prefix and not sha256_file(path).startswith(prefix):
        raise InputError(
            f"{path}: SHA-256 {sha256_file(path)} does not start with "
            f"{weights.checkpoint_sha256_prefix} as its name promises; the file is corrupt or "
            "another checkpoint. Delete it (or fix IQA_BENCH_WEIGHTS) and try again."
        )
    if weights.features_sha256 and sha256_file(path) != weights.features_sha256:
        raise InputError(
            f"{path}: SHA-256 {sha256_file(path)} does not match the expected "
            f"{weights.features_sha256} for {weights.features_file}; the file is corrupt or another "
            "checkpoint. Delete it (or fix IQA_BENCH_WEIGHTS) and try again."
        )


def extract_features(checkpoint: Path, dest: Path, keep_prefix: str = "features.") -> None:
    """Save only the ``keep_prefix`` tensors of a full checkpoint to ``dest`` (atomically)."""
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    kept = {k: v for k, v in state.items() if k.startswith(keep_prefix)}
    if not kept:
        raise InputError(
            f"{checkpoint}: no tensors start with {keep_prefix!r}; not a trunk checkpoint."
        )
    tmp = dest.with_suffix(dest.suffix + ".tmp")
    torch.save(kept, tmp)
    os.replace(tmp, dest)


def trunk_weights_path(weights: TrunkWeights, download: bool = True, progress: bool = True) -> Path:
    """Path of the features-only weights file, downloading it if needed and allowed.

    Raises:
        WeightsUnavailableError: Nothing local and the download is forbidden or failed; the message
            names the file, the URL and the environment variable.
    """
    local_dir = weights_dir()
    candidates = [local_dir / weights.features_file] if local_dir else []
    cached = cache_dir() / "weights" / weights.features_file
    candidates.append(cached)
    for path in candidates:
        if path.is_file():
            _check_features_hash(path, weights)
            return path
    reason = f"downloads are off ({OFFLINE_ENV}=1)" if offline() else "download not allowed"
    if download and not offline() and weights.url in _FAILED_DOWNLOADS:
        reason = _FAILED_DOWNLOADS[weights.url]
    elif download and not offline():
        full = cache_dir() / "weights" / f"{weights.stem}.pth"
        from .download import DownloadError, download_file  # http, tqdm: only to download

        try:
            digest = download_file(weights.url, full, progress=progress)
            if not digest.startswith(weights.checkpoint_sha256_prefix):
                full.unlink(missing_ok=True)
                raise InputError(
                    f"{weights.url}: SHA-256 {digest} does not start with "
                    f"{weights.checkpoint_sha256_prefix} as its name promises; refusing it."
                )
            if full != cached:  # keep_prefix "" keeps the whole checkpoint as it is
                extract_features(full, cached, weights.keep_prefix)
                full.unlink(missing_ok=True)
            _check_features_hash(cached, weights)
            return cached
        except (DownloadError, OSError) as exc:
            cause = exc.__cause__ or exc
            reason = f"the download failed ({type(cause).__name__}: {cause})"
            _FAILED_DOWNLOADS[weights.url] = reason
    looked = ", ".join(str(p) for p in candidates)
    cut = f"cut to its {weights.keep_prefix}* tensors" if weights.keep_prefix else "as downloaded"
    raise WeightsUnavailableError(
        f"trunk weights {weights.features_file} unavailable: not found in {looked} "
        f"({WEIGHTS_ENV}={local_dir or 'unset'}) and {reason}. "
        f"Fix: set {WEIGHTS_ENV} to a folder holding {weights.features_file}, or put "
        f"{weights.url} ({cut}) at {cached}; online, iqa-bench does this itself."
    )


def load_trunk_state(weights: TrunkWeights, download: bool = True) -> tuple[dict, str]:
    """Features-only state dict and the SHA-256 of the file it came from."""
    path = trunk_weights_path(weights, download=download)
    return torch.load(path, map_location="cpu", weights_only=True), sha256_file(path)


def lpips_lin_path(lpips_name: str, version: str) -> Path:
    """Path of the official LPIPS linear-layer weights shipped in the ``lpips`` package.

    The package is located, not imported (importing it costs seconds of scipy and torchvision).

    Raises:
        WeightsUnavailableError: ``lpips`` is not installed, or has no such weights file.
    """
    spec = importlib.util.find_spec("lpips")
    if spec is None or not spec.submodule_search_locations:
        raise WeightsUnavailableError(
            "the official LPIPS linear weights come from the 'lpips' package, which is not "
            "installed. Fix: pip install lpips"
        )
    package_dir = Path(next(iter(spec.submodule_search_locations)))
    path = package_dir / "weights" / f"v{version}" / f"{lpips_name}.pth"
    if not path.is_file():
        raise WeightsUnavailableError(
            f"{path}: the lpips package has no v{version} weights for {lpips_name!r}."
        )
    return path


def load_lin_weights(path: Path, n_layers: int) -> list[torch.Tensor]:
    """Per-layer channel weights (each shape ``(C,)``) from an lpips-format file.

    Accepts keys ``lin{k}.model.1.weight`` (reference package) or ``lin{k}.weight`` (iqa-bench's own
    trained files), each of shape ``(1, C, 1, 1)`` or ``(C,)``.
    """
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "lin_weights" in state:
        state = state["lin_weights"]
    out = []
    for k in range(n_layers):
        for key in (f"lin{k}.model.1.weight", f"lin{k}.weight", f"lin{k}.model.0.weight"):
            if key in state:
                out.append(state[key].reshape(-1).float())
                break
        else:
            raise InputError(
                f"{path}: no linear weights for layer {k} (expected key 'lin{k}.model.1.weight' "
                f"or 'lin{k}.weight'); keys present: {sorted(state)[:8]}"
            )
    return out


#: Prefix of the trunk's tensors in a file that holds linear weights and a trained trunk together
#: (``train-lin --mode tune|scratch``); the rest of each name is the full network's
#: (``trunk.features.0.weight``).
TRUNK_PREFIX = "trunk."


def load_trained_trunk(path: Path) -> tuple[dict[str, torch.Tensor], str]:
    """The trunk tensors of a trained-trunk file (names without :data:`TRUNK_PREFIX`) and the
    file's SHA-256.

    Raises:
        InputError: The file holds no ``trunk.*`` tensors.
    """
    state = torch.load(path, map_location="cpu", weights_only=True)
    trunk = {
        k[len(TRUNK_PREFIX) :]: v
        for k, v in (state.items() if isinstance(state, dict) else ())
        if k.startswith(TRUNK_PREFIX)
    }
    if not trunk:
        raise InputError(
            f"trunk_weights: {path} holds no trunk tensors (keys starting {TRUNK_PREFIX!r}); "
            "give the file `iqa-bench train-lin --mode tune|scratch` wrote, or drop trunk_weights."
        )
    return trunk, sha256_file(path)


def holds_trained_trunk(path: Path) -> bool:
    """True when a weights file also holds trunk tensors (memory-mapped where torch can: the
    reference package's files use the legacy format, which it cannot map)."""
    mmap = zipfile.is_zipfile(path)
    state = torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)
    return isinstance(state, dict) and any(str(k).startswith(TRUNK_PREFIX) for k in state)
