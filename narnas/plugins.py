"""Plugins: the user's own spaces, benchmarks, predictors, strategies, evaluators or measures,
registered from the user's own modules without editing this package.

A plugin is an importable module whose import registers what it defines with the usual
decorators (``spaces.register_space``, ``predictor.register_predictor``,
``search.registry.register_strategy`` / ``register_evaluator`` / ``register_measure``). It is
found two ways:

* installed: a package names the module in its metadata, in the entry-point group
  ``narnas.plugins`` (``[options.entry_points]`` of setup.cfg: ``narnas.plugins = mine = mypkg.nas``).
  Every registry imports those modules on its first look-up, so they serve the Python API
  and every command alike. This package announces its own upper layers' entries this way
  (the ``arch2vec`` predictor lives in ``embeddings``, above ``predictor``).
* named: the CLIs import the modules named by ``--plugin MODULE`` (repeatable) and by
  ``$NARNAS_PLUGINS`` (comma-separated, on ``PYTHONPATH``) before they read anything else; a
  search records these in ``config.json`` and imports them again on ``--resume``.
"""
from __future__ import annotations

import importlib
import os

from .errors import UserError

ENV_VAR = "NARNAS_PLUGINS"
ENTRY_POINT_GROUP = "narnas.plugins"
_entry_points_loaded = False


def plugin_names(given=()) -> list[str]:
    """The modules named on the command line, then by the environment, each once."""
    names = list(given or []) + [n for n in os.environ.get(ENV_VAR, "").split(",")]
    return list(dict.fromkeys(n.strip() for n in names if n and n.strip()))


def load_plugins(given=()) -> list[str]:
    """Import every plugin; a UserError naming the module when one cannot be imported."""
    names = plugin_names(given)
    for name in names:
        try:
            importlib.import_module(name)
        except ImportError as err:
            raise UserError(f"cannot import plugin {name!r}: {err} (is its folder on PYTHONPATH?)") from None
    return names


def installed_plugins() -> list:
    """The ``narnas.plugins`` entry points of the installed packages, by name."""
    from importlib.metadata import entry_points
    return sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda ep: ep.name)


def load_installed_plugins() -> None:
    """Import every installed plugin once per process; one that fails names its package."""
    global _entry_points_loaded
    if _entry_points_loaded:
        return
    _entry_points_loaded = True
    for ep in installed_plugins():
        try:
            ep.load()
        except ImportError as err:
            package = ep.dist.name if ep.dist else "an installed package"
            raise UserError(f"cannot import plugin {ep.name!r} ({ep.value}) of {package}: {err}") from None
