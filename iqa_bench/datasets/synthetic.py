"""The embedded ``synthetic`` dataset: BAPPS layout, SYNTHETIC judgments constructed, not human.

Generated deterministically (seeded) on first use from 64x64 crops of the photographs shipped in
scikit-image (``skimage.data``), so the whole pipeline runs offline and fast. The judgments are
*constructed* from distortion strengths, never collected from people:

- 2AFC: ``p0`` and ``p1`` are the same distortion family at two strengths; the weaker one is the
  closer. ``h`` (fraction "preferring" p1) is 0.6/0.8/1.0 (or 0.4/0.2/0.0) for a strength gap of
  1/2/3+ levels; every eighth triplet is an exact tie (``p1`` is a copy of ``p0``, ``h = 0.5``).
- JND: one image of the pair is the other changed by a tiny (RMS ~1 grey level, ``same = 1``),
  small (3 levels, 2/3), moderate (7 levels, 1/3) or clearly visible (20 levels, 0) amount.

The folder gets a ``GENERATED.json`` marker (generator version, parameters, ``synthetic: true``)
and a README; changed parameters trigger regeneration. Scores on it test the software, not
agreement with people.

Example:
    >>> root = generate_synthetic(Path("/tmp/data/synthetic"), {"seed": 1})
    >>> sorted(p.name for p in (root / "2afc" / "val").iterdir())[:2]
    ['blur', 'color']
"""

from __future__ import annotations

import io
import json
from collections.abc import Mapping
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ..errors import InputError
from ..images import write_png
from .base import MARKER_NAME, read_marker, register_adapter
from .generated import GeneratedBAPPSDataset, install_generated, merge_params

GENERATOR_VERSION = 1
NOTICE = (
    "SYNTHETIC judgments: constructed from known distortion strengths, NOT collected from people. "
    "Use this dataset to test the software, never to claim agreement with human perception."
)
DEFAULT_PARAMS: dict[str, Any] = {
    "seed": 0,
    "patch_size": 64,
    "val_subsets": ["blur", "noise", "jpeg", "contrast", "color", "resample"],
    "val_per_subset": 64,
    "train_subsets": ["blur", "noise", "jpeg"],
    "train_per_subset": 32,
    "jnd_subsets": ["blur", "noise"],
    "jnd_per_subset": 100,
}
# Colour photographs and grey textures (stacked to RGB) that scikit-image ships in its wheel.
SOURCE_IMAGES = (
    "astronaut",
    "coffee",
    "chelsea",
    "rocket",
    "immunohistochemistry",
    "hubble_deep_field",
    "retina",
    "camera",
    "coins",
    "grass",
    "brick",
    "gravel",
)
TWOAFC_LEVELS = (0.12, 0.25, 0.4, 0.6, 0.85)  # normalised strengths, weakest first
GAP_TO_PREFERENCE = {1: 0.6, 2: 0.8}  # bigger gaps: 1.0
# (target RMS change in [0, 1] units, fraction "same"): from ~1 grey level to clearly visible.
JND_CLASSES = ((1.2 / 255, 1.0), (3.0 / 255, 2 / 3), (7.0 / 255, 1 / 3), (20.0 / 255, 0.0))


def _blur(x: np.ndarray, t: float, rng: np.random.Generator) -> np.ndarray:
    from scipy import ndimage  # only to generate: importing scipy costs every run ~0.5 s

    return ndimage.gaussian_filter(x, sigma=(0.2 + 3.0 * t, 0.2 + 3.0 * t, 0), mode="reflect")


def _noise(x: np.ndarray, t: float, rng: np.random.Generator) -> np.ndarray:
    return x + rng.normal(0.0, 0.16 * t, x.shape)


def _jpeg(x: np.ndarray, t: float, rng: np.random.Generator) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(_to_uint8(x)).save(buffer, format="JPEG", quality=round(95 - 90 * t))
    return np.asarray(Image.open(buffer).convert("RGB"), dtype=np.float64) / 255.0


def _contrast(x: np.ndarray, t: float, rng: np.random.Generator) -> np.ndarray:
    mean = x.mean()
    return (x - mean) * (1.0 - 0.7 * t) + mean + rng.choice((-1.0, 1.0)) * 0.15 * t


def _color(x: np.ndarray, t: float, rng: np.random.Generator) -> np.ndarray:
    direction = rng.normal(size=3)
    direction -= direction.mean()  # a shift in chroma, not in brightness
    return x + direction / np.linalg.norm(direction) * 0.3 * t


def _resample(x: np.ndarray, t: float, rng: np.random.Generator) -> np.ndarray:
    size = x.shape[0]
    small = max(2, round(size / (1.0 + 5.0 * t)))
    image = Image.fromarray(_to_uint8(x)).resize((small, small), Image.Resampling.BICUBIC)
    return np.asarray(image.resize((size, size), Image.Resampling.BICUBIC), np.float64) / 255.0


DISTORTIONS = {
    "blur": _blur,
    "noise": _noise,
    "jpeg": _jpeg,
    "contrast": _contrast,
    "color": _color,
    "resample": _resample,
}


def _to_uint8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.round(x * 255.0), 0, 255).astype(np.uint8)


@lru_cache(maxsize=1)
def _sources() -> tuple[np.ndarray, ...]:
    import skimage.data  # only the generator needs it; keeps `import iqa_bench.datasets` light

    images = []
    for name in SOURCE_IMAGES:
        image = np.asarray(getattr(skimage.data, name)())
        images.append(np.stack([image] * 3, axis=-1) if image.ndim == 2 else image[..., :3])
    return tuple(images)


def _crop(rng: np.random.Generator, size: int) -> np.ndarray:
    sources = _sources()
    for _ in range(50):
        image = sources[rng.integers(len(sources))]
        top = rng.integers(image.shape[0] - size + 1)
        left = rng.integers(image.shape[1] - size + 1)
        patch = image[top : top + size, left : left + size].astype(np.float64) / 255.0
        if patch.std() > 0.05:  # flat sky or black background would hide every distortion
            return patch
    return patch


def resolve_params(params: Mapping[str, Any] | None) -> dict[str, Any]:
    """Card params merged over ``DEFAULT_PARAMS`` and validated.

    Raises:
        InputError: On an unknown key (with suggestions), an unknown distortion family or a
            non-positive size.

    Example:
        >>> resolve_params({"val_per_subset": 10})["val_per_subset"]
        10
    """
    merged = merge_params("synthetic", DEFAULT_PARAMS, params)
    for key, value in merged.items():
        if key.endswith("_subsets"):
            unknown = [v for v in value if v not in DISTORTIONS]
            if unknown or len(set(value)) != len(value):
                raise InputError(
                    f"synthetic dataset: param {key!r} = {value!r} must list distinct families "
                    f"from {', '.join(DISTORTIONS)}."
                )
        elif isinstance(value, bool) or not isinstance(value, int) or value < (key != "seed"):
            raise InputError(
                f"synthetic dataset: param {key!r} = {value!r} must be an integer >= 1."
            )
    if merged["patch_size"] < 16:
        raise InputError(f"synthetic dataset: patch_size {merged['patch_size']} must be >= 16.")
    return merged


def _write_2afc(folder: Path, family: str, count: int, size: int, rng: np.random.Generator) -> None:
    distort = DISTORTIONS[family]
    for index in range(count):
        ref = _crop(rng, size)
        if index % 8 == 7:
            weak = strong = int(rng.integers(len(TWOAFC_LEVELS)))
        else:
            weak, strong = sorted(rng.choice(len(TWOAFC_LEVELS), size=2, replace=False).tolist())
        img_weak = _to_uint8(distort(ref, TWOAFC_LEVELS[weak], rng))
        if weak == strong:
            p0 = p1 = img_weak  # an exact tie: every metric must give d0 == d1
            h = 0.5
        else:
            img_strong = _to_uint8(distort(ref, TWOAFC_LEVELS[strong], rng))
            preference = GAP_TO_PREFERENCE.get(strong - weak, 1.0)
            weak_is_p1 = bool(rng.integers(2))
            p0, p1 = (img_strong, img_weak) if weak_is_p1 else (img_weak, img_strong)
            h = preference if weak_is_p1 else 1.0 - preference
        stem = f"{index:06d}"
        write_png(folder / "ref" / f"{stem}.png", _to_uint8(ref))
        write_png(folder / "p0" / f"{stem}.png", p0)
        write_png(folder / "p1" / f"{stem}.png", p1)
        (folder / "judge").mkdir(exist_ok=True)
        np.save(folder / "judge" / f"{stem}.npy", np.array([round(h, 6)], dtype=np.float64))


def _rms(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.sqrt(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))) / 255.0


def _change_by(
    clean: np.ndarray, family: str, target: float, seed: int
) -> tuple[np.ndarray, float]:
    """Distort ``clean`` so its RMS change is close to ``target`` (bisection on the strength)."""
    clean_u8 = _to_uint8(clean)
    low, high, best, best_rms = 0.0, 1.0, clean_u8, 0.0
    for _ in range(10):
        strength = (low + high) / 2
        # The same noise draw at every strength keeps the change monotonic in the strength.
        out = _to_uint8(DISTORTIONS[family](clean, strength, np.random.default_rng(seed)))
        rms = _rms(out, clean_u8)
        if abs(rms - target) < abs(best_rms - target):
            best, best_rms = out, rms
        low, high = (strength, high) if rms < target else (low, strength)
    return best, best_rms


def _write_jnd(folder: Path, family: str, count: int, size: int, rng: np.random.Generator) -> None:
    classes = np.resize(np.arange(len(JND_CLASSES)), count)
    rng.shuffle(classes)
    for index, cls in enumerate(classes.tolist()):
        target, same = JND_CLASSES[cls]
        for _ in range(20):  # smooth crops cannot show a visible blur: take another crop
            clean = _crop(rng, size)
            changed, rms = _change_by(clean, family, target, int(rng.integers(2**31)))
            if abs(rms - target) <= 0.25 * target:
                break
        pair = (_to_uint8(clean), changed) if rng.integers(2) else (changed, _to_uint8(clean))
        stem = f"{index:06d}"
        write_png(folder / "p0" / f"{stem}.png", pair[0])
        write_png(folder / "p1" / f"{stem}.png", pair[1])
        (folder / "same").mkdir(exist_ok=True)
        np.save(folder / "same" / f"{stem}.npy", np.array([same], dtype=np.float64))


def _versions() -> dict[str, str]:
    out = {}
    for dist in ("numpy", "scipy", "scikit-image", "pillow"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "unknown"
    return out


def _generate_into(folder: Path, params: dict[str, Any]) -> dict[str, int]:
    size, counts = params["patch_size"], {}
    plan = [
        ("2afc/val", params["val_subsets"], params["val_per_subset"], _write_2afc),
        ("2afc/train", params["train_subsets"], params["train_per_subset"], _write_2afc),
        ("jnd/val", params["jnd_subsets"], params["jnd_per_subset"], _write_jnd),
    ]
    for stream, (prefix, subsets, count, writer) in enumerate(plan):
        for family in subsets:
            # One random stream per (split, family): resizing one subset leaves the others intact.
            rng = np.random.default_rng([params["seed"], stream, list(DISTORTIONS).index(family)])
            writer(folder / prefix / family, family, count, size, rng)
            counts[f"{prefix}/{family}"] = count
    return counts


def _is_current(root: Path, params: dict[str, Any]) -> bool:
    marker = read_marker(root)
    return bool(
        marker
        and marker.get("generator_version") == GENERATOR_VERSION
        and marker.get("params") == json.loads(json.dumps(params))
    )


def generate_synthetic(
    root: Path, params: Mapping[str, Any] | None = None, force: bool = False
) -> Path:
    """Generate the synthetic dataset into ``root`` unless an identical one is already there.

    Writes into a hidden sibling folder and renames it into place, so readers never see a partial
    dataset and concurrent generators end with identical content.

    Args:
        root: Destination folder (normally ``<data root>/synthetic``).
        params: Overrides of ``DEFAULT_PARAMS`` (the card's ``params``).
        force: Regenerate even if the marker matches.

    Returns:
        ``root``.

    Raises:
        InputError: On invalid params.

    Example:
        >>> generate_synthetic(tmp_path / "synthetic", {"val_per_subset": 8}) == tmp_path / "synthetic"
        True
    """
    root = Path(root)
    resolved = resolve_params(params)

    def build(staging: Path) -> None:
        counts = _generate_into(staging, resolved)
        marker = {
            "generator": __name__,
            "generator_version": GENERATOR_VERSION,
            "synthetic": True,
            "judgments": NOTICE,
            "params": resolved,
            "counts": counts,
            "subset_order": {
                "2afc/val": resolved["val_subsets"],
                "2afc/train": resolved["train_subsets"],
                "jnd/val": resolved["jnd_subsets"],
            },
            "sources": "crops of scikit-image sample images: " + ", ".join(SOURCE_IMAGES),
            "library_versions": _versions(),
        }
        (staging / MARKER_NAME).write_text(json.dumps(marker, indent=2) + "\n")
        (staging / "README.txt").write_text(
            NOTICE + "\nGenerated by iqa_bench; see GENERATED.json.\n"
        )

    return install_generated(root, lambda r: _is_current(r, resolved), build, force=force)


@register_adapter("synthetic")
class SyntheticDataset(GeneratedBAPPSDataset):
    """The generated dataset (see the module docstring), read with the BAPPS adapter.

    ``open_dataset("synthetic")`` generates it into ``root`` first if missing or stale
    (:meth:`generate`); the constructor only reads. ``synthetic`` is always True.

    Example:
        >>> from iqa_bench.config import load_dataset_card
        >>> card = load_dataset_card("synthetic")
        >>> SyntheticDataset.generate(tmp_path / "synthetic", card)
        >>> ds = SyntheticDataset(tmp_path / "synthetic", card=card)
        >>> ds.synthetic, len(ds.samples("jnd"))
        (True, 200)
    """

    generator = staticmethod(generate_synthetic)
