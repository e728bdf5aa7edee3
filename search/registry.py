"""Name -> factory registries of the search layer: strategies, evaluators, executors and
constraint measures. Built-in modules are imported on the first look-up; a plug-in
registers its own with the ``register_*`` decorators."""
from __future__ import annotations

from narnas.registry import Registry

from .errors import SearchError


def _unknown(kind, name, valid):
    return SearchError(f"unknown {kind} {name!r}; valid: {', '.join(sorted(valid))}")


STRATEGIES = Registry("strategy", ("search.strategies", "search.latent"), error=_unknown)
EVALUATORS = Registry("evaluator", ("search.evaluators.benchmark", "search.evaluators.cifar10_training",
                                    "search.evaluators.ofa_surrogate", "search.evaluators.ofa_supernet",
                                    "search.evaluators.imagenet_training"),
                      error=_unknown)
EXECUTORS = Registry("executor", ("search.executors",), error=_unknown)
#: name -> ``(space) -> (arch -> float)``: a number measured on an arch without evaluating it
MEASURES = Registry("constraint measure", ("search.middleware",), error=_unknown)


def register_strategy(name: str):
    return STRATEGIES.register(name, set_name=True)


def register_evaluator(name: str):
    return EVALUATORS.register(name, set_name=True)


def register_executor(name: str):
    return EXECUTORS.register(name, set_name=True)


def register_measure(name: str):
    return MEASURES.register(name)


def list_strategies() -> list[str]:
    return STRATEGIES.names()


def strategy_class(name: str) -> type:
    return STRATEGIES.get(name)
