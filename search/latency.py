"""The ``latency`` measure of a search (``--constraint latency<=MS``, Pareto fronts).

``--latency`` says where an arch's latency comes from:

* ``measured`` (default): the arch's deployed network (``space.build_model`` with training
  aids off) exported to ONNX and timed in onnxruntime on this machine (``--latency-set
  threads=1 batch_size=1 repeats=20``); each arch is timed once, kept in the run folder's
  ``latency_cache.jsonl`` (append-only), so a resumed search never times an arch again.
* ``predictor:FILE``: a latency predictor fitted by ``python -m bench.latency
  --save FILE``: the network's layer graph goes through it (no timing; milliseconds per arch).
* any other name: a measure the run already offers under that name: a benchmark column
  (HELP's ``lat_pixel2`` on NB201 via its table) or the space's own (ofa_mbv3's
  ``latency_note10``).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from narnas.files import append_jsonl, read_jsonl

from .errors import SearchError

CACHE = "latency_cache.jsonl"


@dataclass
class LatencySection:
    source: str = "measured"  # measured | predictor:FILE | a measure name
    threads: int = 1
    batch_size: int = 1
    warmup: int = 5
    repeats: int = 20


def check(section: LatencySection) -> None:
    if section.threads < 1 or section.batch_size < 1 or section.repeats < 1 or section.warmup < 0:
        raise SearchError("latency threads, batch_size and repeats must be at least 1, warmup at least 0")
    if section.source.startswith("predictor:") and not Path(section.source.split(":", 1)[1]).is_file():
        raise SearchError(f"--latency {section.source}: no such file (fit one with python -m "
                          "bench.latency --save FILE)")


def input_shape(space, arch, batch_size: int) -> tuple[int, ...]:
    """The network's input: the arch's own resolution where it has one (ofa_mbv3), else the space's."""
    size = getattr(arch, "r", None)
    shape = (3, int(size), int(size)) if size else tuple(space.input_shape)
    return (batch_size,) + shape


def deployed_model(space, arch):
    from spaces import ModelBuilding, require
    require(space, ModelBuilding, "for the latency measure")
    config = space.inference_config(space.build_config(None))
    return space.build_model(arch, config)


class MeasuredLatency:
    """arch -> median onnxruntime latency (ms) on this machine, cached by arch key on disk."""

    def __init__(self, space, section: LatencySection, cache_dir=None):
        self.space, self.section = space, section
        self.cache_path = Path(cache_dir) / CACHE if cache_dir else None
        self.cache: dict[str, float] = {}
        if self.cache_path is not None:
            self.cache = {e["key"]: float(e["latency_ms"]) for e in read_jsonl(self.cache_path)
                          if e.get("setting") == self._setting()}

    def _setting(self) -> dict:
        s = self.section
        return {"threads": s.threads, "batch_size": s.batch_size, "warmup": s.warmup, "repeats": s.repeats}

    def __call__(self, arch) -> float:
        key = str(self.space.key(arch))
        if key not in self.cache:
            from latency.graph import module_to_onnx
            from latency.timing import measure
            s = self.section
            model = module_to_onnx(deployed_model(self.space, arch), input_shape(self.space, arch, s.batch_size))
            value = measure(model, threads=s.threads, warmup=s.warmup, repeats=s.repeats).median_ms
            self.cache[key] = value
            if self.cache_path is not None:
                append_jsonl(self.cache_path, {"key": key, "latency_ms": value, "setting": self._setting()})
        return self.cache[key]


class PredictedLatency:
    """arch -> latency (ms) predicted from its layer graph by a saved latency predictor."""

    def __init__(self, space, path, batch_size: int = 1):
        from latency.predictors import load_latency_predictor
        self.space, self.batch_size = space, batch_size
        self.predictor = load_latency_predictor(path)

    def __call__(self, arch) -> float:
        from latency.encoding import compact
        from latency.graph import module_graph
        graph = module_graph(deployed_model(self.space, arch), input_shape(self.space, arch, self.batch_size))
        return float(self.predictor.predict([compact(graph)])[0])


def latency_measure(space, section: LatencySection, others, cache_dir=None):
    """``arch -> ms`` for ``section.source``; ``others(name)`` looks up a measure the run offers."""
    check(section)
    if section.source == "measured" or section.source.startswith("predictor:"):
        from spaces import ModelBuilding, require
        require(space, ModelBuilding, f"for --latency {section.source.split(':')[0]} (it builds each arch's network)")
    if section.source == "measured":
        return MeasuredLatency(space, section, cache_dir)
    if section.source.startswith("predictor:"):
        return PredictedLatency(space, section.source.split(":", 1)[1], section.batch_size)
    if section.source == "latency":
        raise SearchError("--latency cannot name the latency measure itself: measured, predictor:FILE, or a column")
    return others(section.source)
