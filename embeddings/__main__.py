"""``python -m embeddings``: arch2vec embeddings of a space's architectures.

  python -m embeddings pretrain --space nb101 --epochs 8 --out runs/arch2vec/nb101.pt
  python -m embeddings encode --model runs/arch2vec/nb101.pt --data nb101_subset.npz --out emb.npz
  python -m embeddings encode --model runs/arch2vec/nb201.pt --all --out emb.npz
  python -m embeddings info runs/arch2vec/nb101.pt
  python -m embeddings io-train --data runs/io/nb101 --epochs 30 --out runs/arch2vec/nb101_io.pt

``pretrain`` trains the variational graph autoencoder on every architecture of an
enumerable space (NB101: 423,624 cells; NB201: 15,625) or on ``--archs`` distinct samples
(DARTS, OFA: 100,000 by default). The model file is rewritten after every epoch; run the
same command again to continue a killed pretraining (or with more ``--epochs`` to extend a
finished one). Each epoch prints its loss, the reconstruction accuracy of held-out
architectures and the validity and uniqueness of architectures decoded from the prior.

``encode`` writes an ``.npz`` with ``embeddings`` (float32 [archs, dims]), ``keys`` and
``archs`` (the space's text form), from ``--all`` archs, a benchmark file (``--data``),
a file of architectures, one per line (``--archs``), or ``--sample N`` random ones.

``io-train`` trains the input-output extension on a dataset of ``python -m search.io_data``
and the space's architectures; its file serves wherever an arch2vec model file does.
"""
from __future__ import annotations

import argparse
import io
import json
import sys
from pathlib import Path

import numpy as np

from narnas.cli import parse_overrides, prog, run_main
from predictor.errors import PredictorError


def build_parser():
    p = argparse.ArgumentParser(prog=prog("python -m embeddings"), description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__.split("\n", 2)[2])
    sub = p.add_subparsers(dest="command", required=True)
    pre = sub.add_parser("pretrain", help="pretrain arch2vec on a space's architectures")
    pre.add_argument("--space", required=True)
    pre.add_argument("--out", required=True, help="the model file (resumed when it exists)")
    pre.add_argument("--epochs", type=int, default=8, help="(default 8, the paper's)")
    pre.add_argument("--archs", type=int, help="pretrain on this many distinct archs (default: all of an "
                                               "enumerable space, else 100,000 samples)")
    pre.add_argument("--held-out", type=int, default=5000, help="archs kept out to measure reconstruction")
    pre.add_argument("--prior-samples", type=int, default=10_000,
                     help="latent matrices drawn from the prior each epoch for validity / uniqueness (0: off)")
    pre.add_argument("--seed", type=int, default=0)
    pre.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N")
    pre.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                     help="model config: latent_dim, hidden, gin_layers, mlp_layers, dropout, kl_weight, lr, "
                          "batch_size, threads")
    pre.add_argument("--quiet", action="store_true", help="no progress bar")

    enc = sub.add_parser("encode", help="write the embeddings of a set of archs")
    enc.add_argument("--model", required=True, help="a file made by pretrain")
    source = enc.add_mutually_exclusive_group(required=True)
    source.add_argument("--all", action="store_true", help="every arch of an enumerable space")
    source.add_argument("--data", help="every arch of this benchmark file")
    source.add_argument("--archs", help="a file of archs, one per line, in the space's JSON or text form")
    source.add_argument("--sample", type=int, metavar="N", help="N random archs (seeded)")
    enc.add_argument("--pool", default="mean", help="mean (one vector per arch, default) or flat (every node's)")
    enc.add_argument("--seed", type=int, default=0)
    enc.add_argument("--out", required=True, help="the .npz to write")

    io = sub.add_parser("io-train", help="train arch2vec extended with input-output data (search.io_data)")
    io.add_argument("--data", required=True, help="a dataset folder of python -m search.io_data build")
    io.add_argument("--out", required=True, help="the model file (an arch2vec model file with the IO parts)")
    io.add_argument("--epochs", type=int, default=30, help="(default 30, the paper's)")
    io.add_argument("--archs", type=int, help="unlabelled archs (default: every arch of an enumerable space, "
                                              "else 100,000 samples)")
    io.add_argument("--seed", type=int, default=0)
    io.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="model config: the pretrain keys plus image_channels, network_dim, head_hidden, "
                         "labelled_batches, unlabelled_batches, pairs_per_epoch, eval_pairs")
    io.add_argument("--json", help="also write the per-epoch history here")
    io.add_argument("--quiet", action="store_true", help="no progress bar")

    info = sub.add_parser("info", help="what a model file was pretrained on, and its history")
    info.add_argument("model")
    return p


def _pretrain(args) -> int:
    import spaces
    from narnas.config import build
    from narnas.errors import ConfigError
    from narnas.files import writable_file

    from .model import Arch2VecConfig
    from .pretrain import pretrain

    space = spaces.get_space(args.space)
    out = writable_file(args.out, "--out")
    if args.archs is not None and args.archs < 2 or args.held_out < 0 or args.prior_samples < 0:
        raise PredictorError("--archs must be >= 2, --held-out and --prior-samples >= 0")
    values = {**parse_overrides(args.set), "epochs": args.epochs, "seed": args.seed, "device": args.device}
    try:
        config = build(Arch2VecConfig, values, path="arch2vec")
    except ConfigError as err:
        raise PredictorError(str(err)) from None
    print(f"pretraining arch2vec on {space.name} -> {out}", flush=True)
    model = pretrain(space, config, out, archs=args.archs, held_out=args.held_out,
                     prior_samples=args.prior_samples, quiet=args.quiet, log=lambda line: print(line, flush=True))
    if model.history:
        print(json.dumps(model.history[-1]))
    return 0


def _io_train(args) -> int:
    import spaces
    from narnas.config import build
    from narnas.errors import ConfigError
    from narnas.files import atomic_write_bytes, writable_file

    from .io_dataset import load_io_dataset
    from .io_model import IOModelConfig, IOTrainer
    from .pretrain import space_graphs

    out = writable_file(args.out, "--out")
    json_out = writable_file(args.json, "--json") if args.json else None
    try:
        config = build(IOModelConfig, {**parse_overrides(args.set), "epochs": args.epochs, "seed": args.seed},
                       path="io-arch2vec")
    except ConfigError as err:
        raise PredictorError(str(err)) from None
    dataset = load_io_dataset(args.data)
    space = spaces.get_space(dataset["manifest"]["config"]["space"])
    unlabelled, how = space_graphs(space, args.archs, args.seed)
    print(f"training io-arch2vec on {len(dataset['networks'])} networks of {args.data} and {how} -> {out}", flush=True)
    trainer = IOTrainer(space, dataset, config, unlabelled)
    trainer.fit(out, quiet=args.quiet, log=lambda line: print(line, flush=True))
    if json_out is not None:
        atomic_write_bytes(json_out, (json.dumps({"data": args.data, "config": trainer.config.__dict__,
                                                  "history": trainer.history}, indent=1, default=list) + "\n").encode())
    return 0


def _arch_lines(space, path: str) -> list:
    try:
        lines = Path(path).read_text().splitlines()
    except OSError as err:
        raise PredictorError(f"cannot read --archs {path}: {err.strerror or err}") from None
    archs = []
    for number, line in enumerate(lines, 1):
        if line.strip():
            try:
                archs.append(space.from_json(line.strip()))
            except spaces_error() as err:
                raise PredictorError(f"--archs {path} line {number}: {err}") from None
    if not archs:
        raise PredictorError(f"--archs {path} holds no architectures")
    return archs


def spaces_error():
    from spaces.errors import SpacesError
    return SpacesError


def _encode(args) -> int:
    import spaces
    from narnas.files import atomic_write_bytes, writable_file

    from .embedding import load_arch2vec

    model = load_arch2vec(args.model)
    out = writable_file(args.out, "--out")
    space = spaces.get_space(model.space)
    if args.all:
        from spaces.base import Enumeration, require
        archs = list(require(space, Enumeration, "for --all").enumerate())
    elif args.data:
        archs = list(spaces.get_benchmark(space, args.data).archs())
    elif args.archs:
        archs = _arch_lines(space, args.archs)
    else:
        if args.sample < 1:
            raise PredictorError(f"--sample must be >= 1, got {args.sample}")
        rng = np.random.default_rng(args.seed)
        archs = [space.sample(rng) for _ in range(args.sample)]
    embeddings = model.embed([space.to_graph(a) for a in archs], args.pool)
    buffer = io.BytesIO()
    np.savez(buffer, embeddings=embeddings, keys=np.array([str(space.key(a)) for a in archs]),
             archs=np.array([space.to_text(a) for a in archs]), space=np.array(space.name),
             pool=np.array(args.pool), model=np.array(str(args.model)))
    atomic_write_bytes(out, buffer.getvalue())
    print(f"wrote {len(archs)} embeddings of {embeddings.shape[1]} dims to {out}")
    return 0


def _info(args) -> int:
    from .embedding import read_state
    state = read_state(args.model)
    print(json.dumps({k: state.get(k) for k in ("space", "vocab", "max_nodes", "config", "epochs_done", "corpus",
                                                 "versions", "history")}, indent=2))
    return 0


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    commands = {"pretrain": _pretrain, "encode": _encode, "info": _info, "io-train": _io_train}
    return run_main(lambda: commands[args.command](args))


if __name__ == "__main__":
    sys.exit(main())
