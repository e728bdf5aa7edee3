"""The network NAS-Bench-101 trained: stem, 3 stacks of 3 cells, downsampling between stacks.

stem conv3x3-BN-ReLU (128) -> [cell x3] -> maxpool/2, channels x2 -> [cell x3] -> ... ->
global average pool -> linear. Inside a cell, the output channels are split over the
vertices that feed the output (their outputs are concatenated); inputs are projected by
1x1 conv-BN-ReLU, interior edges truncate channels, and an input -> output edge adds a
projection of the input. This reproduces the benchmark's trainable-parameter counts.
"""
from __future__ import annotations

import numpy as np
import torch
from torch import nn


class ConvBNReLU(nn.Sequential):
    def __init__(self, c_in, c_out, kernel):
        super().__init__(nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2, bias=False),
                         nn.BatchNorm2d(c_out), nn.ReLU(inplace=False))


def vertex_channels(c_in: int, c_out: int, matrix: np.ndarray) -> list[int]:
    """The official channel allocation: vertices feeding the output share c_out (the first
    ones take the remainder); other interior vertices take the max of their successors."""
    n = len(matrix)
    channels = [0] * n
    channels[0], channels[-1] = c_in, c_out
    if n == 2:
        return channels
    fan_in = int(matrix[1:, -1].sum())
    share, extra = divmod(c_out, fan_in)
    for v in range(1, n - 1):
        if matrix[v, -1]:
            channels[v] = share + (1 if extra > 0 else 0)
            extra -= 1
    for v in range(n - 3, 0, -1):
        if not matrix[v, -1]:
            channels[v] = max([channels[d] for d in range(v + 1, n - 1) if matrix[v, d]], default=0)
    return channels


def _vertex_op(op: str, channels: int) -> nn.Module:
    if op == "conv3x3-bn-relu":
        return ConvBNReLU(channels, channels, 3)
    if op == "conv1x1-bn-relu":
        return ConvBNReLU(channels, channels, 1)
    if op == "maxpool3x3":
        return nn.MaxPool2d(3, stride=1, padding=1)
    raise ValueError(f"unknown NB101 op {op!r}")


class Cell(nn.Module):
    def __init__(self, matrix: np.ndarray, ops, c_in: int, c_out: int):
        super().__init__()
        self.matrix = matrix
        n = len(matrix)
        self.channels = vertex_channels(c_in, c_out, matrix)
        # One input projection per vertex that reads the cell input (the output's one is added).
        self.proj = nn.ModuleDict({str(v): ConvBNReLU(c_in, self.channels[v], 1)
                                   for v in range(1, n) if matrix[0, v]})
        self.ops = nn.ModuleDict({str(v): _vertex_op(ops[v], self.channels[v]) for v in range(1, n - 1)})

    def forward(self, x):
        n, m = len(self.matrix), self.matrix
        values = [x]
        for v in range(1, n - 1):
            inputs = [values[s][:, :self.channels[v]] for s in range(1, v) if m[s, v]]
            if m[0, v]:
                inputs.append(self.proj[str(v)](x))
            values.append(self.ops[str(v)](sum(inputs)))
        concat = [values[v] for v in range(1, n - 1) if m[v, -1]]
        if not concat:
            return self.proj[str(n - 1)](x)
        out = torch.cat(concat, dim=1) if len(concat) > 1 else concat[0]
        if m[0, -1]:
            out = out + self.proj[str(n - 1)](x)
        return out


class NB101Network(nn.Module):
    def __init__(self, matrix, ops, num_classes=10, stem_channels=128, num_stacks=3, cells_per_stack=3):
        super().__init__()
        matrix = np.asarray(matrix)
        layers = [ConvBNReLU(3, stem_channels, 3)]
        c = stem_channels
        for stack in range(num_stacks):
            c_out = c
            if stack:
                layers.append(nn.MaxPool2d(2, stride=2))
                c_out = 2 * c
            for _ in range(cells_per_stack):
                layers.append(Cell(matrix, ops, c, c_out))
                c = c_out
        self.features = nn.Sequential(*layers)
        self.classifier = nn.Linear(c, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).mean(dim=(2, 3)))
