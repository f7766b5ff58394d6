import csv
import json

import pytest
import torch
from click.testing import CliRunner

from saswot_gp.cli import main
from saswot_gp.errors import SaswotError
from saswot_gp.proxy import Proxy
from saswot_gp.search import ProxyScorer, parse_budget, run_search, search_batch, search_cost
from saswot_gp.spaces import get_space
from saswot_gp.spaces.base import count_params
from saswot_gp.stats.cache import build_model

torch.set_num_threads(1)
SETTINGS = dict(top_k=4, population=5, sample_size=3, batch_size=2, checkpoint_every=2)




@pytest.fixture(scope="module")
def lut_file(lut, tmp_path_factory):
    path = tmp_path_factory.mktemp("lut") / "lut.json"
    lut.save(path)
    return path


def _history(out):
    return json.loads((out / "checkpoint.json").read_text())["history"]


def test_budget_respected_and_params_proxy_returns_largest_feasible(space, lut, limit, tmp_path):
    summary = run_search(space, "params", lut, limit, 14, tmp_path, **SETTINGS)
    hist = _history(tmp_path)
    assert summary["scored"] == 14 == len(hist) == len({h["arch"] for h in hist})
    for h in hist:  # every scored architecture is feasible, by the table's prediction
        assert h["latency_ms"] == lut.predict(h["arch"]) <= limit
    top = summary["top"]
    assert len(top) == 4 and all(r["latency_ms"] <= limit for r in top)
    sizes = sorted((count_params(space.build(h["arch"])) for h in hist), reverse=True)
    assert [r["params"] for r in top] == sizes[:4] and [r["score"] for r in top] == [float(s) for s in sizes[:4]]
    assert all(abs(r["fps"] - 1000.0 / r["latency_ms"]) < 1e-9 and r["flops"] > 0 for r in top)
    rows = list(csv.DictReader((tmp_path / "top.csv").open()))
    assert [r["arch"] for r in rows] == [r["arch"] for r in top]
    doc = json.loads((tmp_path / "top.json").read_text())
    assert doc["scored"] == 14 and doc["archs_per_s"] > 0 and doc["max_latency_ms"] == limit
    assert doc["proxy"] == "params" and "digit scenes" in doc["batch"]


def test_evolution_improves_on_random_init(space, lut, limit, tmp_path):
    run_search(space, "params", lut, limit, 30, tmp_path, **SETTINGS)
    scores = [h["score"] for h in _history(tmp_path)]
    assert max(scores[5:]) > max(scores[:5])  # children of the best beat the random population


def test_deterministic_for_a_seed(space, lut, limit, tmp_path):
    a = run_search(space, "grad_norm", lut, limit, 8, tmp_path / "a", seed=3, **SETTINGS)
    b = run_search(space, "grad_norm", lut, limit, 8, tmp_path / "b", seed=3, **SETTINGS)
    c = run_search(space, "grad_norm", lut, limit, 8, tmp_path / "c", seed=4, **SETTINGS)
    key = [(h["arch"], h["score"]) for h in _history(tmp_path / "a")]
    assert key == [(h["arch"], h["score"]) for h in _history(tmp_path / "b")]
    assert a["top"] == b["top"] and a["top"] != c["top"]


def test_resume_equals_uninterrupted(space, lut, limit, tmp_path):
    straight = run_search(space, "params", lut, limit, 16, tmp_path / "straight", **SETTINGS)
    # budget 6, then resume to 16
    run_search(space, "params", lut, limit, 6, tmp_path / "extend", **SETTINGS)
    assert len(_history(tmp_path / "extend")) == 6
    extended = run_search(space, "params", lut, limit, 16, tmp_path / "extend", resume=True, **SETTINGS)

    # killed after the 11th score (last checkpoint at 10), then resumed
    def kill(i, n, arch, score):
        if i == 11:
            raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        run_search(space, "params", lut, limit, 16, tmp_path / "killed", progress=kill, **SETTINGS)
    assert len(_history(tmp_path / "killed")) == 10
    resumed = run_search(space, "params", lut, limit, 16, tmp_path / "killed", resume=True, **SETTINGS)
    want = [h["arch"] for h in _history(tmp_path / "straight")]
    assert [h["arch"] for h in _history(tmp_path / "extend")] == want
    assert [h["arch"] for h in _history(tmp_path / "killed")] == want
    assert straight["top"] == extended["top"] == resumed["top"]
    ck = [json.loads((tmp_path / d / "checkpoint.json").read_text()) for d in ("straight", "killed")]
    assert ck[0]["population"] == ck[1]["population"] and ck[0]["rng"] == ck[1]["rng"]
    with pytest.raises(SaswotError, match="cannot resume .* max_latency_ms"):
        run_search(space, "params", lut, limit * 0.9, 20, tmp_path / "killed", resume=True, **SETTINGS)


def test_proxy_file_scores_match_the_proxy(space, lut, limit, tmp_path):
    path = tmp_path / "p.json"
    Proxy.parse("layers_sum(l1_w(mul_w(W, G)))").save(path)
    summary = run_search(space, str(path), lut, limit, 6, tmp_path / "run", seed=2, **SETTINGS)
    images, labels, _ = search_batch(space, "digits", 2)
    best = summary["top"][0]
    again = Proxy.load(path).score(build_model(space, best["arch"], 2), images, labels, k=256, seed=2)
    assert best["score"] == pytest.approx(again, rel=1e-6)
    assert all(a["score"] >= b["score"] for a, b in zip(summary["top"], summary["top"][1:]))


def test_search_scores_with_a_proxy_of_measure_terminals(space, lut, limit, tmp_path):
    """A proxy that reads live measures (issue 25) scores each candidate with the registered measures themselves."""
    import math
    from saswot_gp.zerocost import get_measure
    path = tmp_path / "m.json"
    Proxy.parse("sub_s(zc_grad_norm, log_s(zc_snip))").save(path)
    summary = run_search(space, str(path), lut, limit, 4, tmp_path / "run", seed=2, **SETTINGS)
    images, labels, _ = search_batch(space, "digits", 2)
    for row in summary["top"]:
        model = build_model(space, row["arch"], 2)
        want = get_measure("grad_norm")(model, images, labels) - math.log(abs(get_measure("snip")(model, images, labels)))
        assert row["score"] == pytest.approx(want, rel=1e-6)
    assert summary["archs_per_s"] > 0 and "computes the live measures snip, grad_norm" in summary["proxy"]


def test_proxy_resolution_errors(tmp_path):
    with pytest.raises(SaswotError, match="unknown proxy 'nope'.*snip"):
        ProxyScorer("nope")
    with pytest.raises(SaswotError, match="not found"):
        ProxyScorer(str(tmp_path / "missing.json"))
    assert ProxyScorer("nwot").identity() == {"kind": "measure", "name": "nwot"}


def test_infeasible_budget_and_budget_parsing(space, lut, tmp_path):
    with pytest.raises(SaswotError, match="no architecture met the latency budget"):
        run_search(space, "params", lut, 1e-6, 4, tmp_path, **SETTINGS)
    assert parse_budget(None, 50.0) == 20.0 and parse_budget(12.5, None) == 12.5
    with pytest.raises(SaswotError, match="exactly one"):
        parse_budget(10.0, 50.0)
    with pytest.raises(SaswotError, match="does not match the search space"):
        run_search(get_space("realtime", base_width=4, input_size=64, num_layers=4), "params", lut, 5.0, 4, tmp_path)


def test_search_cost():
    c = search_cost(200, 90.0, 30.0)
    assert c["train_all_s"] == 18000.0 and c["train_all_h"] == 5.0 and c["speedup"] == 600.0


def test_cli_search(lut_file, limit, tmp_path):
    out = tmp_path / "run"
    args = ["search", "--proxy", "params", "--space", "realtime", "--lut", str(lut_file), "--resolution", "32x32",
            "--max-latency", str(limit), "--budget", "8", "--top", "3", "--population", "4", "--sample-size", "2",
            "--batch-size", "2", "--out", str(out), "--train-time", "60"]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    rows = list(csv.DictReader((out / "top.csv").open()))
    assert len(rows) == 3 and all(float(r["latency_ms"]) <= limit for r in rows)
    assert "scored 8 architectures" in res.output and "would take 0.13 h" in res.output
    assert json.loads((out / "top.json").read_text())["search_cost"]["train_all_s"] == 480.0
    res = CliRunner().invoke(main, args[:-2] + ["--budget", "10", "--resume"])
    assert res.exit_code == 0 and "resuming" in res.output and "scored 10 architectures" in res.output


@pytest.mark.parametrize("extra, message", [
    (["--proxy", "nope", "--max-latency", "5"], "error: unknown proxy 'nope'"),
    (["--proxy", "params"], "error: give exactly one of --max-latency"),
    (["--proxy", "params", "--min-fps", "100", "--resolution", "64x64"], "error: latency table"),
])
def test_cli_search_errors(lut_file, tmp_path, extra, message):
    res = CliRunner().invoke(main, ["search", "--lut", str(lut_file), "--out", str(tmp_path)] + extra)
    assert res.exit_code == 2
    assert res.output.strip().startswith(message) and len(res.output.strip().splitlines()) == 1


# ------------------------------------------------------------------ re-measuring the top K (issue 14 part B)

def test_remeasured_top_marks_budget_misses_and_lists_them_last(space, lut, limit, tmp_path, monkeypatch):
    import saswot_gp.latency as latency_pkg
    from saswot_gp.search import format_top
    plain = run_search(space, "params", lut, limit, 12, tmp_path / "plain", **SETTINGS)
    assert all(r["measured_ms"] is None and r["meets_budget"] is None for r in plain["top"])
    assert plain["remeasure"] is None
    order = [r["arch"] for r in plain["top"]]
    slow = {order[0], order[2]}                       # measured over the budget: ranks 1 and 3
    calls = []

    def fake(table, archs, seed=0, warmup=5, repeats=20, rounds=1, progress=None, device=None, runtime=None):
        calls.append((list(archs), seed, warmup, repeats, rounds))
        return [2.0 * limit if a in slow else 0.5 * table.predict(a) for a in archs]

    monkeypatch.setattr(latency_pkg, "measure_archs", fake)
    runs = [run_search(space, "params", lut, limit, 12, tmp_path / d, remeasure=True, **SETTINGS) for d in "ab"]
    assert calls[0] == (order, 0, 0, 1, 1)           # the top K, the search's seed, the table's warm-up/repeats/rounds
    for summary in runs:
        top = summary["top"]
        assert [r["rank"] for r in top] == [2, 4, 1, 3] and [r["arch"] for r in top] == [order[i] for i in (1, 3, 0, 2)]
        assert [r["meets_budget"] for r in top] == [True, True, False, False]
        assert [r["score"] for r in top[:2]] == [plain["top"][1]["score"], plain["top"][3]["score"]]
        assert all(r["latency_ms"] == lut.predict(r["arch"]) for r in top)
        how = summary["remeasure"]
        assert (how["runtime"], how["threads"], how["device"], how["over_budget"]) == ("eager", 1, "cpu", 2)
    assert [(r["arch"], r["score"]) for r in runs[0]["top"]] == [(r["arch"], r["score"]) for r in runs[1]["top"]]
    rows = list(csv.DictReader((tmp_path / "a" / "top.csv").open()))
    assert [r["meets_budget"] for r in rows] == ["True", "True", "False", "False"]
    assert float(rows[2]["measured_ms"]) == pytest.approx(2.0 * limit)
    text = format_top(runs[0])
    assert "meas ms" in text and text.count("!") == 3 and "2 over the budget when measured (!): listed last" in text
    # rows within budget measured at half their prediction, the others at 2 x limit: the median says how far off
    ratios = sorted(r["measured_ms"] / r["latency_ms"] for r in runs[0]["top"])
    assert runs[0]["remeasure"]["measured_over_predicted"] == pytest.approx(0.5 * (ratios[1] + ratios[2]))
    assert "measured/predicted median" in text and "the table is not calibrated" in text  # nothing to recalibrate
    runs[0]["remeasure"]["measured_over_predicted"] = 1.02
    assert "no longer fits" not in format_top(runs[0])


def _gids(out, summary):
    """The search picture of ``out`` (written) and the points of each of its marked artists, redrawn from the run."""
    from saswot_gp.viz import search_figure
    assert (out / "search.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    ax = search_figure(_history(out), summary["top"], summary["max_latency_ms"]).axes[0]
    points = {c.get_gid(): [tuple(p) for p in c.get_offsets()] for c in ax.collections if c.get_gid()}
    lines = {ln.get_gid(): ln.get_xdata() for ln in ax.lines if ln.get_gid()}
    return points, lines


def test_search_draws_scores_against_latency_with_the_budget_and_the_top(space, lut, limit, tmp_path, monkeypatch):
    import saswot_gp.latency as latency_pkg
    plain = run_search(space, "params", lut, limit, 12, tmp_path / "plain", **SETTINGS)
    points, lines = _gids(tmp_path / "plain", plain)
    assert points["scored"] == [(h["latency_ms"], h["score"]) for h in _history(tmp_path / "plain")]
    assert points["top"] == [(r["latency_ms"], r["score"]) for r in plain["top"]] and len(points["top"]) == 4
    assert list(lines["budget"]) == [limit, limit] and "measured" not in points
    slow = plain["top"][0]["arch"]
    monkeypatch.setattr(latency_pkg, "measure_archs", lambda table, archs, **kw: [
        2.0 * limit if a == slow else 0.9 * table.predict(a) for a in archs])
    again = run_search(space, "params", lut, limit, 12, tmp_path / "measured", remeasure=True, **SETTINGS)
    points, _ = _gids(tmp_path / "measured", again)
    assert points["measured"] == [(r["measured_ms"], r["score"]) for r in again["top"]]
    assert points["missed"] == [(2.0 * limit, plain["top"][0]["score"])]


def test_cli_search_remeasures_by_default(lut_file, limit, tmp_path):
    base = ["search", "--proxy", "params", "--lut", str(lut_file), "--max-latency", str(limit), "--budget", "6",
            "--top", "2", "--population", "4", "--sample-size", "2", "--batch-size", "2", "--batch", "synthetic"]
    res = CliRunner().invoke(main, base + ["--out", str(tmp_path / "m")])
    assert res.exit_code == 0, res.output
    rows = list(csv.DictReader((tmp_path / "m" / "top.csv").open()))
    assert all(float(r["measured_ms"]) > 0 and r["meets_budget"] in ("True", "False") for r in rows)
    assert "measured on eager, 1 thread(s), cpu" in res.output
    res = CliRunner().invoke(main, base + ["--out", str(tmp_path / "n"), "--no-remeasure"])
    assert res.exit_code == 0, res.output
    rows = list(csv.DictReader((tmp_path / "n" / "top.csv").open()))
    assert all(r["measured_ms"] == "" and r["meets_budget"] == "" for r in rows)
    assert json.loads((tmp_path / "n" / "top.json").read_text())["remeasure"] is None
