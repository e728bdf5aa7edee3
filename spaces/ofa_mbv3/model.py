"""Subnets of OFA's MobileNetV3 supernet as standalone PyTorch modules, built by the ``ofa``
package (``OFAMobileNetV3.set_active_subnet`` then ``get_active_subnet(preserve_weight=True)``),
with the supernet's weights when a weights file is given."""
from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from ..errors import DataFileError
from narnas.files import default_data_dir

ENV_VAR = "NARNAS_OFA_SUPERNET"
WHERE = "the Once-for-All release (github.com/mit-han-lab/once-for-all, file ofa_nets/ofa_mbv3_d234_e346_k357_w1.0)"


def supernet_file(path: str | None, width_mult: float) -> Path | None:
    """The supernet weights: ``path``, then ``$NARNAS_OFA_SUPERNET``, then the data folder's
    official file name; None when none is given and the data folder has none (fresh weights)."""
    given = path or os.environ.get(ENV_VAR)
    if given:
        file = Path(given).expanduser()
        if not file.exists():
            raise DataFileError(f"OFA supernet weights {file} not found; get them from {WHERE}, then pass "
                                f"--space-set supernet=PATH or set {ENV_VAR}")
        return file
    default = default_data_dir() / f"ofa_mbv3_d234_e346_k357_w{width_mult}"
    return default if default.exists() else None


@lru_cache(maxsize=4)
def supernet(width_mult: float, num_classes: int, dropout: float, weights: str | None):
    """The elastic supernet (built once per process: ~0.1 s, the weights ~0.5 s more)."""
    import torch
    from ofa.imagenet_classification.elastic_nn.networks import OFAMobileNetV3
    net = OFAMobileNetV3(n_classes=num_classes, dropout_rate=dropout, width_mult=width_mult,
                         ks_list=[3, 5, 7], expand_ratio_list=[3, 4, 6], depth_list=[2, 3, 4])
    if weights is not None:
        try:
            state = torch.load(weights, map_location="cpu", weights_only=False)
            net.load_state_dict(state.get("state_dict", state))
        except Exception as err:
            raise DataFileError(f"{weights}: not OFA MobileNetV3 w{width_mult} supernet weights "
                                f"({type(err).__name__}: {str(err).splitlines()[0][:120]})") from None
    return net


def build_subnet(arch, width_mult: float, num_classes: int, dropout: float, weights: str | None):
    file = supernet_file(weights, width_mult)
    net = supernet(width_mult, num_classes, dropout, None if file is None else str(file))
    net.set_active_subnet(ks=list(arch.ks), e=list(arch.e), d=list(arch.d))
    return net.get_active_subnet(preserve_weight=True)
