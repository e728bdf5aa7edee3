"""HELP's few-shot latency setting on a device table."""
import numpy as np
import pytest

from predictor.errors import PredictorError
from latency.fewshot import FewShotConfig, few_shot, hardware


def _devices(n=600, seed=0):
    """Archs of 12 binary features; each device weighs them by its own (correlated) costs."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 2, size=(n, 12)).astype(np.float32)
    base = rng.uniform(0.5, 2.0, 12)
    lat = {}
    for name in ("lat_a_1", "lat_a_32", "lat_b", "lat_c", "lat_d", "lat_e_1", "lat_f"):
        w = base * rng.uniform(0.7, 1.3, 12)
        lat[name] = np.exp(0.2 * (x @ w)) * rng.uniform(1, 10)
    return x, lat


def test_hardware_names_group_batch_sizes():
    assert hardware("lat_1080ti_32") == hardware("lat_1080ti_1") == "1080ti"
    assert hardware("lat_gold_6226") == "gold_6226" and hardware("lat_pixel2") == "pixel2"


def test_few_shot_beats_learning_from_the_shots_alone():
    x, lat = _devices()
    cfg = FewShotConfig(shots=20, reference=10, source_archs=400, steps=800, hidden=64)
    r = few_shot(x, lat, "lat_a_32", cfg)
    assert "lat_a_1" not in r["sources"] and "lat_b" in r["sources"]  # the same hardware is left out
    assert r["test_archs"] == 580
    assert r["few_shot"]["kendall_tau"] > 0.8
    assert r["few_shot"]["kendall_tau"] > r["scratch"]["kendall_tau"]
    assert r["few_shot"]["mape"] < 15


def test_bad_settings():
    x, lat = _devices(100)
    with pytest.raises(PredictorError, match="no latency column"):
        few_shot(x, lat, "lat_zz", FewShotConfig(source_archs=50))
    with pytest.raises(PredictorError, match="reference"):
        few_shot(x, lat, "lat_b", FewShotConfig(shots=5, reference=10))


def test_latency_table_reads_both_kinds_of_result(tmp_path, capsys):
    import json

    from bench.latency_table import main
    few = {"devices": {"lat_pixel2": {"few_shot": {"kendall_tau": 0.75, "mape": 13.0, "acc10": 50.0},
                                      "no_adaptation": {"kendall_tau": 0.76}, "scratch": {"kendall_tau": 0.3}}}}
    fam = {"split": "family", "predictor": "gnn", "families": {"vgg": {"mape": 8.0, "acc10": 70.0, "kendall_tau": 0.9}}}
    (tmp_path / "a.json").write_text(json.dumps(few))
    (tmp_path / "b.json").write_text(json.dumps(fam))
    (tmp_path / "c.json").write_text(json.dumps(dict(fam, families={"vgg": {"mape": 10.0, "acc10": 60.0,
                                                                            "kendall_tau": 0.8}})))
    ours = {"split": "family", "predictor": "narformer", "set": {"epochs": 30}, "families": {
        "vgg": {"mape": 5.0, "acc10": 90.0, "kendall_tau": 0.95}, "nb201": {"mape": 4.0, "acc10": 95.0,
                                                                           "kendall_tau": 0.9}}}
    (tmp_path / "d.json").write_text(json.dumps(ours))
    variant = dict(ours, set={"epochs": 30, "cost_codes": "true"}, families={
        "vgg": {"mape": 12.0, "acc10": 40.0, "kendall_tau": 0.9}})
    (tmp_path / "e.json").write_text(json.dumps(variant))
    assert main([str(tmp_path / n) for n in ("a.json", "b.json", "c.json", "d.json", "e.json")]) == 0
    out = capsys.readouterr().out
    assert "| pixel2 | 1 | 0.750 | 13.0 | 50.0 | 0.760 | 0.300 |" in out
    # NAR-Former's columns first
    assert "| split | test family | narformer (cost_codes=true, epochs=30) | narformer (epochs=30) | gnn |" in out
    assert "| family | vgg | 12.00 / 40.0 / 0.900 (1 seed) | 5.00 / 90.0 / 0.950 (1 seed) | 9.00 / 65.0 / 0.850 (2 seeds) |" in out
    assert "| family | nb201 | — | 4.00 / 95.0 / 0.900 (1 seed) | — |" in out
    # each NAR-Former variant counted on its own; only vgg has both columns
    assert "narformer (epochs=30)'s median MAPE is below the other's: gnn 1 of 1." in out
    assert "narformer (cost_codes=true, epochs=30)'s median MAPE is below the other's: gnn 0 of 1." in out


def test_latency_table_names_columns_after_their_files(tmp_path, capsys):
    import json

    from bench.latency_table import main
    fam = {"split": "family", "predictor": "narformer", "set": {"epochs": 30, "raw_values": "true"},
           "families": {"vgg": {"mape": 5.0, "acc10": 90.0, "kendall_tau": 0.95}}}
    gnn = {"split": "family", "predictor": "gnn", "set": {"epochs": 30},
           "families": {"vgg": {"mape": 8.0, "acc10": 70.0, "kendall_tau": 0.9}}}
    rnd = {"split": "random", "predictor": "gnn", "set": {"epochs": 30}, "mape": 4.0, "acc10": 91.0,
           "kendall_tau": 0.97}
    files = {"narformer_raw_family_vgg_s0.json": fam, "gnn_family_vgg_s0.json": gnn, "gnn_random_s1.json": rnd}
    for name, run in files.items():
        (tmp_path / name).write_text(json.dumps(run))
    paths = [str(tmp_path / n) for n in files]
    assert main(paths) == 0
    out = capsys.readouterr().out
    assert "| split | test family | narformer_raw | gnn |" in out
    assert "| random | — | — | 4.00 / 91.0 / 0.970 (1 seed) |" in out
    assert "narformer_raw's median MAPE is below the other's: gnn 1 of 1." in out
    assert "Columns: narformer_raw = narformer (epochs=30, raw_values=true); gnn = gnn (epochs=30)." in out
    # --columns picks and orders; a row with none of the chosen columns is left out
    assert main(paths + ["--columns", "gnn"]) == 0
    out = capsys.readouterr().out
    assert "| split | test family | gnn |" in out and "narformer_raw" not in out
    with pytest.raises(PredictorError, match="no results for column lut; the files give: gnn, narformer_raw"):
        main(paths + ["--columns", "gnn,lut"])
    # one name, two settings: refused rather than mixed into one median
    (tmp_path / "gnn_family_vgg_s1.json").write_text(json.dumps(dict(gnn, set={"epochs": 60})))
    with pytest.raises(PredictorError, match="column gnn mixes settings"):
        main(paths + [str(tmp_path / "gnn_family_vgg_s1.json")])
