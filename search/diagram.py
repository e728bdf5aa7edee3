"""An arch drawn as SVG from its graph encoding: cells of NB101/NB201/DARTS and whole
networks of ofa_mbv3 alike, with no drawing library.

Nodes are placed in layers by their longest path from a source (top to bottom), each weakly
connected part of the graph (DARTS: the normal and the reduction cell) in its own column.
Each node shows its operation; its numeric attributes (kernel, channels, ...) are its tooltip.
"""
from __future__ import annotations

from html import escape

import numpy as np

from spaces.base import ArchGraph

BOX_W, BOX_H, GAP_X, GAP_Y, PAD = 150, 28, 24, 30, 16


def layers(adjacency: np.ndarray) -> np.ndarray:
    """Longest-path depth of each node (nodes are in topological order)."""
    n = len(adjacency)
    depth = np.zeros(n, dtype=int)
    for j in range(1, n):  # drawing only: a few dozen nodes
        parents = np.flatnonzero(adjacency[:j, j])
        if len(parents):
            depth[j] = depth[parents].max() + 1
    return depth


def components(adjacency: np.ndarray) -> list[np.ndarray]:
    """Weakly connected parts, each as sorted node indices, in order of their first node."""
    n = len(adjacency)
    linked = (adjacency | adjacency.T).astype(bool)
    part = -np.ones(n, dtype=int)
    count = 0
    for start in range(n):
        if part[start] >= 0:
            continue
        stack, part[start] = [start], count
        while stack:
            node = stack.pop()
            for other in np.flatnonzero(linked[node] & (part < 0)):
                part[other] = count
                stack.append(other)
        count += 1
    return [np.flatnonzero(part == c) for c in range(count)]


def node_tooltip(graph: ArchGraph, i: int) -> str:
    if graph.node_features is None:
        return graph.vocab[graph.ops[i]]
    values = ", ".join(f"{name} {value:g}" for name, value in zip(graph.node_feature_names, graph.node_features[i]))
    return f"{graph.vocab[graph.ops[i]]}: {values}"


def arch_svg(graph: ArchGraph, part_names=()) -> str:
    """The graph as one standalone ``<svg>`` element."""
    adjacency = np.asarray(graph.adjacency, dtype=np.uint8)
    depth = layers(adjacency)
    positions: dict[int, tuple[float, float]] = {}
    titles = []
    x0 = PAD
    height = 0.0
    parts = components(adjacency)
    top = PAD + (20 if len(parts) > 1 else 0)
    for index, nodes in enumerate(parts):
        local = depth[nodes] - depth[nodes].min()
        widest = int(np.bincount(local).max())
        part_w = widest * BOX_W + (widest - 1) * GAP_X
        for level in range(local.max() + 1):
            row = nodes[local == level]
            row_w = len(row) * BOX_W + (len(row) - 1) * GAP_X
            for k, node in enumerate(row):
                x = x0 + (part_w - row_w) / 2 + k * (BOX_W + GAP_X)
                y = top + level * (BOX_H + GAP_Y)
                positions[int(node)] = (x, y)
                height = max(height, y + BOX_H)
        if len(parts) > 1:
            name = part_names[index] if index < len(part_names) else f"part {index + 1}"
            titles.append(f'<text class="part" x="{x0 + part_w / 2:.1f}" y="{PAD + 10}" '
                          f'text-anchor="middle">{escape(name)}</text>')
        x0 += part_w + 3 * GAP_X
    width = x0 - 3 * GAP_X + PAD
    edges = []
    for i, j in zip(*np.nonzero(adjacency)):
        (xi, yi), (xj, yj) = positions[int(i)], positions[int(j)]
        x1, y1, x2, y2 = xi + BOX_W / 2, yi + BOX_H, xj + BOX_W / 2, yj
        bend = 0.0 if depth[j] - depth[i] == 1 else 30.0 * (depth[j] - depth[i])  # skips arc round the nodes between
        edges.append(f'<path d="M{x1:.1f},{y1:.1f} C{x1 + bend:.1f},{y1 + GAP_Y:.1f} {x2 + bend:.1f},{y2 - GAP_Y:.1f} '
                     f'{x2:.1f},{y2:.1f}" marker-end="url(#arrow)"/>')
    boxes = []
    for i, (x, y) in sorted(positions.items()):
        op = graph.vocab[graph.ops[i]]
        boxes.append(f'<g class="node" data-op="{escape(op)}"><title>{escape(node_tooltip(graph, i))}</title>'
                     f'<rect x="{x:.1f}" y="{y:.1f}" width="{BOX_W}" height="{BOX_H}" rx="5"/>'
                     f'<text x="{x + BOX_W / 2:.1f}" y="{y + BOX_H / 2 + 4:.1f}" text-anchor="middle">{escape(op)}</text></g>')
    return (f'<svg class="arch" xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height + PAD:.0f}" '
            f'viewBox="0 0 {width:.0f} {height + PAD:.0f}">'
            '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" markerHeight="7" '
            'orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#555"/></marker></defs>'
            '<style>.node rect{fill:#eef3fb;stroke:#36c;stroke-width:1.2}.node text{font:12px sans-serif;fill:#123}'
            'path{fill:none;stroke:#555;stroke-width:1.1}.part{font:bold 13px sans-serif;fill:#333}</style>'
            + "".join(titles) + "".join(edges) + "".join(boxes) + "</svg>")
