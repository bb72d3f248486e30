"""The embedded ``equal-mse`` dataset: 2AFC triplets whose two sides have the same pixel error.

Judgments here are CONSTRUCTED by a fixed rule, never collected from people. Each triplet holds a
64x64 crop of a photograph shipped in scikit-image (``ref``) and two changes of it with equal
mean squared error on the stored 8-bit images:

- a *benign* change: a global photometric one (mean luminance shift, contrast stretch; subset
  ``photometric``) or a small geometric one (translation by at most 2 pixels, rotation by at
  most 1 degree; subset ``geometric``);
- a *structural* change: Gaussian noise, impulse (salt-and-pepper) noise, Gaussian blur or JPEG
  compression.

The rule labels the benign side closer (``h`` is 1.0 when it is ``p1``, else 0.0). Wang & Bovik,
"Mean squared error: love it or leave it?", IEEE Signal Processing Magazine 26(1), 2009, Fig. 2,
shows these changes at (nearly) equal MSE, and the photometric and geometric ones as the least
visible. The MSEs match within ``MSE_TOLERANCE`` and which side's is larger is balanced within
each subset, so L2 and PSNR score exactly 50% without a single tie. There are no JND pairs: no
documented rule turns these changes into a fraction of people saying "same".

The folder gets a ``GENERATED.json`` marker, a ``README.md`` with the rule and its sources, and
``construction.csv`` (every triplet's changes, amounts and MSEs).

Example:
    >>> root = generate_equal_mse(tmp_path / "equal-mse", {"per_subset": 4})
    >>> sorted(p.name for p in (root / "2afc" / "val").iterdir())
    ['geometric', 'photometric']
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ..errors import InputError
from ..images import write_png
from .base import MARKER_NAME, read_marker, register_adapter
from .generated import GeneratedBAPPSDataset, install_generated, merge_params
from .synthetic import SOURCE_IMAGES, _sources, _to_uint8, _versions

GENERATOR_VERSION = 1
NOTICE = (
    "CONSTRUCTED judgments: set by a fixed rule from documented perceptual effects, NOT "
    "collected from people; never cite these scores as agreement with human perception"
)
DEFAULT_PARAMS: dict[str, Any] = {"seed": 0, "patch_size": 64, "per_subset": 160}
#: Benign changes per subset; the rule judges them closer than a structural change.
BENIGN = {"photometric": ("luminance", "contrast"), "geometric": ("shift", "rotation")}
STRUCTURAL = ("gaussian-noise", "impulse-noise", "blur", "jpeg")
#: Largest benign amounts: grey levels / 255, contrast factor change, pixels, degrees.
BENIGN_CAP = {"luminance": 0.25, "contrast": 0.5, "shift": 2.0, "rotation": 1.0}
#: The structural change's RMS target, grey levels, drawn log-uniformly.
RMS_RANGE = (2.0, 16.0)
#: Largest relative difference of the two sides' MSE on the stored 8-bit images.
MSE_TOLERANCE = 0.005
PAD = 8  # margin around the crop that geometric changes move into view
_ATTEMPTS = 200


def _ndimage():
    """scipy.ndimage, imported when the set is generated, not whenever datasets are imported."""
    from scipy import ndimage

    return ndimage


def resolve_params(params: Mapping[str, Any] | None) -> dict[str, Any]:
    """Card params merged over ``DEFAULT_PARAMS`` and validated.

    Raises:
        InputError: On an unknown key (with suggestions), a non-integer value, a ``patch_size``
            under 16 or an odd or non-positive ``per_subset``.

    Example:
        >>> resolve_params({"per_subset": 10})["per_subset"]
        10
    """
    merged = merge_params("equal-mse", DEFAULT_PARAMS, params)
    for key, value in merged.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise InputError(
                f"equal-mse dataset: param {key!r} = {value!r} must be an integer >= 0."
            )
    if merged["patch_size"] < 16:
        raise InputError(f"equal-mse dataset: patch_size {merged['patch_size']} must be >= 16.")
    if merged["per_subset"] < 2 or merged["per_subset"] % 2:
        raise InputError(
            f"equal-mse dataset: per_subset {merged['per_subset']} must be even and >= 2 (half "
            "the triplets give the benign side the larger MSE); e.g. 160."
        )
    return merged


# -- structural changes: float image in [0, 1], strength in [0, 1], seed of their random field --


def _gaussian_noise(x: np.ndarray, t: float, seed: int) -> np.ndarray:
    return x + 0.3 * t * np.random.default_rng(seed).normal(size=x.shape)


def _impulse_noise(x: np.ndarray, t: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    hit, salt = rng.random(x.shape[:2]), rng.random(x.shape[:2]) < 0.5
    out = x.copy()
    out[hit < 0.3 * t] = salt[hit < 0.3 * t, None]
    return out


def _blur(x: np.ndarray, t: float, seed: int) -> np.ndarray:
    return _ndimage().gaussian_filter(x, sigma=(4.0 * t, 4.0 * t, 0), mode="reflect")


def _jpeg(x: np.ndarray, t: float, seed: int) -> np.ndarray:
    buffer = io.BytesIO()
    Image.fromarray(_to_uint8(x)).save(buffer, format="JPEG", quality=round(100 - 99 * t))
    return np.asarray(Image.open(buffer).convert("RGB"), dtype=np.float64) / 255.0


STRUCTURAL_CHANGES: dict[str, Callable[[np.ndarray, float, int], np.ndarray]] = {
    "gaussian-noise": _gaussian_noise,
    "impulse-noise": _impulse_noise,
    "blur": _blur,
    "jpeg": _jpeg,
}


def _sse(a: np.ndarray, b: np.ndarray) -> int:
    """Sum of squared differences of two uint8 images, in grey levels (exact integers)."""
    return int(np.sum((a.astype(np.int64) - b.astype(np.int64)) ** 2))


def _structural(
    ref: np.ndarray, family: str, target_sse: float, seed: int
) -> tuple[np.ndarray, float]:
    """The structural change whose SSE is closest to ``target_sse`` (bisection on strength)."""
    change, ref_u8 = STRUCTURAL_CHANGES[family], _to_uint8(ref)
    low, high, best, best_t = 0.0, 1.0, ref_u8, 0.0
    for _ in range(12):
        t = (low + high) / 2
        out = _to_uint8(change(ref, t, seed))
        sse = _sse(out, ref_u8)
        if abs(sse - target_sse) < abs(_sse(best, ref_u8) - target_sse):
            best, best_t = out, t
        low, high = (t, high) if sse < target_sse else (low, t)
    return best, best_t


# -- benign changes: rendered from the padded crop, amount in [0, BENIGN_CAP[kind]] ------------


class _Benign:
    """Renders one benign change of a padded crop at any amount (one draw of its direction)."""

    def __init__(self, padded: np.ndarray, kind: str, rng: np.random.Generator) -> None:
        self.kind, self.size = kind, padded.shape[0] - 2 * PAD
        self.center = padded[PAD:-PAD, PAD:-PAD]
        self.sign = float(rng.choice((-1.0, 1.0)))
        self.angle = float(rng.uniform(0.0, 2.0 * np.pi))  # direction of a translation
        if kind in ("shift", "rotation"):
            # Cubic-spline coefficients once per crop; each amount then only resamples them.
            self.coeffs = [_ndimage().spline_filter(padded[..., c], order=3) for c in range(3)]
            grid = np.mgrid[0 : self.size, 0 : self.size].astype(np.float64) + PAD
            self.mid = PAD + (self.size - 1) / 2.0
            self.grid = grid - self.mid

    def render(self, amount: float) -> np.ndarray:
        if self.kind == "luminance":
            return _to_uint8(self.center + self.sign * amount)
        if self.kind == "contrast":
            mean = self.center.mean()
            return _to_uint8((self.center - mean) * (1.0 + self.sign * amount) + mean)
        if self.kind == "shift":
            offset = amount * np.array([np.sin(self.angle), np.cos(self.angle)])
            coords = self.grid + self.mid - offset[:, None, None]
        else:
            theta = np.deg2rad(self.sign * amount)
            cos, sin = np.cos(theta), np.sin(theta)
            y, x = self.grid
            coords = np.stack([cos * y - sin * x, sin * y + cos * x]) + self.mid
        channels = [
            _ndimage().map_coordinates(c, coords, order=3, mode="mirror", prefilter=False)
            for c in self.coeffs
        ]
        return _to_uint8(np.stack(channels, axis=-1))


def _matched(benign: _Benign, ref_u8: np.ndarray, target: int, larger: bool) -> tuple | None:
    """Bisect the benign amount until its SSE brackets ``target`` within the tolerance.

    Returns ``(image, amount)`` with the SSE strictly above ``target`` when ``larger`` and
    strictly below otherwise, or ``None`` when the change cannot get there within its cap.
    """
    tolerance = MSE_TOLERANCE * target
    low, high = (0.0, ref_u8), (BENIGN_CAP[benign.kind], benign.render(BENIGN_CAP[benign.kind]))
    if _sse(high[1], ref_u8) <= target:
        return None
    for _ in range(40):
        below, above = target - _sse(low[1], ref_u8), _sse(high[1], ref_u8) - target
        if above <= tolerance and 0 < below <= tolerance:
            break
        amount = (low[0] + high[0]) / 2
        image = benign.render(amount)
        if _sse(image, ref_u8) > target:
            high = (amount, image)
        else:
            low = (amount, image)
    amount, image = high if larger else low
    gap = abs(_sse(image, ref_u8) - target)
    return (image, amount) if 0 < gap <= tolerance else None


def _crop(rng: np.random.Generator, size: int) -> np.ndarray:
    """A random crop with a ``PAD`` margin, float in [0, 1], not flat inside the margin.

    The photo is low-passed and taken at half resolution, so pixel values fall between grey
    levels: a luminance shift then rounds differently per pixel and its MSE can be matched
    finely (on 8-bit values every pixel would jump by the same whole level at once).
    """
    sources, side = _sources(), 2 * (size + 2 * PAD)
    for _ in range(50):
        image = sources[rng.integers(len(sources))]
        top = rng.integers(image.shape[0] - side + 1)
        left = rng.integers(image.shape[1] - side + 1)
        region = image[top : top + side, left : left + side] / 255.0
        padded = _ndimage().gaussian_filter(region, sigma=(1.0, 1.0, 0))[::2, ::2]
        if padded[PAD:-PAD, PAD:-PAD].std() > 0.05:  # flat sky hides every change
            return padded
    return padded


def _triplet(rng: np.random.Generator, size: int, kind: str, family: str, larger: bool) -> dict:
    """One benign/structural pair of equal MSE (new crops and strengths until one fits)."""
    for _ in range(_ATTEMPTS):
        padded = _crop(rng, size)
        ref_u8 = _to_uint8(padded[PAD:-PAD, PAD:-PAD])
        rms = float(np.exp(rng.uniform(*np.log(RMS_RANGE))))
        target = rms**2 * ref_u8.size
        seed = int(rng.integers(2**31))
        structural, strength = _structural(ref_u8 / 255.0, family, target, seed)
        sse = _sse(structural, ref_u8)
        benign = _Benign(padded, kind, rng)
        if not 0.75 * RMS_RANGE[0] <= np.sqrt(sse / ref_u8.size) <= 1.25 * RMS_RANGE[1]:
            continue  # this crop cannot show that much blur or compression
        found = _matched(benign, ref_u8, sse, larger)
        if found is not None:
            return {
                "ref": ref_u8,
                "benign": found[0],
                "structural": structural,
                "amount": found[1],
                "strength": strength,
                "target_rms": rms,
            }
    raise RuntimeError(f"no {kind}/{family} triplet within {_ATTEMPTS} crops; widen RMS_RANGE")


def _balanced(values: Iterable[Any], count: int, rng: np.random.Generator) -> list[Any]:
    """``count`` items cycling through ``values`` in a shuffled order (equal shares)."""
    values = list(values)
    order = np.resize(np.arange(len(values)), count)
    rng.shuffle(order)
    return [values[i] for i in order.tolist()]


def _write_subset(
    folder: Path, subset: str, count: int, size: int, rng: np.random.Generator
) -> list[dict[str, Any]]:
    """Write one subset's triplets and judgments; return one construction row per triplet."""
    plan = zip(
        _balanced(BENIGN[subset], count, rng),
        _balanced(STRUCTURAL, count, rng),
        _balanced((True, False), count, rng),  # the benign side has the larger MSE
        _balanced((True, False), count, rng),  # the benign side is p1
        strict=True,
    )
    (folder / "judge").mkdir(parents=True, exist_ok=True)
    rows = []
    for index, (kind, family, larger, benign_p1) in enumerate(plan):
        t = _triplet(rng, size, kind, family, larger)
        p0, p1 = (t["structural"], t["benign"]) if benign_p1 else (t["benign"], t["structural"])
        stem = f"{index:06d}"
        for role, image in (("ref", t["ref"]), ("p0", p0), ("p1", p1)):
            write_png(folder / role / f"{stem}.png", image)
        h = 1.0 if benign_p1 else 0.0
        np.save(folder / "judge" / f"{stem}.npy", np.array([h], dtype=np.float64))
        mse0, mse1 = (_sse(p, t["ref"]) / t["ref"].size for p in (p0, p1))
        rows.append(
            {
                "sample_id": f"val/{subset}/{stem}",
                "benign": kind,
                "benign_amount": round(float(t["amount"]), 6),
                "structural": family,
                "structural_strength": round(float(t["strength"]), 6),
                "closer_by_rule": "p1" if benign_p1 else "p0",
                "h": h,
                "mse_p0": round(mse0, 6),
                "mse_p1": round(mse1, 6),
                "relative_mse_gap": round(abs(mse0 - mse1) / max(mse0, mse1), 8),
            }
        )
    return rows


def _gap_figures(rows: list[dict[str, Any]]) -> dict[str, float]:
    gaps = np.array([r["relative_mse_gap"] for r in rows])
    rms = np.sqrt([min(r["mse_p0"], r["mse_p1"]) for r in rows])
    return {
        "relative_mse_gap_max": round(float(gaps.max()), 8),
        "relative_mse_gap_median": round(float(np.median(gaps)), 8),
        "rms_grey_levels_min": round(float(rms.min()), 3),
        "rms_grey_levels_max": round(float(rms.max()), 3),
    }


_README = """\
# equal-mse: 2AFC triplets of equal pixel error (generated by iqa_bench)

**{notice}.**

Generator `iqa_bench.datasets.equal_mse` version {version}, parameters {params}.
Sources: crops of scikit-image's sample images ({sources}).

## Construction rule

Every triplet is a {size}x{size} crop `ref` and two changes of it, `p0` and `p1`, with the same
mean squared error on these stored 8-bit files: one side is *benign*, the other *structural*.

- Benign, subset `photometric`: a mean luminance shift (up to 64 grey levels, either way) or a
  contrast stretch or reduction about the mean (factor 0.5-1.5).
- Benign, subset `geometric`: a translation by at most 2 pixels in a random direction, or a
  rotation by at most 1 degree about the centre (cubic-spline resampling of the larger photo, so
  no border enters the crop).
- Structural: Gaussian noise, impulse (salt-and-pepper) noise, Gaussian blur or JPEG
  compression, each with a quarter of the triplets of a subset. Its strength gives an RMS change
  near a target drawn log-uniformly between {rms_low:g} and {rms_high:g} grey levels; the benign
  amount is then bisected until its MSE matches.
- **Rule:** the benign side is closer to `ref` (`h` = 1.0 when it is `p1`, 0.0 when `p0`).

Sources of the rule: Z. Wang and A. C. Bovik, "Mean squared error: love it or leave it? A new
look at signal fidelity measures", IEEE Signal Processing Magazine 26(1):98-117, 2009, Fig. 2:
one image under a contrast stretch, a mean luminance shift, Gaussian noise, impulse noise, JPEG
compression and blur, all at nearly the same MSE, of which the photometric changes look almost
like the original and the others clearly damaged; in the same figure, small spatial shifts and
rotations look like the original at a *larger* MSE than the damaged images. Z. Wang and E. P.
Simoncelli, "Translation insensitive image similarity in complex wavelet domain", ICASSP 2005,
and M. P. Sampat et al., "Complex wavelet structural similarity: a new image similarity index",
IEEE Transactions on Image Processing 18(11):2385-2401, 2009, argue the geometric case: small
translations and rotations change pixels a lot and structure little.

## Equal MSE, measured

Which side has the larger MSE is balanced within each subset (half the triplets each way) and
independent of which side is benign, so L2 and PSNR score exactly 50% with no tie: no two sides
have the same MSE. Relative MSE gap between `p0` and `p1` (difference over the larger): median
{gap_median:.2e}, at most {gap_max:.2e} (tolerance {tolerance:g}). The smaller side's RMS change
runs from {rms_min} to {rms_max} grey levels. `construction.csv` lists every triplet's changes,
amounts and MSEs.

## What a table on this set does and does not show

It shows whether a metric tells a change in *kind* apart at equal pixel error: which metrics
tolerate global photometric or small geometric changes, per subset. It does not show agreement
with people: no one judged these images, some triplets (a strong luminance shift against a faint
blur) may well be ones where people would disagree with the rule, and the rule was published by
the authors of SSIM as the argument for SSIM, so SSIM's success on `photometric` is partly by
design. All judgments are 0 or 1, so the human-ceiling row is omitted from every report. There
are no JND pairs: no documented rule turns these changes into a fraction of people saying
"same".
"""


def _readme(params: dict[str, Any], figures: dict[str, float]) -> str:
    return _README.format(
        notice=NOTICE,
        version=GENERATOR_VERSION,
        params=json.dumps(params, sort_keys=True),
        sources=", ".join(SOURCE_IMAGES),
        size=params["patch_size"],
        rms_low=RMS_RANGE[0],
        rms_high=RMS_RANGE[1],
        gap_median=figures["relative_mse_gap_median"],
        gap_max=figures["relative_mse_gap_max"],
        tolerance=MSE_TOLERANCE,
        rms_min=figures["rms_grey_levels_min"],
        rms_max=figures["rms_grey_levels_max"],
    )


def _build(folder: Path, params: dict[str, Any]) -> None:
    rows: list[dict[str, Any]] = []
    for stream, subset in enumerate(BENIGN):
        # One random stream per subset: resizing one subset leaves the other intact.
        rng = np.random.default_rng([params["seed"], stream])
        rows += _write_subset(
            folder / "2afc" / "val" / subset,
            subset,
            params["per_subset"],
            params["patch_size"],
            rng,
        )
    with (folder / "construction.csv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    figures = _gap_figures(rows)
    marker = {
        "generator": __name__,
        "generator_version": GENERATOR_VERSION,
        "synthetic": True,
        "judgments": "constructed",
        "notice": NOTICE,
        "human_ceiling": False,
        "params": params,
        "counts": {f"2afc/val/{s}": params["per_subset"] for s in BENIGN},
        "subset_order": {"2afc/val": list(BENIGN)},
        "equal_mse": figures,
        "sources": "crops of scikit-image sample images: " + ", ".join(SOURCE_IMAGES),
        "library_versions": _versions(),
    }
    (folder / MARKER_NAME).write_text(json.dumps(marker, indent=2) + "\n")
    (folder / "README.md").write_text(_readme(params, figures))


def _is_current(root: Path, params: dict[str, Any]) -> bool:
    marker = read_marker(root)
    return bool(
        marker
        and marker.get("generator") == __name__
        and marker.get("generator_version") == GENERATOR_VERSION
        and marker.get("params") == json.loads(json.dumps(params))
    )


def generate_equal_mse(
    root: Path, params: Mapping[str, Any] | None = None, force: bool = False
) -> Path:
    """Generate the equal-MSE dataset into ``root`` unless an identical one is already there.

    Args:
        root: Destination folder (normally ``<data root>/equal-mse``).
        params: Overrides of ``DEFAULT_PARAMS`` (the card's ``params``).
        force: Regenerate even if the marker matches.

    Returns:
        ``root``.

    Raises:
        InputError: On invalid params.

    Example:
        >>> root = generate_equal_mse(tmp_path / "equal-mse", {"per_subset": 2})
        >>> json.loads((root / "GENERATED.json").read_text())["judgments"]
        'constructed'
    """
    resolved = resolve_params(params)
    return install_generated(
        Path(root),
        is_current=lambda folder: _is_current(folder, resolved),
        build=lambda folder: _build(folder, resolved),
        force=force,
    )


@register_adapter("equal-mse")
class EqualMSEDataset(GeneratedBAPPSDataset):
    """The generated equal-MSE dataset (see the module docstring), read with the BAPPS adapter.

    ``open_dataset("equal-mse")`` generates it into ``root`` first if missing or stale
    (:meth:`generate`); the constructor only reads. ``synthetic`` is True, and ``notice`` and
    ``human_ceiling`` come from the folder's marker like any generated folder's.

    Example:
        >>> from iqa_bench.config import load_dataset_card
        >>> EqualMSEDataset.generate(tmp_path / "equal-mse", load_dataset_card("equal-mse"))
        >>> ds = EqualMSEDataset(tmp_path / "equal-mse")
        >>> ds.synthetic, ds.human_ceiling, ds.tasks(), len(ds.samples("2afc"))
        (True, False, ('2afc',), 320)
    """

    generator = staticmethod(generate_equal_mse)
