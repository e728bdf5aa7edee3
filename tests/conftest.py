import os
import sys
import tempfile
from pathlib import Path

import pytest

# The verified data copies: ../shared/data beside the checkout, or $NARNAS_SHARED_DATA.
SHARED_DATA = Path(os.environ.get("NARNAS_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))

# Every test run gets its own data/cache folder, so the suite recomputes what it
# caches (the NB101 enumeration) instead of trusting a cache left on the machine. The
# workers of one parallel run (pytest-xdist) share it: what one computed the others read.
_RUN = os.environ.get("PYTEST_XDIST_TESTRUNUID")
if _RUN:
    _DATA_DIR = os.path.join(tempfile.gettempdir(), f"narnas-test-data-{_RUN}")
    os.makedirs(_DATA_DIR, exist_ok=True)
    # each worker (and what it starts) gets its share of the cores: two workers each running
    # torch on every core oversubscribe them (measured: 894 s -> 814 s on 2 cores)
    _WORKERS = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // _WORKERS)))
else:
    _DATA_DIR = tempfile.mkdtemp(prefix="narnas-test-data-")
os.environ["NARNAS_DATA"] = _DATA_DIR
for var in ("NARNAS_NB101_PATH", "NARNAS_NB201_PATH"):
    os.environ.pop(var, None)
sys.path.insert(0, str(Path(__file__).parent))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not (SHARED_DATA / "README.md").exists():
        pytest.fail(f"the verified benchmark copies are expected at {SHARED_DATA} (../shared/data beside the checkout, or set NARNAS_SHARED_DATA)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def data_dir() -> Path:
    return Path(_DATA_DIR)


@pytest.fixture(scope="session")
def cifar_dir(shared_data, tmp_path_factory):
    """A CIFAR-10 python batches folder of the shared 3,000-image sample (2,000 train, 1,000 test)."""
    import numpy as np
    from training.datasets import cifar10
    z = np.load(shared_data / "cifar10" / "cifar10_mini_decoded.npz")
    train, test = z["split"] == 0, z["split"] == 1
    folder = tmp_path_factory.mktemp("cifar") / cifar10.FOLDER
    cifar10.write_batches(folder, cifar10.Split(z["x"][train], z["y"][train].astype(np.int64)),
                          cifar10.Split(z["x"][test], z["y"][test].astype(np.int64)))
    return folder
