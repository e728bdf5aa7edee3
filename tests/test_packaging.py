"""The built wheel: every installed package and packaged table in it, bench/ not, and a build
without setuptools' warnings about packages left out."""
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_the_wheel_holds_the_packages_and_their_tables(tmp_path):
    done = subprocess.run([sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "--no-build-isolation",
                           "-w", str(tmp_path)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "is absent from the `packages` configuration" not in done.stdout + done.stderr
    (wheel,) = tmp_path.glob("narnas-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for package in ("narnas", "spaces", "predictor", "training", "latency", "embeddings", "search"):
        assert f"{package}/__init__.py" in names, package
    assert not any(n.startswith(("bench/", "tests/")) for n in names)
    for table in ("spaces/nb201/tables/nb201_cifar10.csv.gz", "spaces/ofa_mbv3/tables/ofa_mbv3_acc_predictor.pth",
                  "spaces/ofa_mbv3/tables/note10_224_lookup_table.yaml"):
        assert table in names, table
    entry_points = next(n for n in names if n.endswith(".dist-info/entry_points.txt"))
    text = zipfile.ZipFile(wheel).read(entry_points).decode()
    assert "narnas = search.command:main" in text and "arch2vec = embeddings.predictor" in text
