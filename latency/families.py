"""Network families for the latency dataset: randomised variants of well-known networks.

As NNLQP's "unseen structure" set does, each family draws its variants' widths, depths,
kernel sizes and input resolutions within the family's own design (torchvision's builders
with drawn settings), plus networks of this engine's search spaces. A variant is fully
determined by (seed, family, index): the same draw rebuilds the same network, so the dataset
stores its recipe and seed, never the weights.

``FAMILIES`` registers each family as a function ``rng -> Variant`` under its name.
"""
from __future__ import annotations

import dataclasses
import zlib
from typing import Callable

import numpy as np

from narnas.registry import Registry
from predictor.errors import PredictorError

FAMILIES = Registry("network family", error=lambda kind, name, valid: PredictorError(
    f"unknown {kind} {name}; known: {', '.join(valid)}"))


def register_family(draw_variant: Callable) -> Callable:
    """Record ``draw_variant`` (``rng -> Variant``) as the family of its function name."""
    return FAMILIES.register(draw_variant.__name__)(draw_variant)

#: ImageNet-style resolutions drawn for the torchvision families (NNLQP varies the input too).
RESOLUTIONS = (128, 160, 192, 224)


@dataclasses.dataclass
class Variant:
    """One drawn network: the module, its input shape without the batch, what was drawn."""

    module: object
    input_shape: tuple[int, int, int]
    spec: dict


def _pick(rng, values):
    return values[int(rng.integers(len(values)))]


def _res(rng) -> tuple[int, int, int]:
    r = int(_pick(rng, RESOLUTIONS))
    return (3, r, r)


def _div8(x: float) -> int:
    return max(8, int(round(x / 8.0)) * 8)


@register_family
def resnet(rng) -> Variant:
    """ResNet: basic or bottleneck blocks (ResNeXt groups), 1-6 blocks per stage."""
    from torchvision.models.resnet import BasicBlock, Bottleneck, ResNet
    bottleneck = bool(rng.integers(2))
    if bottleneck:
        layers = [int(rng.integers(1, 7)) for _ in range(4)]
        groups, width = _pick(rng, [(1, 64), (1, 48), (1, 80), (8, 8), (32, 4)])
        model = ResNet(Bottleneck, layers, groups=groups, width_per_group=width)
    else:
        layers = [int(rng.integers(1, 5)) for _ in range(4)]
        groups, width = 1, 64
        model = ResNet(BasicBlock, layers)
    shape = _res(rng)
    return Variant(model, shape, {"block": "bottleneck" if bottleneck else "basic", "layers": layers,
                                  "groups": groups, "width_per_group": width, "resolution": shape[1]})


@register_family
def vgg(rng) -> Variant:
    """VGG: 1-4 convs per stage, width 0.25-1x, with or without BatchNorm, classifier width."""
    from torchvision.models.vgg import VGG, make_layers
    mult = float(_pick(rng, [0.25, 0.375, 0.5, 0.75, 1.0]))
    depths = [int(rng.integers(1, 3)), int(rng.integers(1, 3)), int(rng.integers(2, 5)),
              int(rng.integers(2, 5)), int(rng.integers(2, 5))]
    cfg: list = []
    for depth, width in zip(depths, (64, 128, 256, 512, 512)):
        cfg += [_div8(width * mult)] * depth + ["M"]
    batch_norm = bool(rng.integers(2))
    model = VGG(make_layers(cfg, batch_norm=batch_norm), init_weights=False)
    hidden = _div8(4096 * mult)
    import torch.nn as nn
    shape = _res(rng)
    # The classifier reads the feature map at its own size (torchvision pools to 7 x 7, which
    # ONNX cannot export from a map that 7 does not divide).
    model.avgpool = nn.Identity()
    side = shape[1] // 32
    model.classifier = nn.Sequential(nn.Linear(cfg[-2] * side * side, hidden), nn.ReLU(True),
                                     nn.Linear(hidden, hidden), nn.ReLU(True), nn.Linear(hidden, 1000))
    return Variant(model, shape, {"depths": depths, "width_mult": mult, "batch_norm": batch_norm,
                                  "hidden": hidden, "resolution": shape[1]})


@register_family
def alexnet(rng) -> Variant:
    """AlexNet: first kernel 7/9/11, per-layer widths, classifier width."""
    import torch.nn as nn
    mult = float(_pick(rng, [0.5, 0.75, 1.0, 1.25, 1.5]))
    k1 = int(_pick(rng, [7, 9, 11]))
    c = [_div8(w * mult * float(_pick(rng, [0.75, 1.0, 1.25]))) for w in (64, 192, 384, 256, 256)]
    hidden = _div8(4096 * mult / 2)
    shape = _res(rng)
    side = (((shape[1] + 2 * (k1 // 2) - k1) // 4 + 1 - 3) // 2 + 1 - 3) // 2 + 1  # conv1, pool, pool
    side = (side - 3) // 2 + 1
    model = nn.Sequential(
        nn.Conv2d(3, c[0], k1, stride=4, padding=k1 // 2), nn.ReLU(True), nn.MaxPool2d(3, 2),
        nn.Conv2d(c[0], c[1], 5, padding=2), nn.ReLU(True), nn.MaxPool2d(3, 2),
        nn.Conv2d(c[1], c[2], 3, padding=1), nn.ReLU(True),
        nn.Conv2d(c[2], c[3], 3, padding=1), nn.ReLU(True),
        nn.Conv2d(c[3], c[4], 3, padding=1), nn.ReLU(True), nn.MaxPool2d(3, 2),
        nn.Flatten(), nn.Linear(c[4] * side * side, hidden), nn.ReLU(True), nn.Linear(hidden, hidden), nn.ReLU(True),
        nn.Linear(hidden, 1000))
    return Variant(model, shape, {"channels": c, "kernel_1": k1, "hidden": hidden, "resolution": shape[1]})


@register_family
def mobilenetv2(rng) -> Variant:
    """MobileNetV2: width 0.35-1.4x, expansion 3/4/6 and depth per stage."""
    from torchvision.models import MobileNetV2
    width = float(_pick(rng, [0.35, 0.5, 0.75, 1.0, 1.3, 1.4]))
    setting = [[1, 16, 1, 1]]
    for c, n, s in ((24, 2, 2), (32, 3, 2), (64, 4, 2), (96, 3, 1), (160, 3, 2), (320, 1, 1)):
        setting.append([int(_pick(rng, [3, 4, 6])), c, max(1, n + int(rng.integers(-1, 2))), s])
    model = MobileNetV2(width_mult=width, inverted_residual_setting=setting)
    shape = _res(rng)
    return Variant(model, shape, {"width_mult": width, "setting": setting, "resolution": shape[1]})


@register_family
def mobilenetv3(rng) -> Variant:
    """MobileNetV3: kernel 3/5/7 and expansion 3/4/6 per block, 2-4 blocks per stage, width."""
    from torchvision.models.mobilenetv3 import InvertedResidualConfig, MobileNetV3
    width = float(_pick(rng, [0.5, 0.75, 1.0, 1.25]))
    stages = ((24, 2, False, "RE"), (40, 2, True, "RE"), (80, 2, False, "HS"), (112, 1, True, "HS"),
              (160, 2, True, "HS"))
    setting = [InvertedResidualConfig(16, 3, 16, 16, False, "RE", 1, 1, width)]
    cin, drawn = 16, []
    for out, stride, se, act in stages:
        depth = int(rng.integers(2, 5))
        for i in range(depth):
            k, e = int(_pick(rng, [3, 5, 7])), int(_pick(rng, [3, 4, 6]))
            setting.append(InvertedResidualConfig(cin, k, cin * e, out, se, act, stride if i == 0 else 1, 1, width))
            drawn.append([k, e])
            cin = out
    last = _div8(1280 * max(1.0, width))
    model = MobileNetV3(setting, last_channel=last)
    shape = _res(rng)
    return Variant(model, shape, {"width_mult": width, "blocks": drawn, "resolution": shape[1]})


@register_family
def efficientnet(rng) -> Variant:
    """EfficientNet-B0 scaled: width 0.75-1.4x, depth 0.75-1.8x, kernel and expansion per stage."""
    from torchvision.models.efficientnet import EfficientNet, MBConvConfig
    width = float(_pick(rng, [0.75, 1.0, 1.1, 1.2, 1.4]))
    depth = float(_pick(rng, [0.75, 1.0, 1.1, 1.2, 1.4, 1.8]))
    base = ((1, 3, 1, 32, 16, 1), (6, 3, 2, 16, 24, 2), (6, 5, 2, 24, 40, 2), (6, 3, 2, 40, 80, 3),
            (6, 5, 1, 80, 112, 3), (6, 5, 2, 112, 192, 4), (6, 3, 1, 192, 320, 1))
    setting, drawn = [], []
    for e, k, s, cin, cout, n in base:
        k = int(_pick(rng, [3, 5, 7])) if n > 1 else k
        e = int(_pick(rng, [4, 6])) if e > 1 else e
        setting.append(MBConvConfig(e, k, s, cin, cout, n, width_mult=width, depth_mult=depth))
        drawn.append([e, k])
    model = EfficientNet(setting, dropout=0.2, last_channel=_div8(1280 * width))
    shape = _res(rng)
    return Variant(model, shape, {"width_mult": width, "depth_mult": depth, "stages": drawn, "resolution": shape[1]})


@register_family
def mnasnet(rng) -> Variant:
    """MnasNet: alpha 0.5-1.5, kernel 3/5, expansion 3/6 and repeats per stack."""
    from torchvision.models import MNASNet
    from torchvision.models.mnasnet import _stack
    alpha = float(_pick(rng, [0.5, 0.75, 1.0, 1.3, 1.5]))
    model = MNASNet(alpha)
    # Redraw the six inverted-residual stacks (layers 8-13) around MnasNet-A1's settings.
    stacks = [stack for stack in model.layers[8:14]]
    drawn = []
    for i, (stride, base_repeats) in enumerate(((2, 3), (2, 3), (2, 3), (1, 2), (2, 4), (1, 1))):
        first = stacks[i][0]
        cin, cout = first.layers[0].in_channels, first.layers[-1].num_features
        k, e = int(_pick(rng, [3, 5])), int(_pick(rng, [3, 6]))
        repeats = max(1, base_repeats + int(rng.integers(-1, 2)))
        model.layers[8 + i] = _stack(cin, cout, k, stride, e, repeats, 1 - 0.9997)
        drawn.append([k, e, repeats])
    shape = _res(rng)
    return Variant(model, shape, {"alpha": alpha, "stacks": drawn, "resolution": shape[1]})


@register_family
def squeezenet(rng) -> Variant:
    """SqueezeNet: stem 64/96, per-Fire expand widths, squeeze ratio."""
    import torch.nn as nn
    from torchvision.models.squeezenet import Fire
    mult = float(_pick(rng, [0.5, 0.75, 1.0, 1.25, 1.5]))
    squeeze_ratio = float(_pick(rng, [0.125, 0.25, 0.5]))
    stem = int(_pick(rng, [64, 96]))
    layers: list = [nn.Conv2d(3, stem, 3 if stem == 64 else 7, stride=2), nn.ReLU(True), nn.MaxPool2d(3, 2, ceil_mode=True)]
    cin, expands = stem, []
    for i, base in enumerate((128, 128, 256, 256, 384, 384, 512, 512)):
        e = _div8(base * mult * float(_pick(rng, [0.75, 1.0, 1.25])))
        layers.append(Fire(cin, max(8, _div8(e * squeeze_ratio)), e // 2, e // 2))
        cin, expands = e, expands + [e]
        if i in (1, 3):
            layers.append(nn.MaxPool2d(3, 2, ceil_mode=True))
    model = nn.Sequential(*layers, nn.Dropout(0.5), nn.Conv2d(cin, 1000, 1), nn.ReLU(True),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten())
    shape = _res(rng)
    return Variant(model, shape, {"stem": stem, "expands": expands, "squeeze_ratio": squeeze_ratio,
                                  "resolution": shape[1]})


@register_family
def googlenet(rng) -> Variant:
    """GoogLeNet: every Inception branch's width drawn around the published one."""
    import torch.nn as nn
    from torchvision.models.googlenet import BasicConv2d, GoogLeNet, Inception, InceptionAux
    mult = float(_pick(rng, [0.5, 0.75, 1.0, 1.25]))
    channels = [192]  # the running input width: each scaled block reads what the last wrote

    def scaled_inception(_in, ch1, red3, ch3, red5, ch5, pool, conv_block=None):
        outs = [_div8(c * mult * float(_pick(rng, [0.75, 1.0, 1.25]))) for c in (ch1, red3, ch3, red5, ch5, pool)]
        block = Inception(channels[-1], *outs, conv_block=conv_block)
        channels.append(outs[0] + outs[2] + outs[4] + outs[5])
        return block

    model = GoogLeNet(aux_logits=False, init_weights=False, blocks=[BasicConv2d, scaled_inception, InceptionAux])
    model.fc = nn.Linear(channels[-1], 1000)
    shape = _res(rng)
    return Variant(model, shape, {"width_mult": mult, "channels": channels, "resolution": shape[1]})


@register_family
def regnet(rng) -> Variant:
    """RegNet: depth, w_0, w_a, w_m, group width and SE drawn from RegNet's design space."""
    from torchvision.models.regnet import BlockParams, RegNet
    # RegNetX/Y's design space (Radosavovic et al. 2020), capped for a CPU-timed dataset.
    params = {"depth": int(rng.integers(10, 26)), "w_0": int(_pick(rng, list(range(24, 129, 8)))),
              "w_a": float(np.round(rng.uniform(12, 48), 2)), "w_m": float(np.round(rng.uniform(2.0, 2.8), 2)),
              "group_width": int(_pick(rng, [8, 16, 24, 32, 48])),
              "se_ratio": _pick(rng, [None, 0.25])}
    model = RegNet(BlockParams.from_init_params(**params))
    shape = _res(rng)
    return Variant(model, shape, {**params, "resolution": shape[1]})


def _space_family(space_name: str, **config) -> Callable:
    def build(rng) -> Variant:
        from spaces import get_space
        space = get_space(space_name)
        arch = space.sample(rng)
        model = space.build_model(arch, config or None)
        size = getattr(arch, "r", None)
        shape = (3, size, size) if size else tuple(space.input_shape)
        return Variant(model, shape, {"space": space_name, "arch": space.to_json(arch), "resolution": shape[1]})
    build.__name__ = space_name
    build.__doc__ = f"this engine's {space_name} space: uniformly sampled archs at the space's input size"
    return build


for _space in ("nb201", "darts", "ofa_mbv3"):
    register_family(_space_family(_space))


def family_names() -> list[str]:
    """Every family, in the order a build of ``all`` draws them."""
    return FAMILIES.registered()


def check_families(names) -> list[str]:
    names, known = list(names), family_names()
    unknown = [n for n in names if n not in known]
    if unknown:
        raise PredictorError(f"unknown network family {', '.join(unknown)}; known: {', '.join(known)}")
    if not names:
        raise PredictorError(f"--families needs at least one of: {', '.join(known)}")
    return names


def variant_rng(seed: int, family: str, index: int) -> np.random.Generator:
    """The generator of one variant: fixed by the build's seed, the family and the index."""
    return np.random.default_rng([int(seed), zlib.crc32(family.encode()), int(index)])


def draw(family: str, seed: int, index: int) -> Variant:
    """Variant ``index`` of ``family`` for the build seed ``seed`` (weights drawn from it too)."""
    import torch
    rng = variant_rng(seed, family, index)
    torch.manual_seed(int(rng.integers(2 ** 31)))
    return FAMILIES.get(family)(rng)
