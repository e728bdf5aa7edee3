"""The cells' 3x3 average pool: on a CPU a box sum with nn.AvgPool2d's values and derivatives;
exported (torch.export, ONNX), nn.AvgPool2d's own operator."""
import pytest
import torch
from torch.nn import functional as F

from spaces.pooling import AvgPool3x3


@pytest.mark.parametrize("shape", [(2, 3, 1, 1), (1, 2, 1, 4), (2, 2, 2, 2), (3, 4, 7, 9)])
def test_values_and_derivatives_are_the_pools(shape):
    x = torch.randn(shape, dtype=torch.float64, requires_grad=True)
    reference = F.avg_pool2d(x, 3, 1, 1, count_include_pad=False)
    assert torch.allclose(AvgPool3x3()(x), reference, rtol=0, atol=1e-12)
    # first and second derivatives (grasp differentiates the pool twice)
    w = torch.randn(shape, dtype=torch.float64)
    grads = []
    for pool in (AvgPool3x3(), lambda t: F.avg_pool2d(t, 3, 1, 1, count_include_pad=False)):
        (g,) = torch.autograd.grad((pool(x).pow(2) * w).sum(), x, create_graph=True)
        (h,) = torch.autograd.grad((g * w).sum(), x)
        grads.append((g.detach(), h))
    assert all(torch.allclose(a, b, rtol=0, atol=1e-12) for a, b in zip(*grads))


def test_a_traced_or_exported_network_keeps_the_pooling_operator():
    x = torch.randn(1, 2, 5, 5)
    exported = torch.export.export(torch.nn.Sequential(AvgPool3x3()), (x,))
    targets = [str(n.target) for n in exported.graph.nodes if n.op == "call_function"]
    assert any("avg_pool2d" in t for t in targets) and not any("pad" in t for t in targets)
    # ONNX as search.export and the latency tables write it (a TorchScript trace)
    import io

    import onnx
    buffer = io.BytesIO()
    torch.onnx.export(AvgPool3x3(), (x,), buffer, dynamo=False, opset_version=17)
    ops = [node.op_type for node in onnx.load_from_string(buffer.getvalue()).graph.node]
    assert "AveragePool" in ops and "Pad" not in ops, ops
