"""Image file I/O shared by dataset adapters, fixtures and the runner (PIL only, no torch).

Example:
    >>> import numpy as np
    >>> write_png("/tmp/grey.png", np.full((4, 4, 3), 128, dtype=np.uint8))
    >>> read_image_uint8("/tmp/grey.png").shape
    (4, 4, 3)
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError


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

    Grey, palette and RGBA images are converted with PIL's ``convert("RGB")`` (alpha is dropped).

    Args:
        path: Image file (PNG, JPEG, anything PIL reads).
        load_size: Resize as a dataset's reference loader does (see
            :func:`resize_like_reference_loader`); None keeps the native size.

    Returns:
        A C-contiguous array of shape ``(H, W, 3)`` and dtype ``uint8``.

    Raises:
        FileNotFoundError: If ``path`` does not exist.
        ValueError: If the file is not a readable image (names the file).

    Example:
        >>> read_image_uint8("dataset/2afc/val/cnn/ref/000000.png").dtype
        dtype('uint8')
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image file {path} does not exist; check the dataset path.")
    try:
        with Image.open(path) as image:
            rgb = image.convert("RGB")
        if load_size is not None:
            rgb = resize_like_reference_loader(rgb, load_size)
    except PermissionError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError) as exc:
        # PIL reports truncated or corrupt data as OSError/SyntaxError without the file name.
        raise ValueError(
            f"image file {path} is corrupt or not an image ({exc}); re-download or replace it."
        ) from exc
    return np.array(rgb, dtype=np.uint8)  # a writable copy (torch.from_numpy warns on read-only)


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
