"""The Once-for-All MobileNetV3 space: archs, counts, networks, efficiency, the surrogate."""
import itertools
import json

import numpy as np
import pytest
import torch

import spaces
from spaces.ofa_mbv3 import LARGEST, SMALLEST, count_macs, count_params, make_divisible

DYNAST = "ofa_mbv3/ofa_mbv3w10_accuracy_dynast.csv.gz"


@pytest.fixture(scope="module")
def space():
    return spaces.get_space("ofa_mbv3")


@pytest.fixture(scope="module")
def space12():
    return spaces.get_space("ofa_mbv3", width_mult=1.2, resolutions=(160, 176, 192, 208, 224))


def test_blocks_a_stage_does_not_run_do_not_change_the_key(space):
    rng = np.random.default_rng(0)
    arch = space.sample(rng)
    obj = space.to_json(arch)
    other = dict(obj, ks=list(obj["ks"]), e=list(obj["e"]))
    for stage, depth in enumerate(obj["d"]):
        for block in range(stage * 4 + depth, stage * 4 + 4):  # blocks beyond the stage's depth
            other["ks"][block], other["e"][block] = 7, 6
    assert space.from_json(other) == arch and space.key(space.from_json(other)) == space.key(arch)
    # OFA's other spellings of the resolution are the same arch
    assert space.from_json(dict(obj, r=[obj["r"]])) == arch
    assert space.from_json({k: v for k, v in dict(obj, image_size=obj["r"]).items() if k != "r"}) == arch
    active = dict(obj, ks=list(obj["ks"]))
    active["ks"][0] = 3 if obj["ks"][0] != 3 else 5  # block 0 always runs
    assert space.key(space.from_json(active)) != space.key(arch)


def test_count_is_the_formula_and_matches_enumerating_one_stage(space):
    """One stage, enumerated: every (ks, e) of its 4 blocks and every depth, keyed by what runs."""
    stage = {(d, tuple(zip(ks[:d], e[:d])))
             for d in (2, 3, 4) for ks in itertools.product((3, 5, 7), repeat=4)
             for e in itertools.product((3, 4, 6), repeat=4)}
    assert len(stage) == 9 ** 2 + 9 ** 3 + 9 ** 4 == 7371
    assert space.count() == len(stage) ** 5 * 25  # 25 resolutions, 128..224 in steps of 4
    assert spaces.get_space("ofa_mbv3", resolutions=(160, 224)).count() == len(stage) ** 5 * 2


def test_sample_and_mutate_are_valid_different_and_near(space):
    rng = np.random.default_rng(1)
    changes = []
    for _ in range(300):
        arch = space.sample(rng)
        assert space.from_json(json.loads(json.dumps(space.to_json(arch)))) == arch
        child = space.mutate(arch, rng)
        assert space.key(child) != space.key(arch)
        assert space.from_json(space.to_json(child)) == child  # valid: every value in its choices
        changes.append(sum(a != b for a, b in zip(arch.ks + arch.e + arch.d, child.ks + child.e + child.d))
                       + (arch.r != child.r))
    # OFA's mutation redraws each of the 46 genes with p = 0.1 (and keeps some draws): a few genes
    assert 1 <= np.median(changes) <= 6, np.median(changes)
    resolutions = {space.sample(rng).r for _ in range(500)}
    assert resolutions == set(range(128, 225, 4))


@pytest.mark.parametrize("change, message", [
    (dict(ks=[3] * 19), "has 20 values in 'ks', got 19"),
    (dict(ks=[4] + [3] * 19), "ks value 4 is not one of 3, 5, 7"),
    (dict(d=[5, 2, 2, 2, 2]), "d value 5 is not one of 2, 3, 4"),
    (dict(e=[3] * 19 + [5]), "e value 5 is not one of 3, 4, 6"),
    (dict(r=130), "resolution 130 is not one of this space's (128..224 in steps of 4)"),
    (dict(r=None, d=None), "missing d, r"),
    (dict(depth=[2] * 5), "unknown depth"),
])
def test_malformed_archs_say_what_is_wrong(space, change, message):
    obj = dict(SMALLEST, **{k: v for k, v in change.items() if v is not None})
    obj = {k: v for k, v in obj.items() if change.get(k, 0) is not None}
    with pytest.raises(spaces.InvalidArchError, match=message.replace("(", r"\(").replace(")", r"\)")):
        space.from_json(obj)
    with pytest.raises(spaces.InvalidArchError, match="JSON dict"):
        space.from_json("{not json")


def _hooked_macs(model, size):
    total = [0]

    def hook(module, _, out):
        if isinstance(module, torch.nn.Conv2d):
            k = module.kernel_size[0] * module.kernel_size[1]
            total[0] += out[0].numel() * module.in_channels // module.groups * k
        elif isinstance(module, torch.nn.Linear):
            total[0] += module.in_features * module.out_features
    handles = [m.register_forward_hook(hook) for m in model.modules()]
    model.eval()
    with torch.inference_mode():
        model(torch.zeros(1, 3, size, size))
    for h in handles:
        h.remove()
    return total[0]


@pytest.mark.parametrize("width", [1.0, 1.2])
def test_networks_built_through_ofa_match_the_analytic_counts(width):
    space = spaces.get_space("ofa_mbv3", width_mult=width)
    rng = np.random.default_rng(2)
    for arch in [space.sample(rng), space.from_json(LARGEST), space.from_json(SMALLEST)]:
        model = space.build_model(arch)
        assert sum(p.numel() for p in model.parameters()) == count_params(arch, width) == space.params(arch)
        real = _hooked_macs(model, arch.r)
        assert abs(real - count_macs(arch, width)) <= 0.01 * real  # in fact equal
    assert model(torch.zeros(2, 3, 128, 128)).shape == (2, 1000)


def test_analytic_counts_equal_an_outside_table(space, shared_data):
    """DyNAS-T measured params and MACs of 1,458 subnets with OFA's own tools."""
    bench = spaces.get_benchmark("ofa_mbv3", shared_data / DYNAST)
    archs = list(bench.archs())
    assert len(archs) == 1336  # 1,458 rows, duplicates removed
    assert [space.params(a) for a in archs] == bench.column("params").astype(int).tolist()
    assert [space.macs(a) for a in archs] == bench.column("macs").astype(int).tolist()


def test_note10_latency_of_a_hand_worked_subnet(space12):
    """The smallest subnet at 160 px on the w1.2 network, its layers written out by hand."""
    import yaml
    from spaces.ofa_mbv3.latency import TABLES
    arch = space12.from_json(dict(SMALLEST, r=160))
    table = yaml.safe_load((TABLES / "note10_160_lookup_table.yaml").read_text())
    # w1.2 widths: stem 24, first block 24, stages 32 48 96 136 192, final 1152, head 1536;
    # expanded channels = make_divisible(in * 3)
    keys = ["Conv-input:160x160x3-output:80x80x24",
            "expanded_conv-input:80x80x24-output:80x80x24-expand:24-kernel:3-stride:1-idskip:1-se:0-hs:0",
            "expanded_conv-input:80x80x24-output:40x40x32-expand:72-kernel:3-stride:2-idskip:0-se:0-hs:0",
            "expanded_conv-input:40x40x32-output:40x40x32-expand:96-kernel:3-stride:1-idskip:1-se:0-hs:0",
            "expanded_conv-input:40x40x32-output:20x20x48-expand:96-kernel:3-stride:2-idskip:0-se:1-hs:0",
            "expanded_conv-input:20x20x48-output:20x20x48-expand:144-kernel:3-stride:1-idskip:1-se:1-hs:0",
            "expanded_conv-input:20x20x48-output:10x10x96-expand:144-kernel:3-stride:2-idskip:0-se:0-hs:1",
            "expanded_conv-input:10x10x96-output:10x10x96-expand:288-kernel:3-stride:1-idskip:1-se:0-hs:1",
            "expanded_conv-input:10x10x96-output:10x10x136-expand:288-kernel:3-stride:1-idskip:0-se:1-hs:1",
            "expanded_conv-input:10x10x136-output:10x10x136-expand:408-kernel:3-stride:1-idskip:1-se:1-hs:1",
            "expanded_conv-input:10x10x136-output:5x5x192-expand:408-kernel:3-stride:2-idskip:0-se:1-hs:1",
            "expanded_conv-input:5x5x192-output:5x5x192-expand:576-kernel:3-stride:1-idskip:1-se:1-hs:1",
            "Conv_1-input:5x5x192-output:5x5x1152", "AvgPool2D-input:5x5x1152-output:1x1x1152",
            "Conv_2-input:1x1x1152-output:1x1x1536", "Logits-input:1x1x1536-output:1000"]
    assert make_divisible(24 * 3) == 72 and make_divisible(136 * 3) == 408
    assert space12.latency_note10(arch) == pytest.approx(sum(table[k]["mean"] for k in keys), rel=1e-12)


def test_note10_latency_needs_the_tables_network(space):
    with pytest.raises(spaces.SpacesError, match="width_mult 1.2 and resolutions among 160, 176"):
        space.check_measure("latency_note10")
    assert spaces.get_space("ofa_mbv3", width_mult=1.2, resolutions=(160, 224)).check_measure("latency_note10") is None


def test_surrogate_matches_ofas_reference_and_ranks_the_measured_table(space, shared_data):
    from ofa.tutorial.accuracy_predictor import AccuracyPredictor
    from predictor.metrics import kendall_tau
    from spaces.ofa_mbv3.surrogate import WEIGHTS, predict_top1
    rng = np.random.default_rng(3)
    archs = [space.sample(rng) for _ in range(200)]
    reference = AccuracyPredictor(pretrained=False, device="cpu")
    reference.model.load_state_dict(torch.load(WEIGHTS, map_location="cpu", weights_only=True))
    want = 100 * reference.predict_accuracy([dict(space.to_json(a), r=[a.r]) for a in archs]).numpy().ravel()
    np.testing.assert_allclose(predict_top1(archs), want, atol=1e-4)
    bench = spaces.get_benchmark("ofa_mbv3", shared_data / DYNAST)
    tau = kendall_tau(predict_top1(list(bench.archs())), bench.column("top1_imagenet"))
    assert abs(tau - 0.865) < 0.01, tau  # the data README's figure, over the 1,458 rows


def test_graph_has_a_node_per_layer_with_attributes(space):
    arch = space.from_json(dict(SMALLEST, r=192))
    graph = space.to_graph(arch)
    n = 1 + 2 + 10 + 3 + 1  # input, stem, first block, 2 blocks x 5 stages, head, output
    assert graph.num_nodes == n and graph.node_features.shape == (n, len(graph.node_feature_names))
    assert dict(graph.graph_features)["resolution"] == 192.0
    names = [graph.vocab[o] for o in graph.ops]
    assert names[:3] == ["input", "stem", "first_block"] and names[-4:] == ["final_expand", "feature_mix",
                                                                            "classifier", "output"]
    assert names[3] == "mb_k3_e3"
    # the chain, plus one residual edge around each stride-1 block whose channels stay
    assert all(graph.adjacency[i, i + 1] for i in range(n - 1))
    assert int(graph.adjacency.sum()) == (n - 1) + 1 + 5  # first block + the second block of each stage
    column = graph.node_feature_names.index("feature_size")
    assert graph.node_features[1, column] == 192 and graph.node_features[-2, column] == 1
    assert space.max_graph_nodes >= space.to_graph(space.from_json(LARGEST)).num_nodes == 27


def test_a_constrained_surrogate_search_never_sends_an_arch_over_the_limit(space):
    from search.evaluators.ofa_surrogate import OFASurrogateEvaluator
    from search.middleware import make_strategy, measure_functions
    from search.strategies import StrategyConfig
    evaluator = OFASurrogateEvaluator(space)
    for name, limit in (("macs", 250e6), ("params", 4.5e6)):
        config = StrategyConfig(name="rea", budget=60, constraints={name: limit})
        strategy = make_strategy(space, config, seed=4, measures=measure_functions(space, config.constraints,
                                                                                   evaluator))
        sent = []
        while True:
            batch = strategy.ask()
            if not batch:
                break
            for arch in batch:
                result = evaluator.evaluate(space.to_json(arch))
                sent.append(result[name])
                strategy.tell(space.key(arch), result["val"], result["test"])
        assert len(sent) == 60 and max(sent) <= limit
        assert strategy.state_dict()["middleware"]["constraints"]["rejected"][name] > 0


def test_a_constrained_ofa_search_end_to_end_resumes_to_the_same_result(tmp_path):
    """search.run on the surrogate at width 1.2 under a Note10 latency limit; killed during its
    run and resumed, it gives the run it would have given, every arch within the limit."""
    import subprocess
    import sys
    from test_search_run import journal, kill_when, summary
    args = ["--space", "ofa_mbv3", "--space-set", "width_mult=1.2", "--space-set", "resolutions=160,176,192,208,224",
            "--constraint", "latency_note10<=22", "--budget", "40", "--batch", "10", "--seed", "3",
            "--predictor", "mlp", "--predictor-set", "epochs=30", "--candidates", "200", "--quiet", "--no-plots"]
    whole = subprocess.run([sys.executable, "-m", "search.run", *args, "--out", str(tmp_path / "whole")],
                           capture_output=True, text=True, timeout=600)
    assert whole.returncode == 0, whole.stderr
    entries = journal(tmp_path / "whole")
    assert len(entries) == 40 and max(e["latency_note10"] for e in entries) <= 22
    assert all(e["test"] is None and e["macs"] > 0 for e in entries)
    config = json.loads((tmp_path / "whole" / "config.json").read_text())
    assert config["config"]["space"] == {"name": "ofa_mbv3", "options": {"width_mult": 1.2,
                                                                        "resolutions": [160, 176, 192, 208, 224]}}
    assert config["evaluator"]["surrogate"] is True and summary(tmp_path / "whole")["metric"] == "ofa_surrogate_top1"
    pareto = json.loads((tmp_path / "whole" / "pareto.json").read_text())
    front = pareto["front"]
    assert pareto["minimise"] == ["latency_note10"] and pareto["limits"] == {"latency_note10": 22}
    for r in front:  # no evaluated arch is at least as good on both and better on one
        assert not any(e["val"] >= r["val"] and e["latency_note10"] <= r["latency_note10"]
                       and (e["val"] > r["val"] or e["latency_note10"] < r["latency_note10"]) for e in entries)
    best = summary(tmp_path / "whole")["best"]
    assert best["key"] == front[-1]["key"] and best["latency_note10"] <= 22
    assert summary(tmp_path / "whole")["feasible"] == 40
    out = tmp_path / "killed"
    assert kill_when(args + ["--out", str(out)], out, 15)  # killed after its second round
    done = subprocess.run([sys.executable, "-m", "search.run", "--resume", str(out), "--quiet"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert [e["key"] for e in journal(out)] == [e["key"] for e in entries]
    assert summary(out)["best"] == summary(tmp_path / "whole")["best"]


def test_narformer_codes_layers_and_the_resolution_on_this_space(space):
    """NAR-Former's supplement (2.4): per layer the codes of kernel, expand ratio and own position;
    the resolution coded where a cell's depth is."""
    import predictor
    from predictor.graphs import batch_graphs
    from predictor.tokenizer import sincos_code, tokenize_layers
    arch = space.from_json(dict(SMALLEST, r=176))
    graph = space.to_graph(arch)
    batch = batch_graphs([graph], 30)
    tokens, mask = tokenize_layers(batch, num_freqs=4)
    assert tokens.shape == (1, 31, 24) and mask[0].sum() == graph.num_nodes + 1
    kernel = graph.node_features[:, graph.node_feature_names.index("kernel")]
    expand = graph.node_features[:, graph.node_feature_names.index("expand_ratio")]
    node = 3  # the first block of stage 1: kernel 3, expand 3
    np.testing.assert_allclose(tokens[0, node, :8], sincos_code(np.array(kernel[node]), 4), atol=1e-6)
    np.testing.assert_allclose(tokens[0, node, 8:16], sincos_code(np.array(expand[node]), 4), atol=1e-6)
    np.testing.assert_allclose(tokens[0, node, 16:], sincos_code(np.array(node), 4), atol=1e-6)
    # Own position = the block's slot in the supernet: stage 2's first block is block 4,
    # slot 7, whatever the depth of stage 1 (2 here, so it is node 5).
    assert graph.node_features[5, graph.node_feature_names.index("slot")] == 7
    np.testing.assert_allclose(tokens[0, 5, 16:], sincos_code(np.array(7.0), 4), atol=1e-6)
    deeper = space.to_graph(space.from_json(dict(SMALLEST, d=[4, 2, 2, 2, 2], r=176)))
    np.testing.assert_allclose(tokenize_layers(batch_graphs([deeper], 30), 4)[0][0, 7, 16:], tokens[0, 5, 16:])
    assert not tokens[0, graph.num_nodes + 1:].any()  # padding after the end token
    model = predictor.get_predictor("narformer", num_freqs=4, d_model=16, heads=2, ffn=32, depth=1)
    encoded = model.encode(batch)
    np.testing.assert_allclose(encoded["tokens"].numpy(), tokens)
    np.testing.assert_allclose(encoded["depth_code"].numpy()[0], sincos_code(np.array(176.0), 12), atol=1e-6)
    with pytest.raises(predictor.PredictorError, match="augment .* is for cell graphs"):
        predictor.get_predictor("narformer", augment=2, epochs=1).fit([graph, space.to_graph(space.sample(
            np.random.default_rng(0)))], np.array([1.0, 2.0]))


def test_spaces_cli_measures_an_arch_with_the_space_options():
    import subprocess
    import sys
    largest = json.dumps(LARGEST)
    done = subprocess.run([sys.executable, "-m", "spaces", "--space", "ofa_mbv3", "--space-set", "width_mult=1.2",
                           "--space-set", "resolutions=160,176,192,208,224", "--measure", largest],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    got = json.loads(done.stdout)
    space = spaces.get_space("ofa_mbv3", width_mult=1.2, resolutions=(160, 176, 192, 208, 224))
    arch = space.from_json(LARGEST)
    assert got == {"key": space.key(arch), "params": space.params(arch), "macs": space.macs(arch),
                   "latency_note10": space.latency_note10(arch)}
    plain = subprocess.run([sys.executable, "-m", "spaces", "--space", "ofa_mbv3", "--measure", largest],
                           capture_output=True, text=True, timeout=120)
    assert set(json.loads(plain.stdout)) == {"key", "params", "macs"}  # no Note10 table for width 1.0
