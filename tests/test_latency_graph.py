"""Whole networks as layer graphs (ONNX), their costs, and the latency timing harness."""
import numpy as np
import pytest
import torch
import torch.nn as nn

from predictor.errors import PredictorError
from latency.dataset import strip_weights
from latency.graph import (NODE_FEATURES, OP_VOCAB, module_graph, module_to_onnx, onnx_graph, op_names,
                                     static_features)
from latency.timing import measure, summarize

COL = {name: i for i, name in enumerate(NODE_FEATURES)}


class Small(nn.Module):
    """conv(+BN, folded by the exporter) -> relu -> dropout -> residual grouped conv -> pool -> linear."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.bn = nn.BatchNorm2d(8)
        self.drop = nn.Dropout(0.5)
        self.conv2 = nn.Conv2d(8, 8, 3, padding=1, groups=4, bias=False)
        self.pool = nn.MaxPool2d(2)
        self.fc = nn.Linear(8 * 8 * 8, 10)

    def forward(self, x):
        x = self.drop(torch.relu(self.bn(self.conv(x))))
        x = x + self.conv2(x)
        return self.fc(torch.flatten(self.pool(x), 1))


def _row(graph, index):
    return dict(zip(NODE_FEATURES, graph.node_features[index].tolist()))


def test_small_module_nodes_edges_attributes_and_shapes():
    g = module_graph(Small(), (2, 3, 32, 32))
    assert op_names(g) == ["input", "Conv", "Relu", "Conv", "Add", "MaxPool", "Flatten", "Gemm", "output"]
    edges = {(int(a), int(b)) for a, b in zip(*np.nonzero(g.adjacency))}
    assert edges == {(0, 1), (1, 2), (2, 3), (2, 4), (3, 4), (4, 5), (5, 6), (6, 7), (7, 8)}
    conv = _row(g, 1)
    assert (conv["kernel_h"], conv["kernel_w"], conv["stride_h"], conv["stride_w"]) == (3, 3, 2, 2)
    assert (conv["pad_top"], conv["pad_left"], conv["pad_bottom"], conv["pad_right"]) == (1, 1, 1, 1)
    assert (conv["groups"], conv["bias"]) == (1, 1)  # the folded BatchNorm gives the conv a bias
    assert (conv["out_batch"], conv["out_channels"], conv["out_height"], conv["out_width"]) == (2, 8, 16, 16)
    grouped = _row(g, 3)
    assert (grouped["groups"], grouped["bias"]) == (4, 0)
    pool = _row(g, 5)
    assert (pool["kernel_h"], pool["stride_h"], pool["out_height"]) == (2, 2, 8)
    flat = _row(g, 6)  # a 2-d output fills batch and channels, zero height and width
    assert (flat["out_batch"], flat["out_channels"], flat["out_height"], flat["out_width"]) == (2, 512, 0, 0)
    assert static_features(g)["batch_size"] == 2


def test_macs_match_torch_flop_counter_and_params_match_the_module():
    from torch.utils.flop_counter import FlopCounterMode
    model = nn.Sequential(nn.Conv2d(3, 16, 5, stride=2, padding=2), nn.ReLU(), nn.Conv2d(16, 32, 3, groups=4),
                          nn.ConvTranspose2d(32, 8, 4, stride=2, padding=1), nn.Flatten(), nn.Linear(8 * 24 * 24, 7))
    shape = (3, 3, 28, 28)
    with FlopCounterMode(display=False) as counter:
        model(torch.zeros(shape))
    sf = static_features(module_graph(model, shape))
    assert sf["macs"] == counter.get_total_flops() / 2
    assert sf["params"] == sum(p.numel() for p in model.parameters())
    assert sf["flops"] > 2 * sf["macs"]  # plus the activations and biases
    assert sf["memory_access"] > 4 * (sf["params"] + 3 * 3 * 28 * 28)  # weights and input are read at least once


def test_transpose_permutation_and_an_unknown_op_are_recorded():
    import onnx
    from onnx import TensorProto, helper
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, 5, 6])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 5, 6, 4])
    nodes = [helper.make_node("Identity", ["x"], ["a"]),
             helper.make_node("Transpose", ["a"], ["b"], perm=[0, 2, 3, 1]),
             helper.make_node("Celu", ["b"], ["c"]),  # a real ONNX op outside the vocabulary
             helper.make_node("Dropout", ["c"], ["y"])]
    model = helper.make_model(helper.make_graph(nodes, "g", [x], [y]), opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    g = onnx_graph(model)
    assert op_names(g) == ["input", "Transpose", "other", "output"]  # Identity and Dropout dropped
    assert [_row(g, 1)[f"perm_{k}"] for k in range(4)] == [0, 2, 3, 1]
    assert _row(g, 1)["out_channels"] == 5 and _row(g, 1)["out_width"] == 4
    assert g.adjacency[0, 1] and g.adjacency[1, 2] and g.adjacency[2, 3]  # wired through the dropped no-ops
    assert "other" in OP_VOCAB


def test_symbolic_batch_is_set_and_stripped_weights_give_the_same_graph(tmp_path):
    model = module_to_onnx(Small(), (1, 3, 32, 32))
    path = tmp_path / "small.onnx"
    path.write_bytes(strip_weights(model).SerializeToString())
    assert path.stat().st_size < len(model.SerializeToString()) / 2
    assert onnx_graph(path) == onnx_graph(model)
    g4 = onnx_graph(path, batch_size=4)
    assert static_features(g4)["batch_size"] == 4
    assert static_features(g4)["macs"] == 4 * static_features(onnx_graph(model))["macs"]


def test_bad_files_say_what_is_wrong(tmp_path):
    bad = tmp_path / "notes.onnx"
    bad.write_text("this is not a protobuf at all \x00\xff")
    with pytest.raises(PredictorError, match="notes.onnx"):
        onnx_graph(bad)
    with pytest.raises(PredictorError, match="does not exist"):
        onnx_graph(tmp_path / "missing.onnx")


def test_large_network_of_more_than_200_layers():
    from torchvision.models import efficientnet_b0
    g = module_graph(efficientnet_b0(), (1, 3, 224, 224))
    assert g.num_nodes > 200
    assert np.all(np.triu(g.adjacency, 1) == g.adjacency)
    assert 0.38e9 < static_features(g)["macs"] < 0.41e9  # EfficientNet-B0: 0.39 G MACs


def test_latency_statistics_on_known_numbers():
    s = summarize([1.0, 2.0, 3.0, 4.0, 100.0])
    assert (s.median_ms, s.min_ms, s.max_ms, s.repeats) == (3.0, 1.0, 100.0, 5)
    assert s.mean_ms == pytest.approx(22.0)
    assert s.p10_ms == pytest.approx(1.4) and s.p90_ms == pytest.approx(61.6)
    assert s.relative_spread == pytest.approx((61.6 - 1.4) / 3.0)
    with pytest.raises(PredictorError):
        summarize([])


def test_timing_a_tiny_model():
    model = module_to_onnx(nn.Sequential(nn.Conv2d(3, 4, 3), nn.ReLU()), (1, 3, 16, 16))
    s = measure(model, threads=1, warmup=2, repeats=7)
    assert s.repeats == 7
    assert 0 < s.min_ms <= s.p10_ms <= s.median_ms <= s.p90_ms <= s.max_ms
    longer = measure(model, threads=1, warmup=0, repeats=1, min_seconds=0.05)
    assert longer.repeats > 1  # kept timing until 50 ms were timed
    # a network with ~2,000x the multiply-adds times slower (measured: ~0.01 ms against ~3 ms)
    heavy = module_to_onnx(nn.Sequential(nn.Conv2d(3, 64, 3, padding=1), nn.ReLU(), nn.Conv2d(64, 64, 3, padding=1)),
                           (1, 3, 64, 64))
    assert measure(heavy, threads=1, warmup=2, repeats=7).median_ms > 5 * s.median_ms
