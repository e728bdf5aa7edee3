"""The search's latency measure: timed here (cached by key), predicted by a saved latency
predictor, or another measure's column."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import spaces
from latency.encoding import compact
from latency.graph import module_graph
from latency.predictors import get_latency_predictor, load_latency_predictor, save_latency_predictor
from search.latency import CACHE, LatencySection, MeasuredLatency, deployed_model, input_shape
from search.middleware import measure_functions

ROOT = Path(__file__).resolve().parents[1]


def test_measured_latency_is_timed_once_per_arch_and_kept_across_a_resume(tmp_path, monkeypatch):
    space = spaces.get_space("nb201")
    rng = np.random.default_rng(0)
    archs = [space.sample(rng) for _ in range(3)]
    section = LatencySection(repeats=3, warmup=1)
    first = MeasuredLatency(space, section, tmp_path)
    values = [first(a) for a in archs] + [first(archs[0])]
    assert all(v > 0 for v in values) and values[3] == values[0]
    lines = (tmp_path / CACHE).read_text().splitlines()
    assert len(lines) == 3 and {json.loads(x)["key"] for x in lines} == {str(space.key(a)) for a in archs}

    import latency.timing as timing
    monkeypatch.setattr(timing, "measure", lambda *a, **k: pytest.fail("a cached arch was timed again"))
    again = MeasuredLatency(space, section, tmp_path)
    assert [again(a) for a in archs] == values[:3]
    other = MeasuredLatency(space, LatencySection(repeats=4, warmup=1), tmp_path)
    with pytest.raises(BaseException, match="timed again"):  # another setting is another measurement
        other(archs[0])


def _run(*args, timeout=900):
    return subprocess.run([sys.executable, "-m", "search.run", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout)


def _journal(run):
    return [json.loads(line) for line in (run / "journal.jsonl").read_text().splitlines() if line.strip()]


def test_search_under_a_measured_latency_limit(tmp_path):
    out = tmp_path / "run"
    # 1.5 ms: about half of NB201's networks here (0.5-2.4 ms at batch 1 on one thread)
    done = _run("--space", "nb201", "--strategy", "random", "--budget", "10", "--batch", "5", "--init", "5", "--constraint",
                "latency<=1.5", "--latency-set", "repeats=5", "--latency-set", "warmup=1", "--quiet", "--no-plots",
                "--out", str(out))
    assert done.returncode == 0, done.stderr
    entries = _journal(out)
    assert len(entries) == 10 and all(0 < e["latency"] <= 1.5 for e in entries)
    cached = [json.loads(x) for x in (out / CACHE).read_text().splitlines()]
    assert {e["key"] for e in entries} <= {c["key"] for c in cached}
    # the limit turned measured archs away, and none of them was evaluated
    slow = {c["key"] for c in cached if c["latency_ms"] > 1.5}
    rejected = json.loads((out / "state.json").read_text())["payload"]["strategy"]["middleware"]["constraints"]
    assert slow and rejected["rejected"]["latency"] >= len(slow) and not slow & {e["key"] for e in entries}
    pareto = json.loads((out / "pareto.json").read_text())
    assert pareto["minimise"] == ["latency"] and pareto["limits"] == {"latency": 1.5}
    config = json.loads((out / "config.json").read_text())["config"]
    assert config["latency"] == {"source": "measured", "threads": 1, "batch_size": 1, "warmup": 1, "repeats": 5}


def test_search_with_a_saved_latency_predictor(tmp_path):
    space = spaces.get_space("nb201")
    rng = np.random.default_rng(1)
    archs = [space.sample(rng) for _ in range(12)]
    graphs = [compact(module_graph(deployed_model(space, a), input_shape(space, a, 1))) for a in archs]
    y = np.array([0.2 + g.static[1] / 1e8 for g in graphs])  # a made-up device: 10 ms per GFLOP
    fitted = get_latency_predictor("flops").fit(graphs, y)
    path = tmp_path / "lat.pt"
    save_latency_predictor(fitted, path, data="toy")
    np.testing.assert_allclose(load_latency_predictor(path).predict(graphs), fitted.predict(graphs))
    limit = float(np.median(y))
    out = tmp_path / "run"
    done = _run("--space", "nb201", "--strategy", "random", "--budget", "8", "--batch", "4", "--init", "4", "--constraint",
                f"latency<={limit}", "--latency", f"predictor:{path}", "--quiet", "--no-plots", "--out", str(out))
    assert done.returncode == 0, done.stderr
    entries = _journal(out)
    assert len(entries) == 8 and max(e["latency"] for e in entries) <= limit
    arch = space.from_json(entries[0]["arch"])
    g = compact(module_graph(deployed_model(space, arch), input_shape(space, arch, 1)))
    assert entries[0]["latency"] == pytest.approx(float(fitted.predict([g])[0]))
    assert not (out / CACHE).exists()  # nothing was timed


def test_latency_can_name_a_space_measure_and_bad_sources_say_so(tmp_path):
    space = spaces.get_space("ofa_mbv3", width_mult=1.2, resolutions=(160, 176, 192, 208, 224))
    arch = space.sample(np.random.default_rng(0))
    fn = measure_functions(space, ["latency"], None, LatencySection(source="latency_note10"))["latency"]
    assert fn(arch) == space.latency_note10(arch)
    bad = _run("--space", "nb201", "--constraint", "latency<=1", "--latency", f"predictor:{tmp_path}/none.pt")
    assert bad.returncode == 2 and "no such file" in bad.stderr and len(bad.stderr.strip().splitlines()) == 1
    not_a_file = tmp_path / "x.pt"
    not_a_file.write_text("hello")
    from predictor.errors import PredictorError
    with pytest.raises(PredictorError, match="not a latency predictor file"):
        load_latency_predictor(not_a_file)
