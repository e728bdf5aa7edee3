"""Whole networks as layer graphs: any ``torch.nn.Module`` or ONNX file -> an ``ArchGraph``.

A network is exported to ONNX (opset 17, static shapes) and every tensor's shape is inferred.
Each ONNX node that computes something becomes a graph node; no-ops (Identity, Dropout) are
dropped and their consumers wired to what fed them, and Constant nodes count as weights.
Node 0 is the network's input, the last node its output, the others follow ONNX's topological
order. ``ops`` index :data:`OP_VOCAB` (an op outside it becomes ``other``, never an error).

Per node, ``node_features`` hold the attributes that NAR-Former's whole-network encoding
reads (its supplement's Table 1: kernel shape, stride, padding, dilation, groups, bias,
permutation, output padding; the output shape as batch, channels, height, width, zero where a
layer has fewer dimensions) and the node's own cost (MACs, FLOPs, parameters, bytes moved).
``graph_features`` hold the static features of the whole network: batch size, FLOPs, MACs,
parameters and memory access (bytes).

Costs: MACs count the multiply-accumulates of Conv, ConvTranspose, Gemm and MatMul (the
convention of thop, ptflops, fvcore and torch's flop counter, which reports 2 x MACs);
FLOPs are 2 x MACs plus one per output element of every other computing node (activations,
additions, normalisation, pooling windows). Memory access is the bytes each node reads
(activations and weights) and writes, summed over nodes - NNLQP's "memory access" figure.
"""
from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np

from spaces.base import ArchGraph

from predictor.errors import PredictorError

#: The ONNX operations a layer graph names; anything else is ``other``. Ordered by family
#: (graph ends, compute-heavy, activations, element-wise, pooling, shape), never reordered:
#: a fitted predictor's tokens index this list.
OP_VOCAB: tuple[str, ...] = (
    "input", "output", "other",
    "Conv", "ConvTranspose", "Gemm", "MatMul", "BatchNormalization", "InstanceNormalization",
    "LayerNormalization", "LRN",
    "Relu", "Clip", "Sigmoid", "HardSigmoid", "HardSwish", "Tanh", "LeakyRelu", "PRelu", "Elu",
    "Selu", "Gelu", "Erf", "Softmax", "Softplus", "Mish",
    "Add", "Sub", "Mul", "Div", "Pow", "Sqrt", "Exp", "Log", "Neg", "Abs", "Max", "Min",
    "MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool", "ReduceMean", "ReduceMax",
    "ReduceSum",
    "Flatten", "Reshape", "Transpose", "Concat", "Split", "Slice", "Gather", "Squeeze",
    "Unsqueeze", "Pad", "Resize", "Upsample", "Shape", "Expand", "Tile", "Cast",
)
_OP_INDEX = {name: i for i, name in enumerate(OP_VOCAB)}

#: Nodes that compute nothing at inference: dropped, their consumers read their input.
NO_OPS = frozenset({"Identity", "Dropout"})

#: The per-node attributes, in the order of ``ArchGraph.node_features``' columns.
NODE_FEATURES: tuple[str, ...] = (
    "kernel_h", "kernel_w", "stride_h", "stride_w",
    "pad_top", "pad_left", "pad_bottom", "pad_right", "dilation_h", "dilation_w",
    "groups", "bias", "perm_0", "perm_1", "perm_2", "perm_3", "output_padding_h", "output_padding_w",
    "out_batch", "out_channels", "out_height", "out_width",
    "macs", "flops", "params", "memory_access",
)
_COL = {name: i for i, name in enumerate(NODE_FEATURES)}

#: The whole network's static features, in the order of ``ArchGraph.graph_features``.
STATIC_FEATURES: tuple[str, ...] = ("batch_size", "flops", "macs", "params", "memory_access")

_MAC_OPS = frozenset({"Conv", "ConvTranspose", "Gemm", "MatMul"})
#: Nodes that only move or describe data: no arithmetic is counted for them.
_DATA_OPS = frozenset({"Flatten", "Reshape", "Transpose", "Concat", "Split", "Slice", "Gather",
                       "Squeeze", "Unsqueeze", "Pad", "Shape", "Expand", "Tile", "Cast"})
_ITEMSIZE = {1: 4, 2: 1, 3: 1, 4: 2, 5: 2, 6: 4, 7: 8, 9: 1, 10: 2, 11: 8, 16: 2}  # ONNX elem_type -> bytes


def module_to_onnx(module, input_shape, *, opset: int = 17):
    """Export ``module`` (in eval mode, on the CPU) to an in-memory ONNX model with static
    shapes for an input of ``input_shape`` (batch first)."""
    import onnx
    import torch
    module = module.eval().cpu()
    buffer = io.BytesIO()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # The TorchScript exporter: the dynamo one fails on data-dependent control flow.
        try:
            torch.onnx.export(module, (torch.zeros(tuple(input_shape)),), buffer, opset_version=opset,
                              dynamo=False, do_constant_folding=True, input_names=["input"],
                              output_names=["output"])
        except Exception as err:
            text = " ".join(str(err).split("[Caused by")[0].split())
            raise PredictorError(f"cannot export {type(module).__name__} to ONNX at input {tuple(input_shape)}: "
                                 f"{text[:200]}") from None
    return onnx.load_from_string(buffer.getvalue())


def load_onnx(path):
    """An ONNX file as a ModelProto, or a PredictorError naming the file and what is wrong."""
    import onnx
    path = Path(path)
    if not path.is_file():
        raise PredictorError(f"ONNX file {path} does not exist")
    try:
        model = onnx.load(str(path))
    except Exception as err:  # onnx raises protobuf's DecodeError and others
        raise PredictorError(f"{path} is not an ONNX model ({type(err).__name__}: "
                             f"{str(err)[:120] or 'unreadable'})") from None
    if not model.graph.node:
        raise PredictorError(f"{path} is not an ONNX model with a graph (no nodes)")
    return model


def module_graph(module, input_shape, *, opset: int = 17) -> ArchGraph:
    """The layer graph of a PyTorch module for an input of ``input_shape``."""
    return onnx_graph(module_to_onnx(module, input_shape, opset=opset))


def onnx_graph(model, *, batch_size: int | None = None) -> ArchGraph:
    """The layer graph of an ONNX model (a ModelProto or a file path). ``batch_size`` sets
    the inputs' first dimension (needed when the file leaves it symbolic)."""
    import onnx
    if not hasattr(model, "graph"):
        model = load_onnx(model)
    model = _with_batch_size(model, batch_size)
    try:
        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=False)
    except Exception as err:
        raise PredictorError(f"ONNX shape inference failed: {str(err)[:200]}") from None
    return _LayerGraphBuilder(inferred).build()


def _with_batch_size(model, batch_size):
    weights = {t.name for t in model.graph.initializer}
    inputs = [v for v in model.graph.input if v.name not in weights]
    dims0 = [v.type.tensor_type.shape.dim[0] for v in inputs if v.type.tensor_type.shape.dim]
    symbolic = any(not d.HasField("dim_value") for d in dims0)
    if batch_size is None and not symbolic:
        return model
    if batch_size is None:
        batch_size = 1
    import onnx
    model = onnx.ModelProto.FromString(model.SerializeToString())  # never edit the caller's
    for v in model.graph.input:
        if v.name in weights or not v.type.tensor_type.shape.dim:
            continue
        v.type.tensor_type.shape.dim[0].dim_value = int(batch_size)
    # Inferred output shapes of the file would contradict the new batch size.
    del model.graph.value_info[:]
    for v in model.graph.output:
        if v.type.tensor_type.shape.dim:
            v.type.tensor_type.shape.dim[0].dim_value = int(batch_size)
    return model


def _shape(value_info) -> tuple[int, ...] | None:
    t = value_info.type.tensor_type
    if not t.HasField("shape"):
        return None
    return tuple(int(d.dim_value) if d.HasField("dim_value") else 0 for d in t.shape.dim)


def _attr(node, name, default=None):
    import onnx
    for a in node.attribute:
        if a.name == name:
            return onnx.helper.get_attribute_value(a)
    return default


class _LayerGraphBuilder:
    def __init__(self, model):
        g = model.graph
        self.graph = g
        self.weights = {t.name: tuple(int(d) for d in t.dims) for t in g.initializer}
        self.weight_bytes = {t.name: _ITEMSIZE.get(t.data_type, 4) for t in g.initializer}
        self.shapes: dict[str, tuple[int, ...]] = {}
        self.itemsize: dict[str, int] = {}
        for v in list(g.input) + list(g.value_info) + list(g.output):
            shape = _shape(v)
            if shape is not None:
                self.shapes[v.name] = shape
                self.itemsize[v.name] = _ITEMSIZE.get(v.type.tensor_type.elem_type, 4)
        for node in g.node:  # Constant nodes are weights baked into the graph
            if node.op_type == "Constant":
                value = _attr(node, "value")
                dims = tuple(int(d) for d in getattr(value, "dims", ())) if value is not None else ()
                for out in node.output:
                    self.weights[out] = dims
                    self.weight_bytes[out] = _ITEMSIZE.get(getattr(value, "data_type", 1), 4)

    def build(self) -> ArchGraph:
        g = self.graph
        inputs = [v for v in g.input if v.name not in self.weights]
        if not inputs:
            raise PredictorError("the ONNX graph has no input besides its weights")
        ops, rows, sources = [], [], []
        producer: dict[str, int] = {}
        for v in inputs:
            producer[v.name] = len(ops)
            ops.append(_OP_INDEX["input"])
            rows.append(self._features(None, [], v.name))
            sources.append(())
        seen_weights: set[str] = set()
        for node in g.node:
            if node.op_type == "Constant":
                continue
            data_in = [name for name in node.input if name and name not in self.weights]
            if node.op_type in NO_OPS:
                for out in node.output[:1]:
                    if data_in and data_in[0] in producer:
                        producer[out] = producer[data_in[0]]
                continue
            index = len(ops)
            ops.append(_OP_INDEX.get(node.op_type, _OP_INDEX["other"]))
            node_weights = [name for name in node.input if name in self.weights]
            row = self._features(node, data_in, node.output[0] if node.output else "")
            fresh = [w for w in node_weights if w not in seen_weights]
            row[_COL["params"]] = sum(int(np.prod(self.weights[w])) for w in fresh)
            seen_weights.update(fresh)
            rows.append(row)
            sources.append(tuple(sorted({producer[name] for name in data_in if name in producer})))
            for out in node.output:
                producer[out] = index
        out_index = len(ops)
        ops.append(_OP_INDEX["output"])
        rows.append(self._features(None, [], g.output[0].name if g.output else ""))
        sources.append(tuple(sorted({producer[v.name] for v in g.output if v.name in producer})))

        n = len(ops)
        adjacency = np.zeros((n, n), dtype=np.uint8)
        for dst, srcs in enumerate(sources):
            for src in srcs:
                if src >= dst:
                    raise PredictorError("the ONNX graph's nodes are not in topological order")
                adjacency[src, dst] = 1
        features = np.asarray(rows, dtype=np.float32)
        features[out_index, _COL["macs"]:] = 0.0
        static = {
            "batch_size": float(self.shapes.get(inputs[0].name, (1,))[0] or 1),
            "flops": float(features[:, _COL["flops"]].sum()),
            "macs": float(features[:, _COL["macs"]].sum()),
            "params": float(features[:, _COL["params"]].sum()),
            "memory_access": float(features[:, _COL["memory_access"]].sum()),
        }
        return ArchGraph(ops=np.asarray(ops, dtype=np.int64), adjacency=adjacency, vocab=OP_VOCAB,
                         node_features=features, node_feature_names=NODE_FEATURES,
                         graph_features=tuple((k, static[k]) for k in STATIC_FEATURES))

    def _features(self, node, data_in, output_name) -> np.ndarray:
        row = np.zeros(len(NODE_FEATURES), dtype=np.float64)
        out_shape = self.shapes.get(output_name, ())
        _put_shape(row, out_shape)
        if node is None:
            return row
        op = node.op_type
        weight_shapes = [self.weights[name] for name in node.input if name in self.weights]
        if op in ("Conv", "ConvTranspose", "MaxPool", "AveragePool", "LpPool"):
            kernel = _attr(node, "kernel_shape")
            if kernel is None and len(node.input) > 1 and node.input[1] in self.weights:
                kernel = self.weights[node.input[1]][2:]
            _put_pair(row, "kernel", kernel)
            _put_pair(row, "stride", _attr(node, "strides", [1, 1]))
            _put_pair(row, "dilation", _attr(node, "dilations", [1, 1]))
            pads = list(_attr(node, "pads", []) or [])
            if len(pads) == 2:  # 1-d: begin, end
                pads = [pads[0], pads[0], pads[1], pads[1]]
            if len(pads) >= 4:
                half = len(pads) // 2
                row[_COL["pad_top"]], row[_COL["pad_left"]] = pads[0], pads[1]
                row[_COL["pad_bottom"]], row[_COL["pad_right"]] = pads[half], pads[half + 1]
        if op in ("Conv", "ConvTranspose"):
            row[_COL["groups"]] = _attr(node, "group", 1)
            row[_COL["bias"]] = float(len([i for i in node.input if i]) > 2)
        if op == "ConvTranspose":
            _put_pair(row, "output_padding", _attr(node, "output_padding", [0, 0]))
        if op == "Gemm":
            row[_COL["bias"]] = float(len([i for i in node.input if i]) > 2)
        if op == "Transpose":
            perm = list(_attr(node, "perm", []) or [])[:4]
            for k, p in enumerate(perm):
                row[_COL[f"perm_{k}"]] = p
        out_elems = float(np.prod(out_shape)) if out_shape else 0.0
        in_shapes = [self.shapes.get(name, ()) for name in data_in]
        macs = _macs(op, node, out_elems, in_shapes, weight_shapes)
        row[_COL["macs"]] = macs
        if op in _MAC_OPS:
            flops = 2.0 * macs
            if row[_COL["bias"]]:
                flops += out_elems
        elif op in _DATA_OPS:
            flops = 0.0
        elif op in ("MaxPool", "AveragePool"):
            flops = out_elems * max(1.0, row[_COL["kernel_h"]] * row[_COL["kernel_w"]])
        elif op in ("GlobalAveragePool", "GlobalMaxPool", "ReduceMean", "ReduceMax", "ReduceSum"):
            flops = float(np.prod(in_shapes[0])) if in_shapes and in_shapes[0] else out_elems
        else:
            flops = out_elems
        row[_COL["flops"]] = flops
        read = sum(float(np.prod(s)) * self.itemsize.get(name, 4) for name, s in zip(data_in, in_shapes) if s)
        read += sum(float(np.prod(self.weights[name])) * self.weight_bytes.get(name, 4)
                    for name in node.input if name in self.weights)
        written = sum(float(np.prod(self.shapes[o])) * self.itemsize.get(o, 4)
                      for o in node.output if self.shapes.get(o))
        row[_COL["memory_access"]] = read + written
        return row


def _macs(op, node, out_elems, in_shapes, weight_shapes) -> float:
    if op == "Conv" and weight_shapes:
        return out_elems * float(np.prod(weight_shapes[0][1:]))
    if op == "ConvTranspose" and weight_shapes and in_shapes and in_shapes[0]:
        return float(np.prod(in_shapes[0])) * float(np.prod(weight_shapes[0][1:]))
    if op == "Gemm":
        a = in_shapes[0] if in_shapes and in_shapes[0] else ()
        if len(a) == 2:
            k = a[0] if _attr(node, "transA", 0) else a[1]
            return out_elems * float(k)
    if op == "MatMul" and in_shapes and in_shapes[0]:
        return out_elems * float(in_shapes[0][-1])
    return 0.0


def _put_pair(row, name, values):
    values = list(values or [])
    if not values:
        return
    if len(values) == 1:
        values = values * 2
    row[_COL[f"{name}_h"]], row[_COL[f"{name}_w"]] = values[0], values[1]


def _put_shape(row, shape):
    """batch, channels, height, width; a rank above 4 folds its trailing dims into width."""
    shape = list(shape)
    if len(shape) > 4:
        shape = shape[:3] + [int(np.prod(shape[3:]))]
    for name, value in zip(("out_batch", "out_channels", "out_height", "out_width"), shape):
        row[_COL[name]] = value


def static_features(graph: ArchGraph) -> dict[str, float]:
    """A layer graph's static features by name."""
    return dict(graph.graph_features)


def op_names(graph: ArchGraph) -> list[str]:
    """The ONNX op type of each node (``other`` for ops outside the vocabulary)."""
    return [graph.vocab[i] for i in graph.ops]
