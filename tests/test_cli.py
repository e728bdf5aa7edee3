import json
import os
import subprocess
import sys

import pytest

import spaces


def run(*args, env=None):
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, timeout=300,
                          env={**os.environ, **(env or {})})


def test_sample_prints_seeded_json_lines():
    first = run("spaces", "--space", "nb201", "--sample", "5", "--seed", "0")
    assert first.returncode == 0, first.stderr
    lines = first.stdout.splitlines()
    assert len(lines) == 5
    space = spaces.get_space("nb201")
    archs = [space.from_json(json.loads(line)) for line in lines]
    assert len(archs) == 5
    assert run("spaces", "--space", "nb201", "--sample", "5", "--seed", "0").stdout == first.stdout
    assert run("spaces", "--space", "nb201", "--sample", "5", "--seed", "1").stdout != first.stdout


def test_nb101_sample_and_mutate_lines_parse():
    out = run("spaces", "--space", "nb101", "--sample", "3", "--seed", "4")
    space = spaces.get_space("nb101")
    parent = out.stdout.splitlines()[0]
    mutated = run("spaces", "--space", "nb101", "--mutate", parent, "--n", "4")
    children = [space.from_json(line) for line in mutated.stdout.splitlines()]
    assert len(children) == 4
    assert all(space.key(c) != space.key(space.from_json(parent)) for c in children)


@pytest.mark.parametrize("name, count", [("nb201", "15625"), ("nb101", "423624")])
def test_count(name, count):
    if name == "nb101":
        # computed here once (about 30 s), cached in NARNAS_DATA, which the subprocess shares
        from spaces.nb101.enum import load_enumeration
        load_enumeration()
    out = run("spaces", "--space", name, "--count")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == count


def test_query_and_key():
    best = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"
    out = run("spaces", "--space", "nb201", "--query", best, "--metric", "c10_test_200")
    assert json.loads(out.stdout) == {"key": best, "c10_test_200": pytest.approx(94.373333)}
    assert run("spaces", "--space", "nb201", "--key", json.dumps(best)).stdout.strip() == best


@pytest.mark.parametrize("args, message", [
    (("--space", "nb202", "--count"), "unknown space 'nb202'; valid: darts, nb101, nb201"),
    (("--space", "nb201", "--key", "|bad|"), "NB201 string '|bad|' must have 3"),
    (("--space", "nb101", "--key", '{"matrix": [[0]], "ops": ["input"]}'), "at least 2 vertices"),
    (("--space", "nb201", "--query", "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|", "--metric", "acc"),
     "unknown metric 'acc'"),
    (("--space", "nb101", "--metrics", "--data", "/nonexistent/nb101.tfrecord"), "/nonexistent/nb101.tfrecord"),
    (("--space", "nb201", "--sample", "-1"), "must be >= 0"),
])
def test_bad_input_exits_nonzero_with_one_line(args, message):
    out = run("spaces", *args)
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and "Traceback" not in out.stderr
    assert message in out.stderr



UNWRITABLE = "/proc/narnas-cannot-write"  # /proc takes no new folders, even for root


@pytest.mark.parametrize("args, message", [
    (["search.run", "--space", "ofa_mbv3", "--space-set", "foo=1"], "unknown config key(s) foo in space ofa_mbv3 options"),
    (["search.run", "--space", "ofa_mbv3", "--space-set", "width_mult=1.5"], "width_mult must be one of 1.0, 1.2"),
    (["search.run", "--space", "nb201", "--space-set", "width_mult=1.2"], "space 'nb201' takes no options"),
    (["search.run", "--space", "ofa_mbv3", "--space-set", "supernet=/nope.pth"], "OFA supernet weights /nope.pth not found"),
    (["search.run", "--space", "ofa_mbv3", "--constraint", "latency_note10<=20"], "latency_note10 needs the tables' network"),
    (["search.run", "--space", "ofa_mbv3", "--set", "evaluator.config.weights=/nope.pth"],
     "OFA accuracy predictor /nope.pth not found"),
    (["spaces", "--space", "ofa_mbv3", "--space-set", "resolutions=abc", "--count"], "options.resolutions must be a list"),
    (["bench.search", "--space", "nb201", "--oracle", "--strategies", "random", "--seeds", "1"],
     "--oracle runs OFA's evolution, which needs the ofa_mbv3 space, not nb201"),
    (["bench.search", "--space", "nb201", "--strategies", "random", "--seeds", "1", "--json", f"{UNWRITABLE}/b.json"],
     f"cannot write --json folder {UNWRITABLE}"),
    (["bench.predictors", "--space", "nb201", "--predictor", "mlp", "--train-size", "50", "--score-evaluator", "nope"],
     "unknown evaluator 'nope'; valid: benchmark, cifar10-train, imagenet, ofa-acc-predictor, ofa-supernet"),
    (["bench.predictors", "--space", "nb201", "--predictor", "mlp", "--train-size", "50", "--json", f"{UNWRITABLE}/p.json"],
     f"cannot write --json folder {UNWRITABLE}"),
    (["search.export", "--space", "darts", "--arch", "darts_v2", "--out", UNWRITABLE], f"cannot write --out {UNWRITABLE}"),
    (["search.export", "--space", "darts", "--arch", "darts_v2", "--out", "x", "--set", "chanels=3"],
     "unknown config key(s) chanels in darts build config"),
    (["search.train", "--arch", "darts_v2", "--preset", "smoke", "--out", UNWRITABLE], f"cannot write --out {UNWRITABLE}"),
    (["search.train", "--space", "ofa_mbv3", "--arch", "x"],
     "unknown training recipe for space 'ofa_mbv3'; valid: darts, nb101, nb201"),
    (["search.run", "--space", "nb201", "--predictor-set", "dropout=2"], "dropout is a probability in [0, 1), got 2.0"),
    (["search.run", "--space", "nb201", "--predictor-set", "lr=-1"], "lr must be > 0"),
    (["search.run", "--space", "nb201", "--predictor-set", "device=banana"],
     "device must be 'cpu', 'cuda' or 'cuda:N', got 'banana'"),
    (["search.run", "--space", "nb201", "--strategy", "rea", "--tournament", "50", "--population", "20"],
     "tournament (50) cannot be larger than the population (20)"),
    (["search.run", "--space", "nb201", "--out", ""], "--out is empty"),
])
def test_bad_input_to_the_new_flags_is_one_line_before_any_work(args, message, tmp_path):
    # bench/ is the checkout's, not installed: the checkout on the path, as from its root
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    done = subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, timeout=300, cwd=tmp_path,
                          env=dict(os.environ, PYTHONPATH=root))
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], done.stderr  # no progress line: nothing ran first
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_a_closed_output_pipe_ends_the_table_quietly(tmp_path):
    """``python -m bench.table ... | head -1``: no traceback when the reader goes away."""
    run = {"space": "nb201", "predictor": "mlp", "seed": 0, "train_size": 10, "kendall_tau": 0.5, "spearman": 0.6,
           "precision_at_top_5pct": 0.1, "fit_seconds": 1.0, "predict_archs_per_second": 10.0, "config": {"set": []}}
    files = []
    for i in range(3000):  # more rows than a pipe buffer holds
        files.append(tmp_path / f"r{i}.json")
        files[-1].write_text(json.dumps(dict(run, train_size=10 + i)))
    listing = tmp_path / "files.txt"
    listing.write_text("\n".join(map(str, files)))
    done = subprocess.run(f"xargs -a {listing} {sys.executable} -m bench.table | head -1", shell=True,
                          capture_output=True, text=True, timeout=300, cwd=os.getcwd())
    assert done.stdout.startswith("| space |") and "Traceback" not in done.stderr, done.stderr


def test_a_plugin_registers_a_space_and_an_evaluator_from_outside_the_package(tmp_path):
    """examples/line_plugin.py, imported by --plugin (or $NARNAS_PLUGINS): searched, resumed
    (the run remembers its plugins), and shown by the spaces CLI."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.path.join(root, "examples"), root]))
    cli = lambda *args, **kw: subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True,
                                             timeout=300, env=dict(env, **kw), cwd=tmp_path)
    out = tmp_path / "run"
    done = cli("search.run", "--plugin", "line_plugin", "--space", "line", "--strategy", "rea", "--budget", "20",
               "--quiet", "--out", str(out))
    assert done.returncode == 0, done.stderr
    assert json.loads((out / "config.json").read_text())["plugins"] == ["line_plugin"]
    more = cli("search.run", "--resume", str(out), "--budget", "40", "--force", "--quiet")  # no --plugin
    assert more.returncode == 0, more.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["evaluations"] == 40 and summary["metric"] == "minus_distance"
    assert summary["best"]["val"] == -abs(summary["best"]["arch"] - 617) and summary["best"]["val"] > -100
    sampled = cli("spaces", "--space", "line", "--sample", "3", NARNAS_PLUGINS="line_plugin")
    assert sampled.returncode == 0 and len(sampled.stdout.split()) == 3, sampled.stderr
    missing = cli("search.run", "--plugin", "no_such_plugin", "--space", "line")
    assert missing.returncode == 2 and missing.stderr.strip().splitlines() == [
        "error: cannot import plugin 'no_such_plugin': No module named 'no_such_plugin' (is its folder on PYTHONPATH?)"]


def narnas(*args, cwd=None, **env):
    command = os.path.join(os.path.dirname(sys.executable), "narnas")
    return subprocess.run([command, *args], capture_output=True, text=True, timeout=300, cwd=cwd,
                          env={**os.environ, **env})


def test_the_narnas_command_runs_each_tool_and_lists_what_is_registered(tmp_path):
    from importlib.metadata import version
    assert narnas("--version").stdout.strip() == f"narnas {version('narnas')}"
    # a subcommand is its python -m tool, flags and output alike
    assert narnas("spaces", "--space", "nb201", "--sample", "3", "--seed", "0").stdout == \
        run("spaces", "--space", "nb201", "--sample", "3", "--seed", "0").stdout
    # its help and usage errors name it as the user typed it
    assert narnas("train", "--help").stdout.startswith("usage: narnas train ")
    assert "usage: python -m search.train " in run("search.train", "--help").stdout
    assert narnas("search", "--budget", "x").stderr.startswith("usage: narnas search ")
    listed = narnas("list", "strategies", "predictors")
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[0].startswith("strategies:") and any(line.split()[:1] == ["rea"] for line in lines)
    # arch2vec's predictor lives above predictor and arrives as an installed plugin
    assert any(line.split()[:2] == ["arch2vec", "A"] for line in lines)
    everything = narnas("list").stdout
    assert all(f"\n{kind}:" in "\n" + everything for kind in ("spaces", "evaluators", "executors", "recipes",
                                                                "proxies"))
    assert any(line.split()[:2] == ["synflow", "synaptic"] for line in everything.splitlines())  # a proxy: its source
    for args, message in [(("nope",), "error: unknown subcommand 'nope'; valid: search, report"),
                          (("list", "things"), "error: narnas list: unknown kind things; valid: spaces,"),
                          (("bench", "nope"), "error: narnas bench: unknown benchmark 'nope'; valid: "),
                          (("list", "--plugin", "no_such_plugin"), "error: cannot import plugin 'no_such_plugin'"),
                          (("bench", "search"), "error: narnas bench runs the repository's benchmark commands")]:
        bad = narnas(*args, cwd=tmp_path if args == ("bench", "search") else None)
        assert bad.returncode == 2 and bad.stderr.startswith(message), (args, bad.stderr)


def test_an_installed_plugin_announces_itself_by_entry_point(tmp_path):
    """A package whose metadata names a module in the narnas.plugins group: its space is there
    for the API and every command without --plugin."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    dist = tmp_path / "line_plugin-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: line-plugin\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[narnas.plugins]\nline = line_plugin\n")
    env = {"PYTHONPATH": os.pathsep.join([str(tmp_path), os.path.join(root, "examples")])}
    listed = narnas("list", "spaces", "evaluators", **env)
    assert listed.returncode == 0, listed.stderr
    assert any(line.split()[:1] == ["line"] for line in listed.stdout.splitlines())
    assert "line-distance" in listed.stdout
    sampled = run("spaces", "--space", "line", "--sample", "2", env=env)
    assert sampled.returncode == 0 and len(sampled.stdout.split()) == 2, sampled.stderr
    assert "line" not in narnas("list", "spaces").stdout.split()  # without the package: not there
    (dist / "entry_points.txt").write_text("[narnas.plugins]\nline = no_such_module\n")
    broken = narnas("list", "spaces", **env)
    assert broken.returncode == 2 and broken.stderr.startswith(
        "error: cannot import plugin 'line' (no_such_module) of line-plugin: No module named 'no_such_module'")


def test_a_refused_export_leaves_no_folder(tmp_path):
    weights = tmp_path / "other.pt"
    weights.write_bytes(b"not a checkpoint")
    out = tmp_path / "new" / "export"
    done = run("search.export", "--space", "darts", "--arch", "darts_v2", "--weights", str(weights), "--out", str(out))
    assert done.returncode == 2 and "is not a PyTorch checkpoint" in done.stderr, done.stderr
    assert not (tmp_path / "new").exists()
