"""OFA's published accuracy predictor: a surrogate of the ImageNet top-1 accuracy of OFA
MobileNetV3 subnets (the predictor OFA's own evolutionary search uses as its fitness).

An MLP (128 -> 400 -> 400 -> 400 -> 1) on a one-hot code of the subnet: per block slot
(20) the kernel size (3) and the expand ratio (3), zero for blocks that do not run, then
the resolution in one of 8 bins of 16 px from 112. Its output is top-1 as a fraction; it is
reported here in percent. The weights ship with the package (``tables/``, provenance in
``tables/README.md``). It is a surrogate: every figure it produces is labelled so.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from ..errors import DataFileError, SpacesError
from .space import BLOCKS, EXPAND, KS, MAX_DEPTH, OFAArch

WEIGHTS = Path(__file__).parent / "tables" / "ofa_mbv3_acc_predictor.pth"
FEATURES = 2 * 3 * BLOCKS + 8
RESOLUTION_BINS = (112, 16, 8)  # first bin, bin width, bins: 112..239 px


def features(archs: list[OFAArch]) -> np.ndarray:
    """float32 [N, 128]: the predictor's input code, for many archs at once."""
    n = len(archs)
    ks = np.array([a.ks for a in archs], dtype=np.int64).reshape(n, BLOCKS)
    e = np.array([a.e for a in archs], dtype=np.int64).reshape(n, BLOCKS)
    d = np.array([a.d for a in archs], dtype=np.int64).reshape(n, -1)
    r = np.array([a.r for a in archs], dtype=np.int64)
    first, width, bins = RESOLUTION_BINS
    rbin = (r - first) // width
    if np.any((rbin < 0) | (rbin >= bins)):
        bad = int(r[(rbin < 0) | (rbin >= bins)][0])
        raise SpacesError(f"OFA's accuracy predictor covers resolutions {first}..{first + width * bins - 1} px, "
                          f"not {bad}")
    active = (np.arange(BLOCKS) % MAX_DEPTH)[None, :] < np.repeat(d, MAX_DEPTH, axis=1)
    out = np.zeros((n, FEATURES), dtype=np.float32)
    rows, blocks = np.nonzero(active)
    out[rows, blocks * 3 + np.searchsorted(KS, ks[rows, blocks])] = 1
    out[rows, 3 * BLOCKS + blocks * 3 + np.searchsorted(EXPAND, e[rows, blocks])] = 1
    out[np.arange(n), 6 * BLOCKS + rbin] = 1
    return out


@lru_cache(maxsize=2)
def _network(path: str):
    import torch
    from torch import nn
    net = nn.Sequential(nn.Linear(FEATURES, 400), nn.ReLU(), nn.Linear(400, 400), nn.ReLU(),
                        nn.Linear(400, 400), nn.ReLU(), nn.Linear(400, 1))
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        net.load_state_dict(state)
    except Exception as err:
        raise DataFileError(f"{path}: not OFA's MobileNetV3 accuracy predictor "
                            f"({type(err).__name__}: {str(err).splitlines()[0][:120]})") from None
    return net.eval()


def predict_top1(archs: list[OFAArch], weights: str | Path = WEIGHTS) -> np.ndarray:
    """Surrogate ImageNet top-1 (%) of each arch."""
    import torch
    if not Path(weights).exists():
        raise DataFileError(f"OFA accuracy predictor {weights} not found (OFA's acc_predictor.pth, from "
                            "github.com/han-cai/files, folder ofa/)")
    net = _network(str(weights))
    with torch.inference_mode():
        return 100.0 * net(torch.from_numpy(features(archs))).squeeze(1).double().numpy()
