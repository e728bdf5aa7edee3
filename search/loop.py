"""The search driver: a strategy, an evaluator and an executor, with a run folder that
makes a killed search resumable exactly.

Two schedules: synchronous rounds (``_rounds``) and asynchronous slots (``_stream``).
Order of writes for every finished evaluation: the journal line (flushed, fsynced), then
the strategy is told, then the state (atomic). After a kill, the state plus the journal
lines past ``state["journal_lines"]`` give back every finished evaluation; archs in flight
without a result are evaluated again. A state written before an ``ask`` leads to the same
``ask`` again: every random choice flows from the saved RNG state, and each round's
predictor from its own seed. A stopper's decisions go to their own journal the same way.
"""
from __future__ import annotations

import hashlib
import platform
import shutil
import signal
import sys
import threading
import time
from dataclasses import dataclass

from narnas.cli import clear_interrupt, on_interrupt, raise_if_interrupted

from . import config as search_config
from . import prior as priors
from .config import SearchConfig
from .errors import SearchError, StateError
from .evaluators import EvaluationContext
from .executors import make_executor
from .fidelity import make_stopper
from .middleware import Constrained, make_strategy, measure_functions
from .registry import EXECUTORS
from .rundir import BEST, PARETO, SUMMARY, PredictorStore, RunDir, dumps, write_json


def versions() -> dict:
    import numpy
    import torch
    out = {"python": platform.python_version(), "numpy": numpy.__version__, "torch": torch.__version__}
    try:  # without importing Ray: it reads its settings (RAY_AUTH_MODE) when first imported
        from importlib.metadata import PackageNotFoundError, version
        out["ray"] = version("ray")
    except PackageNotFoundError:
        pass
    return out


class Search:
    """One run: ``Search(config, out).run()``; ``Search(None, out, resume=True, overrides=tree).run()``."""

    def __init__(self, config: SearchConfig | None, out, *, resume: bool = False, force: bool = False,
                 overrides: dict | None = None, log=None, plugins=()):
        """``overrides``: a (nested) config tree laid over the saved config on resume."""
        self.run_dir = RunDir(out)
        self.log = log or (lambda msg: print(msg, file=sys.stderr, flush=True))
        self.resumed = 0
        self.previous_wall = 0.0
        if resume:
            self.run_dir.lock(create=False)  # before reading: nobody else may be writing
            saved = self.run_dir.read_config()
            saved_config, _ = search_config.resolve(search_config.build(saved["config"]))
            saved_tree = search_config.to_dict(saved_config)
            self.saved_tree = saved_tree
            config = search_config.build(search_config.merge(saved_tree, overrides or {}))
        config, parts = search_config.resolve(config)  # every part checked before any evaluation
        if resume:
            diff = search_config.differences(saved_tree, search_config.to_dict(config))
            if diff and not force:
                flat = search_config.configs.flatten(saved_tree)
                named = sorted((search_config.flag_name(k), k) for k in diff)  # as the user typed them
                raise SearchError(f"the resume's config differs from the saved one in: {', '.join(n for n, _ in named)} "
                                  f"(saved: {', '.join(f'{n}={flat.get(k)!r}' for n, k in named)}); "
                                  "--force accepts the change")
        self.config = config
        # config.json's config, which the state's digest vouches for: the saved one on a resume
        # (this invocation's runtime settings, such as --quiet, are not written there), the
        # new one on a fresh start or a --force
        self.recorded_tree = saved_tree if resume and not diff else search_config.to_dict(config)
        self.space = parts.space
        ex = config.executor
        context = EvaluationContext(run_dir=str(self.run_dir.path), threads=max(1, int(ex.cpus_per_trial)),
                                    workers_per_trial=ex.workers_per_trial, cpus_per_worker=ex.cpus_per_trial,
                                    gpus_per_worker=ex.gpus_per_trial)
        self.evaluator = parts.evaluator_class(parts.space, parts.evaluator_config, context)
        # what the strategy proposes from: a table of results that lists only some archs confines it
        self.proposal_space = self.evaluator.search_space()
        if self.proposal_space is not self.space and config.strategy.budget > self.proposal_space.count():
            raise SearchError(f"--budget {config.strategy.budget} exceeds the {self.proposal_space.count()} "
                              f"architectures of {self.evaluator.table.source}: a search over a table evaluates "
                              "only its archs")
        self.stopper = make_stopper(config.stopper)
        if self.stopper is not None and not self.evaluator.reports:
            raise SearchError(f"--stopper {config.stopper.name} needs intermediate values, and evaluator "
                              f"{self.evaluator.name} reports none here (NB201's table reports its 12-epoch "
                              "accuracy when the search metric is its default one)")
        self.measures = measure_functions(self.space, config.strategy.constraints, self.evaluator,
                                          config.latency, self.run_dir.path)
        self.prior, prior_info = [], None
        if config.strategy.prior:  # a resume reads the copy its run made, never the source again
            self.prior, prior_info = priors.load(self.run_dir.path, self.space, config.strategy.prior, resume)
        self.strategy = make_strategy(self.proposal_space, config.strategy, config.seed, config.predictor, self.measures,
                                      config.schedule, config.proxies, self.prior)
        # The clock of the run's evaluations (simulated for the inline executor) and the slots
        # of the asynchronous schedule, resolved when the executor starts; kept in the state.
        self.decision_lines = 0  # lines of the stopper's journal (decisions.jsonl)
        self.clock = {"now": 0.0, "began": {}, "slots": config.schedule.slots,
                      "simulated": EXECUTORS.get(config.executor.name).clock == "simulated"}
        # The constraint wrapper measures each arch once (cached by key); pareto.json reads it there.
        self.constrained = self.strategy.link(Constrained)
        journal = self.run_dir.read_journal() if resume else []  # never touch another run's files
        self.spent = sum(r.get("cost") or 0.0 for r in journal)  # the cost of the finished evaluations
        self.fresh = not resume
        if resume:
            self._restore(journal)
        else:
            self.run_dir.lock(create=True)  # before the emptiness check: two fresh starts race there
            self.run_dir.create({"config": search_config.to_dict(config), "versions": versions(),
                                 "evaluator": self.evaluator.describe(), "seed": config.seed,
                                 "command": sys.argv, "plugins": list(plugins),
                                 **({"prior": prior_info} if prior_info else {})})
            if self.prior:
                priors.write(self.run_dir.path, self.prior)
        self._attach_store()
        self.journal_lines = len(journal)
        if config.schedule.slots:  # given (a --force resume may change it): over the saved resolution
            self.clock["slots"] = config.schedule.slots
        if resume:
            if diff:  # --force: the new config is the run's from now on, in both files
                write_json(self.run_dir.path / "config.json", dict(saved, config=search_config.to_dict(config)))
            self._save_state(self.previous_wall)  # the resume counts even if it is killed before any result

    def _attach_store(self):
        # A progress bar with a time estimate for each refit, on a terminal and not --quiet;
        # in a log, a line when a refit starts and when it ends.
        quiet, terminal = self.config.run.quiet, sys.stderr.isatty()
        self.strategy.attach(PredictorStore(self.run_dir), quiet or not terminal,
                             say=self.log if not quiet and not terminal else None)

    # --- resume ---------------------------------------------------------------------
    def _restore(self, journal: list[dict]):
        try:
            state = self.run_dir.read_state()
        except StateError as err:
            self.log(f"warning: {err}; rebuilding the state from the journal ({len(journal)} evaluations)")
            state = None
        if state is not None:
            self._check_config_unchanged(state)
            try:
                self.strategy.load_state_dict(state["strategy"])
                self.resumed = state["resumed"] + 1
                self.previous_wall = state["wall_seconds"]
                lines = state["journal_lines"]
                self.clock.update(state.get("clock", {}))
                decided = self.decision_lines = state.get("decision_lines", 0)
                if self.stopper is not None:
                    self.stopper.load_state_dict(state["stopper"])
            except (KeyError, TypeError, ValueError, IndexError, SearchError) as err:
                # A checksum that matches a payload of the wrong shape: hand-made or another
                # version's file. The journal holds every result, so nothing is lost.
                self.log(f"warning: {self.run_dir.path / 'state.json'} does not hold a search state "
                         f"({type(err).__name__}: {err}); rebuilding it from the journal ({len(journal)} evaluations)")
                state = None
        if state is not None and len(journal) < lines:
            raise SearchError(f"{self.run_dir.path / 'journal.jsonl'} has {len(journal)} evaluations but the saved "
                              f"state has seen {lines}: the journal was deleted or cut; restore it from a backup "
                              "before resuming")
        decisions = self.run_dir.read_decisions() if self.stopper is not None else []
        if state is not None:
            # journaled by a process killed before it saved the state: at most one of each
            for line in decisions[decided:]:
                self.stopper.decide(line["key"], line["step"], line["val"])
                self.decision_lines += 1
            for record in journal[lines:]:
                self._arrived(record)
        else:
            self.strategy = make_strategy(self.proposal_space, self.config.strategy, self.config.seed, self.config.predictor,
                                          self.measures, self.config.schedule, self.config.proxies, self.prior)  # fresh: a failed load may have half-filled it
            self.constrained = self.strategy.link(Constrained)
            self._replay(journal, decisions)
            # each record says which process wrote it and when: the counters come back with the results
            self.resumed = max((r.get("process", 0) for r in journal), default=0) + 1
            self.previous_wall = max((r.get("wall_seconds", 0.0) for r in journal), default=0.0)

    def _replay(self, journal, decisions=()):
        """Rebuild the strategy by running it again with the journal's results as answers."""
        self._attach_store()
        if self.strategy.streaming:
            return self._replay_stream(journal, decisions)
        results = {r["key"]: r for r in journal}
        while True:
            batch = self.strategy.pending() or self.strategy.ask()
            if not batch:
                return
            keys = [self.strategy.key(a) for a in batch]
            known = [k for k in keys if k in results]
            for k in known:
                self._tell(results[k])
            if len(known) < len(keys):
                return

    def _replay_stream(self, journal, decisions=()):
        """The asynchronous schedule again, with the journal's results arriving in its order:
        each free slot is asked for as the loop asked (the same draws), and the simulated clock
        and the in-flight archs' start times come back with them; the stopper's decisions (its
        own journal, each line with the number of results before it) in their places."""
        self.decision_lines = len(decisions)
        decisions = list(decisions)
        # each record says how many slots the run had when it arrived (a --force may change them)
        slots_at = [r.get("slots") or self.clock["slots"] or self.config.strategy.batch for r in journal]
        began = self.clock["began"]
        if self.strategy.round == 0:
            self.strategy.advance()
        total, self.spent = self.spent, 0.0  # the cost as it was when each result arrived
        index = 0
        while True:
            slots = self.clock["slots"] = slots_at[min(index, len(slots_at) - 1)] if slots_at else \
                (self.clock["slots"] or self.config.strategy.batch)
            free = slots - len(self.strategy.in_flight) if not self.cost_spent() else 0
            for arch in self.strategy.ask(free) if free > 0 else []:
                began[self.strategy.key(arch)] = self.clock["now"]
            advanced = self.strategy.advance() if not self.cost_spent() else False
            if not self.strategy.in_flight and advanced:
                continue
            arrived = len(self.strategy.history)
            while decisions and decisions[0]["after"] <= arrived:
                line = decisions.pop(0)
                self.stopper.decide(line["key"], line["step"], line["val"])
            if index == len(journal):
                self.spent = total
                return
            record = journal[index]
            index += 1
            if record["key"] not in {e["key"] for e in self.strategy.in_flight}:
                raise SearchError(f"{self.run_dir.path / 'journal.jsonl'}: the evaluation of {record['key']} does not "
                                  "follow from the run's config and seed (another config's journal?): the state "
                                  "cannot be rebuilt from it")
            self._arrived(record)
            self.spent += record.get("cost") or 0.0

    def _arrived(self, record: dict) -> None:
        """Tell the strategy a journaled result, and move the simulated clock to its end."""
        self.clock["began"].pop(record["key"], None)
        if isinstance(record.get("ended"), (int, float)) and self.clock.get("simulated"):
            self.clock["now"] = max(self.clock["now"], record["ended"])
        self._tell(record)

    def _tell(self, record: dict):
        """Tell the strategy (and the stopper) a journal record (a finished evaluation)."""
        status = record.get("status", "ok")
        ok = status == "ok"
        self.strategy.tell(record["key"], record.get("val") if ok else None, record.get("test") if ok else None,
                           error=record.get("error") if status == "failed" else None,
                           stopped=record if status == "stopped" else None)
        if self.stopper is not None:
            self.stopper.finished(record["key"], record)

    # --- the loop -------------------------------------------------------------------
    def _check_config_unchanged(self, state: dict) -> None:
        """The state records a digest of the config it was saved under (config.json holds the
        config itself); a config.json edited by hand since (a changed seed would silently
        follow the old search) is refused."""
        recorded = state.get("config_sha256")
        if recorded is None:
            return  # a state written before states recorded their config
        if recorded != config_digest(self.saved_tree):
            raise SearchError(f"{self.run_dir.path / 'config.json'} no longer matches the config the run's state was "
                              "saved under: it was edited by hand; restore it (to change a run, pass flags to --resume "
                              "with --force)")

    def _save_state(self, wall: float):
        state = {"strategy": self.strategy.state_dict(), "journal_lines": self.journal_lines,
                 "resumed": self.resumed, "wall_seconds": wall, "clock": self.clock,
                 "config_sha256": config_digest(self.recorded_tree)}
        if self.stopper is not None:
            state.update(stopper=self.stopper.state_dict(), decision_lines=self.decision_lines)
        self.run_dir.write_state(state)

    def run(self) -> dict:
        try:
            return self._run()
        except Exception:
            # A fresh start refused before its first evaluation (too many CPUs per trial, no
            # cluster at the address, nothing feasible) leaves nothing behind to refuse the
            # corrected command. An interrupt keeps the folder: its message says --resume.
            if self.fresh and self.journal_lines == 0:
                self.run_dir.discard_new()
            raise
        finally:
            self.run_dir.unlock()

    def _run(self) -> dict:
        from narnas.progress import interactive
        start = self.started = time.time()
        wall = lambda: self.previous_wall + time.time() - start
        cfg = self.config
        self.timings: list[RoundTiming] = []  # what this process measured: the estimate's rates
        self.last_line = 0.0  # when the last line went to the log
        self.evaluated_here = 0  # results this process journaled
        clear_interrupt()
        log_lines = not cfg.run.quiet and not interactive(cfg.run.quiet)  # a log, not a terminal
        if self.resumed and not cfg.run.quiet:
            again = len(self.strategy.pending())
            self.log(f"resuming {self.run_dir.path} at {self.strategy.evaluated}/{cfg.strategy.budget} evaluations, "
                     f"round {self.strategy.round}" + (f" ({again} to evaluate again)" if again else ""))
        with make_executor(cfg.executor, quiet=cfg.run.quiet) as executor:
            pool = executor.pool(self.evaluator, clock=wall, now=self.clock["now"], reports=self.stopper is not None)
            if not self.clock["slots"]:
                self.clock["slots"] = executor.capacity() or cfg.strategy.batch
            if cfg.schedule.name == "async":
                self._stream(pool, wall, log_lines)
            else:
                self._rounds(pool, wall, log_lines)
        summary = self.summary(wall())
        self._save_state(summary["wall_seconds"])
        if self.constrained is not None:
            self._write_pareto(summary)
        write_json(self.run_dir.path / SUMMARY, summary)
        if summary["best"]:
            write_json(self.run_dir.path / BEST, summary["best"]["arch"])
        if cfg.run.plots:
            self._plots()
        return summary

    def _rounds(self, pool, wall, log_lines: bool) -> None:
        """Synchronous rounds: the strategy proposes a batch, every arch of it is evaluated, then
        the next batch is asked for (the predictor refits between rounds)."""
        from narnas.progress import Progress, interactive
        quiet = self.config.run.quiet
        while True:
            interrupts_raise()  # the predictor fits here, between the executor's runs
            known, began = self.strategy.evaluated, time.time()
            pending = self.strategy.pending()
            if not pending and self.cost_spent():
                break
            with Heartbeat(log_lines, self.log, lambda: f"round {self.strategy.round + 1}: still choosing "
                                                       "archs (the strategy's refit and ranking)"):
                batch = pending or self.strategy.ask()
            raise_if_interrupted()  # a Ctrl-C during the fit that landed where Python ignores it
            if not batch:
                break
            timing = RoundTiming(None if pending else time.time() - began, known, len(batch))
            if self.clock["simulated"]:
                self.clock["now"] = pool.now
            self._save_state(wall())
            jsons = [self.space.to_json(a) for a in batch]
            keys = [self.strategy.key(a) for a in batch]
            bar = Progress(len(batch), interactive(quiet), f"round {self.strategy.round} evaluations")

            def on_result(index, result, keys=keys, jsons=jsons, bar=bar, batch=batch):
                self._record(keys[index], jsons[index], batch[index], result, wall, log_lines, bar)

            began = self.last_line = time.time()
            try:
                with Heartbeat(log_lines, self.log, lambda bar=bar, batch=batch: (
                        f"round {self.strategy.round}: {bar.done}/{len(batch)} evaluations done")):
                    pool.run_batch(jsons, on_result)
            finally:
                bar.close()
            timing.evaluate = time.time() - began
            self.timings.append(timing)
            self._round_done()

    def _stream(self, pool, wall, log_lines: bool) -> None:
        """The asynchronous schedule: ``slots`` evaluations in flight; each result is journaled
        and told as it arrives and its slot is given a new arch at once; a due round (a refit)
        begins after the free slots are filled, so the refit runs while they are busy.

        The state is written after every result, every ask and every new round; a resume
        submits the in-flight archs again (the simulated clock with the times they began), so
        the same completion order gives the same journal."""
        slots, began = self.clock["slots"], self.clock["began"]
        for arch in self.strategy.pending():
            key = self.strategy.key(arch)
            pool.submit(key, self.space.to_json(arch), began=began.get(key))
        if self.strategy.round == 0:
            self.strategy.advance()
        self.last_line = time.time()
        while True:
            interrupts_raise()
            free = slots - pool.busy if not self.cost_spent() else 0
            if free > 0:
                for arch in self.strategy.ask(free):
                    key = self.strategy.key(arch)
                    if self.clock["simulated"]:
                        began[key] = pool.now
                    pool.submit(key, self.space.to_json(arch))
                self._save_state(wall())
            with Heartbeat(log_lines, self.log, lambda: f"round {self.strategy.round + 1}: still fitting "
                                                       "the strategy's model"):
                advanced = self.strategy.advance() if not self.cost_spent() else False
            raise_if_interrupted()
            if advanced:
                self._save_state(wall())
                if self.strategy.round > 1:
                    self._round_done()
            if pool.busy == 0:
                if advanced:
                    continue  # the new round may propose what the last could not
                break
            key, result = pool.next()
            if result["status"] == "report":
                self._decide(pool, key, result, wall)
                continue
            began.pop(key, None)
            if self.clock["simulated"]:
                self.clock["now"] = pool.now
            entry = self.strategy.entry(key)
            arch = self.strategy.arch(key, entry["arch"])
            self._record(key, entry["arch"], arch, result, wall, log_lines, None, entry["round"])
        self._round_done()

    def cost_spent(self) -> bool:
        """Whether the cost budget is spent: no new evaluation starts once the finished ones and
        those in flight (each at the mean cost of the finished) would reach it."""
        limit = self.config.strategy.cost_budget
        if not limit:
            return False
        done = len(self.strategy.history) + sum(e["done"] for e in self.strategy.in_flight)
        running = sum(not e["done"] for e in self.strategy.in_flight)
        return self.spent + (running * self.spent / done if done else 0.0) >= limit

    def _decide(self, pool, key, report, wall) -> None:
        """The stopper's answer to an intermediate report, journaled before it is given."""
        known = key in self.stopper.decisions and str(report["step"]) in self.stopper.decisions[key]
        go_on = self.stopper.decide(key, report["step"], report["val"])
        if not known:  # a resubmitted evaluation reports again: its answer is the one given before
            self.run_dir.append_decision({"key": key, "step": report["step"], "val": report["val"], "go_on": go_on,
                                          "after": len(self.strategy.history)})
            self.decision_lines += 1
            self._save_state(wall())
        pool.answer(key, go_on)

    def _record(self, key, arch_json, arch, result, wall, log_lines, bar=None, round_=None) -> None:
        """Journal a finished evaluation, tell the strategy, save the state."""
        record = {"key": key, "arch": arch_json, "round": self.strategy.round if round_ is None else round_,
                  **result, "process": self.resumed, "wall_seconds": round(wall(), 2)}
        if self.strategy.streaming:
            record["slots"] = self.clock["slots"]  # what a rebuild from the journal asks with
        if result["status"] == "stopped":  # what its partial value says of its final one (None: nothing yet)
            record["imputed"] = self.stopper.impute(result["fidelity"], result["val"])
        if self.constrained is not None:  # the measures the constraints already took (cached)
            measured = self.constrained.measure(key, arch)
            record.update({k: v for k, v in measured.items() if k not in record})
        self.run_dir.append_journal(record)
        self.journal_lines += 1
        self.spent += record.get("cost") or 0.0
        self.evaluated_here += 1
        self._tell(record)
        self._save_state(wall())
        self._prune_checkpoints()
        if result["status"] == "failed":
            if bar is not None:
                bar.close()
            self.log(f"evaluation of {key} failed: {result['error']}")
        elif log_lines and time.time() - self.last_line >= EVALUATION_LINE_GAP:
            self._evaluation_line(record)
        if bar is not None:
            bar.update(bar.done + 1)

    def _round_done(self) -> None:
        self._progress()
        if self.config.run.plots:
            self._plots()

    def _prune_checkpoints(self) -> None:
        """Delete the checkpoint folders of finished archs outside the best ``keep_checkpoints``
        (a failed arch's too): a 100-arch search at the final preset would keep gigabytes. Archs
        still being evaluated keep theirs, so a resume continues their training."""
        keep = self.config.run.keep_checkpoints
        path_of = getattr(self.evaluator, "checkpoint_path", None)
        if not keep or path_of is None:
            return
        finished = self.entries()
        best = {e["key"] for e in sorted((e for e in finished if e["value"] is not None),
                                         key=lambda e: -e["value"])[:keep]}
        for entry in finished:
            path = path_of(entry["key"]) if entry["key"] not in best else None
            if path is not None and path.parent.is_dir():
                shutil.rmtree(path.parent, ignore_errors=True)

    # --- reporting ------------------------------------------------------------------
    def entries(self) -> list[dict]:
        return self.strategy.history + [e for e in self.strategy.in_flight if e["done"]]

    def summary(self, wall: float) -> dict:
        from .report import best_entry, round_taus, schedule_figures
        entries = self.entries()
        best = best_entry(entries)
        best = None if best is None else {"arch": best["arch"], "key": best["key"], "val": best["value"],
                                          "test": best["test"], "round": best["round"]}
        return {"best": best,
                "evaluations": len(entries), "failed": sum(e["value"] is None and not e.get("stopped") for e in entries),
                "stopped": sum(bool(e.get("stopped")) for e in entries), "stopper": self.config.stopper.name,
                "rounds": self.strategy.round, "wall_seconds": round(wall, 2), "resumed": self.resumed,
                "schedule": self.config.schedule.name, "slots": self.clock["slots"],
                **schedule_figures(self.run_dir.read_journal(), self.clock["slots"]),
                "predictor_tau_per_round": round_taus(entries), "space": self.config.space.name,
                "strategy": self.config.strategy.name, "seed": self.config.seed,
                "metric": self.evaluator.metric, "test_metric": self.evaluator.test_metric}

    def measured(self, entries: list[dict]) -> dict[str, list[float]]:
        """The constrained measures of each entry (the constraint wrapper's, cached by key)."""
        values = [self.constrained.measure(e["key"], self.strategy.arch(e["key"], e["arch"])) for e in entries]
        return {name: [v[name] for v in values] for name in self.constrained.limits}

    def _write_pareto(self, summary: dict) -> None:
        """pareto.json (and plots/pareto.png): the front of (search value, each constrained
        measure) over every evaluated arch; the summary's best is the best arch within every limit."""
        from .report import best_entry, pareto_front, plot_pareto
        entries = self.entries()
        values = self.measured(entries)
        limits = self.config.strategy.constraints
        feasible = [e for i, e in enumerate(entries) if all(values[n][i] <= limits[n] for n in limits)]
        best = best_entry(feasible)
        if best is not None:
            summary["best"] = {"arch": best["arch"], "key": best["key"], "val": best["value"], "test": best["test"],
                               "round": best["round"], **{n: values[n][entries.index(best)] for n in limits}}
        front = pareto_front(entries, values)
        summary["constraints"] = dict(limits)
        summary["feasible"] = len(feasible)
        summary["pareto_front"] = len(front)
        write_json(self.run_dir.path / PARETO, {"metric": self.evaluator.metric, "maximise": "val",
                                                "minimise": list(limits), "limits": dict(limits),
                                                "evaluated": len(entries), "front": front})
        if self.config.run.plots:
            plot_pareto(entries, values, limits, front, self.run_dir.path / "plots" / "pareto.png",
                        self.evaluator.metric)

    def _progress(self):
        """One line per round (in logs too): evaluations, the best so far, the predictor's tau on
        the round, time spent and the estimate for the rest of the budget (from this process's
        rate, predictor refits included)."""
        if self.config.run.quiet:
            return
        from narnas.progress import duration

        from .report import best_entry, round_taus
        entries = self.entries()
        best = best_entry(entries)
        taus = round_taus(entries)
        tau = f" predictor tau (last round) {taus[-1]['tau']:.3f}" if taus else ""
        test = "" if best is None or best["test"] is None else f" (test {best['test']:.2f})"
        best_text = f"best {best['value']:.2f}{test}" if best else "best -"
        budget = self.config.strategy.budget
        elapsed = time.time() - self.started
        if self.strategy.streaming:  # refits overlap the evaluations: the rate per result says it all
            left = elapsed / self.evaluated_here * max(0, budget - len(entries)) if self.evaluated_here else None
        else:
            left = estimate_left(self.timings, len(entries), budget, self.config.strategy.batch, self.strategy.refits)
        timing = f"  {duration(elapsed)} eta {'?' if left is None else duration(left)}"
        self.log(f"round {self.strategy.round:3d}  evaluations {len(entries):4d}/{budget}  "
                 f"{best_text}{tau}{timing}")
        self.last_line = time.time()

    def _evaluation_line(self, record: dict) -> None:
        """One line for a finished evaluation, in a log during slow rounds."""
        from narnas.progress import duration
        seconds = record.get("seconds")
        took = f" ({duration(seconds)})" if isinstance(seconds, (int, float)) else ""
        value = record.get("val")
        shown = f"{value:.2f}" if isinstance(value, (int, float)) else str(value)
        self.log(f"round {record['round']}: evaluated {record['key'][:60]}: {self.evaluator.metric} {shown}{took}")
        self.last_line = time.time()

    def _plots(self):
        from .report import plot_run
        plot_run(self.entries(), self.run_dir.path / "plots", f"{self.config.strategy.name} on {self.config.space.name}",
                 self.evaluator.metric, self.evaluator.test_metric)


#: In a log, a finished evaluation gets its own line when the last line is this old (seconds):
#: trainings are each reported, thousands of table look-ups are not.
EVALUATION_LINE_GAP = 5.0
#: In a log, a long phase (a refit, a round of trainings) says it is alive this often (seconds).
HEARTBEAT_SECONDS = 60.0


@dataclass
class RoundTiming:
    """What one round cost this process: the strategy's ask (None for a batch re-queued by a
    resume), the results it was asked with, the archs it proposed, the evaluations' wall time."""
    ask: float | None
    known: int
    size: int
    evaluate: float = 0.0


def estimate_left(timings: list[RoundTiming], evaluated: int, budget: int, batch: int, refits: bool) -> float | None:
    """Seconds the rest of the budget will take, from this process's rounds: the evaluations at
    their measured wall time per arch, and each coming ask at a cost fitted to the asks measured
    so far as a line in the number of known results (a refit has a fixed part, epochs of a few
    batches, and a part that grows with the data); one measured ask is taken as the cost of each.
    None while a refitting strategy has not been timed on a refit yet (after its random first
    round): the estimate would leave the refits out."""
    import numpy as np
    remaining = max(0, budget - evaluated)
    if remaining == 0:
        return 0.0
    archs = sum(t.size for t in timings)
    asks = [(t.known, t.ask) for t in timings if t.ask is not None and t.known > 0]
    if not archs or (refits and not asks):
        return None
    per_arch = sum(t.evaluate for t in timings) / archs
    if len({k for k, _ in asks}) >= 2:
        known, seconds = np.array(asks, dtype=float).T
        slope = max(0.0, float(np.polyfit(known, seconds, 1)[0]))
        cost = lambda n: max(0.0, float(seconds.mean() + slope * (n - known.mean())))  # noqa: E731
    else:
        mean = float(np.mean([a for _, a in asks])) if asks else 0.0
        cost = lambda n: mean  # noqa: E731
    ask_left, known_now = 0.0, evaluated
    for start in range(0, remaining, max(1, batch)):
        ask_left += cost(known_now)
        known_now += min(batch, remaining - start)
    return ask_left + per_arch * remaining


class Heartbeat:
    """``with Heartbeat(enabled, log, message):`` logs ``message()`` every ``HEARTBEAT_SECONDS``
    while the block runs (a refit, a round of trainings), so a log never goes silent for long."""

    def __init__(self, enabled: bool, log, message):
        self.enabled, self.log, self.message = enabled, log, message
        self.stop = threading.Event()
        self.thread = None

    def __enter__(self):
        if self.enabled:
            began = time.time()

            def beat():
                from narnas.progress import duration
                while not self.stop.wait(HEARTBEAT_SECONDS):
                    self.log(f"{self.message()} ({duration(time.time() - began)} so far)")
            self.thread = threading.Thread(target=beat, name="narnas-heartbeat", daemon=True)
            self.thread.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        if self.thread is not None:
            self.thread.join()
        return False


def interrupts_raise() -> None:
    """Make Ctrl-C raise KeyboardInterrupt in the driver's own work again, whatever handler a
    library left installed (Ray's node start installs its own); a stop whose exception was lost
    ends the search here, between its phases."""
    if threading.current_thread() is threading.main_thread() \
            and signal.getsignal(signal.SIGINT) is not on_interrupt:
        signal.signal(signal.SIGINT, on_interrupt)
    raise_if_interrupted()


def config_digest(tree: dict) -> str:
    """SHA-256 of a config tree in canonical JSON: what a state records of its config."""
    return hashlib.sha256(dumps(tree).encode()).hexdigest()
