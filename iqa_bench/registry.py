"""A generic name -> object registry with decorator registration and helpful errors.

Example:
    >>> BACKBONES = Registry("backbone")
    >>> @BACKBONES.register("tiny")
    ... def build_tiny(): ...
    >>> BACKBONES.get("tiny") is build_tiny
    True
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from .errors import InputError

T = TypeVar("T")


def suggest(name: str, choices: list[str]) -> str:
    """Return a ' Did you mean ...?' hint for ``name`` among ``choices`` (empty if none is close)."""
    close = difflib.get_close_matches(name, choices, n=3, cutoff=0.5)
    return f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""


class Registry(Generic[T]):
    """Holds named objects of one kind (metric types, backbones, dataset adapters).

    Args:
        kind: What the registry holds, used in error messages (e.g. ``"metric type"``).
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._items: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        """Decorator that registers its target under ``name``; a duplicate name raises ``InputError``."""

        def decorator(obj: T) -> T:
            self.add(name, obj)
            return obj

        return decorator

    def add(self, name: str, obj: T) -> None:
        """Register ``obj`` under ``name`` (``InputError`` if the name is taken)."""
        if name in self._items:
            raise InputError(
                f"{self.kind} {name!r} is already registered ({self._items[name]!r}); "
                "choose another name or remove the earlier registration."
            )
        self._items[name] = obj

    def remove(self, name: str) -> None:
        """Unregister ``name`` (used by tests and plugins that register temporarily)."""
        self._items.pop(name, None)

    def get(self, name: str) -> T:
        """Return the object registered as ``name``; unknown names raise ``InputError`` with suggestions."""
        try:
            return self._items[name]
        except KeyError:
            raise InputError(
                f"unknown {self.kind} {name!r}.{suggest(name, list(self._items))} "
                f"Available: {', '.join(sorted(self._items)) or '(none)'}."
            ) from None

    def names(self) -> list[str]:
        """Registered names, sorted."""
        return sorted(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def __len__(self) -> int:
        return len(self._items)
