"""The look-up-table baseline: every layer of a network timed alone, summed.

nn-Meter predicts a network's latency from its kernels; the simplest form of that idea is a
table: each distinct layer (op type, attributes, input and weight shapes) is rebuilt as a
one-node ONNX model with random weights and timed in onnxruntime once, and a network's
prediction is the sum over its layers, scaled by a line fitted on the training networks
(isolated layers miss the runtime's fusions and cache effects, which the line absorbs
on average, not per network: that is the baseline's known weakness).

The table is kept in the dataset folder (``kernels.jsonl``, append-only, one line per
layer signature and timing setting), so a second bench reads instead of timing; each
network's sum is kept beside it (``kernel_sums.jsonl``), so a second bench does not even
re-read the networks.
"""
from __future__ import annotations

import functools
import hashlib
from pathlib import Path

import numpy as np

from narnas.files import append_jsonl, read_jsonl

from .graph import NO_OPS

KERNELS = "kernels.jsonl"
SUMS = "kernel_sums.jsonl"


def _value_infos(model):
    g = model.graph
    out = {}
    for v in list(g.input) + list(g.value_info) + list(g.output):
        t = v.type.tensor_type
        if t.HasField("shape"):
            out[v.name] = (t.elem_type, tuple(int(d.dim_value) if d.HasField("dim_value") else 0 for d in t.shape.dim))
    return out


def layer_models(model):
    """(signature, build) for every computing layer of ``model`` (shapes inferred first), where
    ``build()`` makes the layer's one-node ModelProto (random weights where the file has none:
    made only for layers not in the table yet); a layer whose input shapes are unknown is left out."""
    import onnx
    from onnx import helper
    model = onnx.shape_inference.infer_shapes(model, strict_mode=False)
    infos = _value_infos(model)
    weights = {t.name: t for t in model.graph.initializer}
    constants = {}
    for node in model.graph.node:
        if node.op_type == "Constant":
            for a in node.attribute:
                if a.name == "value":
                    tensor = onnx.TensorProto()
                    tensor.CopyFrom(a.t)
                    tensor.name = node.output[0]
                    constants[node.output[0]] = tensor
    for node in model.graph.node:
        if node.op_type in NO_OPS or node.op_type == "Constant":
            continue
        inputs, tensors, parts = [], [], [node.op_type]
        ok = True
        for name in node.input:
            if not name:
                continue
            if name in weights or name in constants:
                t = weights.get(name) or constants[name]
                if not (t.raw_data or t.float_data or t.int64_data or t.int32_data or t.double_data):
                    parts.append(f"w{t.data_type}{tuple(t.dims)}")  # a stripped weight: only its shape counts
                else:
                    parts.append(f"c{hashlib.sha1(t.SerializeToString()).hexdigest()[:12]}")
                tensors.append(t)
            elif name in infos and all(infos[name][1]) and infos[name][1]:
                elem, shape = infos[name]
                inputs.append(helper.make_tensor_value_info(name, elem, shape))
                parts.append(f"x{elem}{shape}")
            else:
                ok = False
                break
        if not ok or not inputs:
            continue
        parts += sorted(str(helper.printable_attribute(a)) for a in node.attribute)
        outputs = [helper.make_tensor_value_info(o, infos.get(o, (1, ()))[0], None) for o in node.output if o]
        key = hashlib.sha1("|".join(parts).encode()).hexdigest()
        yield key, functools.partial(_one_node_model, node, inputs, outputs, tensors, model.opset_import,
                                     model.ir_version, key)


def _one_node_model(node, inputs, outputs, tensors, opsets, ir_version, key):
    import onnx
    from onnx import helper, numpy_helper
    rng = np.random.default_rng(int(key[:8], 16))  # the same random weights for the same layer
    inits = []
    for t in tensors:
        if t.raw_data or t.float_data or t.int64_data or t.int32_data or t.double_data:
            tensor = onnx.TensorProto()
            tensor.CopyFrom(t)
        else:
            dtype = helper.tensor_dtype_to_np_dtype(t.data_type)
            tensor = numpy_helper.from_array((rng.standard_normal(tuple(t.dims)) * 0.05).astype(dtype), t.name)
        inits.append(tensor)
    graph = helper.make_graph([node], "layer", inputs, outputs, initializer=inits)
    one = helper.make_model(graph, opset_imports=list(opsets))
    one.ir_version = ir_version
    return one


#: The kernels.jsonl key of what one inference call costs with nothing to compute.
OVERHEAD_KEY = "call-overhead"


def _overhead_model():
    """A one-element Relu: one inference call of onnxruntime with (almost) nothing to compute."""
    from onnx import TensorProto, helper
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])
    graph = helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "overhead", [x], [y])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    return model


class KernelTable:
    """signature -> latency (ms) of the layer alone, for one timing setting, kept on disk.

    A layer timed alone also pays one inference call's fixed cost (Python, the session, the
    input and output copies), tens of microseconds: more than many small layers compute. A
    network runs its layers in one call, so that cost is measured once (a one-element Relu,
    ``OVERHEAD_KEY``) and taken off every layer before the sum."""

    def __init__(self, folder, threads: int = 1, warmup: int = 2, repeats: int = 5, min_seconds: float = 0.01):
        self.path = Path(folder) / KERNELS
        self.setting = {"threads": threads, "warmup": warmup, "repeats": repeats, "min_seconds": min_seconds}
        self.table: dict[str, float] = {}
        self.timed = 0
        for entry in read_jsonl(self.path):
            if entry.get("setting") == self.setting:
                self.table[entry["key"]] = float(entry["ms"])

    @property
    def sum_setting(self) -> dict:
        """What a network's sum depends on: the layers' timing setting, less the call overhead."""
        return {**self.setting, "minus_call_overhead": True}

    def overhead_ms(self) -> float:
        """One inference call's fixed cost (measured once per table, kept with the layers)."""
        if OVERHEAD_KEY not in self.table:
            from .timing import measure
            s = self.setting
            self._record(OVERHEAD_KEY, measure(_overhead_model(), threads=s["threads"], warmup=max(s["warmup"], 10),
                                               repeats=max(s["repeats"], 200)).median_ms)
        return self.table[OVERHEAD_KEY]

    def _record(self, key: str, ms: float) -> None:
        self.table[key] = ms
        append_jsonl(self.path, {"key": key, "ms": ms, "setting": self.setting})

    def network_ms(self, model) -> float:
        """The sum of the network's layers timed alone (each distinct layer timed once), each
        less one call's overhead (never below zero)."""
        from .timing import measure
        overhead = self.overhead_ms()
        total = 0.0
        for key, build in layer_models(model):
            if key not in self.table:
                try:
                    ms = measure(build(), threads=self.setting["threads"], warmup=self.setting["warmup"],
                                 repeats=self.setting["repeats"], min_seconds=self.setting["min_seconds"]).median_ms
                except Exception:  # a layer onnxruntime cannot run alone counts as free
                    ms = 0.0
                self._record(key, ms)
                self.timed += 1
            total += max(self.table[key] - overhead, 0.0)
        return total
