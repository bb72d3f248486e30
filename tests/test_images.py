"""How image files of every Pillow mode become 8-bit RGB, and which files are refused and why.

Files are built in each test with PIL/numpy. Where a mode keeps Pillow's own conversion the
expected pixels are Pillow's ``convert("RGB")`` of the same file (the rule before the 16-bit and
alpha fixes, so ordinary numbers stay identical); elsewhere they are computed from the rule
written in ``docs/DATASETS.md`` ("How image files are read").
"""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from iqa_bench.cli import main
from iqa_bench.errors import InputError
from iqa_bench.images import read_image_uint8

# Every 16-bit value class the rules care about: 0, a widened 8-bit value (x257), a shifted one
# (x256), values between, the top.
VALUES_16 = np.array(
    [[0, 1, 255, 256, 257, 400], [32767, 32896, 33023, 65280, 65534, 65535]], dtype=np.uint16
)


def png_16bit(path: Path, samples: np.ndarray) -> Path:
    """Write a 16-bit-per-sample PNG (grey, grey+alpha, RGB or RGBA by the last axis).

    Pillow cannot write 16-bit colour PNGs, so the chunks are written here (filter 0 rows).
    """
    samples = samples if samples.ndim == 3 else samples[..., None]
    height, width, channels = samples.shape
    color_type = {1: 0, 2: 4, 3: 2, 4: 6}[channels]
    rows = b"".join(b"\0" + row.astype(">u2").tobytes() for row in samples)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 16, color_type, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )
    return path


def bomb_png(path: Path, side: int = 20_000) -> Path:
    """A PNG whose header claims ``side`` x ``side`` pixels (Pillow checks the size at open)."""
    grey = np.zeros((1, 1), np.uint8)
    png = bytearray(png_16bit(path, grey.astype(np.uint16)).read_bytes())
    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    png[16:29] = header
    png[29:33] = struct.pack(">I", zlib.crc32(b"IHDR" + header))
    path.write_bytes(bytes(png))
    return path


def _grey_rgb(values: np.ndarray) -> np.ndarray:
    return np.repeat(values.astype(np.uint8)[..., None], 3, axis=2)


def _pillow_rgb(path: Path) -> np.ndarray:
    with Image.open(path) as image:
        return np.array(image.convert("RGB"))


def test_16bit_grey_png_and_tiff_read_as_their_high_byte_not_white(tmp_path: Path) -> None:
    big_endian = Image.frombytes("I;16B", VALUES_16.shape[::-1], VALUES_16.astype(">u2").tobytes())
    files = {
        "png": png_16bit(tmp_path / "grey16.png", VALUES_16),
        "tiff": tmp_path / "grey16.tif",
        "tiff-big-endian": tmp_path / "grey16be.tif",
    }
    Image.fromarray(VALUES_16).save(files["tiff"])
    big_endian.save(files["tiff-big-endian"])
    for name, path in files.items():
        np.testing.assert_array_equal(
            read_image_uint8(path), _grey_rgb(VALUES_16 >> 8), err_msg=name
        )


def test_16bit_colour_png_reads_the_high_byte_of_each_sample(tmp_path: Path) -> None:
    """Pillow itself reduces 16-bit colour to the high byte; the grey rule matches it."""
    rgb = np.stack([VALUES_16, VALUES_16[::-1], 65535 - VALUES_16], axis=-1)
    got = read_image_uint8(png_16bit(tmp_path / "rgb48.png", rgb))
    np.testing.assert_array_equal(got, (rgb >> 8).astype(np.uint8))
    opaque = np.concatenate([rgb, np.full_like(rgb[..., :1], 65535)], axis=-1)
    got = read_image_uint8(png_16bit(tmp_path / "rgba64.png", opaque))
    np.testing.assert_array_equal(got, (rgb >> 8).astype(np.uint8))


@pytest.mark.parametrize("widen", ["x257", "shift8"])
def test_8bit_and_16bit_versions_of_one_picture_score_l2_zero(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], widen: str
) -> None:
    """Both usual ways to widen 8-bit data (bit replication x257, shift x256) read back exactly."""
    rng = np.random.default_rng(0)
    rgb8 = rng.integers(0, 256, (24, 32, 3), dtype=np.uint8)
    grey8 = rgb8[..., 0]
    rgb8, grey8 = rgb8.astype(np.uint16), grey8.astype(np.uint16)
    scale = np.uint16(257 if widen == "x257" else 256)
    pairs = {
        "grey": (tmp_path / "grey8.png", png_16bit(tmp_path / "grey16.png", grey8 * scale)),
        "rgb": (tmp_path / "rgb8.png", png_16bit(tmp_path / "rgb48.png", rgb8 * scale)),
    }
    Image.fromarray(grey8.astype(np.uint8)).save(pairs["grey"][0])
    Image.fromarray(rgb8.astype(np.uint8)).save(pairs["rgb"][0])
    for name, (eight, sixteen) in pairs.items():
        assert main(["score", "--metric", "l2", str(eight), str(sixteen)]) == 0
        assert capsys.readouterr().out.strip() == "0.000000", name
        np.testing.assert_array_equal(read_image_uint8(sixteen), read_image_uint8(eight))


def _save(tmp_path: Path, image: Image.Image, name: str, **kwargs) -> Path:
    path = tmp_path / name
    image.save(path, **kwargs)
    return path


def _palette(mode: str = "P") -> Image.Image:
    image = Image.fromarray(np.arange(48, dtype=np.uint8).reshape(6, 8) % 5).convert("L")
    image = image.convert(mode) if mode != "P" else image.convert("P")
    image.putpalette([0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0, 255, 200, 100, 50])
    return image


def _ordinary_files(tmp_path: Path) -> dict[str, Path]:
    rng = np.random.default_rng(1)
    rgb = Image.fromarray(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8))
    rgba = np.concatenate([np.array(rgb), np.full((6, 8, 1), 255, np.uint8)], axis=2)
    la = np.stack([np.array(rgb)[..., 0], np.full((6, 8), 255, np.uint8)], axis=2)
    unused_transparency = _palette()
    return {
        "1": _save(tmp_path, rgb.convert("1"), "one.png"),
        "L": _save(tmp_path, rgb.convert("L"), "grey.png"),
        "P": _save(tmp_path, _palette(), "palette.png"),
        "P-unused-transparency": _save(
            tmp_path, unused_transparency, "palette-trns.png", transparency=7
        ),
        "RGB": _save(tmp_path, rgb, "rgb.png"),
        "RGB-jpeg": _save(tmp_path, rgb, "rgb.jpg", quality=90),
        "RGBA-opaque": _save(tmp_path, Image.fromarray(rgba), "rgba.png"),
        "LA-opaque": _save(tmp_path, Image.fromarray(la, "LA"), "la.png"),
        "CMYK": _save(tmp_path, rgb.convert("CMYK"), "cmyk.tif"),
        "CMYK-jpeg": _save(tmp_path, rgb.convert("CMYK"), "cmyk.jpg", quality=95),
        "YCbCr": _save(tmp_path, rgb.convert("YCbCr"), "ycbcr.tif"),
        "RGBX": _save(tmp_path, rgb.convert("RGBX"), "rgbx.tif"),
    }


# Pillow warns when it drops a palette's transparency, as the expected pixels here do.
@pytest.mark.filterwarnings("ignore:Palette images with Transparency")
def test_ordinary_modes_keep_pillows_rgb_conversion_exactly(tmp_path: Path) -> None:
    files = _ordinary_files(tmp_path)
    for name, path in files.items():
        got = read_image_uint8(path)
        assert got.dtype == np.uint8 and got.shape == (6, 8, 3), name
        np.testing.assert_array_equal(got, _pillow_rgb(path), err_msg=name)
    with Image.open(files["P-unused-transparency"]) as image:
        assert image.mode == "P" and "transparency" in image.info


def test_ordinary_modes_resized_by_load_size_keep_pillows_numbers(tmp_path: Path) -> None:
    path = _save(tmp_path, Image.fromarray(np.arange(96, dtype=np.uint8).reshape(8, 12)), "g.png")
    with Image.open(path) as image:
        expected = np.array(image.convert("RGB").resize((6, 4), Image.Resampling.BILINEAR))
    np.testing.assert_array_equal(read_image_uint8(path, load_size=4), expected)


def _see_through_files(tmp_path: Path) -> dict[str, tuple[Path, int]]:
    """(file, pixels not fully opaque) per alpha-carrying mode."""
    rgba = np.full((6, 8, 4), 200, np.uint8)
    rgba[0, :3, 3] = (0, 128, 254)
    la = rgba[..., 2:]
    palette_a = Image.fromarray(np.zeros((6, 8, 2), np.uint8), "LA").convert("PA")
    palette_a.putpixel((0, 0), (0, 10))
    return {
        "RGBA": (_save(tmp_path, Image.fromarray(rgba), "rgba.png"), 48),
        "LA": (_save(tmp_path, Image.fromarray(la, "LA"), "la.png"), 48),
        "P": (_save(tmp_path, _palette(), "palette-trns.png", transparency=1), 10),
        "PA": (_save(tmp_path, palette_a, "pa.tif"), 1),
        "RGBA-16bit": (
            png_16bit(tmp_path / "rgba64.png", np.full((6, 8, 4), 30000, np.uint16)),
            48,
        ),
    }


def test_transparent_pixels_are_an_error_naming_file_mode_and_count(tmp_path: Path) -> None:
    for path, count in _see_through_files(tmp_path).values():
        with pytest.raises(InputError, match=rf"{path.name} \(mode \w+\): {count} of 48 pixels"):
            read_image_uint8(path)


def test_float_images_are_read_only_in_the_unit_range(tmp_path: Path) -> None:
    unit = np.linspace(0, 1, 48, dtype=np.float32).reshape(6, 8)
    path = _save(tmp_path, Image.fromarray(unit, "F"), "unit.tif")
    expected = np.floor(unit.astype(np.float64) * 255 + 0.5)
    np.testing.assert_array_equal(read_image_uint8(path), _grey_rgb(expected))
    for name, values, message in [
        ("wide.tif", unit * 255, r"float values span \[0, 255\], not \[0, 1\]"),
        ("negative.tif", unit - 0.5, r"float values span \[-0.5, 0.5\]"),
        ("nan.tif", np.where(unit > 0.5, np.nan, unit).astype(np.float32), "NaN or infinite"),
    ]:
        path = _save(tmp_path, Image.fromarray(values, "F"), name)
        with pytest.raises(InputError, match=rf"{name} \(mode F\): {message}"):
            read_image_uint8(path)


def test_modes_without_a_known_8bit_scale_are_errors(tmp_path: Path) -> None:
    int32 = Image.fromarray(np.arange(48, dtype=np.int32).reshape(6, 8) * 1000, "I")
    files = {
        "int32.tif": (int32, r"mode I, stored as I;32S\): integer values of no known 8-bit scale"),
        "lab.tif": (Image.new("LAB", (8, 6), (50, 10, 10)), r"mode LAB\): no faithful 8-bit RGB"),
    }
    for name, (image, message) in files.items():
        path = _save(tmp_path, image, name)
        with pytest.raises(InputError, match=rf"{name} \({message}.*save it as an 8-bit"):
            read_image_uint8(path)


def test_decompression_bomb_is_an_error_naming_file_pixels_and_limit(tmp_path: Path) -> None:
    path = bomb_png(tmp_path / "bomb.png")
    limit = 2 * Image.MAX_IMAGE_PIXELS
    with pytest.raises(InputError, match=rf"bomb.png .*400000000 pixels.* = {limit} pixels"):
        read_image_uint8(path)


def test_bomb_in_score_is_a_message_not_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    ok = _save(tmp_path, Image.new("RGB", (8, 8)), "ok.png")
    assert main(["score", "--metric", "l2", str(ok), str(bomb_png(tmp_path / "bomb.png"))]) == 2
    assert "bomb.png is too large to decode safely" in capsys.readouterr().err


def test_files_that_are_not_images_are_named_with_what_is_wrong(tmp_path: Path) -> None:
    loop = tmp_path / "loop.png"
    loop.symlink_to(loop)
    dangling = tmp_path / "dangling.png"
    dangling.symlink_to(tmp_path / "gone.png")
    (tmp_path / "folder.png").mkdir()
    (tmp_path / "empty.png").write_bytes(b"")
    os.mkfifo(tmp_path / "fifo.png")
    cases = {
        loop: (InputError, "is a symbolic link loop"),
        dangling: (FileNotFoundError, r"symbolic link to .*gone.png, which does not exist"),
        tmp_path / "folder.png": (InputError, "is a directory, not an image"),
        tmp_path / "empty.png": (InputError, r"is empty \(0 bytes\)"),
        tmp_path / "fifo.png": (InputError, "is not a regular file"),
    }
    for path, (error, message) in cases.items():
        with pytest.raises(error, match=rf"image file {path}.* {message}"):
            read_image_uint8(path)


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads files whatever their permissions")
def test_unreadable_file_is_an_input_error_naming_it(tmp_path: Path) -> None:
    path = _save(tmp_path, Image.new("RGB", (4, 4)), "locked.png")
    path.chmod(0)
    try:
        with pytest.raises(InputError, match=r"locked.png cannot be read \(permission denied\)"):
            read_image_uint8(path)
    finally:
        path.chmod(0o644)
