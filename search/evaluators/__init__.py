"""Evaluators turn an architecture (in JSON form) into its result.

An evaluator is registered by name (``search.registry.register_evaluator``) with its own
typed config dataclass (``config_class``). ``evaluate(arch_json)`` returns a dict with
at least ``val`` (the search signal, maximised) and ``test`` (reported, never used for
selection; None when there is none), plus whatever else it measures (seconds, params,
latency, ...): executors pass the whole dict on to the journal. It raises on failure.
An evaluator must be picklable: the Ray executor ships it to its workers.

Each space names the evaluators it supports (``SearchSpace.evaluators``, the first is its
default); an evaluator may also name extra spaces it serves (``spaces``).
"""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import SearchError
from ..registry import EVALUATORS


#: ``Evaluator.spaces`` of an evaluator that serves every space (a table of results).
ANY_SPACE = "*"

#: The refit of a search whose evaluations are smoke trainings (seconds each).
SMOKE_PREDICTOR_EPOCHS = 100


@dataclass
class EvaluationContext:
    """What the run gives its evaluator: where to keep per-arch files, and the CPU
    threads one evaluation may use."""

    run_dir: str | None = None
    threads: int = 0
    #: >1: train each arch as this many Ray Train data-parallel workers (evaluators with
    #: ``data_parallel``), each with these resources
    workers_per_trial: int = 1
    cpus_per_worker: float = 1.0
    gpus_per_worker: float = 0.0


class Evaluator:
    """The interface. Subclasses set ``config_class`` and implement ``evaluate``,
    ``metric`` and ``test_metric``."""

    name: str
    config_class: type
    #: the executor a search uses when the user names none
    default_executor = "inline"
    #: spaces this evaluator serves besides those that list it; ``ANY_SPACE``: every space
    spaces: tuple[str, ...] = ()
    #: whether one evaluation can run as several data-parallel workers (--workers-per-trial)
    data_parallel = False

    def __init__(self, space, config, context: EvaluationContext | None = None):
        self.space, self.space_name, self.config = space, space.name, config
        self.context = context or EvaluationContext()

    @property
    def metric(self) -> str:
        """The name of the search value ``val``."""
        raise NotImplementedError

    @property
    def test_metric(self) -> str | None:
        """The name of the reported value ``test``."""
        raise NotImplementedError

    def metrics(self) -> list[str]:
        """The keys of the result dict besides val and test."""
        return []

    @classmethod
    def predictor_defaults(cls, config) -> dict:
        """Predictor settings that suit what an evaluation costs under ``config``, laid over the
        space's and under the user's: a training evaluator's smoke preset takes seconds per
        arch, so its search refits short (the paper's 1,000 epochs would take minutes)."""
        return {"epochs": SMOKE_PREDICTOR_EPOCHS} if getattr(config, "preset", None) == "smoke" else {}

    #: whether ``evaluate`` takes ``report`` (intermediate values for a stopper; search.fidelity)
    reports = False

    def evaluate(self, arch_json, report=None) -> dict:
        """The result of ``arch_json``. An evaluator that ``reports`` calls ``report(step,
        value, cost so far)`` at each intermediate step and, when it answers False, returns at
        once with ``stopped: True``, ``fidelity`` (the step) and the value there as ``val``;
        every result it returns carries ``curve`` ({step: value} of the steps it passed)."""
        raise NotImplementedError

    def cost(self, result: dict) -> float:
        """What the evaluation that gave ``result`` cost, in seconds of a worker's time: the
        simulated clock of the inline executor advances by it, and a run's training cost sums
        it. By default the seconds it took (a training's), else one unit per evaluation."""
        seconds = result.get("seconds")
        return float(seconds) if isinstance(seconds, (int, float)) and not isinstance(seconds, bool) else 1.0

    def search_space(self):
        """The space a strategy proposes from: the evaluator's, or the part of it the evaluator
        can evaluate (a table's archs)."""
        return self.space

    def measure(self, name: str):
        """``arch -> float`` for a metric known without evaluating (a benchmark column), or None."""
        return None

    def measure_names(self) -> list[str]:
        """The names ``measure`` answers."""
        return []

    def describe(self) -> dict:
        return {"kind": self.name, "metric": self.metric, "test_metric": self.test_metric,
                "metrics": self.metrics()}


def evaluator_names(space) -> list[str]:
    """The evaluators that serve ``space`` (its own list first: the first is its default)."""
    own = list(getattr(space, "evaluators", ()))
    extra = [n for n in EVALUATORS.names()
             if n not in own and {space.name, ANY_SPACE} & set(getattr(EVALUATORS.get(n), "spaces", ()))]
    return own + extra


def evaluator_class(space, name: str | None) -> type:
    """The evaluator class ``name`` (None: the space's default), checked against the space."""
    supported = evaluator_names(space)
    if name is None:
        if not supported:
            raise SearchError(f"space {space.name!r} names no evaluator; register one that serves it")
        name = supported[0]
    cls = EVALUATORS.get(name)
    if name not in supported:
        raise SearchError(f"evaluator {name!r} does not serve space {space.name!r}; "
                          f"its evaluators: {', '.join(supported) or 'none'}")
    return cls
