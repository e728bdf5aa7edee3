"""The network NAS-Bench-201 trained: a ResNet-like macro skeleton of searched cells.

stem conv3x3 -> N cells (C) -> residual reduction -> N cells (2C) -> reduction -> N cells (4C)
-> BN-ReLU -> global average pool -> linear. Operations are ReLU-Conv-BN; parameter counts
match the benchmark's (C=16, N=5: 0.073 M to 1.53 M).
"""
from __future__ import annotations

import torch
from torch import nn

from ..pooling import AvgPool3x3
from .space import EDGES, OPS


class ReLUConvBN(nn.Sequential):
    def __init__(self, c_in, c_out, kernel, stride=1):
        super().__init__(nn.ReLU(inplace=False),
                         nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, bias=False),
                         nn.BatchNorm2d(c_out))


class Zero(nn.Module):
    def forward(self, x):
        return x.mul(0.0)


def make_op(name: str, channels: int) -> nn.Module:
    if name == "none":
        return Zero()
    if name == "skip_connect":
        return nn.Identity()
    if name == "nor_conv_1x1":
        return ReLUConvBN(channels, channels, 1)
    if name == "nor_conv_3x3":
        return ReLUConvBN(channels, channels, 3)
    if name == "avg_pool_3x3":
        return AvgPool3x3()
    raise ValueError(f"unknown NB201 op {name!r}")


class Cell(nn.Module):
    def __init__(self, ops, channels):
        super().__init__()
        self.edges = nn.ModuleList(make_op(OPS[o], channels) for o in ops)

    def forward(self, x):
        nodes = [x]
        for target in (1, 2, 3):
            nodes.append(sum(edge(nodes[src]) for edge, (t, src) in zip(self.edges, EDGES) if t == target))
        return nodes[3]


class ResidualReduction(nn.Module):
    """The fixed stride-2 ResNet basic block between stages."""

    def __init__(self, c_in, c_out):
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, stride=2)
        self.conv_b = ReLUConvBN(c_out, c_out, 3)
        self.shortcut = nn.Sequential(nn.AvgPool2d(2, stride=2), nn.Conv2d(c_in, c_out, 1, bias=False))

    def forward(self, x):
        return self.shortcut(x) + self.conv_b(self.conv_a(x))


class NB201Network(nn.Module):
    def __init__(self, ops, num_classes=10, channels=16, cells_per_stage=5):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, channels, 3, padding=1, bias=False), nn.BatchNorm2d(channels))
        layers, c = [], channels
        for stage in range(3):
            if stage:
                layers.append(ResidualReduction(c, 2 * c))
                c *= 2
            layers.extend(Cell(ops, c) for _ in range(cells_per_stage))
        self.cells = nn.Sequential(*layers)
        self.head = nn.Sequential(nn.BatchNorm2d(c), nn.ReLU(inplace=False))
        self.classifier = nn.Linear(c, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.head(self.cells(self.stem(x)))
        return self.classifier(x.mean(dim=(2, 3)))
