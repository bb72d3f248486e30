"""Tiny datasets in the exact on-disk layouts of TID2013, KADID-10k, CSIQ, LIVE, a MOS CSV and
NIGHTS, a stored (uncompressed) RAR archive writer, and a fabricated MOS run directory.

Images are 32x24 (the 4:3 shape of TID2013/KADID-10k at 1/16 scale); distorted images are the
reference plus noise whose strength grows with the level, and the scores fall with it, so cheap
metrics (l2, psnr, ssim) agree with them.

Example:
    >>> root = make_tid2013(tmp_path / "tid2013", types=(1, 10), refs=2, levels=3)
    >>> sorted(p.name for p in root.iterdir())
    ['distorted_images', 'mos_with_names.txt', 'reference_images']
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage

from iqa_bench.records import (
    DatasetRecord,
    EnvironmentRecord,
    FailedSampleRecord,
    MetricRecord,
    PackageRecord,
    RunManifest,
    TaskRecord,
    TimingsRecord,
    manifest_json,
)
from tests.run_fixture import bad_sample_record

W, H = 32, 24


def _base(rng: np.random.Generator, size: tuple[int, int] = (H, W)) -> np.ndarray:
    field = ndimage.gaussian_filter(rng.normal(size=(*size, 3)), sigma=(2, 2, 0))
    return (field - field.min()) / (np.ptp(field) + 1e-12)


def _save(path: Path, pixels: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.clip(np.round(pixels * 255), 0, 255).astype(np.uint8)).save(path)
    return path


def _distort(base: np.ndarray, strength: float, rng: np.random.Generator) -> np.ndarray:
    return base + rng.normal(0.0, 0.04 * strength, base.shape)


def _strength(level: int, rng: np.random.Generator) -> float:
    """A continuous distortion strength around ``level``, so scores do not sit in clusters."""
    return level - 0.5 + float(rng.uniform())


def _score(
    strength: float, levels: int, low: float, high: float, rng: np.random.Generator
) -> float:
    """A quality score falling with the strength, on [low, high] (higher = better)."""
    quality = 1.0 - strength / (levels + 0.5) + rng.normal(0.0, 0.05)
    return round(low + (high - low) * float(np.clip(quality, 0.0, 1.0)), 5)


def make_tid2013(
    root: Path, types: Sequence[int] = (1, 8, 10), refs: int = 3, levels: int = 5, seed: int = 0
) -> Path:
    """TID2013 layout: ``mos_with_names.txt``, ``distorted_images/``, ``reference_images/``.

    Letter case is mixed as in the real archive (``I01_01_1.bmp``, ``i01_08_2.bmp``, ``i03.bmp``).
    """
    rng = np.random.default_rng(seed)
    lines = []
    for r in range(1, refs + 1):
        base = _base(rng)
        ref_name = f"I{r:02d}.BMP" if r < refs else f"i{r:02d}.bmp"
        _save(root / "reference_images" / ref_name, base)
        for t in types:
            for level in range(1, levels + 1):
                name = f"{'I' if level == 1 else 'i'}{r:02d}_{t:02d}_{level}.bmp"
                strength = _strength(level, rng)
                _save(root / "distorted_images" / name, _distort(base, strength, rng))
                lines.append(f"{_score(strength, levels, 0.0, 9.0, rng):.5f} {name}")
    (root / "mos_with_names.txt").write_text("\n".join(lines) + "\n")
    return root


def make_kadid10k(
    root: Path, types: Sequence[int] = (1, 10, 25), refs: int = 3, levels: int = 5, seed: int = 0
) -> Path:
    """KADID-10k layout: ``dmos.csv`` (dist_img,ref_img,dmos,var) and ``images/``."""
    rng = np.random.default_rng(seed)
    rows = ["dist_img,ref_img,dmos,var"]
    for r in range(1, refs + 1):
        base = _base(rng)
        _save(root / "images" / f"I{r:02d}.png", base)
        for t in types:
            for level in range(1, levels + 1):
                name = f"I{r:02d}_{t:02d}_{level:02d}.png"
                strength = _strength(level, rng)
                _save(root / "images" / name, _distort(base, strength, rng))
                rows.append(f"{name},I{r:02d}.png,{_score(strength, levels, 1.0, 5.0, rng)},0.5")
    (root / "dmos.csv").write_text("\n".join(rows) + "\n")
    return root


#: CSIQ's spreadsheet spelling of each type, its folder and its file-name token.
CSIQ_TYPES = (
    ("noise", "awgn", "AWGN"),
    ("jpeg", "jpeg", "JPEG"),
    ("jpeg 2000", "jpeg2000", "jpeg2000"),
    ("f noise", "fnoise", "fnoise"),
    ("blur", "blur", "BLUR"),
    ("contrast", "contrast", "contrast"),
)


def make_csiq(
    root: Path,
    images: Sequence[str] = ("1600", "boston"),
    levels: int = 4,
    xlsx: bool = True,
    seed: int = 0,
) -> Path:
    """CSIQ layout: ``src_imgs/``, ``dst_imgs/<type>/<image>.<TOKEN>.<level>.png`` and either
    ``csiq.DMOS.xlsx`` (three title rows above the header, numeric image names as numbers) or
    ``csiq_dmos.csv``. DMOS in [0, 1], higher = worse.
    """
    rng = np.random.default_rng(seed)
    header = ["image", "dst_idx", "dst_type", "dst_lev", "dmos_std", "dmos"]
    table: list[list[object]] = []
    for image in images:
        base = _base(rng)
        _save(root / "src_imgs" / f"{image}.png", base)
        for idx, (kind, folder, token) in enumerate(CSIQ_TYPES, 1):
            for level in range(1, levels + 1):
                strength = _strength(level, rng)
                _save(
                    root / "dst_imgs" / folder / f"{image}.{token}.{level}.png",
                    _distort(base, strength, rng),
                )
                dmos = 1.0 - _score(strength, levels, 0.0, 1.0, rng)
                cell = int(image) if image.isdigit() else image
                table.append([cell, idx, kind, level, 0.05, round(dmos, 6)])
    if xlsx:
        import openpyxl

        book = openpyxl.Workbook()
        sheet = book.active
        sheet.title = "all_by_image"
        for row in (["CSIQ DMOS"], [], ["sorted by image"], header, *table):
            sheet.append(row)
        book.save(root / "csiq.DMOS.xlsx")
    else:
        lines = [",".join(header)] + [",".join(str(c) for c in row) for row in table]
        (root / "csiq_dmos.csv").write_text("\n".join(lines) + "\n")
    return root


LIVE_FOLDERS = (("jp2k", 227), ("jpeg", 233), ("wn", 174), ("gblur", 174), ("fastfading", 174))


def make_live(root: Path, per_folder: int = 3, realigned: bool = True, seed: int = 0) -> Path:
    """LIVE release 2 layout with all 982 score entries; only the first ``per_folder`` entries of
    each folder are distorted images (the rest are flagged in ``orgs`` as references, which the
    adapter skips without looking for their files). DMOS about 0-100, higher = worse.
    """
    from scipy.io import savemat

    rng = np.random.default_rng(seed)
    refs = [f"ref{r}.bmp" for r in range(3)]
    bases = [_base(rng) for _ in refs]
    for name, base in zip(refs, bases, strict=True):
        _save(root / "refimgs" / name, base)
    dmos, orgs, names = [], [], []
    for folder, size in LIVE_FOLDERS:
        for k in range(1, size + 1):
            r = k % len(refs)
            names.append(refs[r])
            real = k <= per_folder
            orgs.append(0 if real else 1)
            strength = _strength(k, rng)
            if real:
                _save(root / folder / f"img{k}.bmp", _distort(bases[r], strength, rng))
            dmos.append(100.0 - _score(strength, per_folder, 0.0, 100.0, rng) if real else 0.0)
    cells = np.empty((1, len(names)), dtype=object)
    for i, name in enumerate(names):
        cells[0, i] = name
    savemat(root / "refnames_all.mat", {"refnames_all": cells})
    key, file = ("dmos_new", "dmos_realigned.mat") if realigned else ("dmos", "dmos.mat")
    savemat(root / file, {key: np.array([dmos]), "orgs": np.array([orgs])})
    return root


def make_mos_csv(
    root: Path,
    column: str = "dmos",
    types: Sequence[str] = ("blur", "noise"),
    n: int = 4,
    seed: int = 0,
) -> Path:
    """A ``mos-folder`` study: ``root/mos.csv`` with ref,dist,<column>,type,level."""
    rng = np.random.default_rng(seed)
    rows = [f"ref,dist,{column},type,level"]
    for t in types:
        for i in range(1, n + 1):
            base = _base(rng)
            strength = _strength(i, rng)
            _save(root / "refs" / f"{t}{i}.png", base)
            _save(root / "dist" / f"{t}{i}.png", _distort(base, strength, rng))
            quality = _score(strength, n, 0.0, 100.0, rng)
            value = 100.0 - quality if column == "dmos" else quality
            rows.append(f"refs/{t}{i}.png,dist/{t}{i}.png,{value},{t},{i}")
    (root / "mos.csv").write_text("\n".join(rows) + "\n")
    return root


NIGHTS_HEADER = (
    "id,left_vote,right_vote,votes,ref_path,left_path,right_path,prompt,split,is_imagenet"
)


@dataclass(frozen=True)
class NightsRow:
    """One triplet of the NIGHTS fixture (votes as counts)."""

    id: int
    left: float
    right: float
    votes: int
    split: str
    imagenet: bool


def make_nights(root: Path, rows: Sequence[NightsRow], seed: int = 0) -> Path:
    """NIGHTS layout: ``root/nights/{data.csv, ref/000/NNN.png, distort/000/NNN_{0,1}.png}``."""
    rng = np.random.default_rng(seed)
    home = root / "nights"
    lines = [NIGHTS_HEADER]
    for row in rows:
        folder, stem = f"{row.id // 1000:03d}", f"{row.id % 1000:03d}"
        base = _base(rng, (16, 16))
        _save(home / "ref" / folder / f"{stem}.png", base)
        _save(home / "distort" / folder / f"{stem}_0.png", _distort(base, 1, rng))
        _save(home / "distort" / folder / f"{stem}_1.png", _distort(base, 3, rng))
        lines.append(
            f"{row.id},{row.left},{row.right},{row.votes},ref/{folder}/{stem}.png,"
            f"distort/{folder}/{stem}_0.png,distort/{folder}/{stem}_1.png,"
            f"An image of a cat,{row.split},{row.imagenet}"
        )
    home.mkdir(parents=True, exist_ok=True)
    (home / "data.csv").write_text("\n".join(lines) + "\n")
    return home


def write_stored_rar(path: Path, files: dict[str, bytes], method: int = 0x30) -> Path:
    """A RAR 1.5-4.x archive of uncompressed ("stored", method 0x30) members, which ``rarfile``
    reads without any system tool. ``method=0x33`` labels the members as compressed instead
    (their bytes are then garbage to a decompressor), to exercise the missing-tool path.
    """

    def block(kind: int, flags: int, body: bytes) -> bytes:
        head = struct.pack("<BHH", kind, flags, 7 + len(body)) + body
        return struct.pack("<H", zlib.crc32(head) & 0xFFFF) + head

    out = b"Rar!\x1a\x07\x00" + block(0x73, 0, b"\0" * 6)
    dos_time = (2024 - 1980) << 25 | 1 << 21 | 1 << 16
    for name, data in files.items():
        raw = name.encode()
        body = struct.pack(
            "<IIBIIBBHI",
            len(data),
            len(data),
            3,
            zlib.crc32(data),
            dos_time,
            20,
            method,
            len(raw),
            0o100644,
        )
        out += block(0x74, 0x8000, body + raw) + data
    out += block(0x7B, 0x4000, b"")
    path.write_bytes(out)
    return path


# -- fabricated MOS run directory -------------------------------------------------------------


@dataclass(frozen=True)
class FakeMOSMetric:
    """A fabricated metric: its distance is ``sign * quality_deficit + noise``."""

    name: str
    group: str
    noise: float
    higher_is_better: bool = False
    sign: float = 1.0  # -1 makes a metric that ranks images backwards


DEFAULT_MOS_METRICS = (
    FakeMOSMetric("lpips-alex", "lpips", 0.05),
    FakeMOSMetric("l2", "classical", 0.4),
    FakeMOSMetric("ssim", "classical", 0.2, higher_is_better=True),
    FakeMOSMetric("backwards", "custom", 0.2, sign=-1.0),
)


def make_mos_run(
    root: Path,
    *,
    run_id: str = "20261126-131500-tid2013",
    dataset: str = "tid2013",
    higher_is_better_mos: bool = True,
    types: Sequence[str] = ("gaussian-noise", "jpeg", "gaussian-blur"),
    n_per_type: int = 30,
    metrics: Sequence[FakeMOSMetric] = DEFAULT_MOS_METRICS,
    failed: Sequence[int] = (),
    bad_samples: Sequence[dict[str, str]] = (),
    resize: int | None = None,
    seed: int = 0,
) -> Path:
    """Writes ``root/<run_id>/`` with manifest, ``judgments/mos.npz`` and ``scores/*/mos.npz``.

    A latent quality in [0, 1] per image gives MOS = 9 * quality (or DMOS = 100 * (1 - quality));
    each metric's distance grows as quality falls, plus noise (similarities are stored as
    ``1 - distance``, as a similarity would be). ``failed`` positions get NaN scores (failed while
    scoring); ``bad_samples`` are written as the manifest's entries (dropped when opening the
    dataset, so in no judgments or scores file).
    """
    rng = np.random.default_rng(seed)
    run_dir = Path(root) / run_id
    (run_dir / "judgments").mkdir(parents=True)
    ids = [f"{t}/i{i:03d}" for t in types for i in range(n_per_type)]
    subset = [t for t in types for _ in range(n_per_type)]
    quality = rng.uniform(0.0, 1.0, len(ids))
    mos = 9.0 * quality if higher_is_better_mos else 100.0 * (1.0 - quality)
    np.savez(
        run_dir / "judgments" / "mos.npz", sample_id=np.array(ids), subset=np.array(subset), mos=mos
    )
    entries = {}
    for m in metrics:
        d = m.sign * (1.0 - quality) + m.noise * rng.normal(size=len(ids))
        score = 1.0 - d if m.higher_is_better else d
        score[list(failed)] = np.nan
        (run_dir / "scores" / m.name).mkdir(parents=True)
        np.savez(
            run_dir / "scores" / m.name / "mos.npz", sample_id=np.array(ids[::-1]), d=score[::-1]
        )
        entries[m.name] = MetricRecord(
            name=m.name,
            status="ok",
            card_version=1,
            type="fake",
            group=m.group,
            higher_is_better=m.higher_is_better,
            description="fabricated",
            timings={"mos": 0.1},
        )
    manifest = RunManifest(
        run_id=run_id,
        created="2026-11-26T13:15:00+00:00",
        package=PackageRecord(version="0.1.0", git_commit="abc123def456", git_dirty=False),
        environment=EnvironmentRecord(python="3.11.7"),
        dataset=DatasetRecord(
            name=dataset,
            card_version=1,
            adapter=dataset,
            synthetic=False,
            root=f"/data/{dataset}",
            split="all",
            mos_higher_is_better=higher_is_better_mos,
            description="fabricated MOS judgments for tests",
            source="tests/mos_fixture.py",
        ),
        device="cpu",
        dtype="fp32",
        batch_size=64,
        resize=resize,
        tasks={"mos": TaskRecord(len(ids), {t: n_per_type for t in types})},
        metrics=entries,
        failed_samples=tuple(
            FailedSampleRecord("mos", ids[i], "x.bmp", "bad", tuple(entries)) for i in failed
        ),
        bad_samples=tuple(bad_sample_record(e) for e in bad_samples),
        timings=TimingsRecord(total_s=1.0),
    )
    (run_dir / "manifest.json").write_text(manifest_json(manifest))
    return run_dir
