"""Typed, strict configuration: YAML cards -> frozen dataclasses.

Every YAML key maps to one documented dataclass field; unknown or missing keys and wrong types raise
``InputError`` (a ``ValueError``) naming the file, the key and the fix. Cards live in ``metrics/``
and ``datasets/`` at the repository root (copied into the wheel as ``iqa_bench/_cards/``);
``IQA_BENCH_CARDS`` may point to another root holding those two folders.

Example:
    >>> card = load_metric_card("lpips-alex")
    >>> card.type, card.params["backbone"]
    ('lpips', 'alex')
"""

from __future__ import annotations

import dataclasses
import os
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

import yaml

from .errors import DataNotFoundError, InputError
from .registry import suggest
from .settings import cards_dir

C = TypeVar("C")


def _check_type(value: Any, annotation: Any, where: str) -> Any:
    """Check ``value`` against a simple annotation (str/int/float/bool/tuple/dict/Optional/Literal)."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if annotation is Any:
        return value
    if origin in (typing.Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        errors = []
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _check_type(value, arg, where)
            except InputError as exc:
                errors.append(str(exc))
        raise InputError(errors[0] if errors else f"{where}: bad value {value!r}")
    if origin is typing.Literal:
        if value not in args:
            raise InputError(
                f"{where}: {value!r} is not one of {', '.join(repr(a) for a in args)}."
            )
        return value
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise InputError(f"{where}: expected a list, got {value!r}.")
        item_type = args[0] if args else Any
        return tuple(_check_type(v, item_type, f"{where}[{i}]") for i, v in enumerate(value))
    if origin in (dict, Mapping) or annotation is dict:
        if not isinstance(value, Mapping):
            raise InputError(f"{where}: expected a mapping, got {value!r}.")
        return dict(value)
    if annotation is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InputError(f"{where}: expected a number, got {value!r}.")
        return float(value)
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise InputError(f"{where}: expected an integer, got {value!r}.")
        return value
    if annotation in (str, bool):
        if not isinstance(value, annotation):
            raise InputError(f"{where}: expected {annotation.__name__}, got {value!r}.")
        return value
    if dataclasses.is_dataclass(annotation):
        return from_mapping(annotation, value, where)
    return value


def from_mapping(cls: type[C], mapping: Mapping[str, Any], where: str) -> C:
    """Build frozen dataclass ``cls`` from ``mapping``, rejecting unknown/missing keys and bad types.

    Args:
        cls: A dataclass type.
        mapping: Keys and values, e.g. parsed YAML.
        where: Where the mapping came from (a file name), for error messages.

    Raises:
        InputError: On an unknown key (with close-match suggestions), a missing key or a wrong type.
    """
    if not isinstance(mapping, Mapping):
        raise InputError(
            f"{where}: expected a mapping of keys for {cls.__name__}, got {mapping!r}."
        )
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = [k for k in mapping if k not in fields]
    if unknown:
        key = unknown[0]
        raise InputError(
            f"{where}: unknown key {key!r}.{suggest(str(key), list(fields))} "
            f"Allowed keys: {', '.join(fields)}."
        )
    kwargs = {}
    for name, f in fields.items():
        if name not in mapping:
            if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise InputError(f"{where}: missing required key {name!r}.")
            continue
        kwargs[name] = _check_type(mapping[name], hints[name], f"{where}: key {name!r}")
    return cls(**kwargs)


@dataclass(frozen=True)
class MetricCard:
    """A named metric instance (one YAML file in ``metrics/``).

    Attributes:
        name: Registry name, equal to the file stem (e.g. ``lpips-alex``).
        version: Bumped whenever a change alters the metric's numbers; stored with every result.
        type: The registered metric type that implements it (``lpips``, ``l2``, ``psnr``, ``ssim``, ...).
        group: Report grouping: ``classical``, ``deep-baseline`` or ``lpips``.
        description: One line for ``iqa-bench list`` and reports.
        params: Keyword parameters of the metric type's config dataclass.
        aliases: Other names that load this card (another library's, e.g. pyiqa's ``lpips+``);
            results are stored under ``name``.
    """

    name: str
    version: int
    type: str
    group: typing.Literal["classical", "deep-baseline", "lpips", "custom"]
    description: str
    params: dict = field(default_factory=dict)
    aliases: tuple[str, ...] = ()

    def identity(self) -> dict[str, Any]:
        """The fields that decide the numbers (all but ``aliases``), for result fingerprints.

        Example:
            >>> "aliases" in load_metric_card("lpips-alex+").identity()
            False
        """
        return {k: v for k, v in dataclasses.asdict(self).items() if k != "aliases"}


@dataclass(frozen=True)
class DatasetCard:
    """A named dataset (one YAML file in ``datasets/``).

    Attributes:
        name: Registry name, equal to the file stem (e.g. ``bapps``).
        version: Bumped whenever a change alters what the adapter yields; stored with every result.
        adapter: The registered dataset adapter type (``bapps``, ``synthetic``, ``folder``).
        description: One line for listings and reports.
        synthetic: True when the judgments are constructed, not collected from people.
        source: Where the data comes from (paper, URL) for reports.
        params: Keyword parameters of the adapter.
        download: Archives to fetch (list of mappings with ``url``, ``sha256``, ``size``, ``extract_to``).
    """

    name: str
    version: int
    adapter: str
    description: str
    synthetic: bool = False
    source: str = ""
    params: dict = field(default_factory=dict)
    download: tuple[dict, ...] = ()


def cards_root() -> Path:
    """Folder holding ``metrics/`` and ``datasets/`` cards (``IQA_BENCH_CARDS`` overrides)."""
    override = cards_dir()
    if override is not None:
        return override
    packaged = Path(__file__).parent / "_cards"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent


def _read_yaml(path: Path) -> Any:
    """The parsed YAML of a card file; a syntax error names the file (``InputError``)."""
    try:
        return yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise InputError(f"{path}: not valid YAML ({exc}).") from exc


@cache
def _load_cards(kind: str, root: Path) -> dict[str, Any]:
    cls = {"metrics": MetricCard, "datasets": DatasetCard}[kind]
    folder = root / kind
    cards: dict[str, Any] = {}
    for path in sorted(folder.glob("*.yaml")):
        card = from_mapping(cls, _read_yaml(path), str(path))
        if card.name != path.stem:
            raise InputError(f"{path}: name {card.name!r} must equal the file name {path.stem!r}.")
        cards[card.name] = card
    return cards


# Cards added at run time (plugins, ``--metric-card``/``--dataset-card`` files, trained weights);
# they behave exactly like YAML cards in ``metrics/`` and ``datasets/`` for the rest of the process.
_REGISTERED: dict[str, dict[str, Any]] = {"metrics": {}, "datasets": {}}
_CARD_TYPES: dict[str, type] = {"metrics": MetricCard, "datasets": DatasetCard}
_NOUNS = {"metrics": "metric", "datasets": "dataset"}


def _cards(kind: str) -> dict[str, Any]:
    return {**_load_cards(kind, cards_root()), **_REGISTERED[kind]}


def metric_cards() -> dict[str, MetricCard]:
    """All metric cards by name: the YAML cards, then those added by :func:`register_metric_card`."""
    return _cards("metrics")


def dataset_cards() -> dict[str, DatasetCard]:
    """All dataset cards by name: the YAML cards, then those added by
    :func:`register_dataset_card`."""
    return _cards("datasets")


def _lookup(cards: dict[str, Any], name: str, kind: str) -> Any:
    if name not in cards:
        raise InputError(
            f"unknown {kind} {name!r}.{suggest(name, list(cards))} "
            f"Available: {', '.join(sorted(cards)) or '(none)'}."
        )
    return cards[name]


def metric_aliases() -> dict[str, str]:
    """``{alias: card name}`` of every metric card's ``aliases``.

    Raises:
        InputError: An alias that is also a card name or another card's alias.

    Example:
        >>> metric_aliases()["lpips+"]
        'lpips-alex+'
    """
    cards = metric_cards()
    aliases: dict[str, str] = {}
    for card in cards.values():
        for alias in card.aliases:
            other = alias if alias in cards else aliases.get(alias)
            if other is not None:
                raise InputError(
                    f"metric card {card.name!r}: alias {alias!r} is already the name or an "
                    f"alias of {other!r}; remove it from one card's aliases."
                )
            aliases[alias] = card.name
    return aliases


def load_metric_card(name: str) -> MetricCard:
    """The metric card called ``name`` or aliased so (``InputError`` with suggestions if unknown).

    A bridged name such as ``piq:haarpsi`` that no card claims gets a card synthesised from the
    bridge's table (type ``piq``, params ``{name: haarpsi}``).

    Example:
        >>> load_metric_card("lpips+").name
        'lpips-alex+'
        >>> card = load_metric_card("piq:haarpsi")
        >>> card.type, card.group, card.params
        ('piq', 'classical', {'name': 'haarpsi'})
    """
    cards = metric_cards()
    if name not in cards:
        name = metric_aliases().get(name, name)
    if name not in cards:
        from .bridge_specs import bridge_card, is_bridged_name  # torch-free

        if is_bridged_name(name):
            return from_mapping(MetricCard, bridge_card(name), f"metric {name!r}")
    return _lookup(cards, name, "metric")


def load_dataset_card(name: str) -> DatasetCard:
    """The dataset card called ``name`` (``InputError`` with suggestions if unknown)."""
    return _lookup(dataset_cards(), name, "dataset")


def _register(kind: str, card: Any, where: str) -> Any:
    """Add ``card`` (a card or its mapping) to the run-time cards of ``kind``."""
    if not isinstance(card, _CARD_TYPES[kind]):
        card = from_mapping(_CARD_TYPES[kind], card, where)
    existing = _cards(kind).get(card.name)
    if existing is not None and existing != card:
        raise InputError(
            f"{where}: {_NOUNS[kind]} {card.name!r} already exists with other settings; give the "
            "card another name (and file name)."
        )
    _REGISTERED[kind][card.name] = card
    return card


def _load_card_file(kind: str, path: str | os.PathLike[str]) -> Any:
    """Read a card YAML file of ``kind`` from anywhere and register it."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise DataNotFoundError(f"{_NOUNS[kind]} card {path} does not exist; check the path.")
    card = from_mapping(_CARD_TYPES[kind], _read_yaml(path), str(path))
    if card.name != path.stem:
        raise InputError(f"{path}: name {card.name!r} must equal the file name {path.stem!r}.")
    return _register(kind, card, str(path))


def register_metric_card(card: MetricCard | Mapping[str, Any], where: str = "card") -> MetricCard:
    """Add a metric card for this process, as if it were a YAML file in ``metrics/``.

    Registering an identical card again is a no-op, so a plugin imported twice is harmless.

    Args:
        card: A :class:`MetricCard` or the mapping a YAML card holds.
        where: Where the mapping came from, for error messages.

    Returns:
        The registered card.

    Raises:
        InputError: Invalid card, or its name is taken by a different card.

    Example:
        >>> register_metric_card({"name": "lpips-r18", "version": 1, "type": "lpips",
        ...     "group": "deep-baseline", "description": "resnet18 features",
        ...     "params": {"backbone": "torchvision:resnet18", "taps": ["layer1", "layer2"],
        ...                "lpips": False}}).name
        'lpips-r18'
        >>> unregister_metric_card("lpips-r18")  # the registry is process-wide
    """
    return _register("metrics", card, where)


def unregister_metric_card(name: str) -> None:
    """Remove a card added by :func:`register_metric_card` (YAML cards stay)."""
    _REGISTERED["metrics"].pop(name, None)


def load_metric_card_file(path: str | os.PathLike[str]) -> MetricCard:
    """Read a metric card YAML file from anywhere and register it (see :func:`register_metric_card`).

    As in ``metrics/``, the card's ``name`` must equal the file stem.

    Raises:
        DataNotFoundError: No such file.
        InputError: Invalid YAML or card, a name that differs from the file stem, or a taken name.

    Example:
        >>> load_metric_card_file("runs/alex-lin.yaml").name  # doctest: +SKIP
        'alex-lin'
    """
    return _load_card_file("metrics", path)


def register_dataset_card(
    card: DatasetCard | Mapping[str, Any], where: str = "card"
) -> DatasetCard:
    """Add a dataset card for this process, as if it were a YAML file in ``datasets/``.

    Its data lives in ``<data root>/<name>/`` like that of any named dataset; its ``adapter``
    is looked up when the dataset is opened. Registering an identical card again is a no-op.

    Args:
        card: A :class:`DatasetCard` or the mapping a YAML card holds.
        where: Where the mapping came from, for error messages.

    Returns:
        The registered card.

    Raises:
        InputError: Invalid card, or its name is taken by a different card.

    Example:
        >>> register_dataset_card({"name": "my-study", "version": 1, "adapter": "bapps",
        ...     "description": "our 2AFC study in BAPPS layout"}).name
        'my-study'
        >>> load_dataset_card("my-study").adapter
        'bapps'
        >>> unregister_dataset_card("my-study")
    """
    return _register("datasets", card, where)


def unregister_dataset_card(name: str) -> None:
    """Remove a card added by :func:`register_dataset_card` (YAML cards stay)."""
    _REGISTERED["datasets"].pop(name, None)


def load_dataset_card_file(path: str | os.PathLike[str]) -> DatasetCard:
    """Read a dataset card YAML file from anywhere and register it (see
    :func:`register_dataset_card`); the card's ``name`` must equal the file stem.

    Raises:
        DataNotFoundError: No such file.
        InputError: Invalid YAML or card, a name that differs from the file stem, or a taken name.

    Example:
        >>> load_dataset_card_file("studies/my-study.yaml").name  # doctest: +SKIP
        'my-study'
    """
    return _load_card_file("datasets", path)
