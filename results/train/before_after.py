"""CPU time of three small trainings (recipe.train end to end), run from a checkout with its own code:
the before/after figures of issue 30 (the trainer before and after the device-resident pipeline).

  (cd CHECKOUT && python /path/to/before_after.py CIFAR_FOLDER) > out.json
CIFAR_FOLDER: a cifar-10-batches-py folder (written from ../shared's mini set when missing).
"""
import json, sys, time
from pathlib import Path
import numpy as np, torch
sys.path.insert(0, ".")
import spaces
from training.datasets import cifar10
from training.recipes import get_recipe
folder = Path(sys.argv[1])
if not folder.exists():
    z = np.load(Path(__file__).resolve().parents[3] / "shared/data/cifar10/cifar10_mini_decoded.npz")
    tr, te = z["split"] == 0, z["split"] == 1
    cifar10.write_batches(folder, cifar10.Split(z["x"][tr], z["y"][tr].astype(np.int64)), cifar10.Split(z["x"][te], z["y"][te].astype(np.int64)))
out = {}
for space_name, preset, over in [("darts", "search", dict(epochs=2, val_size=200, threads=2)),
                                 ("darts", "smoke", dict(epochs=3, fraction=1.0, val_size=200, channels=4, layers=3, batch_size=50, threads=2)),
                                 ("nb201", "smoke", dict(epochs=3, fraction=1.0, val_size=200, threads=2))]:
    recipe = get_recipe(space_name); space = spaces.get_space(space_name)
    cfg = recipe.preset(preset, **over)
    data = recipe.load_data(cfg, folder)
    arch = space.from_json(spaces.darts.DARTS_V2) if space_name == "darts" else space.sample(np.random.default_rng(0))
    t = time.time()
    r = recipe.train(arch, space, data, cfg)
    out[f"{space_name}-{preset}"] = dict(train_s=r["seconds"], total_s=round(time.time() - t, 2), img_s=round(len(data.train) * cfg.epochs / r["seconds"], 1), val=r["val"], test=r["test"])
print(json.dumps({"torch": torch.__version__, "threads": 2, "trainings": out}, indent=1))
