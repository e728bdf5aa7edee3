"""Zero-cost proxies: each definition checked against a closed form or an independent
computation, their ranking quality on NB201 against chance, the cache, and the command."""
import json
import math
import os
import subprocess
import sys

import numpy as np
import pytest
import torch
from scipy import stats
from torch import nn

import spaces
from zerocost import proxies
from zerocost.batch import draw
from zerocost.errors import ZeroCostError
from zerocost.store import ProxyStore


def one(name, model, x, y):
    return proxies.measure(model, x, y, proxies.resolve([name]))[name]


@pytest.fixture
def linear():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 4))
    x, y = torch.randn(5, 6), torch.tensor([0, 1, 2, 3, 0])
    return model, x, y


def test_gradient_proxies_match_their_formulas(linear):
    model, x, y = linear
    w = model[0].weight
    (g,) = torch.autograd.grad(nn.functional.cross_entropy(model(x), y), [w])
    w = w.detach()
    assert one("grad_norm", model, x, y) == pytest.approx(float(g.norm()), rel=1e-5)
    assert one("snip", model, x, y) == pytest.approx(float((g * w).abs().sum()), rel=1e-5)
    assert one("plain", model, x, y) == pytest.approx(float((g * w).sum()), rel=1e-5)
    assert one("l2_norm", model, x, y) == pytest.approx(float(w.norm()), rel=1e-5)
    assert one("params", model, x, y) == 6 * 4 + 4
    assert one("flops", model, x, y) == 6 * 4  # one image's multiply-accumulates


def test_grasp_is_minus_w_times_the_hessian_gradient_product():
    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 3))
    x, y = torch.randn(7, 5), torch.tensor([0, 1, 2, 0, 1, 2, 0])
    weights = [model[0].weight, model[2].weight]

    def loss_of(w0, w2):
        h = torch.tanh(x @ w0.T + model[0].bias)
        return nn.functional.cross_entropy(h @ w2.T + model[2].bias, y)
    g = torch.autograd.grad(loss_of(*weights), weights)
    _, hg = torch.autograd.functional.hvp(loss_of, tuple(w.detach() for w in weights), tuple(g))
    expected = -sum(float((w.detach() * h).sum()) for w, h in zip(weights, hg))
    assert one("grasp", model, x, y) == pytest.approx(expected, rel=1e-4)


def test_synflow_of_one_linear_layer_is_its_absolute_weight_sum(linear):
    model, x, y = linear
    # R = sum(|W| 1 + |b|): w * dR/dw = |w| for every weight (the bias is not a prunable weight)
    assert one("synflow", model, x, y) == pytest.approx(float(model[0].weight.detach().double().abs().sum()), rel=1e-9)


def test_synflow_ignores_batch_norm():
    torch.manual_seed(2)
    plain = nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.LazyLinear(2))
    plain(torch.zeros(1, 3, 6, 6))
    with_bn = nn.Sequential(plain[0], nn.BatchNorm2d(4), *plain[1:])
    x, y = torch.randn(4, 3, 6, 6), torch.tensor([0, 1, 0, 1])
    assert one("synflow", with_bn, x, y) == pytest.approx(one("synflow", plain, x, y), rel=1e-12)


def test_jacobian_proxies_of_a_linear_network():
    # A linear network's input Jacobian is the same for every image: correlations all 1, so the
    # correlation matrix has one eigenvalue n and n - 1 zeros.
    torch.manual_seed(3)
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 3))
    x, y = torch.randn(4, 3, 2, 2), torch.tensor([0, 0, 1, 1])
    k = 1e-5
    expected = -((np.log(4 + k) + 1 / (4 + k)) + 3 * (np.log(k) + 1 / k))
    assert one("jacov", model, x, y) == pytest.approx(expected, rel=1e-6)
    # per class: two images, a 2x2 matrix of ones: |4 log(1 + k)|, two classes
    assert one("epe_nas", model, x, y) == pytest.approx(2 * 4 * math.log(1 + k), rel=1e-4)


def test_jacobian_proxies_are_nan_where_the_output_ignores_the_input():
    class Constant(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(1, 2)

        def forward(self, x):
            return self.fc(torch.ones(len(x), 1)) + 0 * x.sum()
    x, y = torch.randn(4, 3), torch.tensor([0, 1, 0, 1])
    assert math.isnan(one("jacov", Constant(), x, y))
    assert math.isnan(one("epe_nas", Constant(), x, y))


def test_naswot_is_the_log_determinant_of_the_agreement_kernel():
    torch.manual_seed(4)
    model = nn.Sequential(nn.Linear(5, 9), nn.ReLU(), nn.Linear(9, 2))
    x, y = torch.randn(6, 5), torch.zeros(6, dtype=torch.int64)
    codes = (model[1](model[0](x)) > 0).double()
    kernel = codes @ codes.T + (1 - codes) @ (1 - codes).T
    assert one("naswot", model, x, y) == pytest.approx(float(torch.linalg.slogdet(kernel)[1]), rel=1e-9)


def test_fisher_sums_half_the_squared_channel_saliency():
    torch.manual_seed(5)
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 4 * 4, 2))
    x, y = torch.randn(3, 3, 6, 6), torch.tensor([0, 1, 1])
    z = model[0](x)
    out = model[3](model[2](model[1](z)))
    gz, gout = torch.autograd.grad(nn.functional.cross_entropy(out, y), [z, out])
    z, out = z.detach(), out.detach()
    expected = float((z * gz).sum((2, 3)).pow(2).mean(0).mul(0.5).sum()) + float((out * gout).pow(2).mean(0).mul(0.5).sum())
    assert one("fisher", model, x, y) == pytest.approx(expected, rel=1e-4)


def test_every_proxy_has_a_source_and_unknown_names_list_the_valid_ones():
    names = proxies.names()
    assert {"synflow", "snip", "grasp", "fisher", "grad_norm", "jacov", "naswot", "epe_nas", "plain", "l2_norm",
            "params", "flops"} <= set(names)
    assert all(p.source for p in proxies.resolve(None))
    with pytest.raises(ZeroCostError, match="unknown zero-cost proxy 'synflw'; valid: .*synflow"):
        proxies.resolve(["synflw"])


@pytest.fixture(scope="module")
def nb201_store(cifar_dir, tmp_path_factory):
    space = spaces.get_space("nb201")
    cache = tmp_path_factory.mktemp("zc") / "proxies.jsonl"
    return ProxyStore(space, draw(space, 16, 0, cifar_dir), 0, cache)


def test_proxies_rank_nb201_cells_far_better_than_chance(nb201_store):
    space = nb201_store.space
    bench = spaces.get_benchmark(space)
    rows = np.random.default_rng(0).choice(len(bench), 30, replace=False)
    archs = [bench.arch(int(r)) for r in rows]
    truth = bench.column(bench.search_metric())[rows]
    values = nb201_store.values(archs, ["naswot", "synflow"])
    for j in range(2):
        rho = stats.spearmanr(np.nan_to_num(values[:, j], nan=-1e9), truth).statistic
        # chance: |rho| < 0.36 for 30 archs 19 times in 20; the 300-arch figures are 0.72-0.74
        assert rho > 0.45


def test_the_cache_computes_each_arch_once_and_keeps_minibatches_apart(nb201_store, cifar_dir, monkeypatch):
    space = nb201_store.space
    rng = np.random.default_rng(7)
    archs = [space.sample(rng), space.sample(rng)]
    first = nb201_store.values(archs, ["synflow", "params"])
    calls = []
    real = proxies.measure
    monkeypatch.setattr("zerocost.store.measure", lambda *a: calls.append(1) or real(*a))
    again = ProxyStore(space, nb201_store.batch, 0, nb201_store.cache)
    assert np.array_equal(again.values(archs, ["synflow", "params"]), first) and not calls
    again.values(archs, ["naswot"])  # a proxy not cached yet: computed, for these two archs only
    assert len(calls) == 2
    other_seed = ProxyStore(space, draw(space, 16, 1, cifar_dir), 1, nb201_store.cache)
    assert not other_seed.known  # another minibatch and initialisation: nothing reused
    # a torn last line (a kill mid-write) is dropped, the rest kept
    with open(nb201_store.cache, "a") as f:
        f.write('{"key": "torn')
    assert ProxyStore(space, nb201_store.batch, 0, nb201_store.cache).known.keys() == again.known.keys()


def test_worker_processes_give_the_same_values_and_the_parent_caches_them(nb201_store, tmp_path, monkeypatch):
    space = nb201_store.space
    archs = [space.sample(np.random.default_rng(20 + i)) for i in range(4)]
    chosen = ["synflow", "naswot", "snip", "grasp"]
    here = ProxyStore(space, nb201_store.batch, 0, tmp_path / "here.jsonl", workers=1).values(archs, chosen)
    monkeypatch.setattr("zerocost.store.MIN_PER_WORKER", 2)  # 4 networks are enough for 2 workers
    monkeypatch.setattr("zerocost.store.measure", lambda *a: pytest.fail("measured in the parent"))
    pooled = ProxyStore(space, nb201_store.batch, 0, tmp_path / "pool.jsonl", workers=2)
    # thread counts change float sums' order: grasp's cancelling sum moves by ~1e-3 of its value
    assert np.allclose(pooled.values(archs, chosen), here, rtol=1e-2, atol=0)
    lines = [json.loads(line) for line in (tmp_path / "pool.jsonl").read_text().splitlines()]
    assert sorted(line["key"] for line in lines) == sorted(str(space.key(a)) for a in archs)
    with pytest.raises(ZeroCostError, match="workers must be at least 1"):
        ProxyStore(space, nb201_store.batch, 0, None, workers=0)


def test_a_smaller_network_is_built_and_cached_apart(nb201_store, tmp_path):
    """``network`` overrides the build config (NB201 at 8 channels here; DARTS's search network
    the same way); its values never mix with the evaluation network's in a shared cache."""
    space, batch = nb201_store.space, nb201_store.batch
    arch = space.sample(np.random.default_rng(5))
    cache = tmp_path / "shared.jsonl"
    full = ProxyStore(space, batch, 0, cache).values([arch], ["params"])[0, 0]
    small = ProxyStore(space, batch, 0, cache, network={"channels": 8})
    assert not small.known  # the evaluation network's line is not the small one's
    assert small.values([arch], ["params"])[0, 0] < full / 3  # a quarter of the weights of the convolutions
    lines = [json.loads(line) for line in cache.read_text().splitlines()]
    assert [line.get("network") for line in lines] == [None, "channels=8"]
    assert ProxyStore(space, batch, 0, cache).known[lines[0]["key"]]["params"] == full
    with pytest.raises(Exception, match="unknown config key.*chanels"):
        ProxyStore(space, batch, 0, None, network={"chanels": 8})


def test_the_network_is_initialised_from_the_seed(nb201_store):
    arch = nb201_store.space.sample(np.random.default_rng(3))
    a, b = nb201_store.network(arch), nb201_store.network(arch)
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))


def run(*args):
    return subprocess.run([sys.executable, "-m", "zerocost", *args], capture_output=True, text=True, timeout=300,
                          env=os.environ)


def test_the_command_writes_a_table_that_it_reads_back(cifar_dir, tmp_path):
    out, cache = tmp_path / "p.csv", tmp_path / "c.jsonl"
    common = ["--space", "nb201", "--data-dir", str(cifar_dir), "--batch-size", "8", "--cache", str(cache), "--quiet"]
    done = run(*common, "--sample", "3", "--proxies", "synflow,params", "--out", str(out))
    assert done.returncode == 0, done.stderr
    header, *rows = out.read_text().splitlines()
    assert header == "arch,synflow,params" and len(rows) == 3
    again = run(*common, "--archs", str(out), "--proxies", "synflow")
    assert again.returncode == 0, again.stderr
    assert "3 archs, 0 to compute" in again.stderr
    lines = [json.loads(line) for line in again.stdout.splitlines()]
    assert [line["arch"] for line in lines] == [r.split(",")[0] for r in rows]


@pytest.mark.parametrize("args, message", [
    (["--proxies", "synflw"], "unknown zero-cost proxy 'synflw'; valid: "),
    (["--data-dir", "/nonexistent/cifar"], "CIFAR-10 folder /nonexistent/cifar (from --data-dir) does not exist"),
    (["--batch-size", "1"], "at least 2 images"),
    (["--workers", "0"], "workers must be at least 1, got 0"),
    (["--network", "chanels=8"], "the proxies' network (--network): unknown config key(s) chanels in nb201 build"),
    (["--cache", "FILE/c.jsonl"], "cannot write --cache folder FILE: "),
    (["--out", "FILE/t.csv"], "cannot write --out folder FILE: "),
    (["--cache", "."], "is a folder; give a file"),
    (["--sample", "0", "--archs", "/nonexistent/t.csv"], "not allowed with argument"),
])
def test_bad_input_is_one_line_and_exit_2(args, message, cifar_dir, tmp_path):
    base = ["--space", "nb201", "--sample", "2", "--data-dir", str(cifar_dir), "--cache", str(tmp_path / "c.jsonl")]
    (tmp_path / "file").write_text("a file where a folder is asked for")
    args = [a.replace("FILE", str(tmp_path / "file")) for a in args]
    message = message.replace("FILE", str(tmp_path / "file"))
    done = run(*base, *args)
    if "not allowed with argument" in message:  # argparse's own usage error
        assert done.returncode == 2 and message in done.stderr
        return
    assert done.returncode == 2 and message in done.stderr and len(done.stderr.strip().splitlines()) == 1, done.stderr


@pytest.mark.parametrize("name", ["nb101", "darts", "ofa_mbv3"])
def test_every_space_that_builds_networks_gets_its_proxies(name, cifar_dir, shared_data, tmp_path):
    space = spaces.get_space(name)
    data = shared_data / "imagenet_sample" if name == "ofa_mbv3" else cifar_dir
    batch = draw(space, 4, 0, data)
    assert batch.dataset == ("imagenet" if name == "ofa_mbv3" else "cifar10")
    store = ProxyStore(space, batch, 0, tmp_path / "c.jsonl")
    archs = [space.sample(np.random.default_rng(i)) for i in range(2)]
    values = store.values(archs, ["params", "synflow", "naswot", "jacov"])
    assert values.shape == (2, 4) and np.isfinite(values[:, :2]).all()
    assert values[0, 0] != values[1, 0] or values[0, 1] != values[1, 1]  # two networks, two sets of values


def test_building_a_network_leaves_the_callers_random_state_alone(nb201_store):
    torch.manual_seed(11)
    expected = torch.rand(3)
    torch.manual_seed(11)
    nb201_store.network(nb201_store.space.sample(np.random.default_rng(0)))
    assert torch.equal(torch.rand(3), expected)


def test_a_missing_table_of_archs_is_one_line(tmp_path):
    done = run("--space", "nb201", "--archs", str(tmp_path / "none.csv"), "--cache", str(tmp_path / "c.jsonl"))
    assert done.returncode == 2 and done.stderr.strip() == f"error: table {tmp_path / 'none.csv'} not found"


def test_the_benchmark_correlates_each_proxy_and_counts_what_it_computed(cifar_dir, tmp_path):
    """bench.zero_cost: a Spearman per proxy and params against the benchmark; a rerun with one
    more proxy computes it for every arch (each lacks it), a third run nothing."""
    from bench import zero_cost
    from spaces.table import read_rows

    def bench(names):
        out = tmp_path / f"{names}.json"
        zero_cost.main(["--space", "nb201", "--sample", "6", "--proxies", names, "--vote", "", "--batch-size", "8",
                        "--data-dir", str(cifar_dir), "--cache", str(tmp_path / "c.jsonl"), "--quiet",
                        "--json", str(out), "--table", str(tmp_path / "t.csv")])
        return json.loads(out.read_text())

    first = bench("synflow")
    assert first["archs"] == first["computed"] == 6 and set(first["proxies"]) == {"synflow", "params"}
    assert all(-1 <= v["spearman"] <= 1 for v in first["proxies"].values())
    assert bench("synflow,naswot")["computed"] == 6  # the cached synflow does not hide the missing naswot
    third = bench("synflow,naswot")
    assert third["computed"] == 0 and third["seconds_per_arch"] is None
    _, rows = read_rows(tmp_path / "t.csv")
    assert len(rows) == 6 and {"arch", "synflow", "naswot", "params", "val", "test"} <= set(rows[0][1])
