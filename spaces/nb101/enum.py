"""Enumerate every unique NAS-Bench-101 cell (423,624 of them) in well under a minute.

The official generator hashes every (matrix, labelling) pair - hours in Python.
Here the work is split so that only one representative per isomorphism class is hashed:

1. all upper-triangular matrices of n vertices with <= 9 edges whose every vertex is on an
   input -> output path (bit tricks over all 2^(n(n-1)/2) matrices at once);
2. their unlabelled isomorphism classes: the minimum, over all permutations of the inner
   vertices, of the permuted matrix's bit code; each class keeps its automorphisms;
3. per class, the labellings up to those automorphisms (orbit minimum of base-3 codes);
4. the official module hash of each representative.

The result is cached (``nb101_enumeration.npz`` in the data folder) in the layout of the
compact NB101 files: padded 7x7 ``adjacency``, ``ops`` codes of GRAPH_VOCAB, ``n_vertices``,
``hash_md5`` (16 bytes), sorted by hash.
"""
from __future__ import annotations

import itertools
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from narnas.files import default_data_dir

from ..files import save_npz_cache
from .space import GRAPH_VOCAB, MAX_EDGES, MAX_VERTICES, OPS, module_hash

CACHE_NAME = "nb101_enumeration.npz"
# hash label (index in OPS) -> op code of GRAPH_VOCAB
_LABEL_TO_CODE = np.array([GRAPH_VOCAB.index(op) for op in OPS], dtype=np.uint8)


def valid_matrices(n: int) -> np.ndarray:
    """All n x n upper-triangular 0/1 matrices with <= MAX_EDGES edges and no prunable vertex."""
    pairs = [(i, j) for i in range(n) for j in range(i + 1, n)]
    codes = np.arange(1 << len(pairs), dtype=np.int64)
    bits = ((codes[:, None] >> np.arange(len(pairs))) & 1).astype(bool)
    bits = bits[bits.sum(1) <= MAX_EDGES]
    edge = {p: bits[:, k] for k, p in enumerate(pairs)}
    ones = np.ones(len(bits), bool)
    from_input = [ones]
    for v in range(1, n):
        from_input.append(np.logical_or.reduce([from_input[u] & edge[u, v] for u in range(v)]))
    to_output = [None] * n
    to_output[n - 1] = ones
    for v in range(n - 2, -1, -1):
        to_output[v] = np.logical_or.reduce([to_output[w] & edge[v, w] for w in range(v + 1, n)])
    ok = np.logical_and.reduce([from_input[v] & to_output[v] for v in range(n)])
    mats = np.zeros((int(ok.sum()), n, n), dtype=np.uint8)
    for k, (i, j) in enumerate(pairs):
        mats[:, i, j] = bits[ok, k]
    return mats


def _inner_permutations(n: int) -> np.ndarray:
    """Vertex permutations that fix the input (0) and the output (n-1)."""
    inner = list(itertools.permutations(range(1, n - 1)))
    return np.array([(0, *p, n - 1) for p in inner], dtype=np.int64).reshape(len(inner), n)


def _permuted_codes(mats: np.ndarray, perms: np.ndarray) -> np.ndarray:
    """codes[m, p] = bit code of matrix m with vertex v renamed perms[p, v] (bit a*n+b for edge a->b)."""
    n = mats.shape[1]
    codes = np.zeros((len(mats), len(perms)), dtype=np.int64)
    for i, j in zip(*np.triu_indices(n, 1)):
        weight = np.int64(1) << (perms[:, i] * n + perms[:, j])  # [P]
        codes += mats[:, i, j, None].astype(np.int64) * weight[None, :]
    return codes


def enumerate_cells(n: int):
    """(adjacency [K, n, n], hash labels [K, n]) of every unique cell with n vertices."""
    if n == 2:
        return np.array([[[0, 1], [0, 0]]], dtype=np.uint8), np.array([[-1, -2]])
    mats = valid_matrices(n)
    perms = _inner_permutations(n)
    codes = _permuted_codes(mats, perms)
    canonical = codes.min(axis=1)
    _, first = np.unique(canonical, return_index=True)
    k_inner = n - 2
    labellings = np.array(list(itertools.product(range(len(OPS)), repeat=k_inner)), dtype=np.int64)
    powers = len(OPS) ** np.arange(k_inner)[::-1]
    adjacency, labels = [], []
    for rep in first:
        # Automorphisms of this structure: permutations that give back its own code.
        identity_code = codes[rep, 0]  # perms[0] is the identity
        autos = perms[codes[rep] == identity_code][:, 1:-1] - 1  # on inner positions 0..k-1
        # labelling l mapped by automorphism a: l'[a[i]] = l[i]  =>  l' = l[:, inverse(a)]
        inverse = np.argsort(autos, axis=1)
        orbit_codes = (labellings[:, inverse] * powers).sum(-1)  # [L, A]
        own = (labellings * powers).sum(-1)
        keep = own == orbit_codes.min(axis=1)  # one per orbit: its minimum code
        for lab in labellings[keep]:
            adjacency.append(mats[rep])
            labels.append([-1, *lab, -2])
    return np.array(adjacency, dtype=np.uint8), np.array(labels, dtype=np.int64)


def compute_enumeration() -> dict[str, np.ndarray]:
    """Every unique NB101 cell, with its official hash, in the compact npz layout."""
    adjacency, ops, n_vertices, hashes = [], [], [], []
    for n in range(2, MAX_VERTICES + 1):
        mats, labels = enumerate_cells(n)
        hashes.extend(_hash_all(mats, labels))
        padded = np.zeros((len(mats), MAX_VERTICES, MAX_VERTICES), dtype=np.uint8)
        padded[:, :n, :n] = mats
        codes = np.full((len(mats), MAX_VERTICES), 255, dtype=np.uint8)
        codes[:, 0] = GRAPH_VOCAB.index("input")
        codes[:, n - 1] = GRAPH_VOCAB.index("output")
        codes[:, 1:n - 1] = _LABEL_TO_CODE[labels[:, 1:-1]]
        adjacency.append(padded)
        ops.append(codes)
        n_vertices.append(np.full(len(mats), n, dtype=np.uint8))
    hash_md5 = np.frombuffer(b"".join(hashes), dtype=np.uint8).reshape(-1, 16)
    order = np.lexsort(hash_md5.T[::-1])
    table = {"hash_md5": hash_md5[order], "n_vertices": np.concatenate(n_vertices)[order],
             "adjacency": np.concatenate(adjacency)[order], "ops": np.concatenate(ops)[order],
             "ops_vocab": np.array(GRAPH_VOCAB)}
    if len(np.unique(table["hash_md5"], axis=0)) != len(order):
        raise RuntimeError("two non-isomorphic NB101 cells share a module hash")
    return table


def _hash_chunk(args) -> list[bytes]:
    mats, labels = args
    return [bytes.fromhex(module_hash.__wrapped__(tuple(map(tuple, m)), tuple(lab)))
            for m, lab in zip(mats.tolist(), labels.tolist())]


def _hash_all(mats: np.ndarray, labels: np.ndarray) -> list[bytes]:
    """Official hashes of many cells, on every core (the MD5 rounds are the slow part)."""
    workers = os.cpu_count() or 1
    if len(mats) < 20_000 or workers == 1:
        return _hash_chunk((mats, labels))
    bounds = np.linspace(0, len(mats), 4 * workers + 1).astype(int)
    chunks = [(mats[a:b], labels[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]
    with ProcessPoolExecutor(workers) as pool:
        return [h for part in pool.map(_hash_chunk, chunks) for h in part]


_loaded: dict | None = None


def load_enumeration(cache_dir: Path | None = None, use_cache: bool = True) -> dict[str, np.ndarray]:
    """The enumeration, from the cache file when present, else computed (and cached)."""
    global _loaded
    if _loaded is not None and use_cache and cache_dir is None:
        return _loaded
    path = (cache_dir or default_data_dir()) / CACHE_NAME
    table = None
    if use_cache and path.exists():
        try:
            with np.load(path) as data:
                table = {k: data[k] for k in data.files}
        except (OSError, ValueError, EOFError):
            table = None  # a corrupt cache is recomputed
    if table is None:
        table = compute_enumeration()
        if use_cache:
            save_npz_cache(path, table)
    if cache_dir is None and use_cache:
        _loaded = table
    return table
