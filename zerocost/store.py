"""The proxies of many architectures, each computed once: a cache that is also a resumable job.

A :class:`ProxyStore` holds one space, one minibatch and one initialisation seed. Asked for
the proxies of some architectures, it computes the ones it lacks (each network built under
``torch.manual_seed(seed)``, every layer re-initialised with PyTorch's defaults, so trained
weights a space may load, such as OFA's supernet, never enter) and appends one line per
architecture to its cache file, flushed as it goes: a killed job loses at most the network it
was on, and running it again computes only what is missing. Lines of other minibatches or
seeds may share the file; each is read only by a store of its own.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from narnas.files import append_jsonl, read_jsonl
from narnas.progress import Progress, interactive

from .batch import Minibatch
from .errors import ZeroCostError
from .proxies import Proxy, measure, resolve


class ProxyStore:
    def __init__(self, space, batch: Minibatch, seed: int = 0, cache: Path | str | None = None, device: str = "cpu"):
        from spaces.base import ModelBuilding, require
        self.space = require(space, ModelBuilding, "for zero-cost proxies")
        self.batch, self.seed = batch, seed
        self.device = torch.device(device)  # where networks and the minibatch go: "cuda" on a GPU
        self.cache = Path(cache) if cache else None
        self.known: dict[str, dict[str, float]] = {}
        if self.cache is not None:
            for line in read_jsonl(self.cache):
                if line.get("batch") == batch.signature and line.get("seed") == seed:
                    values = {k: (math.nan if v is None else float(v)) for k, v in line["values"].items()}
                    self.known.setdefault(line["key"], {}).update(values)

    def values(self, archs: list, proxies: list[str] | None = None, quiet: bool = True) -> np.ndarray:
        """float64 [len(archs), len(proxies)] (None: every proxy), computing and caching what is missing."""
        chosen = resolve(proxies)
        keys = [str(self.space.key(a)) for a in archs]
        todo = {}
        for key, arch in zip(keys, archs):
            lacking = [p for p in chosen if p.name not in self.known.get(key, {})]
            if lacking and key not in todo:
                todo[key] = (arch, lacking)
        bar = Progress(len(todo), interactive(quiet), "proxies")
        for done, (key, (arch, lacking)) in enumerate(todo.items(), 1):
            self._compute(key, arch, lacking)
            bar.update(done)
        bar.close()
        return np.array([[self.known[k][p.name] for p in chosen] for k in keys], dtype=np.float64).reshape(
            len(keys), len(chosen))

    def network(self, arch):
        """``arch``'s network at its seeded default initialisation, as the proxies see it."""
        space = self.space
        with torch.random.fork_rng(devices=[]):  # the caller's random state stays as it was
            torch.manual_seed(self.seed)
            model = space.build_model(arch, space.inference_config(space.build_config()))
            for module in model.modules():
                if hasattr(module, "reset_parameters") and module is not model:
                    module.reset_parameters()
        return model

    def _compute(self, key: str, arch, proxies: list[Proxy]) -> None:
        batch = self.batch.resized(_resolution(self.space, arch, self.batch.images.shape[-1]))
        values = measure(self.network(arch).to(self.device), batch.images.to(self.device),
                         batch.labels.to(self.device), proxies)
        self.known.setdefault(key, {}).update(values)
        if self.cache is not None:
            append_jsonl(self.cache, {"key": key, "arch": self.space.to_json(arch), "batch": self.batch.signature,
                                      "seed": self.seed,
                                      "values": {k: (None if math.isnan(v) else v) for k, v in values.items()}})


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
