"""The proxies of many architectures, each computed once: a cache that is also a resumable job.

A :class:`ProxyStore` holds one space, one minibatch, one initialisation seed and one network
size (the space's evaluation network, or ``network`` overrides of its build config, such as
DARTS's 16-channel, 8-cell search network: the vote's three proxies of a DARTS cell took 39 s on
the 2-core CPU against 174 s on the 36-channel, 20-cell one, measured beside other work). Asked for
the proxies of some architectures, it computes the ones it lacks (each network built under
``torch.manual_seed(seed)``, every layer re-initialised with PyTorch's defaults, so trained
weights a space may load, such as OFA's supernet, never enter) and appends one line per
architecture to its cache file, flushed as it goes: a killed job loses at most the network it
was on, and running it again computes only what is missing. Lines of other minibatches, seeds
or network sizes may share the file; each is read only by a store of its own.

On a CPU the networks are spread over ``workers`` processes sharing torch's threads (default:
one per thread, up to 8, so one thread each on a small machine): small convolutions use two
threads poorly, so two single-thread workers computed 1.3x as many NB201 cells a second as one
process of two threads (measured).
Only the parent writes the cache, one line per network as its values arrive.
"""
from __future__ import annotations

import math
import multiprocessing
import signal
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path

import numpy as np
import torch

from narnas.files import append_jsonl, read_jsonl
from narnas.progress import Progress, interactive

from .batch import Minibatch
from .errors import ZeroCostError
from .proxies import Proxy, measure, resolve


MIN_PER_WORKER = 8  # networks per worker process below which starting one (a second or two) does not pay
MAX_DEFAULT_WORKERS = 8  # each holds its own torch (~0.3 GB): on a big machine, more threads per worker instead


class ProxyStore:
    def __init__(self, space, batch: Minibatch, seed: int = 0, cache: Path | str | None = None, device: str = "cpu",
                 workers: int | None = None, network: dict | None = None):
        from spaces.base import ModelBuilding, require
        self.space = require(space, ModelBuilding, "for zero-cost proxies")
        self.batch, self.seed = batch, seed
        self.sizes = dict(network or {})  # build config overrides
        from narnas.errors import ConfigError
        try:
            self.build = space.inference_config(space.build_config(self.sizes))
        except ConfigError as err:
            raise ZeroCostError(f"the proxies' network (--network): {err}") from None
        #: what a cached value was computed on beside the minibatch and seed ("": the evaluation network)
        self.network_signature = ",".join(f"{k}={v}" for k, v in sorted(self.sizes.items()))
        self.device = torch.device(device)  # where networks and the minibatch go: "cuda" on a GPU
        if workers is not None and workers < 1:
            raise ZeroCostError(f"workers must be at least 1, got {workers}")
        cpu = self.device.type == "cpu"
        self.workers = workers or (min(torch.get_num_threads(), MAX_DEFAULT_WORKERS) if cpu else 1)
        self.cache = Path(cache) if cache else None
        self.known: dict[str, dict[str, float]] = {}
        if self.cache is not None:
            for line in read_jsonl(self.cache):
                if (line.get("batch"), line.get("seed"), line.get("network", "")) == (
                        batch.signature, seed, self.network_signature):
                    values = {k: (math.nan if v is None else float(v)) for k, v in line["values"].items()}
                    self.known.setdefault(line["key"], {}).update(values)

    def values(self, archs: list, proxies: list[str] | None = None, quiet: bool = True) -> np.ndarray:
        """float64 [len(archs), len(proxies)] (None: every proxy), computing and caching what is missing."""
        chosen = resolve(proxies)
        keys = [str(self.space.key(a)) for a in archs]
        todo = self.missing(archs, proxies)
        bar = Progress(len(todo), interactive(quiet), "proxies")
        for done, (key, values) in enumerate(self._measured(todo), 1):
            self._record(key, todo[key][0], values)
            bar.update(done)
        bar.close()
        return np.array([[self.known[k][p.name] for p in chosen] for k in keys], dtype=np.float64).reshape(
            len(keys), len(chosen))

    def missing(self, archs: list, proxies: list[str] | None = None) -> dict[str, tuple]:
        """What ``values`` would compute: key -> (arch, the proxies it lacks), one per distinct arch."""
        chosen, todo = resolve(proxies), {}
        for arch in archs:
            key = str(self.space.key(arch))
            lacking = [p for p in chosen if p.name not in self.known.get(key, {})]
            if lacking and key not in todo:
                todo[key] = (arch, lacking)
        return todo

    def network(self, arch):
        """``arch``'s network at its seeded default initialisation, as the proxies see it."""
        space = self.space
        with torch.random.fork_rng(devices=[]):  # the caller's random state stays as it was
            torch.manual_seed(self.seed)
            model = space.build_model(arch, self.build)
            for module in model.modules():
                if hasattr(module, "reset_parameters") and module is not model:
                    module.reset_parameters()
        return model

    def measure(self, arch, proxies: list[Proxy]) -> dict[str, float]:
        """``arch``'s proxies, computed here (nothing cached)."""
        batch = self.batch.resized(_resolution(self.space, arch, self.batch.images.shape[-1]))
        return measure(self.network(arch).to(self.device), batch.images.to(self.device),
                       batch.labels.to(self.device), proxies)

    def _measured(self, todo: dict):
        """(key, values) of every ``todo`` entry, in this process or, for enough networks on a
        CPU, from worker processes in the order they finish."""
        workers = min(self.workers, len(todo) // MIN_PER_WORKER)
        if workers < 2:
            for key, (arch, lacking) in todo.items():
                yield key, self.measure(arch, lacking)
            return
        threads = max(1, torch.get_num_threads() // workers)
        recipe = (self.space, self.batch, self.seed, str(self.device), self.sizes)
        pool = ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context("spawn"),
                                   initializer=_start_worker, initargs=(recipe, threads))
        try:
            futures = [pool.submit(_measure_in_worker, key, arch, [p.name for p in lacking])
                       for key, (arch, lacking) in todo.items()]
            for future in as_completed(futures):
                yield future.result()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)  # a failure or Ctrl-C: the networks under way finish

    def _record(self, key: str, arch, values: dict[str, float]) -> None:
        self.known.setdefault(key, {}).update(values)
        if self.cache is not None:
            append_jsonl(self.cache, {"key": key, "arch": self.space.to_json(arch), "batch": self.batch.signature,
                                      "seed": self.seed,
                                      **({"network": self.network_signature} if self.sizes else {}),
                                      "values": {k: (None if math.isnan(v) else v) for k, v in values.items()}})


_WORKER: ProxyStore | None = None  # a worker process's store (no cache: the parent writes it)


def _start_worker(recipe: tuple, threads: int) -> None:
    global _WORKER
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    torch.set_num_threads(threads)
    space, batch, seed, device, network = recipe
    _WORKER = ProxyStore(space, batch, seed, None, device, workers=1, network=network)


def _measure_in_worker(key: str, arch, proxy_names: list[str]) -> tuple[str, dict[str, float]]:
    return key, _WORKER.measure(arch, resolve(proxy_names))


def _resolution(space, arch, default: int) -> int:
    """The input size ``arch``'s network takes (an OFA subnet names its own), else ``default``."""
    from spaces.base import GraphEncoding
    if isinstance(space, GraphEncoding):
        size = dict(space.to_graph(arch).graph_features).get("resolution")
        if size:
            return int(size)
    return default


def default_cache(space_name: str) -> Path:
    """$NARNAS_DATA/zerocost/SPACE.jsonl, its folder made: where the proxies are cached by default."""
    from narnas.files import default_data_dir
    path = default_data_dir() / "zerocost" / f"{space_name}.jsonl"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def check_cache(path) -> Path:
    """A cache path a job can write (its folder made, as every output's), or one line naming the flag."""
    from narnas.files import writable_file
    path = Path(path)
    if path.is_dir():
        raise ZeroCostError(f"--cache {path} is a folder; give a file (e.g. {path / 'proxies.jsonl'})")
    return writable_file(path, "--cache")
