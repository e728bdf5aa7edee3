"""Name -> factory registries, shared by spaces, benchmarks, predictors, strategies,
evaluators, executors and constraints.

Factories (classes or functions, never instances) are recorded by a decorator. The
built-in modules of a registry, then the installed plugins (``narnas.plugins``), are
imported on its first look-up, so importing a package starts nothing; a plug-in module
registers its own names by importing ``register`` and decorating. A name can be taken once.
"""
from __future__ import annotations

import importlib
from typing import Callable, Iterable

from .errors import RegistryError
from .plugins import load_installed_plugins


def unknown_name(kind: str, name, valid: Iterable) -> RegistryError:
    return RegistryError(f"unknown {kind} {name!r}; valid: {', '.join(sorted(map(str, valid)))}")


class Registry:
    """``kind`` names the things in messages ("space", "predictor", ...); ``builtins`` are
    the modules that register the built-in ones; ``error(kind, name, valid)`` makes the
    exception for an unknown name (a package's own error type)."""

    def __init__(self, kind: str, builtins: Iterable[str] = (), error: Callable = unknown_name):
        self.kind, self.builtins, self.error = kind, tuple(builtins), error
        self._factories: dict[str, Callable] = {}
        self._loaded = False

    def register(self, name: str, *, set_name: bool = False):
        """Decorator recording ``factory`` as ``name`` (``set_name`` also sets ``factory.name``)."""
        def decorate(factory):
            old = self._factories.get(name)
            # The same definition imported again (a module reloaded) is not a clash.
            if old is not None and _origin(old) != _origin(factory):
                raise RegistryError(f"{self.kind} {name!r} is already registered by {_origin(old)}; "
                                    f"{_origin(factory)} cannot take the name")
            self._factories[name] = factory
            if set_name:
                factory.name = name
            return factory
        return decorate

    def _load(self):
        if not self._loaded:
            self._loaded = True
            for module in self.builtins:
                importlib.import_module(module)
            load_installed_plugins()

    def names(self) -> list[str]:
        self._load()
        return sorted(self._factories)

    def registered(self) -> list[str]:
        """The names in the order they were registered (where that order means something)."""
        self._load()
        return list(self._factories)

    def __contains__(self, name) -> bool:
        self._load()
        return name in self._factories

    def get(self, name: str) -> Callable:
        """The factory registered as ``name``; an unknown name lists the valid ones."""
        self._load()
        if name not in self._factories:
            raise self.error(self.kind, name, self._factories)
        return self._factories[name]


def _origin(factory) -> str:
    return f"{getattr(factory, '__module__', '?')}.{getattr(factory, '__qualname__', repr(factory))}"
