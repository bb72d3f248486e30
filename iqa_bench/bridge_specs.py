"""What the suite knows about each metric it borrows from piq, torchmetrics and pyiqa (no torch).

A bridged metric is named ``<library>:<name>`` (``piq:haarpsi``, ``torchmetrics:ssim``,
``pyiqa:fsim``) anywhere a metric name is accepted. Its :class:`BridgeSpec` says how to read the
number (orientation), how to feed the library (the suite's [0, 1] RGB NCHW batches are multiplied
by ``input_scale`` and handed over with the fixed keyword arguments), the smallest image side the
library accepts (measured: the library raises or returns NaN one pixel below), whether it batches,
and which weights files it needs. Listing and card resolution read these tables without importing
torch or the library; :mod:`iqa_bench.metrics.bridges` holds the thin calls.

Example:
    >>> spec = bridge_spec("piq", "haarpsi")
    >>> spec.higher_is_better, spec.min_size
    (True, 16)
    >>> bridge_card("piq:haarpsi")["params"]
    {'name': 'haarpsi'}
    >>> bridge_spec("piq", "harpsi")
    Traceback (most recent call last):
    ...
    iqa_bench.errors.InputError: unknown piq metric 'harpsi'. Did you mean 'haarpsi', ...? ...
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
from dataclasses import dataclass, field
from typing import Any

from .errors import InputError
from .registry import suggest

#: Bridge libraries and the pip extra that installs each.
LIBRARIES: dict[str, str] = {"piq": "piq", "torchmetrics": "torchmetrics", "pyiqa": "pyiqa"}


@dataclass(frozen=True)
class BridgeSpec:
    """One bridged metric.

    Attributes:
        call: The library's function (piq, ``torchmetrics.functional.image``) or model name (pyiqa).
        higher_is_better: True for similarities.
        min_size: Smallest image side the library scores (measured, see the module docstring).
        description: One line for listings; says the convention.
        fixed: Keyword arguments the bridge always passes (data range, per-image reduction);
            card ``options`` may not override them.
        defaults: Library keyword arguments a card's ``options`` may override.
        input_scale: Factor from the suite's [0, 1] input to the range the library expects.
        batched: Whether one call scores a batch (else one call per image pair).
        gpu: Whether the library computes on a CUDA device.
        weights: Files the library downloads on first use, relative to ``torch.hub.get_dir()``.
        group: Report group of the synthesised card.
    """

    call: str
    higher_is_better: bool
    min_size: int
    description: str
    fixed: dict[str, Any] = field(default_factory=dict)
    defaults: dict[str, Any] = field(default_factory=dict)
    input_scale: float = 1.0
    batched: bool = True
    gpu: bool = True
    weights: tuple[str, ...] = ()
    group: str = "classical"


_PIQ_FIXED = {"data_range": 1.0, "reduction": "none"}


def _piq(call: str, hib: bool, min_size: int, desc: str, **defaults: Any) -> BridgeSpec:
    return BridgeSpec(call, hib, min_size, desc, dict(_PIQ_FIXED), defaults)


def _one_by_one(spec: BridgeSpec) -> BridgeSpec:
    """``spec`` scored one pair per call: the library's batched result depends on the batch."""
    return dataclasses.replace(spec, batched=False)


PIQ: dict[str, BridgeSpec] = {
    "dss": _piq("dss", True, 32, "DSS (DCT subband similarity) on luma; a similarity."),
    "fsim": _piq("fsim", True, 2, "FSIMc (chromatic FSIM); a similarity.", chromatic=True),
    "gmsd": _piq("gmsd", False, 1, "GMSD on YIQ luma, 2x average-pool downsampling; a distance."),
    "haarpsi": _piq("haarpsi", True, 16, "HaarPSI, 3 Haar scales on YIQ; a similarity."),
    # Batched, piq's IW-SSIM and SR-SIM change each image's score with the others in the batch
    # (by up to 1.5e-4 and 8.3e-4 on random 161x161 and 40x40 pairs, measured by
    # tests/test_bridges.py), so the bridge calls them one pair at a time.
    "iw_ssim": _one_by_one(
        _piq("information_weighted_ssim", True, 161, "IW-SSIM, 5 scales on luma; a similarity.")
    ),
    "mdsi": _piq("mdsi", False, 1, "MDSI, summation combination, LMN colour; a distance."),
    "ms_gmsd": _piq("multi_scale_gmsd", False, 17, "MS-GMSD, 4 scales, chromatic off; a distance."),
    "ms_ssim": _piq(
        "multi_scale_ssim", True, 161, "MS-SSIM per RGB channel, 5 scales, mean; a similarity."
    ),
    "psnr": _piq("psnr", True, 1, "PSNR over RGB; a similarity."),
    "srsim": _one_by_one(
        _piq("srsim", True, 40, "SR-SIM (spectral residual saliency); a similarity.")
    ),
    "ssim": _piq("ssim", True, 11, "SSIM per RGB channel, 11x11 Gaussian; a similarity."),
    "vif_p": _piq("vif_p", True, 41, "VIFp (pixel domain, 4 scales) on luma; a similarity."),
    "vsi": _piq("vsi", True, 1, "VSI (visual saliency induced index); a similarity."),
}

_TM_FIXED = {"reduction": "none"}


def _tm(call: str, hib: bool, min_size: int, desc: str, **kw: Any) -> BridgeSpec:
    fixed = dict(_TM_FIXED, **kw.pop("fixed", {}))
    return BridgeSpec(call, hib, min_size, desc, fixed, kw.pop("defaults", {}), **kw)


TORCHMETRICS: dict[str, BridgeSpec] = {
    "ergas": _tm("error_relative_global_dimensionless_synthesis", False, 1, "ERGAS; a distance."),
    "ms_ssim": _tm(
        "multiscale_structural_similarity_index_measure",
        True,
        176,
        "MS-SSIM per RGB channel, 5 scales, reflect padding; a similarity.",
        fixed={"data_range": 1.0},
    ),
    "psnr": _tm(
        "peak_signal_noise_ratio",
        True,
        1,
        "PSNR over RGB; a similarity.",
        fixed={"data_range": 1.0, "dim": (1, 2, 3)},
    ),
    "scc": _tm("spatial_correlation_coefficient", True, 8, "SCC; a similarity."),
    "ssim": _tm(
        "structural_similarity_index_measure",
        True,
        6,
        "SSIM per RGB channel, 11x11 Gaussian, reflect padding; a similarity.",
        fixed={"data_range": 1.0},
    ),
    # Its noise variance sigma_n_sq = 2 is in [0, 255] units: fed [0, 1] images it returns about
    # 0.99 for visibly noisy photographs (measured), so the bridge scales the input by 255.
    "vif": _tm(
        "visual_information_fidelity",
        True,
        41,
        "VIFp per RGB channel on [0, 255] values; a similarity.",
        input_scale=255.0,
    ),
}


def _pyiqa(name: str, hib: bool, min_size: int, desc: str, **kw: Any) -> BridgeSpec:
    return BridgeSpec(name, hib, min_size, desc, **kw)


PYIQA: dict[str, BridgeSpec] = {
    "cw_ssim": _pyiqa(
        "cw_ssim", True, 64, "CW-SSIM, 4 levels, 8 orientations, on Y; a similarity."
    ),
    "dists": _pyiqa(
        "dists",
        False,
        1,
        "DISTS (pyiqa's weights); a distance.",
        weights=("pyiqa/DISTS_weights-f5e65c96.pth", "checkpoints/vgg16-397923af.pth"),
        group="deep-baseline",
    ),
    "fsim": _pyiqa("fsim", True, 2, "FSIMc; a similarity.", defaults={"chromatic": True}),
    "gmsd": _pyiqa("gmsd", False, 4, "GMSD on YCbCr Y (BT.601, [16, 235]); a distance."),
    "lpips": _pyiqa(
        "lpips",
        False,
        1,
        "LPIPS v0.1 AlexNet (pyiqa's copy); a distance.",
        weights=("pyiqa/LPIPS_v0.1_alex-df73285e.pth", "checkpoints/alexnet-owt-7be5be79.pth"),
        group="lpips",
    ),
    "mad": _pyiqa("mad", False, 16, "MAD (most apparent distortion); a distance."),
    "ms_ssim": _pyiqa("ms_ssim", True, 161, "MS-SSIM on YCbCr Y, 5 scales, product; a similarity."),
    "nlpd": _pyiqa("nlpd", False, 1, "NLPD on Y; a distance."),
    "psnr": _pyiqa("psnr", True, 1, "PSNR over RGB; a similarity."),
    "ssim": _pyiqa("ssim", True, 11, "SSIM on YCbCr Y; a similarity."),
    "ssimc": _pyiqa("ssimc", True, 11, "SSIM per RGB channel; a similarity."),
    "vif": _pyiqa("vif", True, 33, "VIF (wavelet domain) on Y; a similarity."),
    "vsi": _pyiqa("vsi", True, 1, "VSI; a similarity."),
}

BRIDGES: dict[str, dict[str, BridgeSpec]] = {
    "piq": PIQ,
    "torchmetrics": TORCHMETRICS,
    "pyiqa": PYIQA,
}


def is_bridged_name(name: str) -> bool:
    """True for ``<library>:<metric>`` names of a bridge library (``piq:haarpsi``)."""
    library, sep, metric = name.partition(":")
    return bool(sep) and library in BRIDGES and bool(metric)


def bridge_spec(library: str, name: str) -> BridgeSpec:
    """The spec of bridged metric ``name`` of ``library``.

    Raises:
        InputError: Unknown library or metric, with close matches from that library.
    """
    if library not in BRIDGES:
        raise InputError(
            f"unknown bridge library {library!r}.{suggest(library, list(BRIDGES))} "
            f"Available: {', '.join(BRIDGES)}."
        )
    table = BRIDGES[library]
    if name not in table:
        raise InputError(
            f"unknown {library} metric {name!r}.{suggest(name, list(table))} "
            f"Bridged {library} metrics: {', '.join(sorted(table))}."
        )
    return table[name]


def library_version(library: str) -> str | None:
    """Installed version of a bridge library (from its metadata, no import), None if absent."""
    try:
        return importlib.metadata.version(LIBRARIES[library])
    except importlib.metadata.PackageNotFoundError:
        return None


def library_label(library: str) -> str:
    """``"piq 0.8.0"``, or ``"piq (not installed)"``."""
    version = library_version(library)
    return f"{library} {version}" if version else f"{library} (not installed)"


def bridge_card(name: str) -> dict[str, Any]:
    """The metric card mapping of a bridged name such as ``piq:haarpsi`` (checked against the table).

    Raises:
        InputError: Unknown library or metric, with close matches.
    """
    library, _, metric = name.partition(":")
    spec = bridge_spec(library, metric)
    return {
        "name": name,
        "version": 1,
        "type": library,
        "group": spec.group,
        "description": f"{spec.description} Computed by {library}.",
        "params": {"name": metric},
    }
