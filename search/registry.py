"""Name -> strategy class registry (the built-in module is imported on first look-up)."""
from __future__ import annotations

import importlib

from .errors import SearchError

_STRATEGIES: dict[str, type] = {}
_loaded = False


def register_strategy(name: str):
    def decorate(cls):
        _STRATEGIES[name] = cls
        cls.name = name
        return cls
    return decorate


def list_strategies() -> list[str]:
    global _loaded
    if not _loaded:
        importlib.import_module("search.strategies")
        _loaded = True
    return sorted(_STRATEGIES)


def strategy_class(name: str) -> type:
    if name not in list_strategies():
        raise SearchError(f"unknown strategy {name!r}; valid: {', '.join(list_strategies())}")
    return _STRATEGIES[name]
