"""python -m search.report: the HTML page (checked in a real headless Chromium) and the
redrawn plots of a run started with --no-plots."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from test_search_run import FAST, search, summary


def report(*args):
    return subprocess.run([sys.executable, "-m", "search.report", *args], capture_output=True, text=True, timeout=300)


@pytest.fixture(scope="module")
def nb201_run(tmp_path_factory):
    """A predictor-guided search started with --no-plots."""
    out = tmp_path_factory.mktemp("report") / "nb201"
    done = search(*FAST, "--out", str(out))
    assert done.returncode == 0, done.stderr
    return out


@pytest.fixture(scope="module")
def ofa_run(tmp_path_factory):
    """A constrained search: the report shows its Pareto front."""
    out = tmp_path_factory.mktemp("report") / "ofa"
    done = search("--space", "ofa_mbv3", "--strategy", "rea", "--budget", "30", "--batch", "10", "--seed", "1",
                  "--constraint", "macs<=350M", "--quiet", "--no-plots", "--out", str(out))
    assert done.returncode == 0, done.stderr
    return out


def test_the_report_redraws_the_plots_of_a_no_plots_run(nb201_run):
    plots = nb201_run / "plots"
    assert not plots.exists()
    done = report(str(nb201_run), "--plots")
    assert done.returncode == 0, done.stderr
    for name in ("best_so_far.png", "predicted_vs_true.png"):
        assert (plots / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (nb201_run / "report.html").exists()
    assert str(nb201_run / "report.html") in done.stdout


def test_bad_report_command_lines_are_one_line(tmp_path, nb201_run):
    missing = report(str(tmp_path / "nope"))
    assert missing.returncode == 2 and missing.stderr.strip() == f"error: {tmp_path / 'nope'} holds no run (no such folder)"
    unwritable = report(str(nb201_run), "--html", "/proc/report.html")
    assert unwritable.returncode == 2 and unwritable.stderr.startswith("error: cannot write --html folder /proc")
    assert len(unwritable.stderr.strip().splitlines()) == 1
    nothing = report(str(nb201_run), "--no-html")
    assert nothing.returncode == 2 and nothing.stderr.strip() == "error: --no-html without --plots has nothing to do"


def test_the_report_of_an_unfinished_run_shows_what_is_there(nb201_run, tmp_path):
    """A run killed mid-way (journal shorter, no summary) is reported as unfinished."""
    run = tmp_path / "cut"
    shutil.copytree(nb201_run, run)
    lines = (run / "journal.jsonl").read_text().splitlines(keepends=True)
    (run / "journal.jsonl").write_text("".join(lines[:15]) + lines[15][:20])  # a line cut mid-write
    (run / "summary.json").unlink()
    done = report(str(run), "--html", str(tmp_path / "cut.html"))
    assert done.returncode == 0, done.stderr
    page = (tmp_path / "cut.html").read_text()
    assert "unfinished" in page and "15 of 40" in page
    assert (run / "journal.jsonl").read_text().endswith(lines[15][:20])  # the report wrote nothing into the run


# --- in a real browser ----------------------------------------------------------------

@pytest.fixture(scope="module")
def browser():
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    if chromium is None or driver_path is None:
        message = ("the report's browser test needs Chromium and its driver: `make test` installs Debian's chromium "
                   "and chromium-driver (apt-get install chromium chromium-driver, as root)")
        if os.environ.get("CI"):  # CI installs them: a missing browser there is a failure, not a skip
            pytest.fail(message)
        pytest.skip(message)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    yield driver
    driver.quit()


def open_page(browser, path: Path):
    browser.get(path.resolve().as_uri())
    errors = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert errors == [], errors
    images = browser.execute_script(
        "return Array.from(document.images).map(function (i) { return [i.complete, i.naturalWidth]; })")
    assert images and all(done and width > 0 for done, width in images)  # every inline plot decodes


def column(browser, name: str) -> list[str]:
    from selenium.webdriver.common.by import By
    heads = [th.text.strip(" ▲▼") for th in browser.find_elements(By.CSS_SELECTOR, "#archs th")]
    index = heads.index(name)
    return [row.find_elements(By.TAG_NAME, "td")[index].get_attribute("data-sort")
            for row in browser.find_elements(By.CSS_SELECTOR, "#archs tbody tr")]


def test_the_page_loads_in_chromium_shows_the_best_arch_and_sorts(browser, nb201_run):
    from selenium.webdriver.common.by import By
    done = report(str(nb201_run))
    assert done.returncode == 0, done.stderr
    open_page(browser, nb201_run / "report.html")
    best = summary(nb201_run)["best"]
    assert best["key"] in browser.find_element(By.ID, "best-key").text
    # The diagram draws the best cell: NB201's six edge operations, as nodes between input and output.
    ops = [part.split("~")[0] for part in best["key"].split("|") if "~" in part]
    drawn = [g.get_attribute("data-op") for g in browser.find_elements(By.CSS_SELECTOR, "svg.arch g.node")]
    assert drawn[0] == "input" and drawn[-1] == "output" and sorted(drawn[1:-1]) == sorted(ops)
    # Every evaluation is a row; a click on "val" sorts by it, a second click reverses.
    lines = (nb201_run / "journal.jsonl").read_text().splitlines()
    assert len(browser.find_elements(By.CSS_SELECTOR, "#archs tbody tr")) == len(lines)
    header = next(th for th in browser.find_elements(By.CSS_SELECTOR, "#archs th") if th.text == "val")
    header.click()
    values = [float(v) for v in column(browser, "val")]
    assert values == sorted(values) and values != [float(json.loads(x)["val"]) for x in lines]
    header.click()
    assert [float(v) for v in column(browser, "val")] == sorted(values, reverse=True)
    assert browser.find_element(By.CSS_SELECTOR, "#archs tbody tr").get_attribute("class") == "best"


def test_a_constrained_runs_page_shows_its_pareto_front(browser, ofa_run):
    from selenium.webdriver.common.by import By
    done = report(str(ofa_run), "--plots")
    assert done.returncode == 0, done.stderr
    assert (ofa_run / "plots" / "pareto.png").exists()
    open_page(browser, ofa_run / "report.html")
    front = json.loads((ofa_run / "pareto.json").read_text())["front"]
    shown = [row.find_element(By.TAG_NAME, "code").text for row in browser.find_elements(By.CSS_SELECTOR, "#pareto tbody tr")]
    assert shown == [r["key"] for r in front]
    best = summary(ofa_run)["best"]
    assert best["macs"] <= 350e6 and best["key"] in browser.find_element(By.ID, "best-key").text
    assert len(browser.find_elements(By.CSS_SELECTOR, "svg.arch g.node")) > 10  # the whole network drawn


def test_plots_name_their_metric_and_show_ranks_of_nearly_equal_predictions():
    from search.report import figure_best_so_far, figure_predicted_vs_true
    entries = [{"value": v, "test": None, "round": 2, "predicted": 12.1212121254 + i * 1e-10, "key": str(i)}
               for i, v in enumerate([-3.0, -1.0, -2.0, -0.5])]
    fig = figure_best_so_far(entries, "rea on line", "negative_distance", "test_distance")
    ax = fig.axes[0]
    assert ax.get_ylabel() == "negative_distance"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["best negative_distance"]  # no test values
    with_test = [dict(e, test=e["value"] - 1) for e in entries]
    legend = figure_best_so_far(with_test, "t", "ofa_surrogate_top1", "imagenet_val_top1").axes[0].get_legend()
    assert [t.get_text() for t in legend.get_texts()] == ["best ofa_surrogate_top1", "its imagenet_val_top1"]
    panel = figure_predicted_vs_true(entries).axes[0]
    assert "(ranks)" in panel.get_title() and panel.get_xlabel().startswith("predicted rank")
    assert sorted(panel.collections[0].get_offsets()[:, 0].tolist()) == [1, 2, 3, 4]
    spread = [dict(e, predicted=float(i)) for i, e in enumerate(entries)]
    assert "(ranks)" not in figure_predicted_vs_true(spread).axes[0].get_title()
