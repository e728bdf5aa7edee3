"""python -m search.export: a found (or pasted) architecture as files to deploy.

  python -m search.export [--space darts] --arch FILE|TEXT|NAME --out DIR [--weights CHECKPOINT]
                          [--set KEY=VALUE ...]

Writes DIR/arch.json and DIR/arch.txt (the space's text form; for DARTS the
``Genotype(...)`` text), DIR/model_state.pt (the state dict with the architecture and the
build config), DIR/model.pt2 (a ``torch.export`` program: ``torch.export.load(path).module()``
runs it without this package) and DIR/model.onnx, checked by running it in onnxruntime
against PyTorch on a random batch. ``--set`` overrides the space's build config (DARTS:
channels, layers, num_classes, ...). ``--weights`` takes a ``search.train`` checkpoint,
whose build config is used; without it the weights are freshly initialised. Training aids
(the auxiliary head, drop-path) are left out of the exported network.
"""
from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
import sys
import warnings
from pathlib import Path

from narnas.cli import parse_overrides, prog, run_main
from narnas.files import outermost_missing, writable_folder

from .errors import SearchError


def trained_build_config(space, state: dict):
    """The build config a checkpoint was trained with: its ``build`` entry, or for older
    checkpoints the training config's fields that the build config shares."""
    if "build" in state:
        return space.build_config(state["build"])
    fields = {f.name for f in dataclasses.fields(space.build_config_class)}
    return space.build_config({k: v for k, v in state["config"].items() if k in fields})


def load_checkpoint(path: Path) -> dict:
    """A search.train checkpoint, or a SearchError saying what the file is not."""
    import pickle

    import torch
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, OSError) as err:
        raise SearchError(f"--weights {path} is not a PyTorch checkpoint ({str(err).splitlines()[0][:100]})") from None
    if not isinstance(state, dict) or "model" not in state or "config" not in state:
        raise SearchError(f"--weights {path} is not a search.train checkpoint (no model weights and training config)")
    return state


def export(arch, space, out: Path, weights: Path | None = None, build: dict | None = None,
           tolerance: float = 1e-4) -> dict:
    import numpy as np
    import torch
    from spaces import ModelBuilding, require

    require(space, ModelBuilding, "to export a network")
    if weights is not None:
        if not weights.exists():
            raise SearchError(f"weights file {weights} does not exist")
        state = load_checkpoint(weights)
        if state.get("space", space.name) != space.name:
            raise SearchError(f"--weights {weights} are of a {state['space']} network, not {space.name}")
        if "arch" in state and state["arch"] != str(space.key(arch)):
            raise SearchError(f"--weights {weights} belong to another arch ({state['arch'][:80]}); "
                              "export that arch, or the weights trained for this one")
        trained_config = trained_build_config(space, state)
        config = space.inference_config(trained_config)
        trained = space.build_model(arch, trained_config)
        try:
            trained.load_state_dict(state["model"])
        except RuntimeError as err:  # shapes or names differ: weights of another network
            raise SearchError(f"--weights {weights} do not fit this arch "
                              f"({str(err).splitlines()[1].strip() if len(str(err).splitlines()) > 1 else err})") from None
        model = space.build_model(arch, config)
        keep = model.state_dict().keys()  # the deployed network: the trained one without its training aids
        model.load_state_dict({k: v for k, v in trained.state_dict().items() if k in keep})
    else:
        config = space.inference_config(space.build_config(build))
        model = space.build_model(arch, config)
    model.eval()
    out.mkdir(parents=True, exist_ok=True)
    (out / "arch.json").write_text(json.dumps(space.to_json(arch), indent=2) + "\n")
    (out / "arch.txt").write_text(space.to_text(arch) + "\n")
    torch.save({"space": space.name, "arch": space.to_json(arch), "build": dataclasses.asdict(config),
                "state_dict": model.state_dict()}, out / "model_state.pt")

    shape = tuple(space.input_shape)
    example = torch.randn(2, *shape, generator=torch.Generator().manual_seed(0))
    batch = torch.export.Dim("batch", min=1, max=4096)
    program = torch.export.export(model, (example,), dynamic_shapes={"x": {0: batch}})
    torch.export.save(program, out / "model.pt2")
    with warnings.catch_warnings():  # the TorchScript exporter on purpose: no onnxscript needed
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(model, (example,), str(out / "model.onnx"), input_names=["images"], output_names=["logits"],
                          dynamic_axes={"images": {0: "batch"}, "logits": {0: "batch"}}, opset_version=17,
                          dynamo=False)

    import onnxruntime
    check = torch.randn(3, *shape, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        expected = model(check).numpy()
        exported = torch.export.load(out / "model.pt2").module()(check).numpy()
    session = onnxruntime.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    got = session.run(["logits"], {"images": check.numpy()})[0]
    onnx_diff, pt2_diff = float(np.abs(got - expected).max()), float(np.abs(exported - expected).max())
    if onnx_diff > tolerance or pt2_diff > tolerance:
        raise SearchError(f"exported outputs differ from PyTorch's (ONNX {onnx_diff:.2e}, torch.export {pt2_diff:.2e})")
    return {"out": str(out), "onnx_max_abs_diff": onnx_diff, "pt2_max_abs_diff": pt2_diff,
            "parameters": sum(p.numel() for p in model.parameters()), "space": space.name,
            **dataclasses.asdict(config)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog=prog("python -m search.export"), description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n".join(__doc__.split("\n")[1:]))
    p.add_argument("--space", default="darts", help="the architecture's space (default darts)")
    p.add_argument("--arch", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--weights", help="a search.train checkpoint.pt")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", dest="options",
                   help="build config override (without --weights)")
    args = p.parse_args(argv)
    return run_main(lambda: _main(args))


def _main(args) -> int:
    import spaces
    from spaces import ModelBuilding, require
    from .train import load_arch

    space = spaces.get_space(args.space)
    arch = load_arch(space, args.arch)
    build = parse_overrides(args.options)
    if build and args.weights:
        raise SearchError("--set and --weights exclude each other: the checkpoint fixes the network's shape")
    if build:
        require(space, ModelBuilding, "to export a network").build_config(build)  # bad keys before any file
    out = Path(args.out)
    made = outermost_missing(out)
    writable_folder(out, "--out")
    try:
        result = export(arch, space, out, Path(args.weights) if args.weights else None, build)
    except Exception:
        if made is not None:  # a refused export leaves no folder it made behind
            shutil.rmtree(made, ignore_errors=True)
        raise
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
