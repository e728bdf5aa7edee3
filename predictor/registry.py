"""Name -> predictor class registry. Built-in modules are imported on the first look-up."""
from __future__ import annotations

import dataclasses
import importlib

from .errors import PredictorError

_BUILTIN_MODULES = ("predictor.narformer", "predictor.baselines", "predictor.tnasp")
_PREDICTORS: dict[str, type] = {}
_loaded = False


def register_predictor(name: str):
    def decorate(cls):
        _PREDICTORS[name] = cls
        cls.name = name
        return cls
    return decorate


def _load_builtins():
    global _loaded
    if not _loaded:
        for module in _BUILTIN_MODULES:
            importlib.import_module(module)
        _loaded = True


def list_predictors() -> list[str]:
    _load_builtins()
    return sorted(_PREDICTORS)


def get_predictor(name: str, **config):
    """A new, unfitted predictor; ``config`` keys are the fields of its config dataclass."""
    _load_builtins()
    if name not in _PREDICTORS:
        raise PredictorError(f"unknown predictor {name!r}; valid: {', '.join(sorted(_PREDICTORS))}")
    cls = _PREDICTORS[name]
    return cls(make_config(cls.config_class, config, name))


def make_config(config_class, values: dict, what: str):
    """Build a config dataclass; unknown keys are an error listing the valid ones."""
    fields = {f.name for f in dataclasses.fields(config_class)}
    unknown = sorted(set(values) - fields)
    if unknown:
        raise PredictorError(f"unknown config key(s) {', '.join(unknown)} for {what}; valid: {', '.join(sorted(fields))}")
    return config_class(**values)
