"""The named metrics as ``iqa-bench list`` shows them, without importing torch.

Listing reads the metric cards (YAML) and the orientation of each card's metric type. The built-in
types' orientations are stated here so that listing needs no torch (seconds of start-up);
``tests/test_startup.py`` checks them against the registered classes. A bridged card (type
``piq``, ``torchmetrics`` or ``pyiqa``) takes its orientation from the bridge table of its
metric (:mod:`iqa_bench.bridge_specs`). A type added by a plugin is looked up in
:data:`iqa_bench.metrics.METRIC_TYPES`.

Example:
    >>> info = {m.name: m for m in list_metrics()}["psnr"]
    >>> info.type, info.higher_is_better, info.library
    ('psnr', True, None)
"""

from __future__ import annotations

from dataclasses import dataclass

from .bridge_specs import BRIDGES, bridge_spec, library_label
from .config import MetricCard, metric_cards

#: ``higher_is_better`` of each built-in metric type (the class attribute of its registered class).
BUILTIN_HIGHER_IS_BETTER: dict[str, bool] = {
    "dists": False,
    "l2": False,
    "lpips": False,
    "perceptual": False,
    "psnr": True,
    "ssim": True,
}


@dataclass(frozen=True)
class MetricInfo:
    """What ``list_metrics`` reports about a named metric (no weights are loaded).

    ``library`` is the library that computes a bridged metric with its installed version
    (``"piq 0.8.0"``), None for the suite's own metrics.
    """

    name: str
    version: int
    type: str
    group: str
    higher_is_better: bool
    description: str
    params: dict
    library: str | None = None


def type_higher_is_better(metric_type: str) -> bool:
    """Orientation of a metric type; only types not built in import the metric classes.

    Raises:
        ValueError: Unknown type (from the metric-type registry, with suggestions).
    """
    if metric_type in BUILTIN_HIGHER_IS_BETTER:
        return BUILTIN_HIGHER_IS_BETTER[metric_type]
    from .metrics.base import METRIC_TYPES  # importing it registers the built-in types too

    return bool(METRIC_TYPES.get(metric_type).higher_is_better)


def card_higher_is_better(card: MetricCard) -> bool:
    """Orientation of a card: from its bridge table for bridged types, else from its type.

    Raises:
        InputError: Unknown type, or a bridged metric its library's table lacks.
    """
    if card.type in BRIDGES:
        return bridge_spec(card.type, str(card.params.get("name", ""))).higher_is_better
    return type_higher_is_better(card.type)


def card_library(card: MetricCard) -> str | None:
    """``"<library> <version>"`` of a bridged card, None for the suite's own metrics."""
    return library_label(card.type) if card.type in BRIDGES else None


def list_metrics() -> list[MetricInfo]:
    """All named metrics with orientation and card version, sorted by name.

    Example:
        >>> "lpips-alex" in [m.name for m in list_metrics()]
        True
    """
    infos = [
        MetricInfo(
            card.name,
            card.version,
            card.type,
            card.group,
            card_higher_is_better(card),
            card.description,
            dict(card.params),
            card_library(card),
        )
        for card in metric_cards().values()
    ]
    return sorted(infos, key=lambda m: m.name)
