"""The BAPPS adapter, ``open_dataset`` resolution and the BAPPS card."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from iqa_bench.config import load_dataset_card
from iqa_bench.datasets import (
    DATA_ENV,
    DATASETS,
    BAPPSDataset,
    JNDSample,
    TwoAFCSample,
    data_root,
    open_dataset,
    read_judgment,
)
from iqa_bench.datasets.bapps import read_small_npy
from iqa_bench.datasets.bapps_layout import make_bapps_layout
from iqa_bench.download import parse_archive_specs
from iqa_bench.images import read_image_uint8, write_png

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def small_bapps(bapps_layout) -> Path:
    return bapps_layout(
        {"deblur": 3, "traditional": 4, "zeta": 2, "cnn": 2, "alpha": 1},
        {"cnn": 3, "traditional": 2},
        judgments={"2afc": {"traditional": [0.0, 0.2, 0.8, 1.0]}, "jnd": {"cnn": [0, 1 / 3, 1]}},
    )


def test_path_opens_as_bapps_with_paper_subset_order_then_alphabetical(small_bapps: Path) -> None:
    ds = open_dataset(str(small_bapps))
    assert isinstance(ds, BAPPSDataset)
    assert ds.card is None and ds.version == 0 and ds.synthetic is False
    assert ds.name == "bapps" and ds.root == small_bapps
    assert ds.tasks() == ("2afc", "jnd")
    assert ds.subsets("2afc") == ("traditional", "cnn", "deblur", "alpha", "zeta")
    assert ds.subsets("jnd") == ("traditional", "cnn")
    assert len(ds.samples("2afc")) == 12 and len(ds.samples("jnd")) == 5


def test_samples_carry_ids_paths_and_the_supplied_judgments(small_bapps: Path) -> None:
    ds = open_dataset(small_bapps)
    traditional = [s for s in ds.samples("2afc") if s.subset == "traditional"]
    assert [s.h for s in traditional] == [0.0, 0.2, 0.8, 1.0]
    first = traditional[0]
    assert isinstance(first, TwoAFCSample)
    assert first.sample_id == "val/traditional/000000"
    assert first.ref == small_bapps / "2afc/val/traditional/ref/000000.png"
    assert first.p0.is_file() and first.p1.is_file()
    jnd = [s for s in ds.samples("jnd") if s.subset == "cnn"]
    assert isinstance(jnd[0], JNDSample)
    assert [s.sample_id for s in jnd] == ["val/cnn/000000", "val/cnn/000001", "val/cnn/000002"]
    assert [s.same for s in jnd] == pytest.approx([0.0, 1 / 3, 1.0])


def test_samples_returns_a_fresh_list_so_callers_cannot_corrupt_the_dataset(
    small_bapps: Path,
) -> None:
    ds = open_dataset(small_bapps)
    ds.samples("2afc").clear()
    assert len(ds.samples("2afc")) == 12


def test_train_split_is_read_and_missing_train_split_is_an_error(small_bapps: Path) -> None:
    with pytest.raises(FileNotFoundError, match=r"split 'train' not found"):
        open_dataset(small_bapps, split="train")
    make_bapps_layout(small_bapps, {"mix": 2, "cnn": 1, "traditional": 1}, None, split="train")
    ds = open_dataset(small_bapps, split="train")
    assert ds.subsets("2afc") == ("traditional", "cnn", "mix")
    assert ds.samples("2afc")[0].sample_id == "train/traditional/000000"


def test_only_present_tasks_are_listed_and_absent_task_is_an_error(tmp_path: Path) -> None:
    ds = open_dataset(make_bapps_layout(tmp_path / "j", None, {"cnn": 2}))
    assert ds.tasks() == ("jnd",)
    with pytest.raises(ValueError, match=r"no '2afc' samples; it has: jnd"):
        ds.samples("2afc")
    with pytest.raises(ValueError, match=r"task 'afc' is unknown"):
        ds.samples("afc")


def test_missing_image_stem_names_folder_and_first_missing_stem(small_bapps: Path) -> None:
    (small_bapps / "2afc/val/cnn/p1/000001.png").unlink()
    with pytest.raises(ValueError, match=r"cnn.*'000001' is missing from p1/"):
        open_dataset(small_bapps)


def test_missing_judgment_file_is_reported_like_a_missing_image(small_bapps: Path) -> None:
    (small_bapps / "jnd/val/traditional/same/000000.npy").unlink()
    with pytest.raises(ValueError, match=r"jnd/val/traditional.*'000000' is missing from same/"):
        open_dataset(small_bapps)


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (np.array([0.5, 0.5]), r"judgment must be .* one number .*shape \(2,\)"),
        (np.zeros((1, 0)), r"judgment must be .* one number .*shape \(1, 0\)"),
        (np.array([np.nan]), r"judgment nan is not a fraction"),
        (np.array([1.2]), r"judgment 1.2 is not a fraction"),
        (np.array([-0.1]), r"judgment -0.1 is not a fraction"),
    ],
)
def test_invalid_judgment_file_raises_naming_the_file(
    small_bapps: Path, value: np.ndarray, problem: str
) -> None:
    bad = small_bapps / "2afc/val/deblur/judge/000002.npy"
    np.save(bad, value)
    with pytest.raises(ValueError, match=rf"deblur/judge/000002.npy: {problem}"):
        open_dataset(small_bapps)
    with pytest.raises(ValueError, match=problem):
        read_judgment(bad)


@pytest.mark.parametrize("value", [np.array(0.4), np.array([[0.4]]), np.array([0.4], np.float32)])
def test_any_one_number_judgment_file_is_read_as_the_reference_loader_reads_it(
    small_bapps: Path, value: np.ndarray
) -> None:
    """The reference reshapes each judgment to (1, 1, 1), so a scalar or (1, 1) file is valid."""
    np.save(small_bapps / "2afc/val/deblur/judge/000002.npy", value)
    sample = next(
        s
        for s in open_dataset(small_bapps).samples("2afc")
        if s.sample_id.endswith("deblur/000002")
    )
    assert sample.h == pytest.approx(0.4)


# Arrays numpy writes with the one-dimensional C-order header the fast path reads directly.
FAST_PATH_ARRAYS = [
    np.array([0.8]),
    np.array([0.25], dtype=np.float32),
    np.array([0.5], dtype=np.float16),
    np.array([0.75], dtype=">f8"),
    np.array([1], dtype=np.int64),
    np.array([0], dtype=np.uint8),
    np.array([True]),
    np.array([0.1, 0.2, 0.3]),
    np.zeros(0),
]
# Everything else goes through np.load: scalars, 2-D, Fortran order, strings, long arrays.
FALLBACK_ARRAYS = [
    np.array(0.5),
    np.array([[0.5]]),
    np.asfortranarray(np.arange(6.0).reshape(2, 3)),
    np.array(["a"]),
    np.arange(200.0),
]


@pytest.mark.parametrize("array", FAST_PATH_ARRAYS + FALLBACK_ARRAYS, ids=repr)
def test_small_npy_reader_returns_what_numpy_load_returns(
    tmp_path: Path, array: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "a.npy"
    np.save(path, array)
    expected = np.load(path, allow_pickle=False)
    if any(array is a for a in FAST_PATH_ARRAYS):  # the fast path must not fall back
        monkeypatch.setattr(np, "load", lambda *a, **k: pytest.fail("np.load was called"))
    got = read_small_npy(path)
    assert got.dtype == expected.dtype and got.shape == expected.shape
    np.testing.assert_array_equal(got, expected)


def test_small_npy_reader_falls_back_for_version_2_headers_and_damaged_files(
    tmp_path: Path,
) -> None:
    path = tmp_path / "v2.npy"
    with open(path, "wb") as f:
        np.lib.format.write_array(f, np.array([0.3]), version=(2, 0))
    assert read_small_npy(path).tolist() == [0.3]
    np.save(path, np.array([0.3]))
    path.write_bytes(path.read_bytes()[:-3])  # header intact, data cut short
    with pytest.raises(ValueError):
        read_small_npy(path)


def test_truncated_judgment_file_raises_naming_the_file(small_bapps: Path) -> None:
    bad = small_bapps / "2afc/val/cnn/judge/000001.npy"
    bad.write_bytes(bad.read_bytes()[:-1])
    with pytest.raises(ValueError, match=r"cnn/judge/000001.npy: unreadable judgment file"):
        open_dataset(small_bapps)


def test_corrupt_judgment_file_raises_naming_the_file(small_bapps: Path) -> None:
    (small_bapps / "2afc/val/cnn/judge/000000.npy").write_bytes(b"not numpy")
    with pytest.raises(ValueError, match=r"cnn/judge/000000.npy: judgment file is not a NumPy"):
        open_dataset(small_bapps)


def test_skip_bad_records_excludes_and_counts_bad_samples(small_bapps: Path) -> None:
    np.save(small_bapps / "2afc/val/deblur/judge/000002.npy", np.array([np.nan]))
    (small_bapps / "2afc/val/cnn/ref/000000.png").unlink()
    np.save(small_bapps / "jnd/val/cnn/same/000001.npy", np.array([1.0, 0.0]))
    ds = open_dataset(small_bapps, skip_bad=True)
    bad = {b.sample_id: b for b in ds.bad_samples}
    assert set(bad) == {"val/deblur/000002", "val/cnn/000000"} | {"val/cnn/000001"}
    assert bad["val/cnn/000000"].path == small_bapps / "2afc/val/cnn/ref/000000.png"
    assert "missing from ref/" in bad["val/cnn/000000"].reason
    assert "not a fraction" in bad["val/deblur/000002"].reason
    assert len(ds.samples("2afc")) == 12 - 2 and len(ds.samples("jnd")) == 5 - 1
    kept = {s.sample_id for s in ds.samples("2afc")}
    assert "val/deblur/000002" not in kept and "val/deblur/000001" in kept
    assert "bad=3" in repr(ds)


def test_stray_file_in_a_role_folder_is_not_ignored(small_bapps: Path) -> None:
    (small_bapps / "2afc/val/cnn/ref/notes.txt").write_text("x")
    (small_bapps / "2afc/val/cnn/ref/.DS_Store").write_text("hidden litter is fine")
    with pytest.raises(ValueError, match=r"notes.txt: unexpected entry, expected \*.png"):
        open_dataset(small_bapps)
    assert [b.path.name for b in open_dataset(small_bapps, skip_bad=True).bad_samples] == [
        "notes.txt"
    ]


def test_missing_role_folder_names_it(small_bapps: Path) -> None:
    for file in (small_bapps / "2afc/val/zeta/judge").iterdir():
        file.unlink()
    (small_bapps / "2afc/val/zeta/judge").rmdir()
    with pytest.raises(ValueError, match=r"zeta: missing folder judge/"):
        open_dataset(small_bapps)


def test_named_dataset_without_data_says_where_files_go_and_how_to_download(
    tmp_path: Path,
) -> None:
    with pytest.raises(FileNotFoundError) as info:
        open_dataset("bapps", data_root=tmp_path)
    message = str(info.value)
    assert f"{tmp_path / 'bapps'}/2afc/val/<subset>/" in message
    assert "iqa-bench download bapps" in message and DATA_ENV in message
    assert "twoafc_val.tar.gz extracted into " + str(tmp_path / "bapps" / "2afc") in message
    assert "twoafc_train" not in message  # not needed for the val split


def test_named_dataset_opens_from_data_root_with_its_card(tmp_path: Path) -> None:
    make_bapps_layout(tmp_path / "bapps", {"cnn": 2}, {"cnn": 1})
    ds = open_dataset("bapps", data_root=tmp_path)
    assert ds.card == load_dataset_card("bapps")
    assert ds.name == "bapps" and ds.version == ds.card.version and not ds.synthetic


def test_data_root_prefers_argument_then_environment_then_the_cache_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(DATA_ENV, str(tmp_path / "env"))
    assert data_root(tmp_path / "arg") == tmp_path / "arg"
    assert data_root() == tmp_path / "env"
    monkeypatch.delenv(DATA_ENV)
    monkeypatch.setenv("IQA_BENCH_CACHE", str(tmp_path / "cache"))
    assert data_root() == tmp_path / "cache/data"
    monkeypatch.delenv("IQA_BENCH_CACHE")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert data_root() == tmp_path / "home/.cache/iqa-bench/data"


def test_environment_data_root_is_used_by_open_dataset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_bapps_layout(tmp_path / "bapps", {"cnn": 1}, None)
    monkeypatch.setenv(DATA_ENV, str(tmp_path))
    assert open_dataset("bapps").root == tmp_path / "bapps"


def test_unknown_name_suggests_close_cards_and_bad_paths_are_named(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"unknown dataset 'bap'.*Did you mean 'bapps'"):
        open_dataset("bap")
    with pytest.raises(FileNotFoundError, match=r"dataset path .*nowhere does not exist"):
        open_dataset(str(tmp_path / "nowhere"))
    (tmp_path / "plain").mkdir()
    with pytest.raises(ValueError, match=r"neither a BAPPS-layout folder"):
        open_dataset(tmp_path / "plain")


def test_download_flag_is_refused_for_paths(small_bapps: Path) -> None:
    with pytest.raises(ValueError, match=r"download=True needs a dataset card name"):
        open_dataset(small_bapps, download=True)


def test_bapps_card_lists_the_three_archives_pinning_only_published_checksums() -> None:
    card = load_dataset_card("bapps")
    assert card.adapter == "bapps" and card.synthetic is False and "bapps" in DATASETS
    specs = {s.part: s for s in parse_archive_specs(card.download, "bapps")}
    assert set(specs) == {"jnd", "2afc-val", "2afc-train"}
    base = "https://perceptual-similarity.s3.us-west-2.amazonaws.com/dataset/"
    assert specs["jnd"].url == base + "jnd.tar.gz" and specs["jnd"].extract_to == ""
    assert specs["2afc-val"].url == base + "twoafc_val.tar.gz"
    assert specs["2afc-val"].extract_to == specs["2afc-train"].extract_to == "2afc"
    # jnd.tar.gz has no public checksum; the 2AFC ones are test_download.py's concern.
    assert specs["jnd"].sha256 == "" and all(specs[p].sha256 for p in ("2afc-val", "2afc-train"))
    assert [p for p, s in specs.items() if s.default] == ["jnd", "2afc-val"]
    assert BAPPSDataset.default_parts(card, "train") == ["jnd", "2afc-val", "2afc-train"]


def test_dataset_modules_do_not_import_torch() -> None:
    code = (
        "import sys, iqa_bench.datasets, iqa_bench.images, iqa_bench.download;"
        "bad = [m for m in sys.modules if m == 'torch' or m.startswith('torch.')];"
        "sys.exit(f'torch imported: {bad[:3]}' if bad else 0)"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr + result.stdout


def test_fixture_images_decode_to_rgb_uint8_and_bad_files_are_named(small_bapps: Path) -> None:
    sample = open_dataset(small_bapps).samples("2afc")[0]
    image = read_image_uint8(sample.ref)
    assert image.shape == (64, 64, 3) and image.dtype == np.uint8
    grey = small_bapps / "grey.png"
    write_png(grey, np.arange(16, dtype=np.uint8).reshape(4, 4))
    assert read_image_uint8(grey)[1, 2].tolist() == [6, 6, 6]
    truncated = small_bapps / "truncated.png"
    truncated.write_bytes(sample.ref.read_bytes()[:100])
    with pytest.raises(ValueError, match=r"truncated.png is corrupt or not an image"):
        read_image_uint8(truncated)
    with pytest.raises(FileNotFoundError, match=r"image file .*absent.png does not exist"):
        read_image_uint8(small_bapps / "absent.png")
    with pytest.raises(ValueError, match=r"array dtype is float64, expected uint8"):
        write_png(small_bapps / "f.png", np.zeros((4, 4, 3)))


def test_named_bapps_loads_at_the_reference_size_and_a_folder_at_its_own(tmp_path: Path) -> None:
    import dataclasses

    root = make_bapps_layout(tmp_path / "bapps", {"cnn": 2}, {"cnn": 1}, size=256, seed=7)
    named = open_dataset("bapps", data_root=tmp_path)
    assert named.load_size == 64 and named.version == 2
    assert open_dataset(str(root)).load_size is None  # anyone's study in this layout
    card = load_dataset_card("bapps")
    native = dataclasses.replace(card, params={"load_size": None})
    assert BAPPSDataset(root, card=native).load_size is None
    with pytest.raises(ValueError, match="unknown params key 'load_sise'.*takes load_size"):
        BAPPSDataset(root, card=dataclasses.replace(card, params={"load_sise": 64}))


def test_fixture_stores_patches_upscaled_by_the_named_resampling(tmp_path: Path) -> None:
    """Benchmarks store patches as the archives reportedly do (nearest) or smoothly (bicubic)."""
    native = make_bapps_layout(tmp_path / "native", {"cnn": 2}, None, seed=3)
    files = {}
    for resample in ("nearest", "bicubic"):
        root = make_bapps_layout(
            tmp_path / resample,
            {"cnn": 2},
            None,
            seed=3,
            stored_scale=4,
            stored_resample=resample,
        )
        files[resample] = root / "2afc" / "val" / "cnn" / "ref" / "000001.png"
    patch = read_image_uint8(native / "2afc" / "val" / "cnn" / "ref" / "000001.png")
    nearest, bicubic = (read_image_uint8(files[r]) for r in ("nearest", "bicubic"))
    assert nearest.shape == bicubic.shape == (256, 256, 3)
    np.testing.assert_array_equal(nearest, patch.repeat(4, axis=0).repeat(4, axis=1))
    assert not np.array_equal(bicubic, nearest)
    # Smooth upscales compress worse, which is what makes them slower to decode.
    assert files["bicubic"].stat().st_size > 2 * files["nearest"].stat().st_size
    back = read_image_uint8(files["bicubic"], load_size=64).astype(int)
    assert np.abs(back - patch).mean() < 8  # the same picture, loaded at the patch size
    with pytest.raises(ValueError, match="stored_resample is 'lanczos'; use one of"):
        make_bapps_layout(tmp_path / "x", {"cnn": 1}, None, stored_resample="lanczos")


@pytest.mark.parametrize("size", [(256, 256), (252, 252), (64, 64), (100, 300), (300, 100)])
def test_load_size_resizes_exactly_as_torchvision_resize_on_a_pil_image(
    tmp_path: Path, size: tuple[int, int]
) -> None:
    """The LPIPS reference loader applies transforms.Resize(64) to each PIL image."""
    from PIL import Image
    from torchvision import transforms

    rng = np.random.default_rng(size[0] + size[1])
    small = rng.integers(0, 256, (size[0] // 4 + 1, size[1] // 4 + 1, 3), dtype=np.uint8)
    # As the archives store the patches: upscaled by nearest neighbour, then cropped to size.
    pixels = small.repeat(4, axis=0).repeat(4, axis=1)[: size[0], : size[1]]
    write_png(tmp_path / "patch.png", pixels)
    with Image.open(tmp_path / "patch.png") as image:
        want = np.asarray(transforms.Resize(64)(image.convert("RGB")))
    got = read_image_uint8(tmp_path / "patch.png", load_size=64)
    assert got.shape == want.shape and min(got.shape[:2]) == 64
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(read_image_uint8(tmp_path / "patch.png"), pixels)
