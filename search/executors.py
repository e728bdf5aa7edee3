"""Executors run a batch of evaluations and report each result as it finishes.

``run(batch, evaluator, on_result)`` calls ``on_result(index, result)`` once per arch of
``batch`` (a list of arch JSONs), in the driver thread, in the order evaluations finish.
A result is the evaluator's whole dict plus ``status: "ok"``, or ``{"status": "failed",
"error"}``; both with ``attempts``. Every executor passes the same dict on, so the journal
does not depend on the executor. Executors are context managers (Ray is started and
stopped by them) and are registered by name.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from narnas.cli import interruption

from .errors import SearchError
from .registry import EXECUTORS, register_executor


#: Set in the driver before an embedded Ray starts, so every Ray process (workers and agents
#: rename their command lines, but inherit the environment) can be found again by it.
SESSION_VAR = "NARNAS_RAY_SESSION"
SESSION_PREFIX = "narnas-ray-"
DRIVER_PID = "driver.pid"
SESSION_ROOT = "/tmp"  # short: Ray's socket paths inside the session must stay under 108 bytes


def _token_available() -> bool:
    """A Ray auth token this driver can send: given in the environment, or the one ``ray start``
    wrote for this user."""
    return bool(os.environ.get("RAY_AUTH_TOKEN") or os.environ.get("RAY_AUTH_TOKEN_PATH")
                or os.path.exists(os.path.expanduser("~/.ray/auth_token")))


def _join_cluster(ray, address: str, timeout: float = 5.0) -> None:
    """Connect to a running cluster at ``address`` ("auto" or HOST:PORT), in seconds or with one
    line saying why not. ``ray start`` (Ray >= 2.60) turns token authentication on, and a driver
    given an explicit address sends no token unless ``RAY_AUTH_MODE=token`` (set by ``__enter__``
    before Ray is imported, which reads it then)."""
    import socket
    if address != "auto":
        host, _, port = address.rpartition(":")
        if not host or not port.isdigit():
            raise SearchError(f"--ray-address must be auto or HOST:PORT (the head's GCS port, 6379 by default), "
                              f"got {address!r}")
        try:
            socket.create_connection((host, int(port)), timeout=timeout).close()
        except OSError as err:
            raise SearchError(f"no Ray cluster answers at {address} ({err.strerror or err}); start one with "
                              f"`ray start --head --port {port}` or check the address") from None
    try:
        ray.init(address=address, log_to_driver=False)
    except ConnectionError as err:
        raise SearchError(f"cannot join the Ray cluster at {address}: {str(err).splitlines()[0]} (a cluster with "
                          "token authentication needs its token: RAY_AUTH_TOKEN, RAY_AUTH_TOKEN_PATH or "
                          "~/.ray/auth_token, and RAY_AUTH_MODE=token)") from None


def _signal_handlers(*signals) -> dict:
    """The current handlers of ``signals`` (empty outside the main thread, where they cannot change)."""
    import threading
    if threading.current_thread() is not threading.main_thread():
        return {}
    return {s: signal.getsignal(s) for s in signals}


def _restore_handlers(handlers: dict) -> None:
    for signum, handler in handlers.items():
        if handler is not None:
            signal.signal(signum, handler)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def session_processes(folder: str) -> list[int]:
    """PIDs of the processes started for the embedded Ray of ``folder`` (Linux /proc)."""
    marker = f"{SESSION_VAR}={folder}".encode()
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == os.getpid():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as f:
                if marker in f.read().split(b"\0"):
                    found.append(int(entry))
        except OSError:  # gone meanwhile, or not ours
            continue
    return found


def clean_stale_sessions(root: str | None = None) -> list[str]:
    """Remove the embedded-Ray sessions whose driver died without shutting Ray down (a
    SIGKILLed search): kill their leftover processes and delete their temp folders. A
    session whose driver lives, or without a driver PID yet, is left alone."""
    root = root or SESSION_ROOT
    cleaned = []
    for name in sorted(os.listdir(root)):
        folder = os.path.join(root, name)
        if not name.startswith(SESSION_PREFIX) or not os.path.isdir(folder):
            continue
        try:
            with open(os.path.join(folder, DRIVER_PID)) as f:
                pid = int(f.read().strip())
        except (OSError, ValueError):
            continue
        if _alive(pid):
            continue
        for leftover in session_processes(folder):
            try:
                os.kill(leftover, signal.SIGKILL)
            except OSError:
                pass
        shutil.rmtree(folder, ignore_errors=True)
        cleaned.append(folder)
    return cleaned


@dataclass
class ExecutorConfig:
    name: str | None = None  # inline or ray; None: the evaluator's default
    max_failures: int = 2  # retries of an evaluation that raised
    ray_address: str | None = None  # None: embedded local Ray; "auto" or HOST:PORT: join a cluster
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    #: >1: one arch's training runs as this many Ray Train data-parallel workers (each with
    #: cpus_per_trial / gpus_per_trial), archs one after the other (ray executor, training evaluators)
    workers_per_trial: int = 1

    def validate(self):
        if self.max_failures < 0:
            raise SearchError(f"max_failures must be >= 0, got {self.max_failures}")
        if self.cpus_per_trial <= 0 or self.gpus_per_trial < 0:
            raise SearchError("cpus-per-trial must be > 0 and gpus-per-trial >= 0")
        if self.workers_per_trial < 1:
            raise SearchError(f"workers-per-trial must be at least 1, got {self.workers_per_trial}")
        return self


def _error_line(err: BaseException) -> str:
    lines = [line for line in str(err).strip().splitlines() if line.strip()]
    return f"{type(err).__name__}: {lines[-1].strip() if lines else ''}".strip()


@register_executor("inline")
class InlineExecutor:
    """Evaluates in the driver process, one after the other."""

    def __init__(self, config: ExecutorConfig, storage: str | None = None, quiet: bool = False):
        self.config = config.validate()
        if self.config.workers_per_trial > 1:
            raise SearchError("--workers-per-trial runs Ray Train workers: use --executor ray")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def run(self, batch, evaluator, on_result, round_: int = 0):
        evaluate_in_turn(batch, evaluator, on_result, self.config.max_failures)


def evaluate_in_turn(batch, evaluator, on_result, max_failures: int):
    """Evaluate the archs one after the other in this process, each tried up to
    ``max_failures + 1`` times; ``on_result(index, result)`` as each finishes."""
    for index, arch_json in enumerate(batch):
        for attempt in range(1, max_failures + 2):
            try:
                result = dict(evaluator.evaluate(arch_json), status="ok", attempts=attempt)
                break
            except Exception as err:  # an evaluation may fail in any way; the search goes on
                result = {"status": "failed", "error": _error_line(err), "attempts": attempt}
        on_result(index, result)


#: the reported key that carries the evaluator's whole result dict, as JSON
RESULT_KEY = "narnas_result"


def _tune_trainable(config, evaluator=None):
    from ray import tune
    result = evaluator.evaluate(json.loads(config["arch"]))
    # Tune keeps only what is reported and adds its own keys: the whole result travels as
    # one JSON text, so every metric an evaluator yields reaches the journal unchanged.
    tune.report({RESULT_KEY: json.dumps(result), **{k: v for k, v in result.items()
                                                   if isinstance(v, (int, float)) and not isinstance(v, bool)}})


@register_executor("ray")
class RayExecutor:
    """Each evaluation is a Ray Tune trial; one Tuner per round (the batch as a grid).

    The strategy stays in the driver and proposes whole rounds, so the search is the same
    as with the inline executor; Tune gives per-trial resources, retries
    (``max_failures``), trial checkpoints for training evaluators, and clusters.
    """

    def __init__(self, config: ExecutorConfig, storage: str | None = None, quiet: bool = False):
        self.config = config.validate()
        self.quiet = quiet
        self.storage = storage  # Ray Tune's experiment folder
        self._temp_dir = None
        self._started = False

    def __enter__(self):
        import logging
        if self.config.ray_address and "RAY_AUTH_MODE" not in os.environ and _token_available():
            # Where a token is at hand and the user chose no mode, send it (Ray reads the mode
            # when it is imported).
            os.environ["RAY_AUTH_MODE"] = "token"
        import ray
        # Ray says which token mode a local start took, at every start of every search: noise
        # beside the search's own lines (the mode is Ray's default; RAY_AUTH_MODE changes it).
        logging.getLogger("ray._private.authentication.authentication_token_setup").setLevel(logging.ERROR)
        if self.quiet:
            # Ray's start-up notices (token authentication, ...) are warnings of its loggers, and
            # Tune logs each failed attempt of a trial it will retry with a traceback: a retry
            # that succeeds is no error of the run, and one that does not is journaled.
            logging.getLogger("ray").setLevel(logging.ERROR)
            logging.getLogger("ray.tune").setLevel(logging.CRITICAL)
        # Ray's node start installs its own SIGTERM handler in the driver (drain, then abort with
        # a crash dump); ours (narnas.cli: a clean interrupt) is put back after ray.init.
        handlers = _signal_handlers(signal.SIGINT, signal.SIGTERM)
        if self.config.ray_address:
            _join_cluster(ray, self.config.ray_address)
        else:
            # A private temp folder: the processes of this Ray are recognisable by it, and
            # removing it after shutdown leaves nothing behind.
            # A killed earlier search may have left its Ray behind: reclaim it first.
            clean_stale_sessions()
            self._temp_dir = tempfile.mkdtemp(prefix=SESSION_PREFIX, dir=SESSION_ROOT)
            with open(os.path.join(self._temp_dir, DRIVER_PID), "w") as f:
                f.write(f"{os.getpid()}\n")
            os.environ[SESSION_VAR] = self._temp_dir
            # Ray runs workers at niceness 15 by default; here the trials are the work, and
            # niced trials starve behind any other job on the machine.
            os.environ.setdefault("RAY_worker_niceness", "0")
            ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False,
                     _temp_dir=self._temp_dir, configure_logging=False)
        _restore_handlers(handlers)
        self._started = True
        self._check_resources(ray.cluster_resources())
        return self

    def _check_resources(self, available: dict):
        workers = self.config.workers_per_trial
        for name, need in (("CPU", self.config.cpus_per_trial), ("GPU", self.config.gpus_per_trial)):
            if need * workers > available.get(name, 0):
                self.__exit__(None, None, None)
                what = f"{workers} workers x {need:g}" if workers > 1 else f"{need:g}"
                raise SearchError(f"a trial needs {what} {name}(s) but the Ray cluster has "
                                  f"{available.get(name, 0):g}: lower --{name.lower()}s-per-trial"
                                  + (" or --workers-per-trial" if workers > 1 else ""))

    def __exit__(self, *exc):
        if self._started:
            import ray
            ray.shutdown()
            self._started = False
        if self._temp_dir:
            shutil.rmtree(self._temp_dir, ignore_errors=True)
            self._temp_dir = None
            os.environ.pop(SESSION_VAR, None)
        return False

    @property
    def temp_dir(self):
        return self._temp_dir

    def run(self, batch, evaluator, on_result, round_: int = 0):
        if self.config.workers_per_trial > 1:
            # Each arch's evaluation launches its own Ray Train workers from the driver (a
            # trainer inside a Tune trial would hold a CPU its workers wait for): archs in turn.
            evaluate_in_turn(batch, evaluator, on_result, self.config.max_failures)
            return
        # The old console output obeys verbose=0; the new one prints a table per Tuner.
        os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
        from ray import tune
        from ray.tune import Callback, FailureConfig, RunConfig, TuneConfig, Tuner

        texts = [json.dumps(a, sort_keys=True) for a in batch]
        quiet = self.quiet
        index_of = {t: i for i, t in enumerate(texts)}
        reported = set()

        class Report(Callback):
            def on_trial_complete(self, iteration, trials, trial, **info):
                index = index_of[trial.config["arch"]]
                if index not in reported:
                    reported.add(index)
                    result = json.loads(trial.last_result[RESULT_KEY])
                    on_result(index, dict(result, status="ok", attempts=trial.num_failures + 1))

            def on_trial_recover(self, iteration, trials, trial, **info):
                # A failed attempt that Tune retries (an exception, or a node that died).
                if not quiet:
                    print(f"evaluation of arch {index_of[trial.config['arch']]} of round {round_} failed "
                          f"(attempt {trial.num_failures}): {_trial_error(trial)}; retrying", file=sys.stderr, flush=True)

            def on_trial_error(self, iteration, trials, trial, **info):
                index = index_of[trial.config["arch"]]
                if index not in reported:
                    reported.add(index)
                    on_result(index, {"status": "failed", "error": _trial_error(trial),
                                      "attempts": trial.num_failures})

        trainable = tune.with_resources(tune.with_parameters(_tune_trainable, evaluator=evaluator),
                                        {"cpu": self.config.cpus_per_trial, "gpu": self.config.gpus_per_trial})
        storage = self.storage or tempfile.mkdtemp(prefix="narnas-tune-")
        tuner = Tuner(trainable, param_space={"arch": tune.grid_search(texts)},
                      tune_config=TuneConfig(reuse_actors=True,
                                             trial_dirname_creator=lambda trial: f"arch_{index_of[trial.config['arch']]:03d}"),
                      run_config=RunConfig(name=f"round_{round_:03d}_{int(time.time() * 1000)}",
                                           storage_path=str(Path(storage).resolve()), verbose=0,
                                           failure_config=FailureConfig(max_failures=self.config.max_failures),
                                           callbacks=[Report()]))
        # Tune installs a SIGINT handler for each fit and leaves it behind; it would swallow a
        # Ctrl-C that arrives later (during a predictor fit). Ours stays in charge instead: an
        # interrupt raises here, the finished trials are journaled already, the rest re-run.
        os.environ.setdefault("TUNE_DISABLE_SIGINT_HANDLER", "1")
        handlers = _signal_handlers(signal.SIGINT, signal.SIGUSR1)
        try:
            tuner.fit()
        finally:
            _restore_handlers(handlers)
        if len(reported) < len(batch):
            # Tune stops early on SIGINT (it handles the signal itself): the unfinished trials
            # stay in flight and a resume re-queues them.
            raise interruption(f"Ray Tune stopped with {len(batch) - len(reported)} trials unfinished")


def _trial_error(trial) -> str:
    path = getattr(trial, "error_file", None)
    if path and os.path.exists(path):
        lines = [line for line in Path(path).read_text().splitlines() if line.strip()]
        if lines:
            return lines[-1].strip()
    return "the trial failed (no error file)"


def make_executor(config: ExecutorConfig, storage: str | None = None, quiet: bool = False):
    """The executor ``config.name`` (resolved: not None), not yet entered; ``quiet`` keeps
    the executor's own notices (Ray's start-up warnings) off the terminal."""
    return EXECUTORS.get(config.name)(config, storage, quiet)

