"""The one config tree of a search: nested dataclasses built and checked by
``narnas.config.build``, written whole into the run folder and diffed on resume.

    seed                      the run's one seed
    space.name                a registered space
    strategy.*                StrategyConfig (name, budget, batch, init, constraints, ...)
    strategy.config           the strategy's own settings (its config_class)
    schedule.*                ScheduleSection: synchronous rounds or asynchronous slots
    stopper.*                 StopperSection: early stopping from intermediate values (async)
    predictor.name, .config   a registered predictor and its own config fields
    evaluator.name, .config   a registered evaluator (None: the space's default) and its config
    executor.*                ExecutorConfig (name None: the evaluator's default)
    run.*                     output settings (quiet, plots)
    latency.*                 LatencySection: where the latency measure comes from

``resolve`` fills in the defaults that depend on other parts (the space's evaluator, the
evaluator's executor, each named part's full config) and constructs every part once, so
every error surfaces before the first evaluation.
"""
from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field

from narnas import config as configs
from narnas.cli import parse_names

from .errors import SearchError
from .executors import ExecutorConfig
from .fidelity import StopperSection
from .latency import LatencySection
from .proxies import DATA_FLAG, ProxiesSection, check_usable
from .strategies import PredictorSection, StrategyConfig, strategy_settings


@dataclass
class SpaceSection:
    name: str = "nb201"
    options: dict = field(default_factory=dict)  # the space's own options (e.g. ofa_mbv3: width_mult)


@dataclass
class EvaluatorSection:
    name: str | None = None  # None: the space's default evaluator
    config: dict = field(default_factory=dict)  # the fields of that evaluator's config dataclass


@dataclass
class RunSection:
    quiet: bool = False  # no progress lines
    plots: bool = True  # draw plots/ after every round
    keep_checkpoints: int = 5  # training evaluators: the best N finished archs keep their checkpoints; 0: all

    def validate(self):
        if self.keep_checkpoints < 0:
            raise SearchError(f"run.keep_checkpoints cannot be negative, got {self.keep_checkpoints}")
        return self


SCHEDULES = ("rounds", "async")


@dataclass
class ScheduleSection:
    """How evaluations are handed out. ``rounds``: the strategy proposes a batch and waits for
    all of it (today's searches, reproduced exactly). ``async``: ``slots`` evaluations stay in
    flight; each result is journaled and told at once and its slot gets a new arch, ranked by
    the predictor of the current round; a new round (a refit) begins after ``refit_every``
    results, while the slots keep running."""

    name: str = "rounds"
    slots: int = 0  # async: evaluations in flight; 0: what the executor runs at once (inline: the batch)
    refit_every: int = 0  # async: results between refits; 0: the strategy's batch

    def validate(self):
        if self.name not in SCHEDULES:
            raise SearchError(f"unknown schedule {self.name!r}; valid: {', '.join(SCHEDULES)}")
        if self.slots < 0 or self.refit_every < 0:
            raise SearchError(f"slots and refit_every must be >= 0 (0: the default), got {self.slots}, "
                              f"{self.refit_every}")
        return self


@dataclass
class SearchConfig:
    seed: int = 0
    space: SpaceSection = field(default_factory=SpaceSection)
    strategy: StrategyConfig = field(default_factory=StrategyConfig)
    schedule: ScheduleSection = field(default_factory=ScheduleSection)
    stopper: StopperSection = field(default_factory=StopperSection)
    predictor: PredictorSection = field(default_factory=PredictorSection)
    evaluator: EvaluatorSection = field(default_factory=EvaluatorSection)
    executor: ExecutorConfig = field(default_factory=ExecutorConfig)
    run: RunSection = field(default_factory=RunSection)
    latency: LatencySection = field(default_factory=LatencySection)
    proxies: ProxiesSection = field(default_factory=ProxiesSection)


#: parts that may change on resume without changing the search
RUNTIME = ("executor", "run", "evaluator.config.data_dir", "proxies.cache", "proxies.data_dir", "proxies.device")

#: command-line flag (argparse dest) -> (path in the tree, type, help)
FLAGS = {
    "space": ("space.name", str, "search space (default nb201)"),
    "strategy": ("strategy.name", str, "narformer (default), rea, random, or reinforce / bo (in arch2vec's "
                                       "latent space; they need --embedding)"),
    "budget": ("strategy.budget", int, "evaluations in all (default 100)"),
    "batch": ("strategy.batch", int, "archs per round (default 10)"),
    "cost_budget": ("strategy.cost_budget", float, "start no evaluation once the finished ones cost this many "
                                                   "seconds (training seconds; a table's training time); "
                                                   "default 0: no limit"),
    "init": ("strategy.init", int, "random archs of the first round (default 10)"),
    "prior": ("strategy.prior", str, "a run folder or table (arch column + val) whose evaluations the predictor "
                                     "learns from first: never re-evaluated, not counted in --budget"),
    "seed": ("seed", int, "the run's one seed (default 0)"),
    "schedule": ("schedule.name", str, "rounds (default: propose a batch, wait for all of it) or async "
                                       "(keep --slots evaluations in flight, refit every --refit-every results)"),
    "slots": ("schedule.slots", int, "async: evaluations in flight (default: what the executor runs at once; "
                                     "inline: --batch)"),
    "refit_every": ("schedule.refit_every", int, "async: results between predictor refits (default: --batch)"),
    "stopper": ("stopper.name", str, "async: stop evaluations early from their intermediate values: none "
                                     "(default), asha or curve (ours: the final value extrapolated across archs)"),
    "eta": ("stopper.eta", float, "asha: 1/eta of the evaluations at a step go on (default 3)"),
    "proxies": ("proxies.names", parse_names, "zero-cost proxies, comma-separated (python -m zerocost --list): the "
                                              "zero-cost strategy's vote (default synflow,naswot,jacov); a "
                                              "predictor-guided strategy's per-graph predictor inputs"),
    "first_round": ("proxies.first_round", str, "narformer: random (default) or proxies (the proxies' best of "
                                                "--set proxies.pool=100 random archs)"),
    "population": ("strategy.config.population", int, "rea: population size (default 20)"),
    "tournament": ("strategy.config.tournament", int, "rea: tournament size (default 5)"),
    "parents": ("strategy.config.parents", int, "narformer: top archs mutated (default 10)"),
    "candidates": ("strategy.config.candidates", int, "narformer: candidates ranked per round (default 500)"),
    "random_share": ("strategy.config.random_share", float, "narformer: share of random candidates (default 0.1)"),
    "max_mutations": ("strategy.config.max_mutations", int, "narformer: mutations per candidate, at most (default 2)"),
    "embedding": ("strategy.config.embedding", str, "reinforce / bo: an arch2vec model file (python -m embeddings "
                                             "pretrain) or its encode .npz"),
    "predictor": ("predictor.name", str, "predictor of the narformer strategy (default narformer)"),
    "evaluator": ("evaluator.name", str, "how archs are evaluated (default: the space's; benchmark for "
                                         "nb101/nb201, cifar10-train for darts)"),
    "data": ("evaluator.config.data", str, "benchmark file (default: the space's default table)"),
    "metric": ("evaluator.config.metric", str, "search metric (default: the benchmark's validation accuracy)"),
    "test_metric": ("evaluator.config.test_metric", str, "reported metric (default: the benchmark's test accuracy)"),
    "preset": ("evaluator.config.preset", str, "training budget of cifar10-train and imagenet: final, search (default) or smoke"),
    "data_dir": ("evaluator.config.data_dir", str, "cifar10-train: CIFAR-10 python batches folder (default "
                                                   "$NARNAS_CIFAR10_DIR, then the data folder); ofa-supernet: the "
                                                   "ImageNet root (default $NARNAS_IMAGENET_DIR)"),
    "supernet": ("space.options.supernet", str, "ofa_mbv3: OFA's trained supernet weights (ofa_mbv3_d234_e346_k357_w1.0)"),
    "latency": ("latency.source", str, "where the latency measure (--constraint latency<=MS) comes from: "
                                       "measured (default: onnxruntime here), predictor:FILE, or a benchmark "
                                       "column / space measure such as lat_pixel2 or latency_note10"),
    "executor": ("executor.name", str, "inline or ray (default: inline for look-ups, ray for training)"),
    "ray_address": ("executor.ray_address", str, "join a Ray cluster: auto or HOST:PORT "
                                                 "(default: start an embedded local Ray)"),
    "cpus_per_trial": ("executor.cpus_per_trial", float, "CPUs per evaluation (default 1)"),
    "gpus_per_trial": ("executor.gpus_per_trial", float, "GPUs per evaluation (default 0)"),
    "workers_per_trial": ("executor.workers_per_trial", int, "ray, training evaluators: train each arch as N "
                                                             "Ray Train data-parallel workers (DDP), each with "
                                                             "--cpus-per-trial / --gpus-per-trial (default 1)"),
    "max_failures": ("executor.max_failures", int, "retries of a failing evaluation (default 2)"),
    "keep_checkpoints": ("run.keep_checkpoints", int, "training evaluators: keep the per-epoch checkpoints of the "
                                                      "best N finished archs, delete the others' (default 5; 0: all)"),
}
#: flags of repeatable KEY=VALUE items -> the section they fill
ITEM_FLAGS = {"predictor_set": "predictor.config", "train_set": "evaluator.config.train",
              "constraint": "strategy.constraints", "space_set": "space.options", "latency_set": "latency"}
#: switches -> (path, the value they set)
SWITCHES = {"warm_start": ("strategy.config.warm_start", True), "quiet": ("run.quiet", True), "plots": ("run.plots", False)}


def flag_name(path: str) -> str:
    """The command-line name of a tree path where there is one (for messages)."""
    for dest, (p, _, _) in FLAGS.items():
        if p == path:
            return dest
    return path


def merge(tree: dict, overrides: dict) -> dict:
    """A copy of ``tree`` with the (nested) ``overrides`` laid over it."""
    out = copy.deepcopy(tree)
    for path, value in configs.flatten(overrides).items():
        configs.set_path(out, path, value)
    return out


def build(values: dict) -> SearchConfig:
    """The config tree from (nested) values: the registered names it gives first (an unknown
    space, strategy, predictor, evaluator or executor lists the valid ones), then the values."""
    check_names(values)
    return configs.build(SearchConfig, values)


def check_names(values: dict) -> None:
    from predictor.registry import PREDICTORS
    from spaces.registry import SPACES

    from .registry import EVALUATORS, EXECUTORS, STRATEGIES
    registries = {"space": SPACES, "strategy": STRATEGIES, "predictor": PREDICTORS, "evaluator": EVALUATORS,
                  "executor": EXECUTORS}
    for section, registry in registries.items():
        given = values.get(section)
        if isinstance(given, dict) and isinstance(given.get("name"), str):
            registry.get(given["name"])


def to_dict(config: SearchConfig) -> dict:
    return configs.to_dict(config)


@dataclass
class Parts:
    """The constructed parts of a resolved config."""

    space: object
    evaluator_class: type
    evaluator_config: object


def resolve(config: SearchConfig) -> tuple[SearchConfig, Parts]:
    """Fill in the defaults that depend on other parts and check every part by building it
    (space, evaluator config, predictor, constraint measures, executor name)."""
    import predictor as predictors

    from .evaluators import evaluator_class
    from .middleware import check_limits
    from .registry import EXECUTORS, STRATEGIES

    config = copy.deepcopy(config)
    space = make_space(config.space)
    strategy = STRATEGIES.get(config.strategy.name)
    if config.stopper.name != "none" and config.schedule.name != "async":
        raise SearchError(f"--stopper {config.stopper.name} stops evaluations as their reports arrive: it needs "
                          "--schedule async")
    if config.schedule.name == "async" and not strategy.streams:
        streaming = sorted(n for n in STRATEGIES.names() if STRATEGIES.get(n).streams)
        raise SearchError(f"strategy {strategy.name} learns from whole rounds: it runs with --schedule rounds; "
                          f"asynchronous strategies: {', '.join(streaming)}")
    config.strategy.config = configs.to_dict(strategy_settings(strategy, config.strategy.config))
    if config.strategy.prior and not strategy.learns_from_prior:
        learners = sorted(n for n in STRATEGIES.names() if STRATEGIES.get(n).learns_from_prior)
        raise SearchError(f"strategy {strategy.name} does not learn from earlier evaluations; --prior is for "
                          f"{', '.join(learners)}")
    if not config.proxies.names and getattr(strategy, "default_proxies", ()):
        config.proxies.names = tuple(strategy.default_proxies)
    check_limits(config.strategy.constraints)
    if "latency" in config.strategy.constraints:
        from .latency import check as check_latency
        check_latency(config.latency)

    cls = evaluator_class(space, config.evaluator.name)
    config.evaluator.name = cls.name
    evaluator_config = configs.build(cls.config_class, config.evaluator.config, path=f"evaluator {cls.name}")
    config.evaluator.config = configs.to_dict(evaluator_config)
    given_as = DATA_FLAG
    if config.proxies.names and config.proxies.data_dir is None and config.evaluator.config.get("data_dir"):
        # One dataset folder per run: the proxies' minibatch comes from the one the evaluator trains on.
        config.proxies.data_dir, given_as = config.evaluator.config["data_dir"], "--data-dir"
    check_usable(space, config.proxies, given_as)

    if "seed" in config.predictor.config:
        raise SearchError("the predictor's seed is set from the run's seed each round: use --seed, "
                          "not a predictor config seed")
    given = dict(config.predictor.config)
    defaults = dict(getattr(space, "search_predictor", {}).get(config.predictor.name, {}))
    from predictor.registry import predictor_class
    fields = {f.name for f in dataclasses.fields(predictor_class(config.predictor.name).config_class)}
    if config.proxies.names and "graph_inputs" in fields and "graph_inputs" not in given:
        given["graph_inputs"] = list(config.proxies.names)  # the proxies join the predictor's head
    defaults.update({k: v for k, v in cls.predictor_defaults(evaluator_config).items() if k in fields})
    made = predictors.get_predictor(config.predictor.name, **{**defaults, **given})  # checks keys and values
    # The seed follows the run's; "quiet" (the fit's progress bar) follows the terminal and
    # --quiet unless given: neither is recorded as the predictor's own setting.
    config.predictor.config = {k: v for k, v in configs.to_dict(made.config).items()
                               if k != "seed" and (k != "quiet" or k in given)}

    if config.executor.name is None:
        config.executor.name = cls.default_executor
    if config.executor.workers_per_trial > 1 and not cls.data_parallel:
        raise SearchError(f"--workers-per-trial needs an evaluator that trains data-parallel (imagenet); "
                          f"{cls.name} does not")
    EXECUTORS.get(config.executor.name)
    return config, Parts(space, cls, evaluator_config)


def make_space(section: SpaceSection):
    """The space a config names, with its options."""
    import spaces
    return spaces.get_space(section.name, **section.options)


def differences(saved: dict, new: dict) -> list[str]:
    """Dotted paths where two config trees differ in what changes the search."""
    return configs.differences(saved, new, ignore=RUNTIME)


def tree_from_args(values: dict, sets: list[str] | None = None) -> dict:
    """The (partial) tree given on a command line: flag values by their paths, repeatable
    ``KEY=VALUE`` items into their sections, switches, then ``--set PATH=VALUE`` items."""
    from narnas.cli import parse_overrides
    tree: dict = {}
    for dest, value in values.items():
        if dest in FLAGS:
            configs.set_path(tree, FLAGS[dest][0], value)
        elif dest in ITEM_FLAGS:
            flag = "--" + dest.replace("_", "-")
            items = parse_constraints(value) if dest == "constraint" else parse_overrides(value, flag)
            for key, item in items.items():
                configs.set_path(tree, f"{ITEM_FLAGS[dest]}.{key}", item)
        elif dest in SWITCHES:
            configs.set_path(tree, *SWITCHES[dest])
    for path, value in parse_overrides(sets, "--set").items():
        configs.set_path(tree, path, value)
    return tree


SUFFIXES = {"k": 1e3, "K": 1e3, "M": 1e6, "G": 1e9}


def parse_number(text: str) -> float:
    """``400M`` -> 4e8, ``1.5k`` -> 1500.0, ``25`` -> 25.0; ValueError otherwise."""
    text = text.strip()
    scale = SUFFIXES.get(text[-1:], 1.0)
    return float(text[:-1] if scale != 1.0 else text) * scale


def parse_constraints(items) -> dict:
    """``NAME<=VALUE`` items -> {name: value}; values take k / M / G suffixes (``macs<=400M``)."""
    out = {}
    for item in items or []:
        name, sep, value = item.partition("<=")
        try:
            out[name.strip()] = parse_number(value)
        except ValueError:
            sep = ""
        if not sep or not name.strip():
            raise SearchError(f"--constraint takes NAME<=VALUE with an optional k/M/G suffix "
                              f"(e.g. macs<=400M, params<=5M, latency_note10<=25), got {item!r}")
    return out
