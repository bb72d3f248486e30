"""Build small datasets in the exact BAPPS layout, for tests, benchmarks and trying the suite
(no torch). The images are smooth random fields with noise, the judgments random: they test the
software, not metrics.

Example:
    >>> import tempfile
    >>> tmp_path = Path(tempfile.mkdtemp())
    >>> root = make_bapps_layout(tmp_path, {"traditional": 4, "cnn": 3}, {"traditional": 5})
    >>> sorted(p.name for p in (root / "2afc" / "val" / "cnn" / "judge").iterdir())
    ['000000.npy', '000001.npy', '000002.npy']
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

from ..errors import InputError
from ..images import write_png

#: ``stored_resample`` names -> PIL filters (how the stored files are upscaled from ``size``).
STORED_RESAMPLE = {"nearest": Image.Resampling.NEAREST, "bicubic": Image.Resampling.BICUBIC}

#: Judgment values BAPPS can hold: 2AFC val has 5 raters, JND 3.
TWOAFC_VALUES = (0.0, 0.2, 0.4, 0.6, 0.8, 1.0)
JND_VALUES = (0.0, 1 / 3, 2 / 3, 1.0)


def _smooth_image(rng: np.random.Generator, size: int) -> np.ndarray:
    # Low-frequency structure (not white noise) so metrics see edges and texture.
    field = ndimage.gaussian_filter(rng.normal(size=(size, size, 3)), sigma=(3, 3, 0))
    return (field - field.min()) / (np.ptp(field) + 1e-12)


def _distorted(base: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    noisy = base + rng.normal(0.0, rng.uniform(0.01, 0.2), base.shape)
    return np.clip(np.round(noisy * 255), 0, 255).astype(np.uint8)


def _labels(
    task: str,
    subset: str,
    count: int,
    judgments: Mapping[str, Mapping[str, Sequence[float]]] | None,
    rng: np.random.Generator,
) -> np.ndarray:
    given = (judgments or {}).get(task, {}).get(subset)
    if given is None:
        return rng.choice(TWOAFC_VALUES if task == "2afc" else JND_VALUES, size=count)
    values = np.asarray(given, dtype=np.float64)
    if values.shape != (count,):
        raise InputError(
            f"judgments[{task!r}][{subset!r}] has {values.size} values, the subset has {count}; "
            "give one value per sample."
        )
    return values


def make_bapps_layout(
    root: Path,
    twoafc: dict[str, int] | None,
    jnd: dict[str, int] | None,
    split: str = "val",
    size: int = 64,
    seed: int = 0,
    judgments: Mapping[str, Mapping[str, Sequence[float]]] | None = None,
    stored_scale: int = 1,
    stored_resample: str = "nearest",
) -> Path:
    """Write a BAPPS-layout dataset with the given subset sizes; return ``root``.

    Files are ``2afc/<split>/<subset>/{ref,p0,p1}/NNNNNN.png`` + ``judge/NNNNNN.npy`` and
    ``jnd/val/<subset>/{p0,p1}/NNNNNN.png`` + ``same/NNNNNN.npy`` (float64 arrays of shape (1,)).
    Calling it again on the same root adds another split or subsets.

    Args:
        root: Dataset folder (created).
        twoafc: Triplets per 2AFC subset, or ``None`` for no 2AFC data.
        jnd: Pairs per JND subset, or ``None`` for no JND data.
        split: The 2AFC split folder (``val`` or ``train``).
        size: Patch side in pixels.
        seed: Seed of images and random judgments.
        judgments: Optional ``{"2afc": {subset: values}, "jnd": {subset: values}}`` overriding the
            random judgments (2AFC from {0, 0.2, ..., 1}, JND from {0, 1/3, 2/3, 1}).
        stored_scale: Store each ``size`` image upscaled this many times, as the BAPPS archives
            store their 64x64 patches at 256x256 (``stored_scale=4``).
        stored_resample: How the stored files are upscaled: ``"nearest"`` (blocks of equal
            pixels, which PNG compresses well) or ``"bicubic"`` (smooth, files 5-6x larger
            and slower to decode). The E-LPIPS authors report nearest for the archives; the
            BAPPS authors do not say.

    Example:
        >>> root = make_bapps_layout(tmp_path, {"cnn": 2}, None, judgments={"2afc": {"cnn": [0, 1]}})
        >>> sorted(p.name for p in (root / "2afc" / "val" / "cnn").iterdir())
        ['judge', 'p0', 'p1', 'ref']
    """
    root = Path(root)
    rng = np.random.default_rng(seed)
    if stored_resample not in STORED_RESAMPLE:
        raise InputError(
            f"stored_resample is {stored_resample!r}; use one of {sorted(STORED_RESAMPLE)}."
        )

    def save_png(path: Path, pixels: np.ndarray) -> None:
        if stored_scale != 1:
            side = (pixels.shape[1] * stored_scale, pixels.shape[0] * stored_scale)
            resample = STORED_RESAMPLE[stored_resample]
            pixels = np.asarray(Image.fromarray(pixels).resize(side, resample))
        write_png(path, pixels)

    for subset, count in (twoafc or {}).items():
        folder = root / "2afc" / split / subset
        h = _labels("2afc", subset, count, judgments, rng)
        (folder / "judge").mkdir(parents=True, exist_ok=True)
        for index in range(count):
            stem = f"{index:06d}"
            base = _smooth_image(rng, size)
            save_png(folder / "ref" / f"{stem}.png", _to_uint8(base))
            save_png(folder / "p0" / f"{stem}.png", _distorted(base, rng))
            save_png(folder / "p1" / f"{stem}.png", _distorted(base, rng))
            np.save(folder / "judge" / f"{stem}.npy", np.array([h[index]], dtype=np.float64))
    for subset, count in (jnd or {}).items():
        folder = root / "jnd" / "val" / subset
        same = _labels("jnd", subset, count, judgments, rng)
        (folder / "same").mkdir(parents=True, exist_ok=True)
        for index in range(count):
            stem = f"{index:06d}"
            base = _smooth_image(rng, size)
            save_png(folder / "p0" / f"{stem}.png", _to_uint8(base))
            save_png(folder / "p1" / f"{stem}.png", _distorted(base, rng))
            np.save(folder / "same" / f"{stem}.npy", np.array([same[index]], dtype=np.float64))
    return root


def _to_uint8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.round(x * 255), 0, 255).astype(np.uint8)
