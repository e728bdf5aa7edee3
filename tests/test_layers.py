"""The package graph imports only downwards (.importlinter's layers contract)."""
import configparser
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
LINT = Path(sys.executable).with_name("lint-imports")


def lint(folder: Path) -> subprocess.CompletedProcess:
    # PYTHONPATH first, so a copy of the packages in ``folder`` is what the graph is built from.
    return subprocess.run([str(LINT), "--no-cache", "--no-logo"], cwd=folder, capture_output=True, text=True,
                          env={"PYTHONPATH": str(folder), "PATH": "/usr/bin:/bin"}, timeout=120)


def contract():
    config = configparser.ConfigParser()
    config.read(ROOT / ".importlinter")
    return config


def test_every_package_imports_only_the_layers_below_it():
    result = lint(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 kept, 0 broken" in result.stdout


def test_the_contract_names_every_installed_package_and_bench():
    setup = configparser.ConfigParser()
    setup.read(ROOT / "setup.cfg")
    installed = {p.strip() for p in setup["options.packages.find"]["include"].split() if not p.endswith(".*")}
    roots = set(contract()["importlinter"]["root_packages"].split())
    layers = {p.strip() for line in contract()["importlinter:contract:layers"]["layers"].split("\n")
              for p in line.split("|") if p.strip()}
    assert roots == layers == installed | {"bench"}


def test_an_upward_import_breaks_the_contract(tmp_path):
    for package in contract()["importlinter"]["root_packages"].split():
        shutil.copytree(ROOT / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__", "tables"))
    shutil.copy(ROOT / ".importlinter", tmp_path)
    assert lint(tmp_path).returncode == 0
    # spaces and predictor share a layer and may not import each other; a lazy import counts too
    with open(tmp_path / "predictor" / "graphs.py", "a") as f:
        f.write("\n\ndef _upward():\n    import spaces\n")
    result = lint(tmp_path)
    assert result.returncode != 0 and "predictor is not allowed to import spaces" in result.stdout
