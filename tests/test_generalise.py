"""Evolution that generalises: committed splits, resampled fitness, parsimony, and the final choice on validation
with the hand-designed seeds competing."""

import json
from pathlib import Path

import numpy as np
import pytest

from saswot_gp.errors import SaswotError
from saswot_gp.evolution import EvolutionConfig, ProxyEvaluator, evolve
from saswot_gp.evolution.fitness import MultiEvaluator, Resampler
from saswot_gp.groundtruth.base import Benchmark
from saswot_gp.groundtruth.splits import apply_split, committed_split, load_splits, make_split, usable_archs
from saswot_gp.proxy import Proxy
from saswot_gp.ranking import kendall
from saswot_gp.spaces.transnas_cells import micro_cell_class



# ------------------------------------------------------------------------------------------------ splits

@pytest.mark.parametrize("arch, cls", [
    ("64-41414-0_00_000", None),          # nothing reaches the output
    ("64-41414-0_03_033", None),          # nodes 1 and 2 are never fed, so their edges to the output carry nothing
    ("64-41414-3_00_300", "0_00_300"),    # node 1 is a dead end: only 0->3 computes
    ("64-41414-3_20_020", "0_30_002"),    # node 2 is a dead end, then nodes 1 and 2 swap (1->2 is zero)
    ("64-41414-3_20_023", "2_30_032"),    # nodes 1 and 2 swap when 1->2 is zero
    ("64-41414-2_30_032", "2_30_032"),
    ("64-41414-3_21_021", "3_21_021"),    # 1->2 used: no swap
])
def test_micro_cell_classes(arch, cls):
    assert micro_cell_class(arch) == cls


def test_micro_classes_of_the_whole_space():
    """Isomorphic cells compute the same function: a dead edge's op never matters."""
    import itertools
    archs = ["64-41414-%s_%s%s_%s%s%s" % t for t in itertools.product("0123", repeat=6)]
    classes = [micro_cell_class(a) for a in archs]
    # changing the op of 1->2 when node 1 gets no input leaves the class alone
    assert micro_cell_class("64-41414-0_31_003") == micro_cell_class("64-41414-0_33_003")
    assert sum(c is None for c in classes) == 169 and len({c for c in classes if c}) == 1947


def _bench(n=50, space="toy"):
    return Benchmark("toy", space, [f"a{i}" for i in range(n)], np.arange(n, dtype=float))


def test_make_split_partitions_everything_and_is_seeded():
    b = _bench(100)
    s = make_split(b, seed=0)
    parts = s["train"] + s["val"] + s["heldout"]
    assert sorted(parts) == sorted(b.archs) and len(set(parts)) == 100
    assert (len(s["heldout"]), len(s["val"]), len(s["train"])) == (30, 18, 52)
    assert make_split(b, seed=0) == s and make_split(b, seed=1)["heldout"] != s["heldout"]
    train, val, test = apply_split(b, s, train_size=10)
    assert train.archs == s["train"][:10] and val.archs == s["val"] and test.archs == s["heldout"]
    assert list(test.target) == [float(a[1:]) for a in s["heldout"]]


def test_micro_duplicates_are_removed_before_splitting():
    archs = ["64-41414-3_00_300", "64-41414-3_01_300", "64-41414-0_00_000", "64-41414-3_20_023", "64-41414-2_30_032"]
    b = Benchmark("m", "transnas-micro", archs, np.arange(5, dtype=float))
    keep, removed = usable_archs(b)
    assert keep == [0, 3] and removed == {"invalid": ["64-41414-0_00_000"],
                                          "duplicate": ["64-41414-3_01_300", "64-41414-2_30_032"]}


def test_committed_split_covers_the_shipped_benchmark_and_refuses_another_file():
    from saswot_gp.groundtruth.loaders import resolve_benchmark
    b = resolve_benchmark("realtime-digits")
    e = committed_split(b)
    assert e is not None and sorted(e["train"] + e["val"] + e["heldout"]) == sorted(b.archs)
    assert (len(e["train"]), len(e["val"]), len(e["heldout"])) == (105, 35, 60)
    other = b.subset(np.arange(150))
    with pytest.raises(SaswotError, match="not the one the committed split was made for"):
        committed_split(other)
    assert committed_split(_bench()) is None
    assert set(load_splits()["splits"]) == {"realtime-digits", "transnas-micro", "transnas-macro", "nbmr"}


def test_committed_splits_reproduce_from_the_benchmark_files(monkeypatch):
    import subprocess
    import sys
    from conftest import need_benchdata
    need_benchdata("transnas101/zc_transbench101_micro.json")
    need_benchdata("nasbench_mr/seg-4x_trainval.pkl")
    monkeypatch.setenv("SASWOT_BENCHDATA", str(need_benchdata(".")))
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "make_splits.py"
    res = subprocess.run([sys.executable, str(script), "--check"], capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "removed {'invalid': 20, 'duplicate': 307}" in res.stdout


# ------------------------------------------------------------------------------------------ resampling

def test_resampler_is_seeded_per_generation():
    t = {"a": np.arange(40.0), "b": np.arange(10.0)}
    r = Resampler(t, 0.5, seed=3)
    s0, s1 = r.subsets(0), r.subsets(1)
    assert len(s0["a"]) == 20 and len(s0["b"]) == 5 and not np.array_equal(s0["a"], s1["a"])
    again = Resampler(t, 0.5, seed=3)
    assert all(np.array_equal(again.subsets(1)[k], s1[k]) for k in t)
    assert not np.array_equal(Resampler(t, 0.5, seed=4).subsets(1)["a"], s1["a"])
    perfect = {"a": np.arange(40.0), "b": -np.arange(10.0)}
    assert r.fitness(perfect, 5) == pytest.approx(0.0)  # mean of +1 and -1
    assert Resampler(t, 0.5, 3, how="min").fitness(perfect, 5) == pytest.approx(-1.0)
    assert np.isnan(r.fitness({"a": np.zeros(40), "b": np.arange(10.0)}, 2))
    with pytest.raises(ValueError):
        Resampler(t, 0.0, 0)


def test_resampled_evolution_is_deterministic_and_judges_on_subsets(packed):
    target = Proxy.parse("layers_max(l2_w(G))").evaluate(packed).numpy()
    ev = MultiEvaluator({"p": ProxyEvaluator(packed, target)}, keep_scores=True)
    cfg = EvolutionConfig(population=16, generations=3, seed=2, hof_size=8, resample=0.5)
    runs = [evolve(ev, cfg, resampler=Resampler({"p": target}, 0.5, 2)) for _ in range(2)]
    assert runs[0].hall_of_fame == runs[1].hall_of_fame
    assert [h["best"] for h in runs[0].history] == [h["best"] for h in runs[1].history]
    # the hall of fame keeps the Kendall tau on the whole training split, not a subset's
    for e in runs[0].hall_of_fame[:3]:
        assert e["train_kendall"] == pytest.approx(kendall(Proxy(e["tokens"]).evaluate(packed).numpy(), target),
                                                   abs=1e-6)


def test_resampled_resume_equals_the_uninterrupted_run(packed, tmp_path):
    target = Proxy.parse("layers_max(l2_w(G))").evaluate(packed).numpy()
    ev = MultiEvaluator({"p": ProxyEvaluator(packed, target)}, keep_scores=True)

    def run(gens, out, resume=False):
        cfg = EvolutionConfig(population=12, generations=gens, seed=5, hof_size=6, resample=0.6, parsimony=0.01)
        return evolve(ev, cfg, out_dir=str(out), resume=resume, resampler=Resampler({"p": target}, 0.6, 5))

    full = run(4, tmp_path / "full")
    run(2, tmp_path / "part")
    resumed = run(4, tmp_path / "part", resume=True)  # the scores are not in the checkpoint: refilled, not counted
    assert resumed.hall_of_fame == full.hall_of_fame
    assert [h["evals"] for h in resumed.history] == [h["evals"] for h in full.history]


def test_parsimony_charges_each_node(packed):
    """Selection fitness is tau - parsimony x size: the exact proxy (size 3, tau 1) scores 0.97 at 0.01 per node,
    a rank-identical tree twice its size less."""
    target = Proxy.parse("layers_max(l2_w(G))").evaluate(packed).numpy()
    small, big = Proxy.parse("layers_max(l2_w(G))"), Proxy.parse("layers_max(l2_w(mul_w(G, G)))")
    ev = ProxyEvaluator(packed, target)
    assert ev(small.tokens)[0] == pytest.approx(1.0)
    res = evolve(ev, EvolutionConfig(population=8, generations=0, seed=0, parsimony=0.01, local_search=0),
                 seeds=[big, small])
    assert res.history[0]["best"] == pytest.approx(0.97)
    plain = evolve(ev, EvolutionConfig(population=8, generations=0, seed=0, local_search=0), seeds=[big, small])
    assert plain.history[0]["best"] == pytest.approx(1.0)
    with pytest.raises(SaswotError, match="parsimony"):
        EvolutionConfig(parsimony=1.5).check()


# ------------------------------------------------------------------------ choice on validation, seeds compete

def test_a_seed_that_validates_best_is_returned(tmp_path):
    """The planted target is NWOT's own ranking plus noise: with the choice on validation, the run never returns
    a proxy that validates worse than the best hand-designed seed."""
    from saswot_gp.evolution.job import run_evolve
    s = run_evolve(benchmark="synthetic", out_dir=str(tmp_path / "run"), population=8, generations=1, train_size=30,
                   select="val", log=lambda m: None)
    chosen = s["evolved"][0]
    best_seed_val = max(h["val_kendall"] for h in s["handcrafted"])
    assert chosen["val_kendall"] >= best_seed_val - 1e-9
    assert all(chosen["val_kendall"] >= r["val_kendall"] - 1e-9 for r in s["evolved"])
    saved = json.loads((tmp_path / "run" / "best_proxy.json").read_text())
    assert saved["tokens"] == chosen["tokens"] and chosen["origin"] in {"evolved"} | {
        f"seed: {h['name']}" for h in s["handcrafted"]}


def test_every_seed_competes_however_large_the_hall_of_fame(tmp_path):
    """A hall of fame with more distinct rankings than its nominal size must not crowd the hand-designed seeds out
    of the choice on validation: every seed either competes or ranks exactly like an evolved entry."""
    from saswot_gp.evolution.job import run_evolve
    s = run_evolve(benchmark="synthetic", out_dir=str(tmp_path / "run"), population=48, generations=4,
                   train_size=40, select="val", log=lambda m: None)
    rows = json.loads((tmp_path / "run" / "hall_of_fame.json").read_text())["evolved"]
    evolved = [r for r in rows if r["origin"] == "evolved"]
    assert len(rows) > 30  # more distinct rankings than the old cut (hall-of-fame size 20 + 10 seeds) kept
    figures = lambda r: tuple(round(r[k], 9) for k in ("train_kendall", "val_kendall", "heldout_kendall"))
    present = {r["origin"][len("seed: "):] for r in rows if r["origin"] != "evolved"}
    for h in s["handcrafted"]:
        assert h["name"] in present or figures(h) in {figures(r) for r in evolved}, h["name"]
    assert rows[0]["val_kendall"] >= max(h["val_kendall"] for h in s["handcrafted"]) - 1e-9


def test_proxies_scores_the_held_out_part_of_the_committed_split(tmp_path):
    import csv
    from click.testing import CliRunner
    from saswot_gp.cli import main
    from saswot_gp.groundtruth.loaders import resolve_benchmark
    out = tmp_path / "zc"
    res = CliRunner().invoke(main, ["proxies", "--benchmark", "realtime-digits", "--committed-split", "--measures",
                                    "params", "--bootstrap", "0", "--threads", "1", "--out", str(out)])
    assert res.exit_code == 0, res.output
    with open(out / "scores.csv", newline="") as fh:
        archs = [row["arch"] for row in csv.DictReader(fh)]
    assert archs == committed_split(resolve_benchmark("realtime-digits"))["heldout"]
    res = CliRunner().invoke(main, ["proxies", "--benchmark", "realtime-digits", "--committed-split", "--n", "5",
                                    "--out", str(tmp_path / "x")])
    assert res.exit_code == 2 and "not two of them" in res.output


def test_a_resumed_resampled_run_refills_scores_from_the_form_it_evaluated(packed, tmp_path):
    """After a resume the scores are not in memory; a rank-equivalent form of a cached key that fails numerically
    (sigmoid of a parameter count is a constant 1.0) must not stand in for the form that was evaluated."""
    params = Proxy.parse("params").evaluate(packed).numpy()
    target = params + np.arange(len(params)) * 1e-3
    ev = MultiEvaluator({"p": ProxyEvaluator(packed, target)}, keep_scores=True)
    assert not ev(["sigmoid_s", "params"])[1] and ev(["params"])[1]
    assert Proxy(["sigmoid_s", "params"]).canonical_key() == Proxy(["params"]).canonical_key()

    def run(gens, resume=False):
        cfg = EvolutionConfig(population=8, generations=gens, seed=1, hof_size=4, resample=0.5, local_search=0)
        return evolve(ev, cfg, seeds=[Proxy(["params"])], out_dir=str(tmp_path), resume=resume,
                      resampler=Resampler({"p": target}, 0.5, 1))

    run(0)
    ck_path = tmp_path / "checkpoint.json"
    ck = json.loads(ck_path.read_text())
    key, sign = Proxy(["params"]).canonical_key()
    assert any(r[0] == key and r[3] == ["params"] for r in ck["cache"])  # the evaluated form is kept
    for rec in ck["population"]:  # every individual becomes the numerically failing form of the same key
        rec.update(tokens=["sigmoid_s", "params"], key=key, sign=sign)
    ck_path.write_text(json.dumps(ck))
    run(1, resume=True)
    kept = [r for r in json.loads(ck_path.read_text())["population"] if r["tokens"] == ["sigmoid_s", "params"]]
    assert kept and all(r["fitness"][0] > 0.9 for r in kept)  # judged on params' own scores, not invalid


# ------------------------------------------------------------------ learned-combination baselines (benchmarks/)

def _learned_baselines():
    import importlib.util
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "learned_baselines.py"
    spec = importlib.util.spec_from_file_location("learned_baselines", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_learned_baselines_recover_a_combination_and_choose_on_validation():
    """A target that is the sum of two proxies' ranks (plus a little noise) is ranked far better by the ridge fit
    than by either proxy; a failed (NaN) score ranks last; the chosen setting is the best on validation."""
    lb = _learned_baselines()
    rng = np.random.default_rng(0)

    def part(n):
        a, b, c = rng.normal(size=(3, n))
        t = lb.rank_features([a, b]).sum(1) + 0.05 * rng.normal(size=n)
        a[0] = np.nan
        return lb.rank_features([a, b, c]), t, a, b
    (xtr, ttr, *_), (xva, tva, *_), (xte, tte, a, b) = part(120), part(40), part(60)
    assert xte[0, 0] == 0.0  # the NaN ranks lowest
    rows = lb.learned_rows([(xtr, ttr)], [(xva, tva)], (xte, tte))
    assert rows["ridge"]["heldout_kendall"] > max(kendall(np.nan_to_num(a, nan=-9), tte), kendall(b, tte)) + 0.25
    m, setting, v = lb.fit_choose("ridge", [(xtr, ttr)], [(xva, tva)])
    for alpha in lb.RIDGE_ALPHAS:
        other = lb._model("ridge", alpha).fit(xtr, lb.rank_features([ttr])[:, 0])
        assert kendall(other.predict(xva), tva) <= v + 1e-12
    assert rows["ridge"]["setting"] == setting and rows["gbm"]["setting"] in lb.GBM_ROUNDS
