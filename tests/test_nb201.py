import re
import numpy as np
import pytest
import torch

import spaces
from spaces.benchmark import ArchNotInBenchmarkError
from spaces.nb201 import OPS, parse_arch_str, to_arch_str

BEST = "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|"


@pytest.fixture(scope="module")
def space():
    return spaces.get_space("nb201")


@pytest.fixture(scope="module")
def bench():
    return spaces.get_benchmark("nb201")


def test_enumeration_has_every_cell_once(space):
    archs = list(space.enumerate())
    assert len(archs) == space.count() == 15625
    assert len({space.key(a) for a in archs}) == 15625


def test_json_round_trip_of_every_cell(space):
    for arch in space.enumerate():
        text = space.to_json(arch)
        assert space.from_json(text) == arch
        assert parse_arch_str(text).ops == arch.ops


def test_sample_and_mutate_are_valid_different_and_seeded(space):
    rng = np.random.default_rng(0)
    for _ in range(2000):
        arch = space.sample(rng)
        child = space.mutate(arch, rng)
        assert space.key(child) != space.key(arch)
        assert sum(a != b for a, b in zip(arch.ops, child.ops)) == 1
    a = [space.to_json(space.sample(np.random.default_rng(7))) for _ in range(3)]
    assert len(set(a)) == 1


@pytest.mark.parametrize("text, message", [
    ("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|", "3 '+'-separated nodes"),
    ("|conv~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|", "unknown NB201 operation 'conv'"),
    ("|nor_conv_3x3~0|+|nor_conv_3x3~0|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|", "node 2"),
    ("|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|", "not an earlier node"),
    ("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~0|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|", "repeated"),
    ("|nor_conv_3x3|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|", "not 'op~input'"),
    ("nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_1x1~2|", "start and end with '|'"),
])
def test_malformed_strings_say_what_is_wrong(space, text, message):
    with pytest.raises(spaces.InvalidArchError, match=re.escape(message)):
        space.from_json(text)
    assert issubclass(spaces.InvalidArchError, ValueError)


def test_non_string_json_is_rejected(space):
    with pytest.raises(spaces.InvalidArchError, match="a string"):
        space.from_json({"ops": [1, 2]})


def test_graph_form_is_the_8_node_operation_graph(space):
    arch = space.from_json(BEST)
    g = space.to_graph(arch)
    assert g.num_nodes == 8 and g.vocab[g.ops[0]] == "input" and g.vocab[g.ops[-1]] == "output"
    assert [g.vocab[o] for o in g.ops[1:-1]] == [OPS[o] for o in arch.ops]
    expected = np.zeros((8, 8), dtype=np.uint8)
    for src, dst in [(0, 1), (0, 2), (0, 4), (1, 3), (1, 5), (2, 6), (3, 6), (4, 7), (5, 7), (6, 7)]:
        expected[src, dst] = 1
    assert np.array_equal(g.adjacency, expected)


def test_packaged_benchmark_best_arch(space, bench):
    assert len(bench) == 15625
    test = bench.column("c10_test_200")
    assert int(np.argmax(test)) == 6111
    assert bench.query(space.from_json(BEST), "c10_test_200") == pytest.approx(94.3733, abs=1e-3)
    assert bench.query(space.from_json(BEST)) == pytest.approx(91.6067, abs=1e-3)
    assert bench.default_metric == "c10valid_val_200_mean" and bench.test_metric == "c10_test_200"
    # rows are in the official index order, so row i is arch index i
    assert space.key(bench.arch(6111)) == BEST


def test_unknown_metric_lists_valid_ones(space, bench):
    with pytest.raises(spaces.UnknownNameError, match="valid: .*c10_test_200"):
        bench.query(space.from_json(BEST), "accuracy")


def test_parameter_counts_match_the_benchmark(space, bench):
    rng = np.random.default_rng(1)
    rows = [int(np.argmax(bench.column("params_analytic_c10"))), int(np.argmin(bench.column("params_analytic_c10"))),
            *rng.choice(len(bench), 40, replace=False)]
    for row in rows:
        model = space.build_model(bench.arch(row))
        assert sum(p.numel() for p in model.parameters()) == bench.column("params_analytic_c10")[row]
    assert bench.column("params_analytic_c10").max() == 1531546


def test_network_forward_and_backward(space):
    model = space.build_model(space.from_json(BEST), dict(num_classes=7))
    out = model(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 7)
    out.sum().backward()
    assert all(p.grad is not None for p in model.parameters())


def test_compact_csv_reader_takes_any_metric_columns(tmp_path, space):
    path = tmp_path / "mine.csv"
    path.write_text(f"arch_str,my_acc,latency\n{BEST},93.5,1.25\n{to_arch_str([0] * 6)},10.0,\n")
    bench = spaces.get_benchmark("nb201", path)
    assert bench.metrics == ["latency", "my_acc"]
    assert bench.query(space.from_json(BEST), "my_acc") == 93.5
    assert np.isnan(bench.query(bench.arch(1), "latency"))
    with pytest.raises(ArchNotInBenchmarkError, match="not in"):
        bench.query(space.from_json(to_arch_str([1] * 6)), "my_acc")
    # no default metric column: the search metric must be named, never guessed
    with pytest.raises(spaces.SpacesError, match="no column 'c10valid_val_200_mean'.*columns: latency, my_acc"):
        bench.query(space.from_json(BEST))


def test_missing_and_malformed_files_name_the_file_and_the_env_var(tmp_path, monkeypatch):
    with pytest.raises(spaces.DataFileError, match=r"nope\.pth.*NARNAS_NB201_PATH"):
        spaces.get_benchmark("nb201", tmp_path / "nope.pth")
    monkeypatch.setenv("NARNAS_NB201_PATH", str(tmp_path / "env.csv"))
    with pytest.raises(spaces.DataFileError, match=r"env\.csv"):
        spaces.get_benchmark("nb201")
    bad = tmp_path / "bad.csv"
    bad.write_text("name,acc\nx,1\n")
    with pytest.raises(spaces.DataFileError, match="no 'arch_str' column"):
        spaces.get_benchmark("nb201", bad)
    bad.write_text(f"arch_str,acc\n{BEST},high\n")
    with pytest.raises(spaces.DataFileError, match="not a number"):
        spaces.get_benchmark("nb201", bad)
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a torch file")
    with pytest.raises(spaces.DataFileError, match="junk.pth: not a readable NAS-Bench-201"):
        spaces.get_benchmark("nb201", junk)


def _official_archs():
    a, b = BEST, to_arch_str([4, 1, 0, 2, 3, 1])
    runs = lambda v, t: [("cifar10-valid", 777, {"x-valid": v, "ori-test": t - 1}, 99.0, 1.07),
                         ("cifar10-valid", 888, {"x-valid": v + 1, "ori-test": t}, 99.0, 1.07),
                         ("cifar10", 777, {"ori-test": t}, 99.5, 1.07)]
    return [(a, runs(91.0, 94.0), runs(80.0, 85.0)), (b, runs(70.0, 75.0), runs(60.0, 65.0))]


def _check_official(bench, space):
    best = space.from_json(BEST)
    assert len(bench) == 2
    assert bench.query(best, "c10valid_val_200_mean") == pytest.approx(91.5)  # mean of seeds
    assert bench.query(best, "c10_test_200") == pytest.approx(94.0)
    assert bench.query(best, "c10valid_val_12") == pytest.approx(80.5)
    assert bench.query(bench.arch(1), "c10_test_12") == pytest.approx(65.0)
    assert bench.query(best, "c10valid_params_mb") == pytest.approx(1.07)
    assert "c100_val_200" not in bench.metrics  # datasets the file lacks are left out


def test_official_nb201_pth_is_read_through_nas_201_api(tmp_path, space, data_dir):
    from official_files import nb201_official_dict
    path = tmp_path / "NAS-Bench-201-v1_1-test.pth"
    torch.save(nb201_official_dict(_official_archs(), nats=False), path)
    _check_official(spaces.get_benchmark("nb201", path), space)
    from spaces.files import cache_path
    cached = cache_path(path, ".compact.csv.gz")
    assert cached.parent == data_dir and cached.name.startswith("NAS-Bench-201-v1_1-test-") and cached.exists()
    bench = spaces.get_benchmark("nb201", path)  # second open reads the compact cache
    assert "cached" in bench.source
    _check_official(bench, space)


def test_official_nats_topology_pickle_is_read_through_nats_bench(tmp_path, space):
    from official_files import nb201_official_dict, write_nats_pickle
    path = tmp_path / "NATS-tss-v1_0-test-full.pickle.pbz2"
    write_nats_pickle(path, nb201_official_dict(_official_archs(), nats=True))
    _check_official(spaces.get_benchmark("nb201", path, cache=False), space)


def test_official_nats_simple_folder_is_read_in_fast_mode(tmp_path, space):
    from official_files import nb201_official_dict, write_nats_pickle
    folder = tmp_path / "NATS-tss-v1_0-test-simple"
    folder.mkdir()
    data = nb201_official_dict(_official_archs(), nats=True)
    write_nats_pickle(folder / "meta.pickle.pbz2", {"meta_archs": data["meta_archs"]})
    for index, infos in data["arch2infos"].items():
        write_nats_pickle(folder / f"{index:06d}.pickle.pbz2", infos)
    _check_official(spaces.get_benchmark("nb201", folder, cache=False), space)
