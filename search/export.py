"""python -m search.export: a found (or pasted) DARTS genotype as files to deploy.

  python -m search.export --arch FILE|GENOTYPE|darts_v2 --out DIR [--weights CHECKPOINT]
                          [--channels 36] [--layers 20] [--num-classes 10]

Writes DIR/genotype.json (and genotype.txt, the DARTS ``Genotype(...)`` text),
DIR/model_state.pt (the state dict with the genotype and the build arguments),
DIR/model.pt2 (a ``torch.export`` program: ``torch.export.load(path).module()`` runs it
without this package) and DIR/model.onnx, checked by running it in onnxruntime against
PyTorch on a random batch. ``--weights`` takes a ``search.train`` checkpoint (its channels
and layers are used); without it the weights are freshly initialised.
"""
from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path

from narnas.cli import run_main

from .errors import SearchError


def export(arch, space, out: Path, weights: Path | None = None, channels: int = 36, layers: int = 20,
           num_classes: int = 10, tolerance: float = 1e-4) -> dict:
    import numpy as np
    import torch

    if weights is not None:
        if not weights.exists():
            raise SearchError(f"weights file {weights} does not exist")
        state = torch.load(weights, map_location="cpu", weights_only=False)
        channels, layers = state["config"]["channels"], state["config"]["layers"]
        auxiliary = state["config"]["auxiliary"]
    model = space.build_model(arch, num_classes=num_classes, channels=channels, layers=layers,
                              auxiliary=weights is not None and auxiliary)
    if weights is not None:
        model.load_state_dict(state["model"])
    model.auxiliary = None  # inference only: the auxiliary head is a training aid
    model.eval()
    out.mkdir(parents=True, exist_ok=True)
    (out / "genotype.json").write_text(json.dumps(space.to_json(arch), indent=2) + "\n")
    (out / "genotype.txt").write_text(space.genotype_text(arch) + "\n")
    build = {"space": "darts", "num_classes": num_classes, "channels": channels, "layers": layers}
    torch.save({"genotype": space.to_json(arch), "build": build, "state_dict": model.state_dict()},
               out / "model_state.pt")

    example = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    batch = torch.export.Dim("batch", min=1, max=4096)
    program = torch.export.export(model, (example,), dynamic_shapes={"x": {0: batch}})
    torch.export.save(program, out / "model.pt2")
    with warnings.catch_warnings():  # the TorchScript exporter on purpose: no onnxscript needed
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(model, (example,), str(out / "model.onnx"), input_names=["images"], output_names=["logits"],
                          dynamic_axes={"images": {0: "batch"}, "logits": {0: "batch"}}, opset_version=17,
                          dynamo=False)

    import onnxruntime
    check = torch.randn(3, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        expected = model(check).numpy()
        exported = torch.export.load(out / "model.pt2").module()(check).numpy()
    session = onnxruntime.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    got = session.run(["logits"], {"images": check.numpy()})[0]
    onnx_diff, pt2_diff = float(np.abs(got - expected).max()), float(np.abs(exported - expected).max())
    if onnx_diff > tolerance or pt2_diff > tolerance:
        raise SearchError(f"exported outputs differ from PyTorch's (ONNX {onnx_diff:.2e}, torch.export {pt2_diff:.2e})")
    return {"out": str(out), "onnx_max_abs_diff": onnx_diff, "pt2_max_abs_diff": pt2_diff,
            "parameters": sum(p.numel() for p in model.parameters()), **build}


def main(argv=None) -> int:
    import spaces
    from .train import load_arch

    p = argparse.ArgumentParser(prog="python -m search.export", description=__doc__.split("\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter,
                                epilog="\n".join(__doc__.split("\n")[1:]))
    p.add_argument("--arch", required=True)
    p.add_argument("--out", required=True)
    p.add_argument("--weights", help="a search.train checkpoint.pt")
    p.add_argument("--channels", type=int, default=36)
    p.add_argument("--layers", type=int, default=20)
    p.add_argument("--num-classes", type=int, default=10)
    args = p.parse_args(argv)
    return run_main(lambda: _main(args))


def _main(args) -> int:
    import spaces
    from .train import load_arch

    space = spaces.get_space("darts")
    arch = load_arch(space, args.arch)
    result = export(arch, space, Path(args.out), Path(args.weights) if args.weights else None,
                    args.channels, args.layers, args.num_classes)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
