"""python -m bench.io_curves: the input-output model's training curves as the paper plots them.

  python -m bench.io_curves IO_HISTORY.json [--arch2vec PRETRAIN_INFO.json] --out curves.png

Left: the L1 on unseen networks, unseen images and both, each beside its mean-feature baseline
(the paper's Figures 3-4). Right: reconstruction accuracy of operations and edges on the
validation networks, beside plain arch2vec's on its held-out archs when its info JSON is
given (Figures 5-6). ``IO_HISTORY.json`` is ``embeddings io-train --json``'s output,
``PRETRAIN_INFO.json`` ``embeddings info``'s.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from narnas.cli import run_main
from narnas.errors import UserError
from narnas.files import writable_file

SPLITS = (("unseen_networks", "unseen networks"), ("unseen_images", "unseen images"), ("unseen_both", "both unseen"))


class CurvesError(UserError):
    pass


def _history(path: Path, needed: tuple[str, ...], made_by: str) -> list[dict]:
    if not path.is_file():
        raise CurvesError(f"{path} does not exist ({made_by} writes it)")
    try:
        history = json.loads(path.read_text()).get("history")
    except (json.JSONDecodeError, AttributeError):
        raise CurvesError(f"{path} is not {made_by}'s JSON") from None
    if not history or any(key not in history[0] for key in needed):
        raise CurvesError(f"{path} has no per-epoch {', '.join(needed)}: not {made_by}'s JSON")
    return history


def _main(args) -> int:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    out = writable_file(args.out, "--out")
    io = _history(Path(args.history), tuple(f"{s}_l1" for s, _ in SPLITS) + ("reconstruction_ops_accuracy",),
                  "embeddings io-train --json")
    plain = (_history(Path(args.arch2vec), ("held_out_ops_accuracy", "held_out_adj_accuracy"), "embeddings info")
             if args.arch2vec else None)
    fig, (loss_ax, rec_ax) = plt.subplots(1, 2, figsize=(11, 4))
    epochs = [h["epoch"] for h in io]
    for key, label in SPLITS:
        line, = loss_ax.plot(epochs, [h[f"{key}_l1"] for h in io], marker="o", label=label)
        loss_ax.plot(epochs, [h[f"{key}_baseline"] for h in io], linestyle="--", color=line.get_color(),
                     label=f"{label}: mean-feature baseline")
    loss_ax.set_xlabel("epoch")
    loss_ax.set_ylabel("validation L1 (normalised features)")
    loss_ax.legend(fontsize=8)
    for key, label in (("ops", "operations"), ("adj", "edges")):
        line, = rec_ax.plot(epochs, [h[f"reconstruction_{key}_accuracy"] for h in io], marker="o",
                            label=f"IO model, {label} (validation networks)")
        if plain:
            rec_ax.plot([h["epoch"] for h in plain], [h[f"held_out_{key}_accuracy"] for h in plain], linestyle="--",
                        color=line.get_color(), label=f"arch2vec, {label} (held-out archs)")
    rec_ax.set_xlabel("epoch")
    rec_ax.set_ylabel("reconstruction accuracy")
    rec_ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=90)
    plt.close(fig)
    last = io[-1]
    print(json.dumps({"epochs": len(io), **{f"{key}_l1": last[f"{key}_l1"] for key, _ in SPLITS},
                      **{f"{key}_baseline": last[f"{key}_baseline"] for key, _ in SPLITS}}))
    return 0


def build_parser():
    p = argparse.ArgumentParser(prog="python -m bench.io_curves", description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n".join(__doc__.split("\n")[1:]))
    p.add_argument("history", help="embeddings io-train --json output")
    p.add_argument("--arch2vec", help="embeddings info output of the plain arch2vec model, to compare with")
    p.add_argument("--out", required=True, help="the plot (PNG)")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    return run_main(lambda: _main(args))


if __name__ == "__main__":
    sys.exit(main())
