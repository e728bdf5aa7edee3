"""Executors run evaluations and report each result as it finishes.

An executor makes a :class:`Pool` for a run: ``submit`` starts an evaluation, ``next``
returns the next to finish, ``run_batch`` evaluates a synchronous round. A result is the
evaluator's whole dict plus ``status: "ok"``, or ``{"status": "failed", "error"}``; both
with ``attempts``, ``cost``, ``began`` and ``ended`` (seconds on the run's clock). Every
executor passes the same dict on, so the journal does not depend on the executor.
``run(batch, evaluator, on_result)`` is a round in a pool of its own. Executors are
context managers (Ray is started and stopped by them) and are registered by name.
"""
from __future__ import annotations

import os
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import dataclass
from functools import partial


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


def attempt(evaluator, arch_json, report=None) -> dict:
    """One try at an evaluation: the evaluator's dict with ``status: "ok"`` (``"stopped"``
    when ``report`` stopped it), or ``{"status": "failed", "error"}`` (an evaluation may fail in
    any way; the search goes on)."""
    try:
        result = evaluator.evaluate(arch_json) if report is None else evaluator.evaluate(arch_json, report=report)
    except Exception as err:
        return {"status": "failed", "error": _error_line(err)}
    return dict(result, status="stopped" if result.pop("stopped", False) else "ok")


def evaluate(evaluator, arch_json, max_failures: int, report=None) -> dict:
    """An evaluation tried up to ``max_failures + 1`` times, with its ``attempts``."""
    for tries in range(1, max_failures + 2):
        result = attempt(evaluator, arch_json, report)
        if result["status"] != "failed":
            break
    return dict(result, attempts=tries)


def cost_of(evaluator, result: dict) -> float:
    """What an evaluation cost on the run's clock (seconds): the evaluator's answer (an object
    with only ``evaluate``: its seconds, else one unit); a failed evaluation costs nothing, a
    stopped one what it cost up to its stop."""
    if result["status"] == "stopped":
        return float(result["cost"])
    if result["status"] != "ok":
        return 0.0
    from .evaluators import Evaluator
    return float(getattr(evaluator, "cost", lambda r: Evaluator.cost(None, r))(result))


class Pool:
    """Evaluations in flight, for one run: ``submit(tag, arch_json)`` starts one, ``next()``
    waits for the next to finish and returns ``(tag, result)``; ``run_batch`` evaluates a
    whole batch (a synchronous round). Every result carries ``began`` and ``ended``, seconds
    on the run's clock (``clock``: "simulated" or "wall"), and ``cost``.

    A pool made with ``reports`` (a stopper decides) also returns intermediate reports from
    ``next()``: ``(tag, {"status": "report", "step", "val", "cost"})``, each to be answered by
    ``answer(tag, go_on)``; a stopped evaluation then comes back with status ``stopped``."""

    clock = "wall"

    def answer(self, tag, go_on: bool) -> None:
        raise NotImplementedError

    @property
    def busy(self) -> int:
        raise NotImplementedError

    def submit(self, tag, arch_json, began: float | None = None) -> None:
        raise NotImplementedError

    def next(self) -> tuple:
        raise NotImplementedError

    def run_batch(self, batch, on_result) -> None:
        """``on_result(index, result)`` for every arch of ``batch``, as each finishes."""
        for index, arch_json in enumerate(batch):
            self.submit(index, arch_json)
        for _ in batch:
            on_result(*self.next())


class SimulatedPool(Pool):
    """Evaluations in this process, placed on a simulated clock: each takes ``cost`` seconds
    (the evaluator's: a benchmark's training time, a training's own seconds) on one of the
    slots the driver fills, and they finish in simulated order (ties in submission order). The
    same costs give the same order, so an asynchronous search over a table is reproducible,
    and its simulated wall time is what a cluster of that many slots would have taken.
    Intermediate reports happen at the simulated time their cost says."""

    clock = "simulated"

    def __init__(self, evaluator, max_failures: int, now: float = 0.0, reports: bool = False):
        self.evaluator, self.max_failures, self.now, self.reports = evaluator, max_failures, now, reports
        self.events: list = []  # heap of (time, order, tag, result)
        self.order = 0
        self.live: dict = {}  # tag -> (order of its final event, began, the reports it will make, result)
        self.asked: dict = {}  # tag -> the step of its report being answered

    @property
    def busy(self) -> int:
        return len(self.live)

    def _push(self, time_, tag, result) -> int:
        import heapq
        heapq.heappush(self.events, (time_, self.order, tag, result))
        self.order += 1
        return self.order - 1

    def submit(self, tag, arch_json, began=None):
        steps = {}  # step -> (value, cost so far): the evaluation runs whole, its reports are replayed

        def record(step, value, cost):
            steps[step] = (value, cost)
            return True
        result = evaluate(self.evaluator, arch_json, self.max_failures, record if self.reports else None)
        cost = cost_of(self.evaluator, result)
        began = self.now if began is None else began
        # Every time on this clock is rounded to the millisecond as it is made, so the times a
        # resume reads back from the journal are the very values the clock held.
        if result["status"] == "ok":
            for step, (value, spent) in steps.items():
                self._push(round(began + spent, 3), tag, {"status": "report", "step": step, "val": value,
                                                          "cost": spent})
        ended = round(began + cost, 3)
        final = self._push(ended, tag, dict(result, cost=cost, began=began, ended=ended))
        self.live[tag] = (final, began, steps, result)

    def next(self):
        import heapq
        while True:
            when, order, tag, result = heapq.heappop(self.events)
            if tag not in self.live or (result["status"] != "report" and order != self.live[tag][0]):
                continue  # an event of an evaluation stopped earlier
            self.now = max(self.now, when)
            if result["status"] == "report":
                self.asked[tag] = result["step"]
            else:
                del self.live[tag]
            return tag, result

    def answer(self, tag, go_on):
        if go_on:
            return
        final, began, steps, result = self.live[tag]
        step = self.asked.pop(tag)
        value, spent = steps[step]
        # what the whole evaluation measured but the stopped one would not have
        stopped = {k: v for k, v in result.items() if k not in ("val", "test", "curve", "epochs", "train_loss")}
        stopped.update(status="stopped", val=value, test=None, fidelity=step, cost=spent,
                       curve={str(s): v for s, (v, c) in steps.items() if c <= spent},
                       began=began, ended=self.now)
        self.live[tag] = (self._push(self.now, tag, stopped), began, steps, result)

    def run_batch(self, batch, on_result):
        """The archs one after the other (each reported as soon as it is evaluated, in the
        order given), timed as a round on ``len(batch)`` slots that all start at ``now``."""
        start = self.now
        for index, arch_json in enumerate(batch):
            result = evaluate(self.evaluator, arch_json, self.max_failures)
            cost = cost_of(self.evaluator, result)
            ended = round(start + cost, 3)
            self.now = max(self.now, ended)
            on_result(index, dict(result, cost=cost, began=start, ended=ended))


class InProcessPool(Pool):
    """Evaluations in the driver process, one after the other, on the wall clock (data-parallel
    trainings: each launches its own Ray Train workers)."""

    def __init__(self, evaluator, max_failures: int, clock):
        self.evaluator, self.max_failures, self.now = evaluator, max_failures, clock
        self.done: list = []

    @property
    def busy(self) -> int:
        return len(self.done)

    def submit(self, tag, arch_json, began=None):
        began = self.now()
        result = evaluate(self.evaluator, arch_json, self.max_failures)
        self.done.append((tag, dict(result, cost=cost_of(self.evaluator, result), began=round(began, 3),
                                    ended=round(self.now(), 3))))

    def next(self):
        return self.done.pop(0)

    def run_batch(self, batch, on_result):
        """Each arch reported as soon as it is evaluated (a kill loses none that finished)."""
        for index, arch_json in enumerate(batch):
            self.submit(index, arch_json)
            on_result(*self.next())


@register_executor("inline")
class InlineExecutor:
    """Evaluates in the driver process, on a simulated clock (``SimulatedPool``)."""

    clock = "simulated"

    def __init__(self, config: ExecutorConfig, quiet: bool = False):
        self.config = config.validate()
        if self.config.workers_per_trial > 1:
            raise SearchError("--workers-per-trial runs Ray Train workers: use --executor ray")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def capacity(self) -> int | None:
        """Evaluations it can run at once: None, any number (simulated)."""
        return None

    def pool(self, evaluator, clock=None, now: float = 0.0, reports: bool = False) -> Pool:
        return SimulatedPool(evaluator, self.config.max_failures, now, reports)

    def run(self, batch, evaluator, on_result):
        self.pool(evaluator).run_batch(batch, on_result)


def _evaluate_task(evaluator, arch_json, board=None, tag=None) -> tuple:
    """A Ray task: one try at an evaluation, with its start and end (epoch seconds); with a
    ``board``, each intermediate report waits there for the driver's answer."""
    began = time.time()
    result = attempt(evaluator, arch_json, None if board is None else partial(_ask_board, board, tag))
    return result, began, time.time()


def _ask_board(board, tag, step, value, cost) -> bool:
    """Post a report and wait for the driver's answer: whether the evaluation goes on."""
    import ray
    ray.get(board.post.remote(tag, step, value, cost))
    while (answer := ray.get(board.answer_of.remote(tag, step))) is None:
        time.sleep(0.05)
    return answer


class Board:
    """A Ray actor between running evaluations and the driver: reports are posted here, the
    driver takes them and posts its answers."""

    def __init__(self):
        self.posts, self.answers = [], {}

    def post(self, tag, step, value, cost):
        self.posts.append((tag, step, value, cost))

    def take(self) -> list:
        posts, self.posts = self.posts, []
        return posts

    def answer(self, tag, step, go_on: bool):
        self.answers[(tag, step)] = go_on

    def answer_of(self, tag, step):
        return self.answers.pop((tag, step), None)


class RayPool(Pool):
    """Each evaluation is a Ray task with the trial's resources, anywhere in the cluster.
    Retries are the driver's: a try that raised, or whose worker or node died, is submitted
    again up to ``max_failures`` times, and the attempts are counted."""

    def __init__(self, config: ExecutorConfig, evaluator, clock, quiet: bool, reports: bool = False):
        import ray
        self.config, self.quiet, self.now = config, quiet, clock
        self.evaluator = evaluator
        self.shared = ray.put(evaluator)  # shipped once, not with every task
        self.task = ray.remote(_evaluate_task).options(num_cpus=config.cpus_per_trial, num_gpus=config.gpus_per_trial,
                                                       max_retries=0)
        self.board = ray.remote(num_cpus=0)(Board).remote() if reports else None
        self.running: dict = {}  # ObjectRef -> (tag, arch_json, attempt, submitted at)
        self.posts: list = []  # reports taken from the board, not yet returned
        self.asked: dict = {}  # tag -> the step its last report was at

    @property
    def busy(self) -> int:
        return len(self.running)

    def submit(self, tag, arch_json, began=None, attempt_: int = 1):
        ref = self.task.remote(self.shared, arch_json, self.board, tag)
        self.running[ref] = (tag, arch_json, attempt_, time.time())

    def answer(self, tag, go_on):
        self.board.answer.remote(tag, self.asked.pop(tag), go_on)

    def next(self):
        import ray
        from ray.exceptions import RayError
        while True:
            if self.board is not None:
                self.posts.extend(ray.get(self.board.take.remote()))
                if self.posts:
                    tag, step, value, cost = self.posts.pop(0)
                    self.asked[tag] = step
                    return tag, {"status": "report", "step": step, "val": value, "cost": cost}
            # a short wait at a time: Ctrl-C and SIGTERM are handled between waits, and reports
            # are taken from the board between them
            ready, _ = ray.wait(list(self.running), num_returns=1, timeout=0.5 if self.board is None else 0.1)
            if not ready:
                continue
            tag, arch_json, tries, submitted = self.running.pop(ready[0])
            try:
                result, began, ended = ray.get(ready[0])
            except RayError as err:  # the worker or its node died
                result, began, ended = {"status": "failed", "error": _error_line(err)}, submitted, time.time()
            if result["status"] == "failed" and tries <= self.config.max_failures:
                if not self.quiet:
                    print(f"evaluation {tag} failed (attempt {tries}): {result['error']}; retrying",
                          file=sys.stderr, flush=True)
                self.submit(tag, arch_json, attempt_=tries + 1)
                continue
            since = time.time() - self.now()  # the epoch time of the run clock's zero
            return tag, dict(result, attempts=tries, cost=cost_of(self.evaluator, result),
                             began=round(began - since, 3), ended=round(ended - since, 3))


@register_executor("ray")
class RayExecutor:
    """Each evaluation is a Ray task with the trial's resources (``RayPool``), on an embedded
    Ray or a cluster. The strategy stays in the driver, so a search is the same as with the
    inline executor; training evaluators keep their own per-epoch checkpoints in the run
    folder, so a retried or resumed training continues where it was."""

    clock = "wall"

    def __init__(self, config: ExecutorConfig, quiet: bool = False):
        self.config = config.validate()
        self.quiet = quiet
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
            # Ray's start-up notices (token authentication, ...) are warnings of its loggers.
            logging.getLogger("ray").setLevel(logging.ERROR)
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

    def capacity(self) -> int:
        """Evaluations the cluster can run at once with each trial's resources."""
        import ray
        available = ray.cluster_resources()
        fits = [available.get("CPU", 0) // self.config.cpus_per_trial]
        if self.config.gpus_per_trial:
            fits.append(available.get("GPU", 0) // self.config.gpus_per_trial)
        return max(1, int(min(fits) // self.config.workers_per_trial))

    def pool(self, evaluator, clock=None, now: float = 0.0, reports: bool = False) -> Pool:
        """A pool on the wall clock ``clock()`` (seconds of the run; default: since this call)."""
        if clock is None:
            began = time.time()
            clock = lambda: time.time() - began  # noqa: E731
        if self.config.workers_per_trial > 1:
            # Each arch's training launches its own Ray Train workers from the driver (a task
            # that trains would hold a CPU its workers wait for): archs one after the other.
            if reports:
                raise SearchError("a stopper needs evaluations in Ray tasks: not with --workers-per-trial")
            return InProcessPool(evaluator, self.config.max_failures, clock)
        return RayPool(self.config, evaluator, clock, self.quiet, reports)

    def run(self, batch, evaluator, on_result):
        self.pool(evaluator).run_batch(batch, on_result)


def make_executor(config: ExecutorConfig, quiet: bool = False):
    """The executor ``config.name`` (resolved: not None), not yet entered; ``quiet`` keeps
    the executor's own notices (Ray's start-up warnings) off the terminal."""
    return EXECUTORS.get(config.name)(config, quiet)

