"""Name -> predictor class registry. Built-in modules are imported on the first look-up."""
from __future__ import annotations

from narnas import config as configs
from narnas.errors import ConfigError
from narnas.registry import Registry

from .errors import PredictorError

# arch2vec's predictor registers itself from the embeddings package (an installed plugin).
PREDICTORS = Registry("predictor", ("predictor.narformer", "predictor.baselines", "predictor.gcn", "predictor.tnasp"),
                      error=lambda kind, name, valid: PredictorError(
                          f"unknown {kind} {name!r}; valid: {', '.join(sorted(valid))}"))


def register_predictor(name: str):
    return PREDICTORS.register(name, set_name=True)


def list_predictors() -> list[str]:
    return PREDICTORS.names()


def predictor_class(name: str) -> type:
    return PREDICTORS.get(name)


def get_predictor(name: str, **config):
    """A new, unfitted predictor; ``config`` keys are the fields of its config dataclass."""
    cls = PREDICTORS.get(name)
    return cls(make_config(cls.config_class, config, name))


def make_config(config_class, values: dict, what: str):
    """Build a config dataclass: unknown keys and values of the wrong type are PredictorErrors."""
    try:
        return configs.build(config_class, values, path=f"predictor {what}")
    except ConfigError as err:
        raise PredictorError(str(err)) from None
