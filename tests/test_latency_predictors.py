"""NAR-Former's whole-network encoding, the latency predictors and the latency bench."""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch.nn as nn

from predictor.errors import PredictorError
from latency.encoding import (CODE, RAW_FEATURES, TOKEN_WIDTH, compact, gnn_batch, narformer_tokens, stack_tokens,
                                       static_matrix)
from latency.graph import OP_VOCAB, module_graph, op_names
from latency.predictors import get_latency_predictor
from predictor.tokenizer import sincos_code

ROOT = Path(__file__).resolve().parents[1]


def _small():
    return nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 16 * 16, 10))


def _slot(tokens, node, slot):
    return tokens[0, node, slot * CODE:(slot + 1) * CODE]


def test_layer_token_layout_for_a_known_conv():
    g = module_graph(_small(), (1, 3, 32, 32))
    assert op_names(g) == ["input", "Conv", "Relu", "Flatten", "Gemm", "output"]
    tokens, mask, sizes, _ = narformer_tokens([compact(g)])
    assert tokens.shape == (1, 7, TOKEN_WIDTH) and TOKEN_WIDTH == 480
    assert mask[0].all() and sizes[0] == 6
    code = lambda v: sincos_code(np.asarray(v, dtype=float), CODE // 2 // len(v)).reshape(-1)  # noqa: E731
    conv = 1
    np.testing.assert_allclose(_slot(tokens, conv, 0), code([OP_VOCAB.index("Conv")]), atol=1e-6)
    np.testing.assert_allclose(_slot(tokens, conv, 1), code([1]), atol=1e-6)  # own position
    np.testing.assert_allclose(_slot(tokens, conv, 2), code([0]), atol=1e-6)  # its source: the input
    np.testing.assert_allclose(_slot(tokens, conv, 3), code([3, 3]), atol=1e-6)  # kernel h, w: 16 numbers each
    np.testing.assert_allclose(_slot(tokens, conv, 4), code([2, 2]), atol=1e-6)  # stride
    np.testing.assert_allclose(_slot(tokens, conv, 5), code([1, 1, 1, 1]), atol=1e-6)  # padding: 8 each
    np.testing.assert_allclose(_slot(tokens, conv, 7), code([0]), atol=1e-6)  # groups 1 -> log2 = 0
    np.testing.assert_allclose(_slot(tokens, conv, 8), code([1]), atol=1e-6)  # bias
    assert not _slot(tokens, conv, 9).any() and not _slot(tokens, conv, 10).any()  # no perm, no output padding
    np.testing.assert_allclose(_slot(tokens, conv, 12), code([3]), atol=1e-6)  # 8 channels, log2
    np.testing.assert_allclose(_slot(tokens, conv, 13), code([4]), atol=1e-6)  # height 16, log2
    relu, flatten = 2, 3
    assert not tokens[0, relu, 3 * CODE:11 * CODE].any()  # an activation has no window attributes
    assert _slot(tokens, flatten, 12).any() and not _slot(tokens, flatten, 13).any()  # [1, 2048]: no height
    np.testing.assert_allclose(tokens[0, 6], np.tile(sincos_code(np.array(1e5), CODE // 2), 15), atol=1e-6)
    # cost codes: the same 15 codes, then the layer's MACs and memory access (log2)
    with_costs = narformer_tokens([compact(g)], cost_codes=True)[0]
    assert with_costs.shape == (1, 7, 544)
    np.testing.assert_array_equal(with_costs[0, :6, :TOKEN_WIDTH], tokens[0, :6])
    macs = 8 * 16 * 16 * 3 * 3 * 3  # out channels x out pixels x (in channels x kernel)
    np.testing.assert_allclose(_slot(with_costs, conv, 15), code([np.log2(macs)]), atol=1e-5)
    assert not _slot(with_costs, relu, 15).any() and _slot(with_costs, relu, 16).any()  # no MACs, some memory
    # plain values after the codes: log2(1 + x) / 8 of each feature but the permutation
    plain = narformer_tokens([compact(g)], cost_codes=True, raw_values=True)[0]
    assert plain.shape == (1, 7, 544 + len(RAW_FEATURES))
    np.testing.assert_array_equal(plain[0, :6, :544], with_costs[0, :6])
    raw = dict(zip(RAW_FEATURES, plain[0, conv, 544:]))
    assert raw["out_channels"] == pytest.approx(np.log2(9) / 8) and raw["macs"] == pytest.approx(np.log2(1 + macs) / 8)
    assert not plain[0, 6, 544:].any()  # the end token has no values


def test_padding_and_the_source_sum_in_a_batch():
    class Residual(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(4, 4, 1)

        def forward(self, x):
            return x + self.conv(x)

    big, small = compact(module_graph(_small(), (1, 3, 32, 32))), compact(module_graph(Residual(), (1, 4, 8, 8)))
    tokens, mask, sizes, _ = narformer_tokens([big, small])
    assert list(sizes) == [6, 4] and mask[1].sum() == 5 and not tokens[1, 5:].any()
    add = 2  # input, Conv, Add, output: the Add reads the input (0) and the conv (1)
    expected = sincos_code(np.array(0.0), 16) + sincos_code(np.array(1.0), 16)
    np.testing.assert_allclose(tokens[1, add, 2 * CODE:3 * CODE], expected, atol=1e-5)


def test_per_graph_tokens_stack_to_the_batched_layout():
    graphs, _ = _toy_dataset(5)
    tokens, mask, sizes, _ = narformer_tokens(graphs)
    stacked, stacked_mask, stacked_sizes = stack_tokens([narformer_tokens([g])[0][0] for g in graphs])
    np.testing.assert_array_equal(stacked_sizes, sizes)
    np.testing.assert_array_equal(stacked_mask, mask)
    np.testing.assert_allclose(stacked, tokens, atol=1e-6)


def test_gnn_batch_is_one_disjoint_graph():
    graphs, _ = _toy_dataset(3)
    features, edges, graph = gnn_batch(graphs)
    sizes = [g.num_nodes for g in graphs]
    assert len(features) == sum(sizes) and list(np.bincount(graph)) == sizes
    assert edges.shape[1] == sum(len(g.sources[0]) for g in graphs)
    # the second network's edges are its own, shifted by the first's node count
    second = edges[:, len(graphs[0].sources[0]):len(graphs[0].sources[0]) + len(graphs[1].sources[0])]
    np.testing.assert_array_equal(second, np.stack(graphs[1].sources) + sizes[0])


@pytest.mark.parametrize("name,config", [("gnn", {}), ("narformer", {}), ("narformer", {"cost_codes": True, "raw_values": True}),
                                         ("narformer", {"raw_values": True, "sum_readout": True}),
                                         ("narformer", {"raw_values": True, "pool": "layer_sum"})])
def test_a_prediction_does_not_depend_on_its_batch(name, config):
    graphs, y = _toy_dataset(12)
    p = get_latency_predictor(name, epochs=2, batch_size=4, **config).fit(graphs, y)
    together = p.predict(graphs)
    alone = np.array([p.predict([g])[0] for g in graphs])
    np.testing.assert_allclose(alone, together, rtol=1e-4)


def test_static_features_are_log_scaled():
    g = compact(module_graph(_small(), (2, 3, 32, 32)))
    s = static_matrix([g])[0]
    assert s[0] == 2 and s[1] == pytest.approx(np.log10(1 + g.static[1]))


def _toy_dataset(n=48, seed=0):
    """Networks whose latency is (by construction) a known function of their size."""
    rng = np.random.default_rng(seed)
    graphs, y = [], []
    for _ in range(n):
        width, depth = int(rng.integers(4, 32)), int(rng.integers(1, 4))
        layers = [nn.Conv2d(3, width, 3, padding=1), nn.ReLU()]
        for _ in range(depth):
            layers += [nn.Conv2d(width, width, 3, padding=1), nn.ReLU()]
        g = compact(module_graph(nn.Sequential(*layers), (1, 3, 16, 16)))
        graphs.append(g)
        y.append(0.05 + g.static[2] / 2e6)  # latency proportional to MACs plus overhead
    return graphs, np.array(y)


@pytest.mark.parametrize("name,config", [("flops", {}), ("gnn", {"epochs": 60}),
                                         ("narformer", {"epochs": 40, "d_model": 32, "ffn": 64, "heads": 2})])
def test_predictors_learn_latency_that_follows_size(name, config):
    graphs, y = _toy_dataset()
    p = get_latency_predictor(name, **config).fit(graphs[:36], y[:36])
    pred = p.predict(graphs[36:])
    assert pred.shape == (12,) and np.all(pred > 0)
    rel = np.abs(pred - y[36:]) / y[36:]
    assert np.median(rel) < 0.25, (name, rel)
    if name != "flops":  # a fitted neural predictor saves and loads to the same predictions
        q = get_latency_predictor(name, **config)
        q.load_state_dict(p.state_dict())
        np.testing.assert_allclose(q.predict(graphs[36:]), pred, rtol=1e-5)


def test_unknown_predictor_and_bad_latencies():
    with pytest.raises(PredictorError, match="valid: flops, gnn, lut, narformer"):
        get_latency_predictor("xgboost")
    graphs, y = _toy_dataset(4)
    with pytest.raises(PredictorError, match="positive"):
        get_latency_predictor("flops").fit(graphs, -y)
    with pytest.raises(PredictorError, match="unknown"):
        get_latency_predictor("gnn", hiden=3)


def test_bench_cli_on_a_small_built_dataset(tmp_path):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    out = tmp_path / "lat"
    build = subprocess.run([sys.executable, "-m", "latency", "build", "--out", str(out),
                            "--families", "nb201,squeezenet", "--per-family", "6", "--warmup", "1", "--repeats", "3",
                            "--min-seconds", "0", "--export-workers", "1"], cwd=ROOT, env=env, capture_output=True,
                           text=True)
    assert build.returncode == 0, build.stderr
    run = lambda *a: subprocess.run([sys.executable, "-m", "bench.latency", "--data", str(out), "--quiet",  # noqa: E731
                                     *a], cwd=ROOT, env=env, capture_output=True, text=True)
    res = run("--split", "family", "--test-family", "all", "--predictor", "gnn", "--set", "epochs=3",
              "--json", str(tmp_path / "r.json"))
    assert res.returncode == 0, res.stderr
    saved = json.loads((tmp_path / "r.json").read_text())
    assert set(saved["families"]) == {"nb201", "squeezenet"}
    for fam in saved["families"].values():
        assert fam["train_size"] == 6 and fam["test_size"] == 6
        assert {"mape", "rmse", "acc5", "acc10", "kendall_tau", "fit_seconds", "predictions_per_second"} <= set(fam)
        assert 0 <= fam["acc5"] <= fam["acc10"] <= 100 and fam["median_ratio"] > 0
    assert (out / "graphs.cache.pkl").exists()
    res = run("--split", "random", "--predictor", "flops")
    assert res.returncode == 0
    random_split = json.loads(res.stdout)
    assert random_split["test_size"] == 2  # 80% of 12 rounds to 10
    # FLOPs tell a SqueezeNet from an NB201 cell network: far better than the training mean
    assert random_split["mape"] < 0.5 * random_split["mean_baseline_mape"], random_split
    by_family = random_split["by_family"]  # the test networks' error per family
    assert sum(f["n"] for f in by_family.values()) == 2 and set(by_family) <= {"nb201", "squeezenet"}
    bad = run("--split", "family", "--test-family", "vgg", "--predictor", "flops")
    assert bad.returncode == 2 and "families: nb201, squeezenet" in bad.stderr


def test_layers_timed_alone_from_a_weightless_file(tmp_path):
    import torch

    from latency.dataset import strip_weights
    from latency.graph import module_to_onnx
    from latency.kernels import KERNELS, OVERHEAD_KEY, KernelTable, layer_models

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.a, self.b = nn.Conv2d(3, 8, 3, padding=1), nn.Conv2d(8, 8, 3, padding=1)

        def forward(self, x):
            x = torch.relu(self.a(x))
            x = torch.relu(self.b(x)) + x
            return x.reshape(x.shape[0], -1)  # a Reshape whose shape is an integer initializer

    model = strip_weights(module_to_onnx(Net(), (1, 3, 16, 16)))
    layers = list(layer_models(model))
    assert [build().graph.node[0].op_type for _, build in layers] == ["Conv", "Relu", "Conv", "Relu", "Add", "Reshape"]
    assert len({key for key, _ in layers}) == 5  # the two Relus on 8x16x16 are one layer signature
    table = KernelTable(tmp_path, repeats=3, min_seconds=0)
    total = table.network_ms(model)
    assert table.timed == 5 and 0 not in table.table.values()
    overhead = table.table[OVERHEAD_KEY]  # one call's fixed cost, measured once, taken off every layer
    assert 0 < overhead < min(ms for key, ms in table.table.items() if key != OVERHEAD_KEY) * 1.5
    per_layer = [table.table[key] for key, _ in layers]
    assert total == pytest.approx(sum(max(ms - overhead, 0.0) for ms in per_layer))
    again = KernelTable(tmp_path, repeats=3, min_seconds=0)
    assert again.network_ms(model) == pytest.approx(total) and again.timed == 0
    assert len((tmp_path / KERNELS).read_text().splitlines()) == 6  # 5 layers and the overhead


def test_lut_predictor_scales_the_layer_sums():
    graphs, _ = _toy_dataset(6)
    sums = np.array([1.0, 2.0, 4.0, 8.0, 3.0, 5.0])
    p = get_latency_predictor("lut").fit(graphs[:4], 1.5 * sums[:4], kernel_ms=sums[:4])
    np.testing.assert_allclose(p.predict(graphs[4:], kernel_ms=sums[4:]), [4.5, 7.5])
    with pytest.raises(PredictorError, match="timed alone"):
        p.predict(graphs[4:])


def test_sum_readout_gives_the_head_the_layers_summed_states():
    import torch
    from latency.predictors import NARFormerLatencyConfig
    from predictor.narformer import NARFormerNet
    cfg = NARFormerLatencyConfig(d_model=8, heads=2, ffn=16, depth=1)
    net = NARFormerNet(cfg, token_width=12, num_static=0, squash=False, depth_width=4, sum_readout=True).eval()
    assert net.head.in_features == 16  # fused token + summed states
    seen = {}
    net.head.register_forward_hook(lambda m, inp, out: seen.update(x=inp[0]))
    tokens, depth = torch.randn(1, 5, 12), torch.randn(1, 4)
    padded = torch.cat([tokens, torch.zeros(1, 3, 12)], dim=1)
    mask = torch.tensor([[True] * 5 + [False] * 3])
    with torch.no_grad():
        a = net(tokens, torch.ones(1, 5, dtype=torch.bool), depth)
        sum_a = seen["x"][:, 8:].clone()
        b = net(padded, mask, depth)
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)  # padding adds nothing to the sum
    torch.testing.assert_close(seen["x"][:, 8:], sum_a, rtol=1e-4, atol=1e-5)
    assert sum_a.abs().sum() > 0


def test_layer_sum_is_the_log_of_the_layers_summed_latencies():
    import torch
    from latency.predictors import NARFormerLatencyConfig
    from predictor.narformer import NARFormerNet
    cfg = NARFormerLatencyConfig(d_model=8, heads=2, ffn=16, depth=1, pool="layer_sum")
    scale = 1.7
    net = NARFormerNet(cfg, token_width=12, num_static=3, squash=False, depth_width=4, layer_sum_scale=scale).eval()
    terms = {}
    net.layer_head.register_forward_hook(lambda m, inp, out: terms.update(t=out.squeeze(-1).clone()))
    tokens, depth, static = torch.randn(1, 5, 12), torch.randn(1, 4), torch.randn(1, 3)
    padded = torch.cat([tokens, torch.zeros(1, 3, 12)], dim=1)
    with torch.no_grad():
        a = net(tokens, torch.ones(1, 5, dtype=torch.bool), depth, static=static)
        t = terms["t"]
        b = net(padded, torch.tensor([[True] * 5 + [False] * 3]), depth, static=static)
    assert t.shape == (1, 5)  # one term per layer token (the depth token left out)
    expected = torch.log(torch.exp(scale * t).sum()) / scale
    torch.testing.assert_close(a, expected.reshape(1), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)  # padding adds no layer
    assert net.head is None  # no fused-token head to train
    with pytest.raises(PredictorError, match="layer_sum"):
        NARFormerNet(cfg, token_width=12, num_static=3, squash=False, depth_width=4)
    with pytest.raises(PredictorError, match="sum_readout"):
        get_latency_predictor("narformer", pool="layer_sum", sum_readout=True)


def test_a_saved_layer_sum_predictor_predicts_the_same(tmp_path):
    from latency.predictors import load_latency_predictor, save_latency_predictor
    graphs, y = _toy_dataset(10)
    fitted = get_latency_predictor("narformer", epochs=2, batch_size=4, pool="layer_sum").fit(graphs, y)
    save_latency_predictor(fitted, tmp_path / "lat.pt")
    loaded = load_latency_predictor(tmp_path / "lat.pt")
    assert float(loaded.models[0].layer_sum_scale) == pytest.approx(fitted.y_std)
    np.testing.assert_allclose(loaded.predict(graphs), fitted.predict(graphs), rtol=1e-5)


def test_an_ensemble_averages_its_members_log_latencies(tmp_path):
    from latency.predictors import load_latency_predictor, save_latency_predictor
    graphs, y = _toy_dataset(10)
    single = get_latency_predictor("gnn", epochs=2, batch_size=4, seed=3).fit(graphs, y)
    pair = get_latency_predictor("gnn", epochs=2, batch_size=4, seed=3, ensemble=2).fit(graphs, y)
    assert len(pair.models) == 2 and {h["member"] for h in pair.history} == {0, 1}
    np.testing.assert_allclose(pair.models[0](**pair._to(pair.inputs(graphs), "cpu")).detach().numpy(),
                               single.models[0](**single._to(single.inputs(graphs), "cpu")).detach().numpy(),
                               rtol=1e-5)  # member 0 is the single model
    second = np.exp(pair.models[1](**pair._to(pair.inputs(graphs), "cpu")).detach().double().numpy() * pair.y_std
                    + pair.y_mean)
    assert not np.allclose(second, single.predict(graphs))  # the other member has its own seed
    np.testing.assert_allclose(pair.predict(graphs), np.sqrt(single.predict(graphs) * second), rtol=1e-4)
    save_latency_predictor(pair, tmp_path / "pair.pt")
    np.testing.assert_allclose(load_latency_predictor(tmp_path / "pair.pt").predict(graphs), pair.predict(graphs),
                               rtol=1e-5)
    with pytest.raises(PredictorError, match="ensemble"):
        get_latency_predictor("gnn", ensemble=0)


def test_layer_count_joins_the_static_features():
    graphs, y = _toy_dataset(8)
    p = get_latency_predictor("narformer", epochs=1, batch_size=4, d_model=16, ffn=32, heads=2, layer_count=True)
    p.fit(graphs, y)
    plain = static_matrix(graphs)
    with_count = p._static_raw(graphs)
    assert with_count.shape == (8, plain.shape[1] + 1)
    np.testing.assert_array_equal(with_count[:, :-1], plain)
    np.testing.assert_allclose(with_count[:, -1], np.log10([g.num_nodes for g in graphs]))
    assert len(p.static_mean) == plain.shape[1] + 1 and np.all(p.predict(graphs) > 0)
