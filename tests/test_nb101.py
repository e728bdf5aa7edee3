import json
import os

import numpy as np
import pytest
import torch

import spaces
from spaces.nb101 import GRAPH_VOCAB, arch_from_codes, make_arch
from spaces.tfrecord import crc32c, decode_message, encode_field

I, C3, C1, MP, O = "input", "conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3", "output"


@pytest.fixture(scope="module")
def space():
    return spaces.get_space("nb101")


@pytest.fixture(scope="session")
def enumeration():
    from spaces.nb101.enum import load_enumeration
    return load_enumeration()


@pytest.fixture(scope="module")
def subset(shared_data):
    with np.load(shared_data / "nb101" / "nb101_subset_valacc.npz") as d:
        return {k: d[k] for k in d.files}


def test_enumeration_count_and_vertex_histogram(enumeration, space):
    assert len(enumeration["hash_md5"]) == space.count() == 423624
    sizes, counts = np.unique(enumeration["n_vertices"], return_counts=True)
    assert dict(zip(sizes.tolist(), counts.tolist())) == {2: 1, 3: 6, 4: 84, 5: 2441, 6: 62010, 7: 359082}


def test_every_enumerated_key_is_an_official_hash(enumeration, shared_data):
    """The full set of keys equals the official module hashes of all 423,624 cells."""
    with np.load(shared_data / "nb101" / "nb101_cells_all.npz") as ref:
        reference = np.unique(ref["hash_md5"], axis=0)
    assert np.array_equal(reference, enumeration["hash_md5"])


def test_enumerated_archs_hash_to_their_stored_key(enumeration, space):
    rng = np.random.default_rng(3)
    for row in rng.choice(len(enumeration["n_vertices"]), 300, replace=False):
        arch = arch_from_codes(enumeration["adjacency"][row], enumeration["ops"][row], enumeration["n_vertices"][row])
        assert space.key(arch) == enumeration["hash_md5"][row].tobytes().hex()
        assert make_arch(arch.matrix, arch.ops) == arch  # stored cells are valid and pruned


def _random_relabel(arch, rng):
    """The same cell with its inner vertices renumbered in another topological order."""
    n, m = arch.num_vertices, arch.adjacency()
    order, placed = [0], {0}
    while len(order) < n - 1:
        ready = [v for v in range(1, n - 1) if v not in placed and all(s in placed for s in range(n) if m[s, v])]
        v = ready[int(rng.integers(len(ready)))]
        order.append(v)
        placed.add(v)
    order.append(n - 1)
    return make_arch(m[np.ix_(order, order)], [arch.ops[v] for v in order])


def test_keys_are_the_official_hash_and_isomorphism_invariant(space, subset):
    rng = np.random.default_rng(0)
    changed = 0
    for row in rng.choice(len(subset["params"]), 3000, replace=False):
        arch = arch_from_codes(subset["adjacency"][row], subset["ops"][row], subset["n_vertices"][row])
        official = subset["hash_md5"][row].tobytes().hex()
        assert space.key(arch) == official
        twin = _random_relabel(arch, rng)
        changed += twin != arch
        assert space.key(twin) == official
    assert changed > 1000  # the relabelling really produced different matrices


def test_pruning_drops_dangling_vertices_and_keeps_the_key(space):
    cell = make_arch([[0, 1, 0, 0], [0, 0, 0, 1], [0, 0, 0, 0], [0, 0, 0, 0]], [I, C3, MP, O])
    assert cell.ops == (I, C3, O)
    assert cell.matrix == ((0, 1, 0), (0, 0, 1), (0, 0, 0))
    direct = make_arch([[0, 1, 0], [0, 0, 1], [0, 0, 0]], [I, C3, O])
    assert space.key(cell) == space.key(direct)


@pytest.mark.parametrize("matrix, ops, message", [
    ([[0, 1], [0, 0], [0, 0]], [I, O], "square"),
    ([[0, 1, 0], [0, 0, 1], [0, 0, 0]], [I, C3], "one op per vertex"),
    ([[0, 1, 0], [0, 0, 1], [1, 0, 0]], [I, C3, O], "upper-triangular"),
    ([[0, 2, 0], [0, 0, 1], [0, 0, 0]], [I, C3, O], "0 or 1"),
    ([[0, 1, 0], [0, 0, 1], [0, 0, 0]], [I, "conv5x5", O], "unknown NB101 op 'conv5x5'"),
    ([[0, 1, 0], [0, 0, 1], [0, 0, 0]], [C3, C3, O], "start with 'input'"),
    ([[0, 1, 0], [0, 0, 0], [0, 0, 0]], [I, C3, O], "no path from input to output"),
    (np.triu(np.ones((8, 8), int), 1) * (np.arange(8)[None, :] == np.arange(8)[:, None] + 1) + np.eye(8, k=7, dtype=int),
     [I] + [C3] * 6 + [O], "8 vertices"),
    (np.triu(np.ones((6, 6), int), 1), [I, C3, C3, C3, C3, O], "15 edges"),
])
def test_invalid_cells_say_which_rule_they_break(matrix, ops, message):
    with pytest.raises(spaces.InvalidArchError, match=message):
        make_arch(matrix, ops)


@pytest.mark.parametrize("text, message", [
    ("{not json", "not valid JSON"),
    ('{"matrix": [[0, 1], [0, 0]]}', '"matrix"'),
    ('{"matrix": "01", "ops": ["input", "output"]}', "square"),
])
def test_malformed_json_is_rejected(space, text, message):
    with pytest.raises(spaces.InvalidArchError, match=message):
        space.from_json(text)


def test_sample_and_mutate_are_valid_and_different(space):
    rng = np.random.default_rng(0)
    arch = space.sample(rng)
    for _ in range(1500):
        child = space.mutate(arch, rng)
        assert space.key(child) != space.key(arch)
        assert make_arch(child.matrix, child.ops) == child
        assert child.num_vertices <= 7 and sum(map(sum, child.matrix)) <= 9
        arch = child if rng.random() < 0.5 else space.sample(rng)


def _edit_distance(a, b) -> int:
    """Edges and operations that differ between two cells laid out as mutation sees them:
    padded to 7 vertices before the output."""
    def padded(arch):
        n, adj = arch.num_vertices, arch.adjacency()
        m = np.zeros((7, 7), dtype=int)
        m[:n - 1, :n - 1], m[:n - 1, 6] = adj[:n - 1, :n - 1], adj[:n - 1, -1]
        return m, list(arch.ops[:-1]) + ["pad"] * (7 - n) + ["output"]
    (m1, o1), (m2, o2) = padded(a), padded(b)
    return int((m1 != m2).sum()) + sum(x != y for x, y in zip(o1, o2))


def test_mutation_stays_near_its_parent(space):
    """One mutation flips about 3 of 21 edges and changes about one op (measured over 200
    parents: mean distance 3.4, against 6.9 to a fresh sample); ``mutate = sample`` fails."""
    rng = np.random.default_rng(0)
    parents = [space.sample(rng) for _ in range(200)]
    to_child = [_edit_distance(p, space.mutate(p, rng)) for p in parents]
    to_sample = [_edit_distance(p, space.sample(rng)) for p in parents]
    assert np.mean(to_child) < 0.6 * np.mean(to_sample), (np.mean(to_child), np.mean(to_sample))
    assert np.median(to_child) <= 4 and min(to_child) >= 1


def test_json_round_trip_is_the_official_form(space, enumeration):
    for row in range(0, len(enumeration["n_vertices"]), 4001):
        arch = arch_from_codes(enumeration["adjacency"][row], enumeration["ops"][row], enumeration["n_vertices"][row])
        obj = space.to_json(arch)
        assert set(obj) == {"matrix", "ops"} and obj["ops"][0] == "input"
        assert space.from_json(json.dumps(obj)) == arch


def test_graph_form(space):
    arch = make_arch([[0, 1, 1, 0], [0, 0, 0, 1], [0, 0, 0, 1], [0, 0, 0, 0]], [I, C1, MP, O])
    g = space.to_graph(arch)
    assert [g.vocab[o] for o in g.ops] == [I, C1, MP, O] and g.vocab == GRAPH_VOCAB
    assert np.array_equal(g.adjacency, arch.adjacency())


def test_parameter_counts_match_the_benchmark(space, subset):
    rng = np.random.default_rng(2)
    rows = [int(np.argmin(subset["params"])), *rng.choice(len(subset["params"]), 25, replace=False)]
    for row in rows:
        arch = arch_from_codes(subset["adjacency"][row], subset["ops"][row], subset["n_vertices"][row])
        assert sum(p.numel() for p in space.build_model(arch).parameters()) == subset["params"][row]


def test_network_forward_and_backward(space):
    arch = make_arch([[0, 1, 1, 0, 1], [0, 0, 1, 0, 0], [0, 0, 0, 1, 0], [0, 0, 0, 0, 1], [0, 0, 0, 0, 0]],
                     [I, C3, MP, C1, O])
    model = space.build_model(arch, dict(stem_channels=16))
    out = model(torch.randn(2, 3, 32, 32))
    assert out.shape == (2, 10)
    out.sum().backward()
    tiny = space.build_model(make_arch([[0, 1], [0, 0]], [I, O]), dict(stem_channels=8))
    assert tiny(torch.randn(1, 3, 32, 32)).shape == (1, 10)


def test_compact_npz_benchmark(space, subset, shared_data):
    bench = spaces.get_benchmark("nb101", shared_data / "nb101" / "nb101_subset_valacc.npz")
    assert len(bench) == 20001 and bench.default_metric == "val_acc_108"
    row = 123
    arch = arch_from_codes(subset["adjacency"][row], subset["ops"][row], subset["n_vertices"][row])
    assert bench.query(arch) == pytest.approx(float(subset["val_acc_108"][row]))
    assert bench.query(arch, "params") == subset["params"][row]
    assert max(bench.column("val_acc_108")) == pytest.approx(0.9491, abs=1e-4)


def test_missing_nb101_file_says_where_to_get_it(tmp_path, monkeypatch):
    monkeypatch.setenv("NARNAS_DATA", str(tmp_path))
    with pytest.raises(spaces.DataFileError) as info:
        spaces.get_benchmark("nb101")
    text = str(info.value)
    assert "nasbench_only108.tfrecord" in text and "NARNAS_NB101_PATH" in text and "--data" in text


def test_crc32c_and_protobuf_codec():
    assert crc32c(b"123456789") == 0xE3069283  # the standard check value
    message = encode_field(1, 1.5) + encode_field(2, 300) + encode_field(6, "path") + encode_field(1, 2.5)
    assert decode_message(message) == {1: [1.5, 2.5], 2: [300], 6: [b"path"]}


def _cells_for_tfrecord(space):
    a = make_arch([[0, 1, 1, 0], [0, 0, 0, 1], [0, 0, 0, 1], [0, 0, 0, 0]], [I, C3, MP, O])
    b = make_arch([[0, 1, 0], [0, 0, 1], [0, 0, 0]], [I, C1, O])
    return a, b


def _write_official_tfrecord(path, space):
    from official_files import nb101_record, write_tfrecord
    a, b = _cells_for_tfrecord(space)
    records = []
    for arch, base, params in ((a, 0.90, 1000), (b, 0.80, 500)):
        for run in range(3):
            final = (100.0 + run, 1.0, base + 0.01 * run, base - 0.01 + 0.01 * run)
            records.append(nb101_record(space.key(arch), 108, arch.matrix, arch.ops,
                                        [(0, 0.1, 0.1, 0.1), (50.0, 0.5, 0.5, 0.5), final], params))
        final4 = (10.0, 0.6, base - 0.3, base - 0.3)
        records.append(nb101_record(space.key(arch), 4, arch.matrix, arch.ops,
                                    [(0, 0.1, 0.1, 0.1), (5.0, 0.5, 0.5, 0.5), final4], params))
    write_tfrecord(path, records)
    return a, b


def test_official_tfrecord_round_trip(tmp_path, space, data_dir):
    path = tmp_path / "nasbench_test.tfrecord"
    a, b = _write_official_tfrecord(path, space)
    bench = spaces.get_benchmark("nb101", path)
    assert len(bench) == 2 and bench.default_metric == "val_acc_108" and bench.test_metric == "test_acc_108"
    assert bench.query(a) == pytest.approx(0.91)  # mean of the 3 runs
    assert bench.query(a, "test_acc_108") == pytest.approx(0.90)
    assert bench.query(b, "train_time_108") == pytest.approx(101.0)
    assert bench.query(b, "val_acc_4") == pytest.approx(0.50)
    assert bench.query(a, "params") == 1000
    assert {space.key(x) for x in bench.archs()} == {space.key(a), space.key(b)}
    assert len(list(data_dir.glob("nasbench_test-*.compact.npz"))) == 1
    again = spaces.get_benchmark("nb101", path)
    assert "cached" in again.source and again.query(a) == pytest.approx(0.91)


def test_corrupt_tfrecords_are_reported(tmp_path, space):
    path = tmp_path / "cut.tfrecord"
    _write_official_tfrecord(path, space)
    data = path.read_bytes()
    path.write_bytes(data[:-10])
    with pytest.raises(spaces.DataFileError, match="cut.tfrecord: truncated"):
        spaces.get_benchmark("nb101", path, cache=False)
    path.write_bytes(b"x" * 40)
    with pytest.raises(spaces.DataFileError, match="checksum"):
        spaces.get_benchmark("nb101", path, cache=False)
    from official_files import write_tfrecord
    write_tfrecord(path, [b'["abc", 108, "0100", "input,output", "!!"]'])
    with pytest.raises(spaces.DataFileError, match="record 0 is not an NB101 record"):
        spaces.get_benchmark("nb101", path, cache=False)


def test_crc32c_matches_published_test_vectors():
    """RFC 3720 (iSCSI) B.4 vectors, also used by TensorFlow's crc32c tests; both the C
    implementation used for files and the pure-Python one."""
    from spaces.tfrecord import crc32c, crc32c_python, masked_crc
    vectors = {bytes(32): 0x8A9136AA, b"\xff" * 32: 0x62A8AB43, bytes(range(32)): 0x46DD794E,
               bytes(range(31, -1, -1)): 0x113FDB5C, b"123456789": 0xE3069283}
    for data, want in vectors.items():
        assert crc32c(data) == want and crc32c_python(data) == want
    crc = 0x8A9136AA  # TFRecord's mask: rotate right by 15, add 0xa282ead8
    assert masked_crc(bytes(32)) == (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def test_a_flipped_payload_byte_or_a_wrong_module_hash_is_reported(tmp_path, space):
    path = tmp_path / "flip.tfrecord"
    _write_official_tfrecord(path, space)
    data = bytearray(path.read_bytes())
    at = data.index(b"input,")  # inside the first record's JSON: the length and its checksum stay right
    data[at] ^= 0x20
    path.write_bytes(bytes(data))
    with pytest.raises(spaces.DataFileError, match="flip.tfrecord: bad data checksum in the record at byte 0"):
        spaces.get_benchmark("nb101", path, cache=False)
    from official_files import nb101_record, write_tfrecord
    a, b = _cells_for_tfrecord(space)
    good = nb101_record(space.key(b), 108, b.matrix, b.ops, [(0, .1, .1, .1), (5., .5, .5, .5), (9., .9, .9, .9)], 5)
    wrong = nb101_record(space.key(b), 108, a.matrix, a.ops, [(0, .1, .1, .1), (5., .5, .5, .5), (9., .9, .9, .9)], 5)
    write_tfrecord(path, [good])
    assert len(spaces.get_benchmark("nb101", path, cache=False)) == 1
    write_tfrecord(path, [wrong])
    with pytest.raises(spaces.DataFileError, match=f"record 0 is not an NB101 record .its module hash {space.key(b)} "
                                                   f"is not its cell's, {space.key(a)}"):
        spaces.get_benchmark("nb101", path, cache=False)


def _write_one_cell(path, space, accuracy):
    from official_files import nb101_record, write_tfrecord
    _, b = _cells_for_tfrecord(space)
    final = (9.0, 1.0, accuracy, accuracy)
    write_tfrecord(path, [nb101_record(space.key(b), 108, b.matrix, b.ops,
                                       [(0, .1, .1, .1), (5., .5, .5, .5), final], 500)])
    return b


def test_the_cache_of_an_official_file_is_never_another_files(tmp_path, space, data_dir):
    """Caches are keyed by the file's path, size, time and contents, not by its name alone."""
    first, second = tmp_path / "one" / "nasbench_same.tfrecord", tmp_path / "two" / "nasbench_same.tfrecord"
    first.parent.mkdir()
    second.parent.mkdir()
    cell = _write_one_cell(first, space, 0.70)
    _write_one_cell(second, space, 0.80)
    assert spaces.get_benchmark("nb101", first).query(cell) == pytest.approx(0.70)
    other = spaces.get_benchmark("nb101", second)  # same name, another folder: its own numbers
    assert other.query(cell) == pytest.approx(0.80) and "cached" not in other.source
    assert "cached" in spaces.get_benchmark("nb101", first).source
    stamp = first.stat()
    _write_one_cell(first, space, 0.60)  # rewritten in place: same size, even the same time
    os.utime(first, ns=(stamp.st_atime_ns, stamp.st_mtime_ns))
    assert first.stat().st_size == stamp.st_size
    again = spaces.get_benchmark("nb101", first)
    assert again.query(cell) == pytest.approx(0.60) and "cached" not in again.source
