"""Measuring a network's inference latency in onnxruntime on this machine.

One measurement: a session with a fixed number of intra-op threads (one inter-op thread,
sequential execution, full graph optimisation as deployed), ``warmup`` runs that are thrown
away (allocation, caches, lazy kernel selection), then ``repeats`` timed runs on a fixed
random input. The latency is the median run (robust to the scheduler's outliers); the
spread is kept beside it so a noisy figure can be told from a quiet one.
"""
from __future__ import annotations

import dataclasses
import os
import platform
import time
from pathlib import Path

import numpy as np

from predictor.errors import PredictorError


@dataclasses.dataclass(frozen=True)
class LatencyStats:
    """Summary of repeated runs, in milliseconds."""

    median_ms: float
    mean_ms: float
    std_ms: float
    min_ms: float
    max_ms: float
    p10_ms: float
    p90_ms: float
    repeats: int

    @property
    def relative_spread(self) -> float:
        """(p90 - p10) / median: the width of the middle 80% of runs relative to the latency."""
        return (self.p90_ms - self.p10_ms) / self.median_ms if self.median_ms > 0 else float("nan")

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def summarize(times_ms) -> LatencyStats:
    """Statistics of run times (ms)."""
    t = np.asarray(times_ms, dtype=np.float64)
    if t.ndim != 1 or t.size == 0 or not np.all(np.isfinite(t)):
        raise PredictorError("latency statistics need at least one finite run time")
    p10, p50, p90 = np.percentile(t, [10, 50, 90])
    return LatencyStats(median_ms=float(p50), mean_ms=float(t.mean()), std_ms=float(t.std(ddof=1) if t.size > 1 else 0.0),
                        min_ms=float(t.min()), max_ms=float(t.max()), p10_ms=float(p10), p90_ms=float(p90),
                        repeats=int(t.size))


def session(model, threads: int = 1):
    """An onnxruntime CPU session for ``model`` (a file path, bytes or a ModelProto)."""
    import onnxruntime as ort
    if threads < 1:
        raise PredictorError(f"--threads must be at least 1, got {threads}")
    options = ort.SessionOptions()
    options.intra_op_num_threads = int(threads)
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3
    if hasattr(model, "SerializeToString"):
        model = model.SerializeToString()
    elif isinstance(model, (str, Path)):
        model = str(model)
    try:
        return ort.InferenceSession(model, sess_options=options, providers=["CPUExecutionProvider"])
    except Exception as err:
        raise PredictorError(f"onnxruntime cannot load the model: {' '.join(str(err).split())[:200]}") from None


def random_inputs(sess, seed: int = 0) -> dict:
    """A fixed random input for every input of the session (symbolic dims become 1)."""
    rng = np.random.default_rng(seed)
    feeds = {}
    for inp in sess.get_inputs():
        shape = [d if isinstance(d, int) and d > 0 else 1 for d in inp.shape]
        if "int64" in inp.type:
            feeds[inp.name] = rng.integers(0, 2, size=shape, dtype=np.int64)
        else:
            feeds[inp.name] = rng.standard_normal(shape).astype(np.float32)
    return feeds


def measure(model, *, threads: int = 1, warmup: int = 10, repeats: int = 50, seed: int = 0,
            min_seconds: float = 0.0) -> LatencyStats:
    """The latency of one inference of ``model`` (path, bytes or ModelProto) on this CPU.
    ``min_seconds`` keeps repeating past ``repeats`` until that much time was timed (so fast
    networks get enough runs for a stable median)."""
    if warmup < 0 or repeats < 1:
        raise PredictorError(f"need warmup >= 0 and repeats >= 1, got {warmup} and {repeats}")
    sess = session(model, threads)
    feeds = random_inputs(sess, seed)
    for _ in range(warmup):
        sess.run(None, feeds)
    times = []
    total = 0.0
    while len(times) < repeats or total < min_seconds:
        start = time.perf_counter()
        sess.run(None, feeds)
        elapsed = time.perf_counter() - start
        times.append(elapsed * 1e3)
        total += elapsed
    return summarize(times)


def cpu_model() -> str:
    """The CPU's model name (Linux /proc/cpuinfo, else what ``platform`` knows)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def platform_info(threads: int, batch_size: int) -> dict:
    """What a latency depends on besides the network: recorded with every dataset."""
    import onnxruntime as ort
    return {"runtime": "onnxruntime", "runtime_version": ort.__version__, "provider": "CPUExecutionProvider",
            "cpu": cpu_model(), "cpu_count": os.cpu_count(), "machine": platform.machine(),
            "system": f"{platform.system()} {platform.release()}", "threads": int(threads),
            "batch_size": int(batch_size)}
