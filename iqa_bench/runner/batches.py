"""Decoding images once and batching them for every metric (no statistics here)."""

from __future__ import annotations

import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import torch

from ..errors import InputError
from ..images import read_image_uint8
from ..tasks import task_spec


def image_fields(task: str) -> tuple[str, ...]:
    """Image attributes of a sample of ``task``, in the order they are batched."""
    return task_spec(task).images


@dataclass
class DecodedBatch:
    """Images of consecutive samples of one size: ``images[field]`` is (B, H, W, 3) uint8.

    Attributes:
        positions: Index of each sample in the task's sample list.
        images: One uint8 array per image field.
        failed: (position, path, reason) of samples that could not be decoded (``skip_bad``).
        decode_cpu_s: CPU seconds the decoding thread spent on the chunk this batch came from
            (on the chunk's first batch only, like ``failed``).
    """

    positions: list[int]
    images: dict[str, np.ndarray]
    failed: list[tuple[int, str, str]]
    decode_cpu_s: float = 0.0


def _decode_sample(
    sample, fields: Sequence[str], skip_bad: bool, load_size: int | None = None
) -> tuple[list[np.ndarray] | None, tuple[str, str] | None]:
    """(images, None), or under ``skip_bad`` (None, (bad file, reason)); otherwise it raises.

    Every problem of one sample's files, unequal sizes included, is the sample's own: with
    ``skip_bad`` it is recorded and the run goes on.
    """
    path = getattr(sample, fields[0])
    try:
        images = []
        for field in fields:
            path = getattr(sample, field)
            images.append(read_image_uint8(path, load_size))
        odd = [f for f, image in zip(fields, images) if image.shape != images[0].shape]
        if odd:
            path = getattr(sample, odd[0])
            raise _size_error(sample, fields, images)
    except (ValueError, FileNotFoundError) as exc:
        if not skip_bad:
            raise InputError(
                f"sample {sample.sample_id}: {exc} (use --skip-bad to record it and go on)"
            ) from exc
        return None, (str(path), str(exc))
    return images, None


def _size_error(sample, fields: Sequence[str], images: Sequence[np.ndarray]) -> InputError:
    sizes = ", ".join(
        f"{field} {getattr(sample, field)} {image.shape[1]}x{image.shape[0]}"
        for field, image in zip(fields, images)
    )
    return InputError(
        f"images differ in size ({sizes}); every image of a sample must have the same "
        "width x height, so replace the odd one."
    )


def decoded_batches(
    samples: Sequence,
    positions: Sequence[int],
    task: str,
    batch_size: int,
    skip_bad: bool = False,
    workers: int = 2,
    load_size: int | None = None,
) -> Iterator[DecodedBatch]:
    """Decode ``samples[positions]`` in a thread pool (PIL releases the GIL) and group by size.

    Decoding runs ahead of the consumer by a few batches so the device is not left waiting.
    ``load_size`` resizes each image as the dataset's reference loader does
    (``Dataset.load_size``).
    """
    fields = image_fields(task)
    chunks = [positions[i : i + batch_size] for i in range(0, len(positions), batch_size)]

    def decode_chunk(chunk: Sequence[int]):
        # Thread CPU time, not wall time: the threads decode while the metrics run, so the time
        # the consumer waits for a batch says little about what decoding costs on a busy CPU.
        start = time.thread_time()
        decoded = [(p, *_decode_sample(samples[p], fields, skip_bad, load_size)) for p in chunk]
        return decoded, time.thread_time() - start

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        futures = [pool.submit(decode_chunk, c) for c in chunks[: workers + 1]]
        next_chunk = len(futures)
        while futures:
            decoded, cpu_s = futures.pop(0).result()
            if next_chunk < len(chunks):
                futures.append(pool.submit(decode_chunk, chunks[next_chunk]))
                next_chunk += 1
            for i, batch in enumerate(_group_by_size(decoded, fields)):
                batch.decode_cpu_s = cpu_s if i == 0 else 0.0
                yield batch


def _group_by_size(decoded, fields) -> Iterator[DecodedBatch]:
    failed = [(p, *failure) for p, imgs, failure in decoded if imgs is None]
    groups: dict[tuple, list] = {}
    for p, imgs, _ in decoded:
        if imgs is not None:  # _decode_sample made sure a sample's images share one size
            groups.setdefault(imgs[0].shape, []).append((p, imgs))
    if not groups:
        yield DecodedBatch([], {}, failed)
        return
    for i, members in enumerate(groups.values()):
        images = {f: np.stack([imgs[k] for _, imgs in members]) for k, f in enumerate(fields)}
        yield DecodedBatch([p for p, _ in members], images, failed if i == 0 else [])


def split_by_pixels(
    batch: DecodedBatch, max_pixels: int, resize: int | None = None
) -> Iterator[DecodedBatch]:
    """Cut a batch so that each part holds at most ``max_pixels`` pixels per image field.

    Network activations grow with batch size times image area, so large images (1024x1024 MOS
    sets) go through in smaller batches instead of exhausting memory; 64x64 patches are left in
    one batch. A single image larger than the budget still forms a batch of one.

    Args:
        batch: A decoded batch.
        max_pixels: Budget of ``batch size x height x width`` as the metric sees it.
        resize: The side images are resized to before scoring, if any.

    Example:
        >>> b = DecodedBatch([0, 1, 2], {"p0": np.zeros((3, 100, 100, 3), np.uint8)}, [])
        >>> [part.positions for part in split_by_pixels(b, 20_000)]
        [[0, 1], [2]]
    """
    if not batch.positions:
        yield batch
        return
    h, w = next(iter(batch.images.values())).shape[1:3]
    area = resize * resize if resize else h * w
    step = max(1, max_pixels // area)
    if step >= len(batch.positions):
        yield batch
        return
    for start in range(0, len(batch.positions), step):
        yield DecodedBatch(
            batch.positions[start : start + step],
            {f: a[start : start + step] for f, a in batch.images.items()},
            batch.failed if start == 0 else [],
        )


def to_device(images: np.ndarray, device: torch.device, resize: int | None = None) -> torch.Tensor:
    """uint8 (B, H, W, 3) -> float (B, 3, H, W) in [0, 1] on ``device``, converted there.

    With ``resize``, images are resized to ``resize`` x ``resize`` (bilinear, antialiased) and
    clamped back into [0, 1].
    """
    tensor = torch.from_numpy(images)
    if device.type == "cuda":
        tensor = tensor.pin_memory().to(device, non_blocking=True)
    out = tensor.permute(0, 3, 1, 2).float().div_(255.0)
    if resize is not None and tuple(out.shape[-2:]) != (resize, resize):
        out = torch.nn.functional.interpolate(
            out, size=(resize, resize), mode="bilinear", align_corners=False, antialias=True
        ).clamp_(0.0, 1.0)
    return out


def merge_batches(
    batches: Sequence[DecodedBatch],
) -> tuple[list[int], dict[str, np.ndarray], list] | None:
    """One chunk's batches as (positions, stacked images, failed); None when sizes differ."""
    with_images = [b for b in batches if b.positions]
    failed = [list(f) for b in batches for f in b.failed]
    if not with_images:
        return [], {}, failed
    fields = list(with_images[0].images)
    shapes = {b.images[fields[0]].shape[1:] for b in with_images}
    if len(shapes) != 1:
        return None
    positions = [p for b in with_images for p in b.positions]
    images = {f: np.concatenate([b.images[f] for b in with_images]) for f in fields}
    return positions, images, failed


def batches_from_arrays(
    positions: list[int], images: dict[str, np.ndarray], failed: list, batch_size: int
) -> Iterator[DecodedBatch]:
    """Batches sliced from already decoded (e.g. memory-mapped) chunk arrays."""
    failed = [tuple(f) for f in failed]
    if not positions:
        yield DecodedBatch([], {}, failed)
        return
    for i in range(0, len(positions), batch_size):
        part = {f: np.array(a[i : i + batch_size]) for f, a in images.items()}  # off the memmap
        yield DecodedBatch(list(positions[i : i + batch_size]), part, failed if i == 0 else [])
