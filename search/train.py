"""python -m search.train: train an architecture from scratch with its space's training recipe.

  python -m search.train [--space darts] --arch runs/NAME/best.json [--preset final] [--data-dir DIR]
                         [--set KEY=VALUE ...] [--out DIR] [--quiet]

--arch takes a JSON file (e.g. a run's best.json), a file or string holding the space's
text form (for DARTS the ``Genotype(normal=[...], ...)`` text), or a name the space knows
(darts_v1, darts_v2). The output folder keeps a checkpoint after every epoch; running the
same command again continues from the last finished epoch. The result (validation and
test accuracy, parameters, the per-epoch history and the config) goes to OUT/result.json.
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import sys
from pathlib import Path

from narnas.cli import parse_overrides, prog, run_main
from narnas.files import writable_folder

from .errors import SearchError


def load_arch(space, text: str):
    """An architecture of ``space`` from a file, its JSON or text form, or a name the space knows."""
    from spaces import InvalidArchError
    if text.lower() in space.named_archs:
        return space.from_json(space.named_archs[text.lower()])
    path = Path(text)
    if path.is_file():
        return space.from_json(path.read_text())
    try:
        return space.from_json(text)
    except InvalidArchError as err:
        known = f" ({', '.join(space.named_archs)})" if space.named_archs else ""
        raise SearchError(f"--arch {text[:80]!r} is neither a file, a known name{known} nor a {space.name} "
                          f"architecture: {err}") from None


def check_output_folder(out: Path, space, key: str) -> None:
    """An --out folder that holds another arch's training is refused before anything in it
    is touched or any data is read (its checkpoint would otherwise be continued under the new
    arch's name). The checkpoint's own record decides; arch.json where an older one has none."""
    checkpoint = out / "checkpoint.pt"
    if not checkpoint.exists():
        return
    import torch
    try:
        old_key = torch.load(checkpoint, map_location="cpu", weights_only=False).get("arch")
        if old_key is None and (out / "arch.json").exists():
            old_key = str(space.key(space.from_json((out / "arch.json").read_text())))
    except Exception as err:  # unreadable: say so rather than train over it
        raise SearchError(f"{out} holds a checkpoint that cannot be read ({type(err).__name__}); "
                          "use another --out or delete it") from None
    if old_key is not None and old_key != key:
        raise SearchError(f"{out} holds the training of another arch ({old_key[:80]}); use another --out or "
                          "delete it")


def recipes_help() -> str:
    """Each registered recipe with its presets (the first is its default), for --help."""
    from training.recipes import RECIPES
    lines = []
    for space in RECIPES.names():
        recipe = RECIPES.get(space)
        presets = list(recipe.presets)
        lines.append(f"  {space:8s} on {recipe.dataset}: presets {presets[0]} (default), {', '.join(presets[1:])}")
    return "Spaces with a training recipe (training.recipes):\n" + "\n".join(lines)


def build_parser():
    p = argparse.ArgumentParser(prog=prog("python -m search.train"), description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n".join(__doc__.split("\n")[1:]) + "\n" + recipes_help())
    p.add_argument("--space", default="darts", help="the architecture's space (default darts; see the recipes below)")
    p.add_argument("--arch", required=True, help="a JSON file (a run's best.json), the space's JSON or text form, "
                                                 "or a name the space knows (darts: darts_v1, darts_v2)")
    p.add_argument("--preset", help="a preset of the space's recipe (listed below; default: its first)")
    p.add_argument("--data-dir", help="the dataset folder (CIFAR-10: the python batches)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", dest="options", help="training config override")
    p.add_argument("--out", help="output folder (default runs/train-<space>-<arch digest>-<preset>)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    return p


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    return run_main(lambda: _main(args))


def _main(args) -> int:
    import spaces
    from training.recipes import get_recipe

    try:
        space = spaces.get_space(args.space)
        recipe = get_recipe(space.name)
        arch = load_arch(space, args.arch)
        preset = args.preset or next(iter(recipe.presets))
        config = recipe.preset(preset, **parse_overrides(args.options))
        key = str(space.key(arch))
        out = Path(args.out or f"runs/train-{space.name}-{hashlib.sha1(key.encode()).hexdigest()[:10]}-{preset}")
        writable_folder(out, "--out")
        check_output_folder(out, space, key)
        (out / "arch.json").write_text(json.dumps(space.to_json(arch), indent=2) + "\n")
        warn = lambda msg: print(msg, file=sys.stderr, flush=True)
        data = recipe.load_data(config, args.data_dir, warn=warn)
        result = recipe.train(arch, space, data, config, checkpoint=out / "checkpoint.pt", progress=not args.quiet)
    except KeyboardInterrupt:
        print("interrupted: run the same command again to continue from the last epoch", file=sys.stderr)
        return 130
    record = dict(result, space=space.name, arch=space.to_text(arch), key=key, preset=preset,
                  config=dataclasses.asdict(config), data=data.source)
    (out / "result.json").write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps({"val": result["val"], "test": result["test"], "params": result["params"],
                      "epochs": result["epochs"], "out": str(out)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
