"""Name -> factory registries for spaces and benchmark readers.

Factories are recorded by a decorator when their module is imported; the built-in
modules are imported on the first look-up, so ``import spaces`` starts nothing.
"""
from __future__ import annotations

import importlib
from typing import Callable

from .errors import UnknownNameError

_BUILTIN_MODULES = ("spaces.nb101", "spaces.nb201", "spaces.darts")
_SPACES: dict[str, Callable] = {}
_BENCHMARKS: dict[str, Callable] = {}
_loaded = False


def _load_builtins():
    global _loaded
    if not _loaded:
        for module in _BUILTIN_MODULES:
            importlib.import_module(module)
        _loaded = True


def register_space(name: str):
    def decorate(factory):
        _SPACES[name] = factory
        return factory
    return decorate


def register_benchmark(space: str):
    """Record the function ``(path, **options) -> Benchmark`` that opens ``space``'s data files."""
    def decorate(opener):
        _BENCHMARKS[space] = opener
        return opener
    return decorate


def list_spaces() -> list[str]:
    _load_builtins()
    return sorted(_SPACES)


def get_space(name: str, **config):
    """The search space registered as ``name``; unknown names list the valid ones."""
    _load_builtins()
    if name not in _SPACES:
        raise UnknownNameError("space", name, _SPACES)
    return _SPACES[name](**config)


def get_benchmark(space, path=None, **options):
    """Open the tabular benchmark of ``space`` (a name or a SearchSpace).

    ``path`` may be any file format the space's readers know; ``None`` means the
    environment variable, then the default data folder (see each space's docs).
    """
    _load_builtins()
    name = space if isinstance(space, str) else space.name
    if name not in _BENCHMARKS:
        raise UnknownNameError("benchmark space", name, _BENCHMARKS)
    return _BENCHMARKS[name](path, **options)
