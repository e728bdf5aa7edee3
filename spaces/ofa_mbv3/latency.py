"""OFA's Note10 latency look-up tables: the measured latency (ms) of every layer shape of the
w1.2 MobileNetV3 supernet on a Samsung Note10, at resolutions 160, 176, 192, 208 and 224.

A subnet's latency is the sum over its layers, keyed as OFA's ``MBv3LatencyTable`` keys them
(``expanded_conv-input:28x28x40-output:14x14x80-expand:240-kernel:5-stride:2-idskip:0-se:1-hs:1``,
the expand field holding the expanded channels). The tables ship with the package
(``tables/``, provenance in ``tables/README.md``); they are read with ``yaml.safe_load``.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from ..errors import SpacesError
from .space import OFAArch, layers

TABLES = Path(__file__).parent / "tables"
NOTE10_RESOLUTIONS = (160, 176, 192, 208, 224)
NOTE10_WIDTH = 1.2


@lru_cache(maxsize=None)
def note10_table(resolution: int) -> dict[str, float]:
    """Layer key -> mean latency (ms) at ``resolution``."""
    import yaml
    with open(TABLES / f"note10_{resolution}_lookup_table.yaml") as f:
        raw = yaml.safe_load(f)
    return {key: float(entry["mean"]) for key, entry in raw.items()}


def check_note10(space) -> None:
    """A SpacesError unless every arch of ``space`` has a Note10 latency (w1.2, the tables' resolutions)."""
    missing = [r for r in space.resolutions if r not in NOTE10_RESOLUTIONS]
    if space.width_mult != NOTE10_WIDTH or missing:
        raise SpacesError(
            "latency_note10 needs the tables' network: width_mult 1.2 and resolutions among "
            f"{', '.join(map(str, NOTE10_RESOLUTIONS))} (this space: width_mult {space.width_mult}, resolutions "
            f"{space.resolutions[0]}..{space.resolutions[-1]}); use --space-set width_mult=1.2 "
            "--space-set resolutions=160,176,192,208,224")


def _shape(size, channels) -> str:
    return f"{size}x{size}x{channels}"


def layer_keys(arch: OFAArch, width_mult: float = NOTE10_WIDTH) -> list[str]:
    keys = []
    for L in layers(arch, width_mult):
        if L.kind == "stem":
            keys.append(f"Conv-input:{_shape(arch.r, 3)}-output:{_shape(L.size_out, L.cout)}")
        elif L.kind in ("first_block", "mb"):
            keys.append(f"expanded_conv-input:{_shape(L.size_in, L.cin)}-output:{_shape(L.size_out, L.cout)}"
                        f"-expand:{L.mid}-kernel:{L.kernel}-stride:{L.stride}-idskip:{int(L.residual)}"
                        f"-se:{int(L.se)}-hs:{int(L.hswish)}")
        elif L.kind == "final_expand":
            keys.append(f"Conv_1-input:{_shape(L.size_in, L.cin)}-output:{_shape(L.size_in, L.cout)}")
            keys.append(f"AvgPool2D-input:{_shape(L.size_in, L.cout)}-output:{_shape(1, L.cout)}")
        elif L.kind == "feature_mix":
            keys.append(f"Conv_2-input:{_shape(1, L.cin)}-output:{_shape(1, L.cout)}")
        else:
            keys.append(f"Logits-input:{_shape(1, L.cin)}-output:{L.cout}")
    return keys


def note10_latency(arch: OFAArch, width_mult: float = NOTE10_WIDTH) -> float:
    """The subnet's Note10 latency (ms): the sum of its layers' table entries."""
    if arch.r not in NOTE10_RESOLUTIONS or width_mult != NOTE10_WIDTH:
        raise SpacesError(f"no Note10 latency table for width_mult {width_mult} at resolution {arch.r} "
                          f"(the tables: width_mult 1.2 at {', '.join(map(str, NOTE10_RESOLUTIONS))})")
    table = note10_table(arch.r)
    try:
        return sum(table[key] for key in layer_keys(arch, width_mult))
    except KeyError as err:
        raise SpacesError(f"the Note10 table at {arch.r} px has no entry {err.args[0]!r}") from None
