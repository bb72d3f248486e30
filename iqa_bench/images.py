"""Image file I/O shared by dataset adapters, fixtures and the runner (PIL only, no torch).

Example:
    >>> import numpy as np
    >>> write_png("/tmp/grey.png", np.full((4, 4, 3), 128, dtype=np.uint8))
    >>> read_image_uint8("/tmp/grey.png").shape
    (4, 4, 3)
"""

from __future__ import annotations

import errno
import os
import stat
import struct
from pathlib import Path

import numpy as np
from PIL import Image

from .errors import DataNotFoundError, InputError

#: Bumped whenever the rules of :func:`read_image_uint8` change the pixels a file decodes to
#: (2: 16-bit samples by their high byte instead of clipped to white; partly transparent images
#: an error instead of their alpha dropped). What stores decoded pixels should key on it.
DECODING_VERSION = 2

#: Pillow's raw modes of unsigned 16-bit grey samples. Older Pillow opens 16-bit grey PNGs as
#: mode "I" (32-bit integers); the raw mode still says the file holds 16-bit samples.
_UNSIGNED_16 = frozenset({"I;16", "I;16B", "I;16L", "I;16N"})

#: Modes Pillow converts to RGB without a choice to make: grey replicated, palette looked up,
#: the padding byte of RGBX dropped, CMYK and YCbCr by Pillow's formulas (not colour-managed).
_DIRECT = frozenset({"1", "L", "P", "RGB", "RGBX", "CMYK", "YCbCr"})

_FIX_ALPHA = (
    "flatten it onto the background you mean (e.g. with PIL's Image.alpha_composite) and save "
    "it without an alpha channel"
)
_FIX_SCALE = "save it as an 8-bit or 16-bit RGB or greyscale PNG"


def resize_like_reference_loader(image: Image.Image, load_size: int) -> Image.Image:
    """What torchvision's ``transforms.Resize(load_size)`` does to a PIL image, as the LPIPS
    reference data loader applies it: the shorter side to ``load_size``, the longer side
    ``int(load_size * long / short)``, PIL bilinear (which averages over the whole footprint
    when shrinking) on the 8-bit image. An image already that size is returned as it is.

    Example:
        >>> resize_like_reference_loader(Image.new("RGB", (256, 256)), 64).size
        (64, 64)
    """
    w, h = image.size
    short, long = sorted((w, h))
    scaled = (load_size, int(load_size * long / short))
    size = scaled if w <= h else scaled[::-1]
    return image if size == (w, h) else image.resize(size, Image.Resampling.BILINEAR)


def read_image_uint8(path: str | os.PathLike[str], load_size: int | None = None) -> np.ndarray:
    """Decode an image file into an ``HxWx3`` ``uint8`` RGB array.

    Every file becomes 8-bit RGB by one rule per Pillow mode (``docs/DATASETS.md``, "How image
    files are read"): 8-bit grey, palette, 1-bit, CMYK and YCbCr through Pillow's conversion;
    16-bit samples by their high byte (``v >> 8``); an alpha channel is dropped only when every
    pixel is fully opaque; float images only with values in [0, 1]. Anything else is an error,
    never a guess.

    Args:
        path: Image file (PNG, JPEG, anything PIL reads).
        load_size: Resize as a dataset's reference loader does (see
            :func:`resize_like_reference_loader`); None keeps the native size.

    Returns:
        A C-contiguous array of shape ``(H, W, 3)`` and dtype ``uint8``.

    Raises:
        DataNotFoundError: If ``path`` (or the file a symbolic link points to) does not exist.
        InputError: If the file is not a readable image, is a directory, empty, a symbolic link
            loop, larger than Pillow's decompression-bomb limit, or of a mode without a faithful
            8-bit RGB conversion (names the file, what is wrong and the fix).

    Example:
        >>> read_image_uint8("dataset/2afc/val/cnn/ref/000000.png").dtype  # doctest: +SKIP
        dtype('uint8')
    """
    path = Path(path)
    _check_file(path)
    try:
        with Image.open(path) as image:
            rgb = _to_rgb(image, path)
        if load_size is not None:
            rgb = resize_like_reference_loader(rgb, load_size)
    except InputError:
        raise
    except Image.DecompressionBombError as exc:
        raise _bomb_error(path, exc) from exc
    except PermissionError as exc:
        raise InputError(
            f"image file {path} cannot be read (permission denied); fix its permissions."
        ) from exc
    except (OSError, SyntaxError, EOFError, ValueError, struct.error) as exc:
        # Pillow reports truncated or corrupt data with these, without the file name.
        raise InputError(
            f"image file {path} is corrupt or not an image ({exc}); re-download or replace it."
        ) from exc
    return np.array(rgb, dtype=np.uint8)  # a writable copy (torch.from_numpy warns on read-only)


def _check_file(path: Path) -> None:
    """Refuse what is not a non-empty regular file before Pillow sees it."""
    try:
        st = path.stat()
    except FileNotFoundError:
        target = f" is a symbolic link to {os.readlink(path)}, which" if path.is_symlink() else ""
        raise DataNotFoundError(
            f"image file {path}{target} does not exist; check the dataset path."
        ) from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise InputError(
                f"image file {path} is a symbolic link loop (it points back to itself, directly "
                "or through other links); replace it with the image file it should point to."
            ) from None
        raise InputError(f"image file {path} cannot be read ({exc}); check the path.") from exc
    if stat.S_ISDIR(st.st_mode):
        raise InputError(f"image file {path} is a directory, not an image; check the dataset path.")
    if not stat.S_ISREG(st.st_mode):
        # Pillow would block on a named pipe, or read a device without end.
        raise InputError(
            f"image file {path} is not a regular file (a pipe, socket or device); "
            "replace it with the image file."
        )
    if st.st_size == 0:
        raise InputError(
            f"image file {path} is empty (0 bytes), as an interrupted download or copy leaves it; "
            "re-download or replace it."
        )


def _bomb_error(path: Path, exc: Exception) -> InputError:
    # Pillow's own message carries the pixel count ("Image size (N pixels) exceeds limit ...").
    limit = 2 * Image.MAX_IMAGE_PIXELS if Image.MAX_IMAGE_PIXELS else None
    return InputError(
        f"image file {path} is too large to decode safely: {exc} Pillow refuses images over "
        f"2 x PIL.Image.MAX_IMAGE_PIXELS = {limit} pixels as possible decompression bombs. "
        "If the file is genuine, downscale it, or raise PIL.Image.MAX_IMAGE_PIXELS in your own "
        "script before calling iqa_bench (iqa-bench itself keeps Pillow's limit)."
    )


def _raw_mode(image: Image.Image) -> str:
    """How the file stores its samples (e.g. ``RGB;16B``), from the first tile before loading."""
    if not getattr(image, "tile", None):
        return image.mode
    args = image.tile[0][3]
    return args if isinstance(args, str) else str(args[0]) if args else image.mode


def _to_rgb(image: Image.Image, path: Path) -> Image.Image:
    """The documented mode -> 8-bit RGB rule (see :func:`read_image_uint8`)."""
    mode, raw = image.mode, _raw_mode(image)
    if (mode == "P" and "transparency" in image.info) or mode == "PA":
        image, mode = image.convert("RGBA"), "RGBA"
    if mode in ("LA", "RGBA"):
        _require_opaque(image, path, mode)
        return image.convert("RGB")
    if mode in _DIRECT:
        # 16-bit colour (48-bit RGB PNG or TIFF) arrives here already reduced by Pillow to the
        # high byte of each sample: the same rule as 16-bit grey below.
        return image.convert("RGB")
    if mode in _UNSIGNED_16 or (mode == "I" and raw in _UNSIGNED_16):
        values = np.asarray(image)
        if values.min() < 0 or values.max() > 65535:
            raise _bad_mode(path, mode, "values outside 0-65535 in a 16-bit file", _FIX_SCALE)
        return _grey(values.astype(np.uint16) >> 8)
    if mode == "F":
        return _grey(_unit_floats(np.asarray(image), path))
    shown = f"{mode}, stored as {raw}" if raw != mode else mode
    if mode == "I":
        raise _bad_mode(path, shown, "integer values of no known 8-bit scale", _FIX_SCALE)
    raise _bad_mode(path, shown, "no faithful 8-bit RGB conversion", _FIX_SCALE)


def _unit_floats(values: np.ndarray, path: Path) -> np.ndarray:
    """Float samples -> 0-255, accepted only in [0, 1], the one range that says the scale."""
    if not np.isfinite(values).all():
        raise _bad_mode(path, "F", "NaN or infinite values", _FIX_SCALE)
    lo, hi = float(values.min()), float(values.max())
    if lo < 0 or hi > 1:
        why = f"float values span [{lo:g}, {hi:g}], not [0, 1], so their scale is unknown"
        raise _bad_mode(path, "F", why, _FIX_SCALE)
    return np.floor(values.astype(np.float64) * 255 + 0.5)


def _grey(values: np.ndarray) -> Image.Image:
    return Image.fromarray(np.repeat(values.astype(np.uint8)[..., None], 3, axis=2))


def _require_opaque(image: Image.Image, path: Path, mode: str) -> None:
    """Alpha may be dropped only where it changes nothing: every pixel fully opaque."""
    alpha = np.asarray(image.getchannel("A"))
    see_through = int(np.count_nonzero(alpha != 255))
    if see_through:
        raise _bad_mode(
            path,
            mode,
            f"{see_through} of {alpha.size} pixels are not fully opaque, and a metric would see "
            "the colours hidden under the transparency",
            _FIX_ALPHA,
        )


def _bad_mode(path: Path, mode: str, why: str, fix: str) -> InputError:
    return InputError(f"image file {path} (mode {mode}): {why}; {fix}.")


def write_png(path: str | os.PathLike[str], array: np.ndarray, compress_level: int = 1) -> None:
    """Write an ``HxWx3`` (or ``HxW`` grey) ``uint8`` array as a PNG, creating parent folders.

    Args:
        path: Destination file; its parent folders are created.
        array: Pixel data, dtype ``uint8``, shape ``(H, W, 3)`` or ``(H, W)``.
        compress_level: zlib level 0-9. PNG is lossless, so this only trades file size for speed;
            the default 1 encodes about 2.5x faster than PIL's 6 for ~20% larger files.

    Raises:
        ValueError: If ``array`` has another dtype or shape.

    Example:
        >>> write_png("out/patch.png", np.zeros((64, 64, 3), dtype=np.uint8))
    """
    array = np.asarray(array)
    if array.dtype != np.uint8:
        raise ValueError(
            f"write_png: array dtype is {array.dtype}, expected uint8; convert with "
            "np.clip(x * 255, 0, 255).astype(np.uint8) first."
        )
    if not (array.ndim == 2 or (array.ndim == 3 and array.shape[2] == 3)):
        raise ValueError(f"write_png: array shape is {array.shape}, expected (H, W, 3) or (H, W).")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, format="PNG", compress_level=compress_level)
