"""The documentation site builds strictly: a broken link, a missing anchor or a page left out of
the nav fails the suite."""
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def build(folder: Path, tmp_path: Path) -> subprocess.CompletedProcess:
    mkdocs = Path(sys.executable).with_name("mkdocs")
    # not -q: mkdocs' quiet mode hides the warnings that strict mode counts
    return subprocess.run([str(mkdocs), "build", "--strict", "-f", str(folder / "mkdocs.yml"),
                           "--site-dir", str(tmp_path / "site")], capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, NO_MKDOCS_2_WARNING="1"))


def test_the_docs_build_strictly(tmp_path):
    done = build(ROOT, tmp_path)
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "site" / "guide" / "search" / "index.html").exists()


def test_a_broken_link_fails_the_build(tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(ROOT / "docs", copy / "docs", symlinks=True)
    shutil.copy(ROOT / "mkdocs.yml", copy)
    (copy / "results").symlink_to(ROOT / "results")
    assert build(copy, tmp_path).returncode == 0
    with open(copy / "docs" / "index.md", "a") as f:
        f.write("\nSee [the spaces](guide/spaces.md#no-such-section).\n")
    done = build(copy, tmp_path)
    assert done.returncode != 0 and "does not contain an anchor '#no-such-section'" in done.stderr


def test_the_readme_links_to_files_that_exist():
    import re
    text = (ROOT / "README.md").read_text()
    links = [target.split("#")[0] for target in re.findall(r"\]\(([^)\s]+)\)", text) if "://" not in target]
    assert len(links) >= 10
    missing = [link for link in links if link and not (ROOT / link).exists()]
    assert not missing, missing
