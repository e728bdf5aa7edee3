"""The DARTS networks. CIFAR: a 3x3 stem of 3C channels, ``layers`` cells with reduction
cells (stride 2, channels doubled) at 1/3 and 2/3 of the depth, an optional auxiliary
head after the second reduction, global average pooling and a linear classifier.
ImageNet (``stem="imagenet"``, the paper's mobile setting): two stems - 3x3 stride-2
convolutions to C/2 and C channels, then a third to C channels - so the first cell reads
56 and 28 px maps from a 224 px image, and an auxiliary head for 14 px maps.
Operations and their hyper-parameters are the DARTS paper's.
"""
from __future__ import annotations

import torch
from torch import nn

from ..pooling import AvgPool3x3


class ReLUConvBN(nn.Sequential):
    def __init__(self, c_in, c_out, kernel, stride, padding):
        super().__init__(nn.ReLU(inplace=False), nn.Conv2d(c_in, c_out, kernel, stride, padding, bias=False),
                         nn.BatchNorm2d(c_out))


class DilConv(nn.Sequential):
    """ReLU, depthwise (dilated) conv, pointwise conv, BN."""

    def __init__(self, c_in, c_out, kernel, stride, padding, dilation):
        super().__init__(nn.ReLU(inplace=False),
                         nn.Conv2d(c_in, c_in, kernel, stride, padding, dilation=dilation, groups=c_in, bias=False),
                         nn.Conv2d(c_in, c_out, 1, bias=False), nn.BatchNorm2d(c_out))


class SepConv(nn.Sequential):
    """Two DilConv(dilation 1) blocks, the first with the stride."""

    def __init__(self, c_in, c_out, kernel, stride, padding):
        super().__init__(DilConv(c_in, c_in, kernel, stride, padding, 1), DilConv(c_in, c_out, kernel, 1, padding, 1))


class FactorizedReduce(nn.Module):
    """Halve the resolution with two stride-2 1x1 convs on offset grids, concatenated."""

    def __init__(self, c_in, c_out):
        super().__init__()
        self.relu = nn.ReLU(inplace=False)
        self.conv1 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.conv2 = nn.Conv2d(c_in, c_out - c_out // 2, 1, stride=2, bias=False)
        self.bn = nn.BatchNorm2d(c_out)

    def forward(self, x):
        x = self.relu(x)
        return self.bn(torch.cat([self.conv1(x), self.conv2(x[:, :, 1:, 1:])], dim=1))


def make_op(name: str, c: int, stride: int) -> nn.Module:
    if name == "max_pool_3x3":
        return nn.MaxPool2d(3, stride, 1)
    if name == "avg_pool_3x3":
        return AvgPool3x3() if stride == 1 else nn.AvgPool2d(3, stride, 1, count_include_pad=False)
    if name == "skip_connect":
        return nn.Identity() if stride == 1 else FactorizedReduce(c, c)
    if name.startswith("sep_conv_"):
        k = int(name[-1])
        return SepConv(c, c, k, stride, k // 2)
    if name.startswith("dil_conv_"):
        k = int(name[-1])
        return DilConv(c, c, k, stride, k - 1, 2)
    raise ValueError(f"unknown DARTS operation {name!r}")


def drop_path(x, p: float):
    keep = torch.empty(x.shape[0], 1, 1, 1, device=x.device).bernoulli_(1 - p)
    return x / (1 - p) * keep


class Cell(nn.Module):
    def __init__(self, edges, c_prev_prev, c_prev, c, reduction, reduction_prev):
        super().__init__()
        self.reduction = reduction
        self.pre0 = FactorizedReduce(c_prev_prev, c) if reduction_prev else ReLUConvBN(c_prev_prev, c, 1, 1, 0)
        self.pre1 = ReLUConvBN(c_prev, c, 1, 1, 0)
        self.inputs = [src for _, src in edges]
        self.ops = nn.ModuleList(make_op(op, c, 2 if reduction and src < 2 else 1) for op, src in edges)
        self.identity = [isinstance(op, nn.Identity) for op in self.ops]

    def forward(self, s0, s1, drop_prob: float = 0.0):
        states = [self.pre0(s0), self.pre1(s1)]
        for node in range(len(self.ops) // 2):
            total = 0
            for index in (2 * node, 2 * node + 1):
                h = self.ops[index](states[self.inputs[index]])
                if self.training and drop_prob > 0 and not self.identity[index]:
                    h = drop_path(h, drop_prob)
                total = total + h
            states.append(total)
        return torch.cat(states[2:], dim=1)


class AuxiliaryHead(nn.Module):
    """After the second reduction: on the CIFAR network's 8x8 maps (pooling stride 3) or the
    ImageNet network's 14x14 maps at 224 px (stride 2)."""

    def __init__(self, c, num_classes, pool_stride: int = 3):
        super().__init__()
        self.features = nn.Sequential(
            nn.ReLU(inplace=True), nn.AvgPool2d(5, stride=pool_stride, padding=0, count_include_pad=False),
            nn.Conv2d(c, 128, 1, bias=False), nn.BatchNorm2d(128), nn.ReLU(inplace=True),
            nn.Conv2d(128, 768, 2, bias=False), nn.BatchNorm2d(768), nn.ReLU(inplace=True))
        self.classifier = nn.Linear(768, num_classes)

    def forward(self, x):
        return self.classifier(self.features(x).flatten(1))


class DartsNetwork(nn.Module):
    """``forward`` returns the logits, or (logits, auxiliary logits) in training with the
    auxiliary head. ``drop_path_prob`` is set by the trainer (DARTS ramps it up linearly)."""

    def __init__(self, arch, num_classes=10, channels=36, layers=20, auxiliary=False, drop_path=0.0,
                 stem: str = "cifar"):
        super().__init__()
        if layers < 3:
            raise ValueError(f"a DARTS network needs at least 3 layers (two of them reductions), got {layers}")
        if stem not in ("cifar", "imagenet"):
            raise ValueError(f"stem must be cifar or imagenet, got {stem!r}")
        self.drop_path_prob = drop_path
        self.imagenet = stem == "imagenet"
        if self.imagenet:
            half = channels // 2
            self.stem0 = nn.Sequential(
                nn.Conv2d(3, half, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(half), nn.ReLU(inplace=True),
                nn.Conv2d(half, channels, 3, stride=2, padding=1, bias=False), nn.BatchNorm2d(channels))
            self.stem1 = nn.Sequential(nn.ReLU(inplace=True), nn.Conv2d(channels, channels, 3, stride=2, padding=1,
                                                                        bias=False), nn.BatchNorm2d(channels))
            c_pp, c_p, c = channels, channels, channels
            reduction_prev = True  # the first cell's s0 (stem0) has twice the resolution of its s1
        else:
            width = 3 * channels
            self.stem = nn.Sequential(nn.Conv2d(3, width, 3, padding=1, bias=False), nn.BatchNorm2d(width))
            c_pp, c_p, c = width, width, channels
            reduction_prev = False
        self.cells = nn.ModuleList()
        self.aux_after = 2 * layers // 3
        aux_channels = None
        for i in range(layers):
            reduction = i in (layers // 3, 2 * layers // 3)
            if reduction:
                c *= 2
            edges = arch.reduce if reduction else arch.normal
            self.cells.append(Cell(edges, c_pp, c_p, c, reduction, reduction_prev))
            reduction_prev = reduction
            c_pp, c_p = c_p, 4 * c
            if i == self.aux_after:
                aux_channels = c_p
        self.auxiliary = (AuxiliaryHead(aux_channels, num_classes, pool_stride=2 if self.imagenet else 3)
                          if auxiliary else None)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_p, num_classes)

    def forward(self, x):
        if self.imagenet:
            s0 = self.stem0(x)
            s1 = self.stem1(s0)
        else:
            s0 = s1 = self.stem(x)
        aux = None
        for i, cell in enumerate(self.cells):
            s0, s1 = s1, cell(s0, s1, self.drop_path_prob)
            if i == self.aux_after and self.auxiliary is not None and self.training:
                aux = self.auxiliary(s1)
        logits = self.classifier(self.pool(s1).flatten(1))
        return (logits, aux) if aux is not None else logits


def count_parameters(model: nn.Module, include_auxiliary: bool = False) -> int:
    """Parameters as DARTS-family papers count them: the auxiliary head excluded."""
    return sum(p.numel() for name, p in model.named_parameters() if include_auxiliary or not name.startswith("auxiliary."))
