"""Plugins: the user's own spaces, benchmarks, predictors, strategies, evaluators or measures,
registered from the user's own modules without editing this package.

A plugin is an importable module (on ``PYTHONPATH``) whose import registers what it defines
with the usual decorators (``spaces.register_space``, ``predictor.register_predictor``,
``search.registry.register_strategy`` / ``register_evaluator`` / ``register_measure``). The
CLIs import the modules named by ``--plugin MODULE`` (repeatable) and by ``$NARNAS_PLUGINS``
(comma-separated) before they read anything else; a search records its plugins in
``config.json`` and imports them again on ``--resume``.
"""
from __future__ import annotations

import importlib
import os

from .errors import UserError

ENV_VAR = "NARNAS_PLUGINS"


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
