"""Plugins: Python files or modules that register backbones, cards and adapters at start-up.

A plugin is one file that calls ``BACKBONES.add(...)``, ``register_metric_card(...)``,
``register_dataset_card(...)`` or decorates a dataset adapter with ``register_adapter``; the CLI
imports it for ``iqa-bench --plugin my_trunk.py <command>`` or when it is listed in
``IQA_BENCH_PLUGINS`` (module names or ``.py`` paths, separated by commas or ``os.pathsep``). In
Python, importing the module is enough. See ``docs/BACKBONES.md``.

Example:
    >>> load_plugin("tests/plugin_trunk.py")  # doctest: +SKIP
    <module 'iqa_bench_plugin_plugin_trunk' from 'tests/plugin_trunk.py'>
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import re
import sys
from collections.abc import Iterable
from pathlib import Path
from types import ModuleType

from .errors import DataNotFoundError, InputError
from .settings import plugin_refs_from_env

_LOADED: dict[str, ModuleType] = {}


def load_plugin(ref: str) -> ModuleType:
    """Import a plugin once per process: a module name (``my_pkg.trunks``) or a ``.py`` path.

    Raises:
        DataNotFoundError: A ``.py`` path that does not exist.
        InputError: A module that cannot be imported (the message names it and the cause).
    """
    text = ref.strip()
    if text in _LOADED:
        return _LOADED[text]
    if text.endswith(".py") or os.sep in text or "/" in text:
        path = Path(text).expanduser().resolve()
        key = str(path)
        if key in _LOADED:
            return _LOADED[key]
        if not path.is_file():
            raise DataNotFoundError(f"plugin {path} does not exist; check the path.")
        slug = re.sub(r"\W", "_", path.stem)
        name = f"iqa_bench_plugin_{slug}_{hashlib.sha256(key.encode()).hexdigest()[:8]}"
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:  # pragma: no cover - a .py file always has one
            raise InputError(f"plugin {path}: not a Python file.")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException:
            sys.modules.pop(name, None)
            raise
        _LOADED[key] = _LOADED[text] = module
        return module
    try:
        module = importlib.import_module(text)
    except ImportError as exc:
        raise InputError(
            f"plugin {text!r} cannot be imported ({exc}); give an importable module name or the "
            "path of a .py file."
        ) from exc
    _LOADED[text] = module
    return module


def plugin_refs(extra: Iterable[str] = ()) -> list[str]:
    """Plugins named in ``IQA_BENCH_PLUGINS`` followed by ``extra``, without duplicates."""
    refs = plugin_refs_from_env()
    out: list[str] = []
    for ref in [*refs, *extra]:
        if ref not in out:
            out.append(ref)
    return out


def load_plugins(extra: Iterable[str] = ()) -> list[ModuleType]:
    """Import every plugin of :func:`plugin_refs` (each once per process)."""
    return [load_plugin(ref) for ref in plugin_refs(extra)]
