"""The search driver: a strategy, an evaluator and an executor, with a run folder that
makes a killed search resumable exactly.

Order of writes for every finished evaluation: the journal line (flushed, fsynced), then
the strategy is told, then the state (atomic). After a kill, the state plus the journal
lines past ``state["journal_lines"]`` give back every finished evaluation; archs of the
current round without a result are evaluated again. A state written before a round's
``ask`` leads to the same ``ask`` again: every random choice flows from the saved RNG
state, and each round's predictor from its own seed.
"""
from __future__ import annotations

import dataclasses
import platform
import sys
import time
from dataclasses import asdict, dataclass, field

from .errors import SearchError, StateError
from .evaluators import BenchmarkEvaluator, TrainingEvaluator
from .executors import ExecutorConfig, check_executor, make_executor
from .registry import strategy_class
from .rundir import BEST, SUMMARY, PredictorStore, RunDir, write_json
from .strategies import StrategyConfig

#: keys that may change on resume without changing the search
RUNTIME_KEYS = ("executor", "ray_address", "cpus_per_trial", "gpus_per_trial", "max_failures", "quiet", "plots",
                "data_dir")
#: spaces whose archs are trained for real (no tabular benchmark)
TRAINED_SPACES = ("darts",)


@dataclass
class SearchConfig:
    space: str = "nb201"
    strategy: str = "narformer"
    budget: int = 100
    batch: int = 10
    init: int = 10
    seed: int = 0
    predictor: str = "narformer"
    predictor_config: dict = field(default_factory=dict)
    population: int = 20
    tournament: int = 5
    parents: int = 10
    candidates: int = 500
    random_share: float = 0.1
    max_mutations: int = 2
    warm_start: bool = False
    data: str | None = None
    metric: str | None = None  # the search signal; default: the benchmark's validation metric
    test_metric: str | None = None  # reported, never used for selection
    preset: str | None = None  # training budget for trained spaces: final, search (default), smoke
    train_set: dict = field(default_factory=dict)  # training config overrides
    data_dir: str | None = None  # CIFAR-10 python batches folder
    executor: str | None = None  # default: inline for look-ups, ray for training
    ray_address: str | None = None
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    max_failures: int = 2
    quiet: bool = False
    plots: bool = True

    def strategy_config(self) -> StrategyConfig:
        names = {f.name for f in dataclasses.fields(StrategyConfig)}
        return StrategyConfig(**{k: v for k, v in asdict(self).items() if k in names})

    def executor_config(self, storage: str | None = None) -> ExecutorConfig:
        return ExecutorConfig(max_failures=self.max_failures, ray_address=self.ray_address,
                              cpus_per_trial=self.cpus_per_trial, gpus_per_trial=self.gpus_per_trial,
                              storage=storage)


def versions() -> dict:
    import numpy
    import torch
    out = {"python": platform.python_version(), "numpy": numpy.__version__, "torch": torch.__version__}
    try:
        import ray
        out["ray"] = ray.__version__
    except ImportError:
        pass
    return out


def config_differences(saved: dict, new: dict) -> list[str]:
    keys = (set(saved) | set(new)) - set(RUNTIME_KEYS)
    return sorted(k for k in keys if saved.get(k) != new.get(k))


class Search:
    """One run: ``Search(config, out).run()``; ``Search.resume(out, overrides).run()``."""

    def __init__(self, config: SearchConfig, out, *, resume: bool = False, force: bool = False,
                 overrides: dict | None = None, log=None):
        self.run_dir = RunDir(out)
        self.log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
        self.resumed = 0
        self.previous_wall = 0.0
        if resume:
            saved = self.run_dir.read_config()
            saved_config = dict(saved["config"])
            wanted = dict(saved_config, **(overrides or {}))
            diff = config_differences(saved_config, wanted)
            if diff and not force:
                raise SearchError(f"the resume's config differs from the saved one in: {', '.join(diff)} "
                                  f"(saved: {', '.join(f'{k}={saved_config.get(k)!r}' for k in diff)}); "
                                  "--force accepts the change")
            config = _make_config(wanted)
            if diff:
                write_json(self.run_dir.path / "config.json", dict(saved, config=asdict(config)))
        trained = config.space in TRAINED_SPACES
        if config.executor is None:
            config = dataclasses.replace(config, executor="ray" if trained else "inline")
        if trained and config.preset is None:
            config = dataclasses.replace(config, preset="search")
        self.config = config
        check_executor(config.executor)
        config.executor_config().validate()
        self.space = _space(config.space)
        self.evaluator = self._evaluator(trained)
        self.strategy = strategy_class(config.strategy)(self.space, config.strategy_config())
        journal = self.run_dir.read_journal() if resume else []  # never touch another run's files
        if resume:
            self._restore(journal)
        else:
            self.run_dir.create({"config": asdict(config), "versions": versions(),
                                 "evaluator": self.evaluator.describe(), "seed": config.seed,
                                 "command": sys.argv})
        if hasattr(self.strategy, "predictor_store"):
            self.strategy.predictor_store = PredictorStore(self.run_dir)
        self.journal_lines = len(journal)

    def _evaluator(self, trained: bool):
        cfg = self.config
        if trained:
            return TrainingEvaluator(cfg.space, cfg.preset, cfg.train_set, cfg.data_dir,
                                     checkpoints=str(self.run_dir.path / "checkpoints"),
                                     threads=max(1, int(cfg.cpus_per_trial)))
        if cfg.preset or cfg.train_set:
            raise SearchError(f"--preset / --train-set are for trained spaces ({', '.join(TRAINED_SPACES)}); "
                              f"{cfg.space} is evaluated by benchmark look-ups")
        return BenchmarkEvaluator(cfg.space, cfg.data, cfg.metric, cfg.test_metric)

    # --- resume ---------------------------------------------------------------------
    def _restore(self, journal: list[dict]):
        try:
            state = self.run_dir.read_state()
        except StateError as err:
            self.log(f"warning: {err}; rebuilding the state from the journal ({len(journal)} evaluations)")
            state = None
        if state is not None:
            self.strategy.load_state_dict(state["strategy"])
            self.resumed = state["resumed"] + 1
            self.previous_wall = state["wall_seconds"]
            for record in journal[state["journal_lines"]:]:
                self.strategy.tell(record["key"], record.get("val"), record.get("test"))
        else:
            self._replay(journal)
            self.resumed = 1

    def _replay(self, journal):
        """Rebuild the strategy by running it again with the journal's results as answers."""
        if hasattr(self.strategy, "predictor_store"):
            self.strategy.predictor_store = PredictorStore(self.run_dir)
        results = {r["key"]: r for r in journal}
        while True:
            batch = self.strategy.pending() or self.strategy.ask()
            if not batch:
                return
            keys = [self.strategy.key(a) for a in batch]
            known = [k for k in keys if k in results]
            for k in known:
                self.strategy.tell(k, results[k].get("val"), results[k].get("test"))
            if len(known) < len(keys):
                return

    # --- the loop -------------------------------------------------------------------
    def _save_state(self, wall: float):
        self.run_dir.write_state({"strategy": self.strategy.state_dict(), "journal_lines": self.journal_lines,
                                  "resumed": self.resumed, "wall_seconds": wall})

    def run(self) -> dict:
        start = time.time()
        wall = lambda: self.previous_wall + time.time() - start
        cfg = self.config
        storage = str(self.run_dir.path / "ray")
        with make_executor(cfg.executor, cfg.executor_config(storage)) as executor:
            while True:
                batch = self.strategy.pending() or self.strategy.ask()
                if not batch:
                    break
                self._save_state(wall())
                jsons = [self.space.to_json(a) for a in batch]
                keys = [self.strategy.key(a) for a in batch]

                def on_result(index, result, keys=keys, jsons=jsons):
                    record = {"key": keys[index], "arch": jsons[index], "round": self.strategy.round, **result}
                    self.run_dir.append_journal(record)
                    self.journal_lines += 1
                    self.strategy.tell(keys[index], result.get("val") if result["status"] == "ok" else None,
                                       result.get("test"))
                    self._save_state(wall())
                    if result["status"] != "ok":
                        self.log(f"evaluation of {keys[index]} failed: {result['error']}")

                executor.run(jsons, self.evaluator, on_result, self.strategy.round)
                self._progress()
                if cfg.plots:
                    self._plots()
        summary = self.summary(wall())
        self._save_state(summary["wall_seconds"])
        write_json(self.run_dir.path / SUMMARY, summary)
        if summary["best"]:
            write_json(self.run_dir.path / BEST, summary["best"]["arch"])
        if cfg.plots:
            self._plots()
        return summary

    # --- reporting ------------------------------------------------------------------
    def entries(self) -> list[dict]:
        return self.strategy.history + [e for e in self.strategy.in_flight if e["done"]]

    def summary(self, wall: float) -> dict:
        from .report import best_entry, round_taus
        entries = self.entries()
        best = best_entry(entries)
        best = None if best is None else {"arch": best["arch"], "key": best["key"], "val": best["value"],
                                          "test": best["test"], "round": best["round"]}
        return {"best": best,
                "evaluations": len(entries), "failed": sum(e["value"] is None for e in entries),
                "rounds": self.strategy.round, "wall_seconds": round(wall, 2), "resumed": self.resumed,
                "predictor_tau_per_round": round_taus(entries), "space": self.config.space,
                "strategy": self.config.strategy, "seed": self.config.seed,
                "metric": self.evaluator.metric, "test_metric": self.evaluator.test_metric}

    def _progress(self):
        if self.config.quiet:
            return
        from .report import best_entry, round_taus
        entries = self.entries()
        best = best_entry(entries)
        taus = round_taus(entries)
        tau = f" predictor tau (last round) {taus[-1]['tau']:.3f}" if taus else ""
        best_text = f"best {best['value']:.2f} (test {best['test']:.2f})" if best else "best -"
        self.log(f"round {self.strategy.round:3d}  evaluations {len(entries):4d}/{self.config.budget}  "
                 f"{best_text}{tau}")

    def _plots(self):
        from .report import plot_run
        plot_run(self.entries(), self.run_dir.path / "plots", f"{self.config.strategy} on {self.config.space}")


def _make_config(values: dict) -> SearchConfig:
    names = {f.name for f in dataclasses.fields(SearchConfig)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise SearchError(f"unknown config key(s) {', '.join(unknown)}; valid: {', '.join(sorted(names))}")
    return SearchConfig(**values)


def _space(name: str):
    import spaces
    return spaces.get_space(name)
