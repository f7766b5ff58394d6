"""Calibration of a latency table on measured whole networks (issue 14 part B), with deterministic fake timings."""

import json
import random

import pytest
import torch
from click.testing import CliRunner

import saswot_gp.latency as latency_pkg
from saswot_gp.cli import main
from saswot_gp.errors import SaswotError
from saswot_gp.latency import (FEATURE_SETS, GROUPS, LatencyTable, build_lut, calibrate_lut, check_lut,
                               fit_calibration, part_group, sample_archs)
from saswot_gp.latency import calibrate as calibrate_mod
from saswot_gp.latency import check as check_mod
from saswot_gp.spaces import get_space
from saswot_gp.training import speed

torch.set_num_threads(1)
SMALL = dict(base_width=4, input_size=32, num_layers=4)
# "measured" = intercept + a scale per part group x the entries' ms of that group (+ per-layer overheads below)
SCALES = {"ends": 1.1, "c3": 1.2, "c33": 1.3, "zc": 1.5, "dc": 1.25, "dw": 1.6, "ir": 1.4, "sk": 2.0, "down": 1.15}
INTERCEPT = 0.3


@pytest.fixture(scope="module")
def table():
    """A table of the small space whose entries are a deterministic function of each part's MACs."""
    space = get_space("realtime", **SMALL)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(speed, "forward_times", lambda model, x, warmup=5, repeats=20, sync=None: [1.0])
        lut = build_lut(space, repeats=1, warmup=0)
    return LatencyTable({k: dict(e, ms=0.01 + e["macs"] / 1e5) for k, e in lut.entries.items()}, lut.meta)


def _truth(overhead=None, ms_per_gmac=0.0):
    overhead = overhead or {}

    def measured(table, arch):
        parts = table.parts(arch)
        return (INTERCEPT + sum(SCALES[part_group(k)] * ms for k, ms, _ in parts)
                + sum(overhead.get(part_group(k), 0.0) for k, _, _ in parts)
                + ms_per_gmac * sum(macs for _, _, macs in parts) / 1e9)
    return measured


def _fake_measure(monkeypatch, measured, calls=None):
    def fake(table, archs, seed=0, warmup=5, repeats=20, rounds=1, progress=None, device=None, runtime=None):
        if calls is not None:
            calls.append((list(archs), seed, warmup, repeats, rounds))
        return [measured(table, a) for a in archs]
    monkeypatch.setattr(check_mod, "measure_archs", fake)
    monkeypatch.setattr(calibrate_mod, "measure_archs", fake)


def test_part_groups_and_feature_sets():
    assert part_group("stem:4:32x32") == "ends" == part_group("head:8:40:L0:L2")
    assert part_group("layer:dw:16:40:2:2x2") == "down" and part_group("layer:c33:8:8:1:4x4") == "c33"
    assert GROUPS == ("ends", "c3", "c33", "zc", "dc", "dw", "ir", "sk", "down")
    assert {k: len(v) for k, v in FEATURE_SETS.items()} == {"affine": 2, "scale": 10, "scale+overhead": 17,
                                                            "scale+macs": 11}
    from saswot_gp.commands import latency as cli_latency
    assert cli_latency.MODELS == tuple(FEATURE_SETS) and cli_latency.DEFAULT_MODEL == latency_pkg.DEFAULT_FEATURES
    assert cli_latency.MIN_SEED == latency_pkg.CALIBRATION_MIN_SEED and cli_latency.SAMPLERS == calibrate_mod.SAMPLERS
    build_defaults = {p.name: p.default for p in cli_latency.build.params}
    assert {k: build_defaults[k] for k in latency_pkg.RECOMMENDED_TIMING} == latency_pkg.RECOMMENDED_TIMING
    assert build_defaults["calibrate"] == latency_pkg.RECOMMENDED_CALIBRATION_N


def test_fit_recovers_the_scales_and_predictions_improve(table, monkeypatch):
    calls = []
    _fake_measure(monkeypatch, _truth(), calls)
    cal = calibrate_lut(table, n=40, warmup=2, repeats=3, rounds=2, features="scale")
    (archs, seed, *how), = calls
    assert seed == 1000 and how == [2, 3, 2] and archs == sample_archs(table.space(), 40, 1000, "mixed")
    got = dict(zip(cal.calibration.features, cal.calibration.coefficients))
    assert got == pytest.approx({"1": INTERCEPT, **{f"ms:{g}": s for g, s in SCALES.items()}}, abs=1e-9)
    info = cal.calibration.info
    assert (info["n"], info["seed"], info["model"], info["n_coefficients"], info["sampler"]) == (40, 1000, "scale", 10,
                                                                                                   "mixed")
    assert info["archs"] == archs and max(abs(r) for r in info["residuals_ms"]) < 1e-9 and info["unfitted"] == []
    assert info["fit"]["median_abs_rel_error"] < 1e-9 < info["raw"]["median_abs_rel_error"]
    # the check sample (seed 0) is disjoint from the calibration sample, and predictions improve on it
    res = check_lut(cal, n=30, seed=0)
    assert res["calibrated"] and res["calibration_overlap"] == 0 and res["calibration_model"] == "scale"
    assert res["kendall_tau"] == pytest.approx(1.0) and res["median_abs_rel_error"] < 1e-9
    assert res["raw"]["kendall_tau"] < 0.99 and res["raw"]["median_abs_rel_error"] > 0.1
    assert res["raw"]["median_ratio"] < 0.9 and res["median_ratio"] == pytest.approx(1.0)
    assert all(r["raw_ms"] == table.predict(r["arch"]) for r in res["rows"])
    assert check_lut(cal, archs=archs[:5])["calibration_overlap"] == 5


def test_overhead_model_recovers_per_layer_overheads(table, monkeypatch):
    overhead = {"c3": 0.05, "dw": 0.2, "sk": 0.1, "down": 0.15}
    _fake_measure(monkeypatch, _truth(overhead))
    cal = calibrate_lut(table, n=60, features="scale+overhead")
    got = dict(zip(cal.calibration.features, cal.calibration.coefficients))
    per_layer = INTERCEPT / SMALL["num_layers"]   # no intercept in this model: it is spread over the layers
    want = {**{f"ms:{g}": s for g, s in SCALES.items()},
            **{f"n:{g}": overhead.get(g, 0.0) + per_layer for g in GROUPS if g != "ends"}}
    assert got == pytest.approx(want, abs=1e-9)
    scale_only = calibrate_lut(table, n=60)        # cannot represent the overheads: better than raw, not exact
    res, res_scale = check_lut(cal, n=20), check_lut(scale_only, n=20)
    assert res["median_abs_rel_error"] < 1e-9 < res_scale["median_abs_rel_error"]
    assert res_scale["median_abs_rel_error"] < res_scale["raw"]["median_abs_rel_error"]


def _not_macs(table: LatencyTable) -> LatencyTable:
    """The table with entries not proportional to MACs, so that a cost per GMAC is a feature of its own."""
    return LatencyTable({k: dict(e, ms=0.01 + e["macs"] ** 0.5 / 1e3) for k, e in table.entries.items()}, table.meta)


def test_macs_model_recovers_a_cost_per_gmac(table, monkeypatch):
    """Whole networks that cost 5 ms per GMAC beyond their parts: the scale+macs model (the default) finds it,
    the scale model cannot represent it."""
    table = _not_macs(table)
    _fake_measure(monkeypatch, _truth(ms_per_gmac=5.0))
    cal = calibrate_lut(table, n=60)
    got = dict(zip(cal.calibration.features, cal.calibration.coefficients))
    assert cal.calibration.info["model"] == "scale+macs" == latency_pkg.DEFAULT_FEATURES
    assert got == pytest.approx({"1": INTERCEPT, "gmacs": 5.0, **{f"ms:{g}": s for g, s in SCALES.items()}},
                                abs=1e-6)
    scale_only = calibrate_lut(table, n=60, features="scale")
    assert check_lut(cal, n=20)["median_abs_rel_error"] < 1e-9 < check_lut(scale_only, n=20)["median_abs_rel_error"]


def test_json_round_trip_and_old_tables_unchanged(table, monkeypatch, tmp_path):
    _fake_measure(monkeypatch, _truth())
    cal = calibrate_lut(table, n=20, seed=1234, sampler="uniform")
    cal.save(tmp_path / "cal.json")
    doc = json.loads((tmp_path / "cal.json").read_text())
    assert doc["calibration"]["seed"] == 1234 and len(doc["calibration"]["archs"]) == 20
    assert doc["calibration"]["features"] == list(FEATURE_SETS[latency_pkg.DEFAULT_FEATURES])
    assert doc["meta"] == table.meta
    back = LatencyTable.load(tmp_path / "cal.json")
    assert back.calibration.model() == cal.calibration.model() and back.digest() == cal.digest() != table.digest()
    arch = table.space().sample(random.Random(5))
    assert back.predict(arch) == cal.predict(arch) != back.predict(arch, raw=True) == back.predict_raw(arch)
    assert back.predict_raw(arch) == table.predict(arch) == sum(ms for _, ms, _ in table.parts(arch))
    # a table without calibration: no key written, the plain sum, the digest of its entries as before
    table.save(tmp_path / "old.json")
    old = LatencyTable.load(tmp_path / "old.json")
    assert "calibration" not in json.loads((tmp_path / "old.json").read_text())
    assert old.calibration is None and old.predict(arch) == old.predict_raw(arch)
    assert old.digest() == old.entries_digest() == table.digest()
    assert not check_lut(old, n=3)["calibrated"] and "raw_ms" not in check_lut(old, n=3)["rows"][0]
    # refits from stored measurements need no timing; an existing calibration is replaced
    info = cal.calibration.info
    refit = fit_calibration(cal, info["archs"], info["measured_ms"], "affine")
    assert refit.calibration.features == ["1", "ms:all"] and refit.calibration.info["raw"] == info["raw"]


@pytest.mark.parametrize("mutate, message", [
    (lambda c: c.update(coefficients=c["coefficients"][:-1]), "10 features but 9 coefficients"),
    (lambda c: c.update(features=["1", "ms:conv"] + c["features"][2:]), "unknown calibration feature 'ms:conv'"),
    (lambda c: c["coefficients"].__setitem__(0, "x"), "coefficient 'x' is not a finite number"),
    (lambda c: c.update(entries_digest="0" * 16), "fitted on entries with digest"),
    (lambda c: c.pop("features"), "needs lists 'features' and 'coefficients'"),
])
def test_bad_calibrations_give_one_line_errors(table, monkeypatch, tmp_path, mutate, message):
    _fake_measure(monkeypatch, _truth())
    doc = calibrate_lut(table, n=12, features="scale").to_json()
    mutate(doc["calibration"])
    (tmp_path / "bad.json").write_text(json.dumps(doc))
    with pytest.raises(SaswotError, match=message) as info:
        LatencyTable.load(tmp_path / "bad.json")
    assert "\n" not in str(info.value)


def test_calibration_guards(table, monkeypatch):
    _fake_measure(monkeypatch, _truth())
    with pytest.raises(SaswotError, match="use 1000 or more"):
        calibrate_lut(table, n=20, seed=0)
    with pytest.raises(SaswotError, match="needs at least 12 networks"):
        calibrate_lut(table, n=11, features="scale")
    with pytest.raises(SaswotError, match="needs at least 13 networks"):
        calibrate_lut(table, n=12)  # the default model has 11 coefficients
    with pytest.raises(SaswotError, match="unknown calibration model 'cubic'"):
        calibrate_lut(table, n=20, features="cubic")
    with pytest.raises(SaswotError, match="unknown calibration sampler"):
        calibrate_lut(table, n=20, sampler="sobol")
    # a group that never occurs in the sample keeps the plain sum's coefficient (1) and is listed as unfitted
    space = table.space()
    no_dw = [a for a in sample_archs(space, 80, 1000, "uniform") if "dw." not in a][:20]
    cal = calibrate_lut(table, archs=no_dw)
    assert cal.calibration.info["unfitted"] == ["ms:dw"] and cal.calibration.info["sampler"] == "given"
    assert dict(zip(cal.calibration.features, cal.calibration.coefficients))["ms:dw"] == 1.0


def test_cli_build_calibrate_and_check(table, monkeypatch, tmp_path):
    _fake_measure(monkeypatch, _truth())
    monkeypatch.setattr(speed, "forward_times", lambda model, x, warmup=5, repeats=20, sync=None: [1.0])
    table.save(tmp_path / "lut.json")
    res = CliRunner().invoke(main, ["latency", "calibrate", "--lut", str(tmp_path / "lut.json"), "--n", "14",
                                    "--out", str(tmp_path / "cal.json")])
    assert res.exit_code == 0, res.output
    assert "calibrated on 14 networks (seed 1000, mixed, model scale+macs, 11 coefficients)" in res.output
    cal = LatencyTable.load(tmp_path / "cal.json")
    assert cal.calibration.info["repeats"] == table.meta["repeats"] and cal.entries == table.entries
    res = CliRunner().invoke(main, ["latency", "check", "--lut", str(tmp_path / "cal.json"), "--n", "4"])
    assert res.exit_code == 0, res.output
    assert "plain sum of entries: Kendall tau" in res.output and "(0 of the networks calibrated on)" in res.output
    res = CliRunner().invoke(main, ["latency", "calibrate", "--lut", str(tmp_path / "lut.json"), "--calibrate-seed",
                                    "7", "--out", str(tmp_path / "x.json")])
    assert res.exit_code == 2 and "7 is not in the range x>=1000" in res.output
    out = tmp_path / "built.json"
    res = CliRunner().invoke(main, ["latency", "build", "--resolution", "32x32", "--repeats", "1", "--warmup", "0",
                                    "--calibrate", "12", "--calibrate-seed", "2000", "--model", "affine", "--out",
                                    str(out)])
    assert res.exit_code == 0, res.output
    built = LatencyTable.load(out)
    assert built.calibration.info["seed"] == 2000 and built.calibration.features == ["1", "ms:all"]
    assert built.space_kwargs["num_layers"] == 10


def test_a_table_knows_how_it_was_timed(table):
    assert table.timing == {k: int(table.meta[k]) for k in ("warmup", "repeats", "rounds")}
    from saswot_gp.latency import LatencyTable
    old = LatencyTable(table.entries, {k: v for k, v in table.meta.items() if k not in ("warmup", "repeats", "rounds")})
    assert old.timing == {"warmup": 5, "repeats": 20, "rounds": 1}  # tables written before these fields


def test_benchmark_rescores_stored_checks_without_timing(table, monkeypatch, tmp_path):
    """benchmarks/latency_lut.py --checks-from: a stored check rescored with its own table gives its own figures;
    after a refit, the refit's predictions on the same measurements."""
    import importlib.util
    from pathlib import Path
    spec = importlib.util.spec_from_file_location("latency_lut_script",
                                                  Path(__file__).resolve().parents[1] / "benchmarks" / "latency_lut.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    _fake_measure(monkeypatch, _truth(ms_per_gmac=5.0))
    cal = calibrate_lut(_not_macs(table), n=30, features="scale")
    res = check_lut(cal, n=10, repeatability=True)
    same = bench.rescore(cal, res)
    for key in ("kendall_tau", "median_ratio", "median_abs_rel_error", "kendall_tau_second_pass"):
        assert same[key] == pytest.approx(res[key], abs=1e-12)
    info = cal.calibration.info
    refit = fit_calibration(cal, info["archs"], info["measured_ms"], "scale+macs")
    again = bench.rescore(refit, res)
    assert [r["predicted_ms"] for r in again["rows"]] == [refit.predict(r["arch"]) for r in res["rows"]]
    assert [r["measured_ms"] for r in again["rows"]] == [r["measured_ms"] for r in res["rows"]]
    assert again["calibration_model"] == "scale+macs" and again["median_abs_rel_error"] < same["median_abs_rel_error"]


def test_model_selection_on_validation_networks_prefers_the_model_that_fits(table, monkeypatch):
    """benchmarks/latency_model_selection.py: with networks that cost a fixed amount per GMAC beyond their parts,
    scale+macs closes the gap to the ceiling on validation networks, scale cannot."""
    import importlib.util
    from pathlib import Path
    spec = importlib.util.spec_from_file_location(
        "model_selection", Path(__file__).resolve().parents[1] / "benchmarks" / "latency_model_selection.py")
    sel = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(sel)
    _fake_measure(monkeypatch, _truth(ms_per_gmac=500.0))
    cal = calibrate_lut(_not_macs(table), n=30)
    space = cal.space()
    rng = random.Random(2000)
    validation = {"uniform": check_lut(cal, n=10, seed=2000, repeatability=True),
                  "diverse": check_lut(cal, archs=[space.sample_diverse(rng) for _ in range(10)], repeatability=True)}
    res = sel.select(cal, validation, splits=3, train=14)
    assert res["scale+overhead"]["splits"] is None  # 17 coefficients: 14 networks are too few
    assert res["scale+macs"]["splits"] == pytest.approx(0.0, abs=1e-9)
    assert res["scale+macs"]["uniform"] == pytest.approx(0.0, abs=1e-9)
    assert res["scale+macs"]["diverse"] == pytest.approx(0.0, abs=1e-9)
    assert max(res["scale"]["uniform"], res["scale"]["diverse"], res["scale"]["splits"]) > 1e-3


def test_calibration_drift_measures_calibration_networks_again_as_they_were_measured(table, monkeypatch):
    from saswot_gp.latency import calibration_drift
    _fake_measure(monkeypatch, _truth())
    cal = calibrate_lut(table, n=20, seed=1500, warmup=2, repeats=7, rounds=3)
    calls = []
    _fake_measure(monkeypatch, lambda t, a: 1.08 * _truth()(t, a), calls)  # the machine now runs 8 % slower
    drift = calibration_drift(cal, n=5)
    info = cal.calibration.info
    assert calls == [(info["archs"][:5], 1500, 2, 7, 3)]  # the first five, with the calibration's seed and timing
    assert drift["n"] == 5 and drift["median_ratio"] == pytest.approx(1.08)
    assert drift["then_ms"] == pytest.approx(info["measured_ms"][:5])
    assert calibration_drift(cal, n=100)["n"] == 20  # never more than were calibrated on
    with pytest.raises(SaswotError, match="no stored calibration measurements"):
        calibration_drift(table)
    with pytest.raises(SaswotError, match="at least 1 calibration network"):
        calibration_drift(cal, n=0)


def test_cli_check_reports_drift_unless_told_not_to(table, monkeypatch, tmp_path):
    _fake_measure(monkeypatch, _truth())
    calibrate_lut(table, n=14).save(tmp_path / "cal.json")
    _fake_measure(monkeypatch, lambda t, a: 0.9 * _truth()(t, a))
    out = tmp_path / "check.json"
    res = CliRunner().invoke(main, ["latency", "check", "--lut", str(tmp_path / "cal.json"), "--n", "4", "--drift",
                                    "3", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "calibration networks measured again: 3 run at 0.900x their calibration times" in res.output
    assert "about 1.11x what this machine measures now; more than 5 % off: calibrate the table again" in res.output
    assert json.loads(out.read_text())["calibration_drift"]["median_ratio"] == pytest.approx(0.9)
    _fake_measure(monkeypatch, lambda t, a: 0.97 * _truth()(t, a))
    res = CliRunner().invoke(main, ["latency", "check", "--lut", str(tmp_path / "cal.json"), "--n", "4", "--drift",
                                    "3"])
    assert res.exit_code == 0 and "0.970x" in res.output and "within 5 %: the calibration still fits" in res.output
    res = CliRunner().invoke(main, ["latency", "check", "--lut", str(tmp_path / "cal.json"), "--n", "4", "--drift",
                                    "0", "--out", str(out)])
    assert res.exit_code == 0 and "measured again" not in res.output
    assert "calibration_drift" not in json.loads(out.read_text())
    table.save(tmp_path / "plain.json")  # no calibration: nothing to compare with, nothing reported
    res = CliRunner().invoke(main, ["latency", "check", "--lut", str(tmp_path / "plain.json"), "--n", "4"])
    assert res.exit_code == 0 and "measured again" not in res.output


def test_cli_check_draws_predicted_against_measured(table, monkeypatch, tmp_path):
    from saswot_gp.viz import latency_check_figure
    _fake_measure(monkeypatch, _truth())
    calibrate_lut(table, n=14, features="affine").save(tmp_path / "cal.json")
    _fake_measure(monkeypatch, lambda t, a: 1.02 * _truth()(t, a))
    out, plot = tmp_path / "check.json", tmp_path / "check.png"
    res = CliRunner().invoke(main, ["latency", "check", "--lut", str(tmp_path / "cal.json"), "--n", "6", "--drift",
                                    "0", "--repeatability", "--out", str(out), "--plot", str(plot)])
    assert res.exit_code == 0, res.output
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and f"-> {out}, {plot}" in res.output
    fig = latency_check_figure(json.loads(out.read_text()))
    ax, = fig.axes
    points = {c.get_gid(): c.get_offsets() for c in ax.collections if c.get_gid()}
    rows = json.loads(out.read_text())["rows"]
    assert [list(p) for p in points["predicted"]] == [[r["measured_ms"], r["predicted_ms"]] for r in rows]
    assert [list(p) for p in points["raw"]] == [[r["measured_ms"], r["raw_ms"]] for r in rows]
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert any("median |error| 2.0 %" in t and "measured vs re-measured tau" in t for t in legend)
    calls = []
    _fake_measure(monkeypatch, _truth(), calls)
    res = CliRunner().invoke(main, ["latency", "check", "--lut", str(tmp_path / "cal.json"), "--plot",
                                    str(tmp_path / "check.jpg")])
    assert res.exit_code == 2 and "unsupported extension '.jpg'; expected .png or .svg" in res.output
    assert calls == []     # refused before measuring anything
