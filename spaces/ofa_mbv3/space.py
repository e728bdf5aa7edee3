"""Once-for-All's elastic MobileNetV3 (``ofa_mbv3``): whole mobile networks, not cells.

A subnet of OFA's supernet: 5 stages of up to 4 inverted-residual blocks (20 blocks). Per
stage a depth d in {2, 3, 4} (the first d blocks run); per block a kernel size ks in
{3, 5, 7} and an expand ratio e in {3, 4, 6}; per network an input resolution r
(128..224 px in steps of 4 by default). The width multiplier (1.0 or 1.2) is an option
of the space, as it is of OFA's supernets.

The JSON form is OFA's own dict ``{"ks": [20 ints], "e": [20 ints], "d": [5 ints], "r": int}``
(``"r": [224]`` and ``"image_size"`` are accepted too). Blocks a stage does not run carry
no information: an architecture stores them as ks = 3, e = 3, so two JSON forms of one
subnet are one architecture and one key.

The network's layers (stem, the fixed first block, the active blocks, the final expand,
the feature mix and the classifier) are described by :func:`layers`, from which the
graph, the parameter and MAC counts and the Note10 latency are computed without
building the network.
"""
from __future__ import annotations

import dataclasses

import json
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from narnas.config import build
from narnas.errors import ConfigError

from ..base import ArchGraph, GraphEncoding, ModelBuilding, Sampling, SearchSpace
from ..errors import InvalidArchError
from ..registry import register_space

KS = (3, 5, 7)
EXPAND = (3, 4, 6)
DEPTHS = (2, 3, 4)
STAGES = 5
MAX_DEPTH = 4
BLOCKS = STAGES * MAX_DEPTH
RESOLUTIONS = tuple(range(128, 225, 4))
WIDTH_MULTS = (1.0, 1.2)

# OFA's MobileNetV3 (ofa.imagenet_classification.elastic_nn.networks.ofa_mbv3): stem 16,
# the first block 16, the five stages, the final expand and the feature mix, before the
# width multiplier.
BASE_WIDTHS = (16, 16, 24, 40, 80, 112, 160, 960, 1280)
STAGE_STRIDES = (2, 2, 2, 1, 2)
STAGE_HSWISH = (False, False, True, True, True)
STAGE_SE = (False, True, False, True, True)
NUM_CLASSES = 1000

GRAPH_VOCAB = ("input", "stem", "first_block", *(f"mb_k{k}_e{e}" for k in KS for e in EXPAND),
               "final_expand", "feature_mix", "classifier", "output")
NODE_FEATURES = ("kernel", "expand_ratio", "stride", "in_channels", "out_channels", "se", "hswish",
                 "feature_size", "slot")
#: The slot of each layer kind in the full supernet's layer sequence (input, stem, first block,
#: the 20 block slots, final expand, feature mix, classifier, output): a block keeps its slot
#: whatever the depths before it, so NAR-Former's "own position" names the same block in
#: every subnet.
FIRST_BLOCK_SLOT = 3
SLOTS = {"input": 0, "stem": 1, "first_block": 2, "final_expand": FIRST_BLOCK_SLOT + BLOCKS,
         "feature_mix": FIRST_BLOCK_SLOT + BLOCKS + 1, "classifier": FIRST_BLOCK_SLOT + BLOCKS + 2,
         "output": FIRST_BLOCK_SLOT + BLOCKS + 3}


def make_divisible(value: float, divisor: int = 8) -> int:
    """Channels rounded to a multiple of ``divisor``, never more than 10% below ``value``
    (the MobileNet rule OFA uses)."""
    new = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * value else new


@dataclass(frozen=True)
class OFAArch:
    ks: tuple[int, ...]  # 20, inactive blocks 3
    e: tuple[int, ...]  # 20, inactive blocks 3
    d: tuple[int, ...]  # 5
    r: int

    def active(self) -> list[int]:
        """Indices (0..19) of the blocks that run."""
        return [s * MAX_DEPTH + i for s in range(STAGES) for i in range(self.d[s])]


def make_arch(ks, e, d, r, resolutions=RESOLUTIONS) -> OFAArch:
    """A checked, canonical arch: every value in its choices, inactive blocks set to ks 3, e 3."""
    for name, values, length, choices in (("ks", ks, BLOCKS, KS), ("e", e, BLOCKS, EXPAND),
                                          ("d", d, STAGES, DEPTHS)):
        if not isinstance(values, (list, tuple)) or len(values) != length:
            got = len(values) if isinstance(values, (list, tuple)) else type(values).__name__
            raise InvalidArchError(f"an ofa_mbv3 arch has {length} values in {name!r}, got {got}")
        bad = [v for v in values if isinstance(v, bool) or v not in choices]
        if bad:
            raise InvalidArchError(f"{name} value {bad[0]!r} is not one of {', '.join(map(str, choices))}")
    if isinstance(r, bool) or r not in resolutions:
        raise InvalidArchError(f"resolution {r!r} is not one of this space's ({describe_sizes(resolutions)})")
    keep = [(i % MAX_DEPTH) < d[i // MAX_DEPTH] for i in range(BLOCKS)]
    return OFAArch(tuple(int(k) if a else 3 for k, a in zip(ks, keep)),
                   tuple(int(x) if a else 3 for x, a in zip(e, keep)), tuple(int(x) for x in d), int(r))


def describe_sizes(sizes) -> str:
    """``128..224 in steps of 4`` for an even grid, else the list."""
    steps = {b - a for a, b in zip(sizes, sizes[1:])}
    if len(sizes) > 2 and len(steps) == 1:
        return f"{sizes[0]}..{sizes[-1]} in steps of {steps.pop()}"
    return ", ".join(map(str, sizes))


@dataclass(frozen=True)
class Layer:
    """One layer that runs, with the shapes OFA's latency tables and MAC counts use."""
    kind: str  # stem, first_block, mb, final_expand, feature_mix, classifier
    kernel: int
    expand: float
    stride: int
    cin: int
    cout: int
    mid: int  # expanded channels of an inverted-residual block (first block: cin)
    se: bool
    hswish: bool
    size_in: int  # feature-map side at the input
    size_out: int
    residual: bool
    position: int  # block index 0..19 for mb layers, -1 otherwise


@lru_cache(maxsize=65536)
def layers(arch: OFAArch, width_mult: float = 1.0) -> tuple[Layer, ...]:
    """Every layer of the subnet, in order."""
    widths = [make_divisible(w * width_mult) for w in BASE_WIDTHS]
    stem, first, stage_widths, final, last = widths[0], widths[1], widths[2:7], widths[7], widths[8]
    size = (arch.r + 1) // 2
    out = [Layer("stem", 3, 1, 2, 3, stem, stem, False, True, arch.r, size, False, -1),
           Layer("first_block", 3, 1, 1, stem, first, stem, False, False, size, size, stem == first, -1)]
    cin = first
    for stage in range(STAGES):
        for i in range(arch.d[stage]):
            block = stage * MAX_DEPTH + i
            stride = STAGE_STRIDES[stage] if i == 0 else 1
            cout = stage_widths[stage]
            size_out = (size - 1) // stride + 1
            mid = make_divisible(round(cin * arch.e[block]))
            out.append(Layer("mb", arch.ks[block], arch.e[block], stride, cin, cout, mid, STAGE_SE[stage],
                             STAGE_HSWISH[stage], size, size_out, stride == 1 and cin == cout, block))
            cin, size = cout, size_out
    out.append(Layer("final_expand", 1, 1, 1, cin, final, final, False, True, size, size, False, -1))
    out.append(Layer("feature_mix", 1, 1, 1, final, last, last, False, True, 1, 1, False, -1))
    out.append(Layer("classifier", 1, 1, 1, last, NUM_CLASSES, last, False, False, 1, 1, False, -1))
    return tuple(out)


def count_params(arch: OFAArch, width_mult: float = 1.0) -> int:
    """Parameters of the subnet as ``ofa`` builds it (batch-norm weight and bias included)."""
    total = 0
    for L in layers(arch, width_mult):
        if L.kind == "stem":
            total += 9 * L.cin * L.cout + 2 * L.cout
        elif L.kind in ("first_block", "mb"):
            if L.kind == "mb":
                total += L.cin * L.mid + 2 * L.mid  # 1x1 expansion + BN
            total += L.kernel ** 2 * L.mid + 2 * L.mid  # depthwise + BN
            if L.se:
                se_mid = make_divisible(L.mid // 4)
                total += 2 * L.mid * se_mid + se_mid + L.mid  # squeeze and excite, with biases
            total += L.mid * L.cout + 2 * L.cout  # 1x1 projection + BN
        elif L.kind == "final_expand":
            total += L.cin * L.cout + 2 * L.cout
        elif L.kind == "feature_mix":
            total += L.cin * L.cout  # no bias, no BN
        else:
            total += L.cin * L.cout + L.cout
    return total


def count_macs(arch: OFAArch, width_mult: float = 1.0) -> int:
    """Multiply-accumulates of one image's forward pass: convolutions and linear layers
    (batch norm, activations and pooling left out, as OFA's and timm's counts do)."""
    total = 0
    for L in layers(arch, width_mult):
        pixels = L.size_out ** 2
        if L.kind == "stem":
            total += pixels * 9 * L.cin * L.cout
        elif L.kind in ("first_block", "mb"):
            if L.kind == "mb":
                total += L.size_in ** 2 * L.cin * L.mid
            total += pixels * L.kernel ** 2 * L.mid
            if L.se:
                total += 2 * L.mid * make_divisible(L.mid // 4)
            total += pixels * L.mid * L.cout
        else:
            total += pixels * L.cin * L.cout
    return total


@dataclass(frozen=True)
class OFAOptions:
    """The options of the space: the supernet's width multiplier and the resolutions searched."""
    width_mult: float = 1.0
    resolutions: tuple[int, ...] = RESOLUTIONS
    #: A supernet weights file (OFA's ``ofa_mbv3_d234_e346_k357_w1.0`` / ``_w1.2``) whose weights
    #: built subnets inherit; None: $NARNAS_OFA_SUPERNET, then the data folder, else fresh weights.
    supernet: str | None = None

    def validate(self):
        if self.width_mult not in WIDTH_MULTS:
            raise ConfigError(f"ofa_mbv3 width_mult must be one of {', '.join(map(str, WIDTH_MULTS))}, "
                              f"got {self.width_mult}")
        bad = [r for r in self.resolutions if r < 32 or r > 512]
        if not self.resolutions or bad or list(self.resolutions) != sorted(set(self.resolutions)):
            raise ConfigError(f"ofa_mbv3 resolutions must be increasing sizes in 32..512, got {list(self.resolutions)}")


@dataclass(frozen=True)
class OFABuildConfig:
    num_classes: int = NUM_CLASSES
    dropout: float = 0.1


@register_space("ofa_mbv3")
class OFAMobileNetV3Space(SearchSpace, Sampling, GraphEncoding, ModelBuilding):
    """Once-for-All MobileNetV3 subnets: depth, kernel and expansion per block, resolution.

    No Enumeration: about 10^19 subnets per resolution."""

    name = "ofa_mbv3"
    graph_vocab = GRAPH_VOCAB
    max_graph_nodes = 2 + 2 + BLOCKS + 3  # input, stem, first block, 20 blocks, 3 head layers, output
    evaluators = ("ofa-acc-predictor",)
    build_config_class = OFABuildConfig
    options_class = OFAOptions
    input_shape = (3, 224, 224)

    def __init__(self, **options):
        self.options = build(OFAOptions, options, path="space ofa_mbv3 options")
        self.width_mult = self.options.width_mult
        self.resolutions = tuple(self.options.resolutions)
        self.input_shape = (3, self.resolutions[-1], self.resolutions[-1])
        if self.options.supernet:  # a named weights file must exist before any work, not at the first build
            from .model import supernet_file
            # absolute, so Ray workers (another working directory) find the same file
            self.options = dataclasses.replace(
                self.options, supernet=str(supernet_file(self.options.supernet, self.width_mult).resolve()))

    def __reduce__(self):  # pickled by its options (Ray ships spaces to workers)
        return (_rebuild, (self.options,))

    # --- core -----------------------------------------------------------------------------
    def count(self) -> int:
        per_stage = sum((len(KS) * len(EXPAND)) ** d for d in DEPTHS)
        return per_stage ** STAGES * len(self.resolutions)

    def key(self, arch: OFAArch) -> str:
        stages = []
        for s in range(STAGES):
            blocks = range(s * MAX_DEPTH, s * MAX_DEPTH + arch.d[s])
            stages.append(",".join(f"k{arch.ks[b]}e{arch.e[b]}" for b in blocks))
        return f"r{arch.r}|" + "|".join(stages)

    def to_json(self, arch: OFAArch) -> dict:
        return {"ks": list(arch.ks), "e": list(arch.e), "d": list(arch.d), "r": arch.r}

    def from_json(self, obj) -> OFAArch:
        if isinstance(obj, str):
            try:
                obj = json.loads(obj)
            except json.JSONDecodeError as err:
                raise InvalidArchError(f"an ofa_mbv3 arch is a JSON dict: {err}") from None
        if not isinstance(obj, dict):
            raise InvalidArchError(f'an ofa_mbv3 arch is {{"ks": [20], "e": [20], "d": [5], "r": 224}}, '
                                   f"got {type(obj).__name__}")
        unknown = set(obj) - {"ks", "e", "d", "r", "image_size", "w"}
        missing = [k for k in ("ks", "e", "d") if k not in obj]
        if "r" not in obj and "image_size" not in obj:
            missing.append("r")
        if unknown or missing:
            raise InvalidArchError("an ofa_mbv3 arch has keys ks, e, d and r (or image_size)"
                                   + (f"; missing {', '.join(missing)}" if missing else "")
                                   + (f"; unknown {', '.join(sorted(unknown))}" if unknown else ""))
        r = obj.get("r", obj.get("image_size"))
        if isinstance(r, list) and len(r) == 1:
            r = r[0]
        return make_arch(obj["ks"], obj["e"], obj["d"], r, self.resolutions)

    # --- sampling -------------------------------------------------------------------------
    def sample(self, rng) -> OFAArch:
        """Uniform ks, e, d and r, as OFA's ``sample_active_subnet`` and its search draw them."""
        ks = rng.choice(KS, BLOCKS)
        e = rng.choice(EXPAND, BLOCKS)
        d = rng.choice(DEPTHS, STAGES)
        r = self.resolutions[int(rng.integers(len(self.resolutions)))]
        return make_arch(ks.tolist(), e.tolist(), d.tolist(), r, self.resolutions)

    def mutate(self, arch: OFAArch, rng, probability: float = 0.1) -> OFAArch:
        """OFA's evolutionary mutation: each gene (every block's ks and e, every stage's d, the
        resolution) is redrawn with ``probability``; retried until the key changes."""
        def attempt(a, rng):
            ks, e, d, r = list(a.ks), list(a.e), list(a.d), a.r
            for i in range(BLOCKS):
                if rng.random() < probability:
                    ks[i] = int(rng.choice(KS))
                if rng.random() < probability:
                    e[i] = int(rng.choice(EXPAND))
            for s in range(STAGES):
                if rng.random() < probability:
                    d[s] = int(rng.choice(DEPTHS))
            if rng.random() < probability:
                r = self.resolutions[int(rng.integers(len(self.resolutions)))]
            return make_arch(ks, e, d, r, self.resolutions)
        return self.mutate_distinct(arch, rng, attempt)

    def crossover(self, a: OFAArch, b: OFAArch, rng) -> OFAArch:
        """OFA's crossover: every gene (ks and e per block, d per stage, r) from either parent."""
        pick = lambda x, y: [u if rng.random() < 0.5 else v for u, v in zip(x, y)]
        return make_arch(pick(a.ks, b.ks), pick(a.e, b.e), pick(a.d, b.d), a.r if rng.random() < 0.5 else b.r,
                         self.resolutions)

    # --- graph ----------------------------------------------------------------------------
    def to_graph(self, arch: OFAArch) -> ArchGraph:
        """One node per layer that runs plus input and output, in order; each block also reads
        the input of the block before it when it has a residual connection."""
        net = layers(arch, self.width_mult)
        n = len(net) + 2
        ops = np.empty(n, dtype=np.int64)
        ops[0], ops[-1] = 0, len(GRAPH_VOCAB) - 1
        features = np.zeros((n, len(NODE_FEATURES)), dtype=np.float32)
        adjacency = np.eye(n, k=1, dtype=np.uint8)
        features[-1, NODE_FEATURES.index("slot")] = SLOTS["output"]
        for i, L in enumerate(net, start=1):
            name = f"mb_k{L.kernel}_e{L.expand}" if L.kind == "mb" else L.kind
            ops[i] = GRAPH_VOCAB.index(name)
            slot = FIRST_BLOCK_SLOT + L.position if L.kind == "mb" else SLOTS[L.kind]
            features[i] = (L.kernel, L.expand, L.stride, L.cin, L.cout, L.se, L.hswish, L.size_in, slot)
            if L.residual and i + 1 < n:
                adjacency[i - 1, i + 1] = 1  # the block's input is added to its output
        return ArchGraph(ops, adjacency, GRAPH_VOCAB, features, NODE_FEATURES, (("resolution", float(arch.r)),))

    def from_graph(self, graph: ArchGraph) -> OFAArch:
        """The subnet of a graph of ``to_graph``'s form. A block without a residual edge starts a
        stage, which gives the depths. The resolution is the graph's ``resolution`` feature where
        it has one (``to_graph``'s graphs do); a graph of operations and edges alone (one decoded
        by arch2vec) does not carry it and stands for the space's largest resolution."""
        self.check_graph_vocab(graph)
        names = [GRAPH_VOCAB[int(o)] for o in graph.ops]
        head, tail = ["input", "stem", "first_block"], ["final_expand", "feature_mix", "classifier", "output"]
        if len(names) < len(head) + len(tail) or names[:3] != head or names[-4:] != tail:
            raise InvalidArchError(f"an ofa_mbv3 graph is {', '.join(head)}, the blocks, {', '.join(tail)}; got "
                                   f"{names[:3]} ... {names[-4:]}")
        blocks = names[3:-4]
        others = [b for b in blocks if not b.startswith("mb_")]
        if others:
            raise InvalidArchError(f"only mb_k*_e* blocks may stand between first_block and final_expand, got {others[0]!r}")
        adjacency = np.asarray(graph.adjacency) != 0
        starts = [j for j in range(len(blocks)) if not adjacency[2 + j, 4 + j]]
        depths = np.diff([*starts, len(blocks)]).tolist()
        if not starts or starts[0] != 0 or len(depths) != STAGES or any(d not in DEPTHS for d in depths):
            raise InvalidArchError(f"an ofa_mbv3 graph has {STAGES} stages of {'/'.join(map(str, DEPTHS))} blocks, each "
                                   f"starting with a block without a residual edge; got stages of {depths} blocks")
        ks, e = [3] * BLOCKS, [3] * BLOCKS
        for s, start in enumerate(starts):
            for i in range(depths[s]):
                kernel, expand = blocks[start + i][len("mb_k"):].split("_e")
                ks[s * MAX_DEPTH + i], e[s * MAX_DEPTH + i] = int(kernel), int(expand)
        r = dict(graph.graph_features or ()).get("resolution", max(self.resolutions))
        arch = make_arch(ks, e, depths, int(r), self.resolutions)
        if not np.array_equal(self.to_graph(arch).adjacency != 0, adjacency):
            raise InvalidArchError("the graph has edges an ofa_mbv3 subnet does not (a chain of layers plus each "
                                   "residual block's skip edge)")
        return arch

    # --- networks -------------------------------------------------------------------------
    def build_model(self, arch: OFAArch, config=None):
        from .model import build_subnet
        c = self.build_config(config)
        return build_subnet(arch, self.width_mult, c.num_classes, c.dropout, self.options.supernet)

    # --- efficiency (constraint measures, computed without building the network) ----------
    #: The measures this space computes itself, by method name.
    measures = ("params", "macs", "latency_note10")

    def params(self, arch: OFAArch) -> int:
        return count_params(arch, self.width_mult)

    def macs(self, arch: OFAArch) -> int:
        return count_macs(arch, self.width_mult)

    def latency_note10(self, arch: OFAArch) -> float:
        """OFA's Note10 look-up-table latency (ms); only for width_mult 1.2 at the tables' resolutions."""
        from .latency import note10_latency
        return note10_latency(arch, self.width_mult)

    def check_measure(self, name: str) -> None:
        """A SpacesError when ``name`` cannot be measured on every arch of this space."""
        if name == "latency_note10":
            from .latency import check_note10
            check_note10(self)


def _rebuild(options: OFAOptions):
    return OFAMobileNetV3Space(**{k: getattr(options, k) for k in ("width_mult", "resolutions", "supernet")})


#: The largest and the smallest subnet (for tests and docs).
LARGEST = {"ks": [7] * BLOCKS, "e": [6] * BLOCKS, "d": [4] * STAGES, "r": 224}
SMALLEST = {"ks": [3] * BLOCKS, "e": [3] * BLOCKS, "d": [2] * STAGES, "r": 128}
