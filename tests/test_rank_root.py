"""The rank-aggregation root (issue 23, item 4): rank1 .. rank4 of score subtrees, the sum of their log-ranks
within the set being ranked (AZ-NAS); opt-in with ``evolve --root rank``."""

import hashlib
import json
import math
import random

import numpy as np
import pytest
from click.testing import CliRunner
from scipy.stats import rankdata

from saswot_gp.cli import main
from saswot_gp.errors import SaswotError
from saswot_gp.evolution import EvolutionConfig, build_pset, evolve
from saswot_gp.evolution.fitness import MultiEvaluator, ProxyEvaluator, Resampler
from saswot_gp.primitives.rank import log_rank_against, log_rank_aggregate
from saswot_gp.proxy import Proxy
from saswot_gp.ranking import kendall


# ------------------------------------------------------------------------------ the aggregate itself

def test_aggregate_of_a_hand_computed_example():
    """s1 = [3, 1, 2, 2] ranks 4, 1, 2.5, 2.5 (a tie gets the average rank); s2 = [10, 30, 20, 40] ranks 1, 3, 2, 4."""
    got = log_rank_aggregate(np.array([[3.0, 1.0, 2.0, 2.0], [10.0, 30.0, 20.0, 40.0]])).numpy()
    want = [math.log(4 / 4) + math.log(1 / 4), math.log(1 / 4) + math.log(3 / 4),
            math.log(2.5 / 4) + math.log(2 / 4), math.log(2.5 / 4) + math.log(4 / 4)]
    assert got == pytest.approx(want, rel=1e-12)


def test_aggregate_matches_scipy_average_ranks():
    rng = np.random.default_rng(0)
    parts = rng.integers(0, 6, size=(3, 25)).astype(float)  # many ties
    want = sum(np.log(rankdata(row) / 25) for row in parts)
    assert log_rank_aggregate(parts).numpy() == pytest.approx(want, rel=1e-12)


def test_a_set_scored_at_once_equals_each_member_against_the_others():
    rng = np.random.default_rng(1)
    parts = np.round(rng.normal(size=(4, 30)), 1)  # rounded: ties across members
    whole = log_rank_aggregate(parts).numpy()
    for i in range(parts.shape[1]):
        others = np.delete(parts, i, axis=1).T  # the archive: one row of 4 subtree scores per other member
        assert log_rank_against(others, parts[:, i]) == pytest.approx(whole[i], rel=1e-12, abs=1e-12)
    assert log_rank_against(np.zeros((0, 2)), [5.0, -1.0]) == 0.0  # the first candidate: rank 1 of 1


def test_a_rank_proxy_evaluates_to_the_aggregate_of_its_subtrees_over_the_set(packed):
    p = Proxy.parse("rank2(flops, nwot_a(A))")
    parts = p.evaluate_parts(packed)
    assert parts.shape == (2, packed.n_archs)
    assert parts[0].tolist() == Proxy.parse("flops").evaluate(packed).tolist()
    assert p.evaluate(packed).numpy() == pytest.approx(log_rank_aggregate(parts).numpy(), rel=1e-12)
    # rank1 keeps the plain ranking; scores are relative to the set: a subset is ranked within itself
    one = Proxy.parse("rank1(flops)").evaluate(packed).numpy()
    assert one == pytest.approx(np.log(rankdata(parts[0].numpy()) / packed.n_archs))


# ------------------------------------------------------------------------------ fitness and resampling

def test_resampled_subsets_are_ranked_within_themselves_not_sliced():
    rng = np.random.default_rng(0)
    n = 40
    values = rng.normal(size=(2, n))
    target = values[0] + rng.normal(scale=0.5, size=n)
    res = Resampler({"b": target}, 0.5, seed=0)
    idx = res.subsets(0)["b"]
    recomputed = kendall(log_rank_aggregate(values[:, idx]).numpy(), target[idx])
    sliced = kendall(log_rank_aggregate(values).numpy()[idx], target[idx])
    assert abs(sliced - recomputed) > 0.1  # slicing the whole split's aggregate is another ranking (0.40 vs 0.52)
    assert res.fitness({"b": values}, 0) == pytest.approx(recomputed, abs=1e-12)
    ranks = rankdata(values, axis=-1).astype(np.float32)  # what MultiEvaluator keeps: ranks, exact in float32
    assert res.fitness({"b": ranks}, 0) == pytest.approx(recomputed, abs=1e-12)


def test_multi_evaluator_keeps_subtree_ranks_and_judges_the_aggregate(packed):
    p = Proxy.parse("rank2(flops, nwot_a(A))")
    target = Proxy.parse("layers_max(l2_w(G))").evaluate(packed).numpy()
    ev = MultiEvaluator({"p": ProxyEvaluator(packed, target)}, keep_scores=True)
    tau, valid, _, kept = ev(p.tokens)
    assert valid and tau == pytest.approx(kendall(p.evaluate(packed).numpy(), target))
    assert kept["p"].shape == (2, packed.n_archs)
    assert kept["p"].tolist() == rankdata(p.evaluate_parts(packed).numpy(), axis=-1).tolist()
    # a constant subtree (flops - flops) makes the candidate invalid, whatever the other subtree does
    tau, valid, reason = ProxyEvaluator(packed, target)(Proxy.parse("rank2(flops, sub_s(flops, flops))").tokens)
    assert not valid and reason == "subtree 2: constant"


def test_rank_evolution_is_deterministic_and_keeps_rank_roots(packed):
    target = Proxy.parse("layers_max(l2_w(G))").evaluate(packed).numpy()
    ev = MultiEvaluator({"p": ProxyEvaluator(packed, target)}, keep_scores=True)
    cfg = EvolutionConfig(population=12, generations=2, seed=3, hof_size=6, resample=0.7, root="rank")
    runs = [evolve(ev, cfg, seeds=[Proxy.parse("nwot_a(A)")], resampler=Resampler({"p": target}, 0.7, 3))
            for _ in range(2)]
    assert runs[0].hall_of_fame == runs[1].hall_of_fame
    for e in runs[0].hall_of_fame:
        p = Proxy(e["tokens"])
        assert p.is_ranked and e["train_kendall"] == pytest.approx(kendall(p.evaluate(packed).numpy(), target),
                                                                   abs=1e-6)


def test_a_resumed_rank_run_equals_the_uninterrupted_one(packed, tmp_path):
    """The subtree ranks are not in the checkpoint: a resume refills them (k x N) and resamples as before."""
    target = Proxy.parse("layers_max(l2_w(G))").evaluate(packed).numpy()
    ev = MultiEvaluator({"p": ProxyEvaluator(packed, target)}, keep_scores=True)

    def run(gens, out, resume=False):
        cfg = EvolutionConfig(population=10, generations=gens, seed=4, hof_size=6, resample=0.7, root="rank")
        return evolve(ev, cfg, out_dir=str(out), resume=resume, resampler=Resampler({"p": target}, 0.7, 4))

    full = run(3, tmp_path / "full")
    run(1, tmp_path / "part")
    resumed = run(3, tmp_path / "part", resume=True)
    assert resumed.hall_of_fame == full.hall_of_fame
    assert [h["best"] for h in resumed.history] == [h["best"] for h in full.history]


# ------------------------------------------------------------------------------ the language

def test_rank_root_round_trips_through_json_sympy_notation_and_draw(tmp_path):
    from saswot_gp.proxyspec import resolve_proxy
    from saswot_gp.viz import draw_proxy
    p = Proxy.parse("rank3(flops, nwot_a(A), neg_s(layers_sum(l2_w(G))))")
    assert p.is_ranked and [q.expression() for q in p.subtrees()] == ["flops", "nwot_a(A)",
                                                                       "neg_s(layers_sum(l2_w(G)))"]
    assert Proxy.from_json(json.loads(json.dumps(p.to_json()))) == p
    assert Proxy.from_sympy(p.sympy()) == p and Proxy.from_sympy(p.simplified()).sympy() == p.sympy()
    assert str(p.sympy()) == "logrank(flops, nwot(A), -layers_sum(l2(Abs(G))))"
    assert resolve_proxy(p.expression()).tree() == p
    draw_proxy(p.tokens, tmp_path / "p.png", title=p.expression())
    assert (tmp_path / "p.png").read_bytes()[:4] == b"\x89PNG"
    for bad in ("add_s(rank1(flops), flops)", "rank2(flops)", "rank1(rank1(flops))"):
        with pytest.raises(SaswotError):
            Proxy.parse(bad)


def test_canonical_key_ignores_order_and_increasing_wrappers_inside_a_rank():
    key = Proxy.parse("rank2(flops, nwot_a(A))").canonical_key()
    assert Proxy.parse("rank2(nwot_a(A), exp_s(flops))").canonical_key() == key
    assert Proxy.parse("rank2(neg_s(flops), nwot_a(A))").canonical_key() != key  # a decreasing subtree ranks otherwise
    assert Proxy.parse("rank2(flops, flops)").canonical_key() == Proxy.parse("rank1(flops)").canonical_key()
    assert Proxy.parse("rank2(exp_s(flops), nwot_a(A))").rank_core().expression() == "rank2(flops, nwot_a(A))"


def test_one_model_alone_has_no_rank(space, batch):
    from saswot_gp.stats.cache import build_model
    model = build_model(space, space.sample(random.Random(0)), 0)
    p = Proxy.parse("rank2(params, flops)")
    with pytest.raises(SaswotError, match="rank aggregate"):
        p.score(model, *batch)
    assert len(p.score_parts(model, *batch)) == 2


# ------------------------------------------------------------------------------ opt-in: the default is unchanged

# random trees, crossover and mutation of the default toolbox for seed 123, hashed on main before the rank root
# existed (commit 7b3cac3): adding the rank operators to the registry must not change them
MAIN_TREES = {"all": "51b3d597ec8164f5", "stats": "7b6494f4837842ce", "sizes": "ac49bda09e63c3f5",
              "scalefree": "52b6b42e21148ff1"}


@pytest.mark.parametrize("terminals", sorted(MAIN_TREES))
def test_default_primitive_set_draws_the_trees_it_drew_on_main(terminals):
    from saswot_gp.evolution.variation import _new_individual, make_toolbox
    cfg = EvolutionConfig(terminals=terminals, seed=123)
    tb = make_toolbox(cfg)
    random.seed(123)
    trees = [" ".join(n.name for n in _new_individual(tb, cfg)) for _ in range(50)]
    for _ in range(20):
        a, b = tb.clone(_new_individual(tb, cfg)), tb.clone(_new_individual(tb, cfg))
        a, b = tb.mate(a, b)
        m, = tb.mutate(a)
        trees.append(" ".join(n.name for n in m))
    assert hashlib.sha256("\n".join(trees).encode()).hexdigest()[:16] == MAIN_TREES[terminals]
    assert not any(name.startswith("rank") for name in build_pset(terminals=terminals).mapping)


def test_rank_primitive_set_roots_every_tree_in_a_rank():
    from saswot_gp.evolution.variation import _new_individual, make_toolbox
    cfg = EvolutionConfig(seed=0, root="rank")
    tb = make_toolbox(cfg)
    random.seed(0)
    roots = {_new_individual(tb, cfg)[0].name for _ in range(60)}
    assert roots == {"rank1", "rank2", "rank3", "rank4"}
    from saswot_gp.evolution.job import EvolveSettings
    for bad in (lambda: EvolutionConfig(root="foo").check(), lambda: EvolveSettings(["synthetic"], root="foo").check(),
                lambda: build_pset(root="foo")):
        with pytest.raises(SaswotError, match="root 'foo'; expected one of plain, rank"):
            bad()


# ------------------------------------------------------------------------------ end to end: evolve, export, search

def test_evolve_root_rank_exports_reloads_and_scores_in_search(space, lut, limit, tmp_path):
    from saswot_gp.search import run_search
    from saswot_gp.search.engine import archive_scores
    out = tmp_path / "run"
    res = CliRunner().invoke(main, ["evolve", "--benchmark", "synthetic", "--population", "10", "--generations", "1",
                                    "--seed", "1", "--out", str(out), "--train-size", "30", "--threads", "1",
                                    "--root", "rank", "--select", "train"])
    assert res.exit_code == 0, res.output
    best = Proxy.load(out / "best_proxy.json")
    assert best.is_ranked
    assert json.loads((out / "checkpoint.json").read_text())["config"]["root"] == "rank"
    res = CliRunner().invoke(main, ["export", str(out / "best_proxy.json"), "--format", "json"])
    assert res.exit_code == 0, res.output
    (tmp_path / "again.json").write_text(res.output)
    again = Proxy.load(tmp_path / "again.json")
    assert again == best

    summary = run_search(space, str(tmp_path / "again.json"), lut, limit, 8, tmp_path / "search", top_k=3,
                         population=4, sample_size=2, batch_size=2, checkpoint_every=3)
    hist = json.loads((tmp_path / "search" / "checkpoint.json").read_text())["history"]
    assert len(hist) == 8 and all(len(h["parts"]) == len(best.subtrees()) for h in hist if h["parts"])
    assert hist[0]["score"] == 0.0  # rank 1 of 1 in every subtree
    archive = []
    for h in hist:  # each candidate ranked against the ones scored before it
        if h["parts"] is not None:
            assert h["score"] == pytest.approx(log_rank_against(archive, h["parts"]), rel=1e-12, abs=1e-12)
            archive.append(h["parts"])
    final = archive_scores(hist)  # the top K is ranked within the whole archive
    assert [r["score"] for r in summary["top"]] == sorted((s for s in final if s is not None), reverse=True)[:3]


def test_root_option_errors_and_old_checkpoints_resume_as_plain(tmp_path):
    res = CliRunner().invoke(main, ["evolve", "--root", "foo"])
    assert res.exit_code == 2 and "'foo' is not one of 'auto', 'plain', 'rank'" in res.output
    out = tmp_path / "run"
    args = ["--benchmark", "synthetic", "--population", "6", "--seed", "0", "--train-size", "20", "--threads", "1",
            "--select", "train"]
    res = CliRunner().invoke(main, ["evolve", *args, "--generations", "0", "--out", str(out)])
    assert res.exit_code == 0, res.output
    ck = json.loads((out / "checkpoint.json").read_text())
    assert ck["config"]["root"] == "plain"  # --root auto on one benchmark
    del ck["config"]["root"]  # as written before --root existed
    (out / "checkpoint.json").write_text(json.dumps(ck))
    res = CliRunner().invoke(main, ["evolve", "--resume", str(out), "--generations", "1", "--threads", "1",
                                    "--root", "rank"])
    assert res.exit_code != 0 and "root" in res.output  # the checkpoint ran plain
    res = CliRunner().invoke(main, ["evolve", "--resume", str(out), "--generations", "1", "--threads", "1"])
    assert res.exit_code == 0, res.output
    assert not Proxy.load(out / "best_proxy.json").is_ranked


def test_proxies_ranks_a_rank_tree_within_the_benchmark(tmp_path):
    import csv
    out = tmp_path / "zc"
    res = CliRunner().invoke(main, ["proxies", "--benchmark", "realtime-digits", "--n", "6", "--measures", "params",
                                    "--proxy", "flops", "--proxy", "nwot_gp", "--proxy", "rank2(flops, nwot_a(A))",
                                    "--bootstrap", "0", "--threads", "1", "--out", str(out)])
    assert res.exit_code == 0, res.output
    with open(out / "scores.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    parts = np.array([[float(r["flops"]) for r in rows], [float(r["nwot_gp"]) for r in rows]])
    got = [float(r["rank2(flops, nwot_a(A))"]) for r in rows]
    assert got == pytest.approx(log_rank_aggregate(parts).numpy(), rel=1e-6)


def test_a_non_finite_subtree_value_scores_nan_and_the_rest_rank_among_themselves():
    parts = np.array([[1.0, np.nan, 3.0, 2.0], [4.0, 1.0, 2.0, np.inf]])
    got = log_rank_aggregate(parts).numpy()
    assert np.isnan(got[1]) and np.isnan(got[3])
    assert got[[0, 2]] == pytest.approx(log_rank_aggregate(parts[:, [0, 2]]).numpy())


def test_a_resumed_rank_search_has_the_same_archive_and_result(space, lut, limit, tmp_path):
    from saswot_gp.search import run_search
    settings = dict(top_k=3, population=4, sample_size=2, batch_size=2, checkpoint_every=2)
    proxy = "rank2(params, layers_sum(l2_w(G)))"
    straight = run_search(space, proxy, lut, limit, 8, tmp_path / "straight", seed=2, **settings)
    run_search(space, proxy, lut, limit, 4, tmp_path / "part", seed=2, **settings)
    resumed = run_search(space, proxy, lut, limit, 8, tmp_path / "part", seed=2, resume=True, **settings)
    hist = [json.loads((tmp_path / d / "checkpoint.json").read_text())["history"] for d in ("straight", "part")]
    assert [(h["arch"], h["score"], h["parts"]) for h in hist[0]] == [(h["arch"], h["score"], h["parts"])
                                                                      for h in hist[1]]
    assert straight["top"] == resumed["top"]


def test_root_auto_is_rank_on_several_benchmarks_and_plain_on_one():
    from saswot_gp.errors import SaswotError
    from saswot_gp.evolution.job import resolve_root
    assert resolve_root("auto", ["realtime-digits"]) == "plain"
    assert resolve_root("auto", ["transnas-micro", "transnas-macro"]) == "rank"
    assert resolve_root("plain", ["a", "b"]) == "plain" and resolve_root("rank", ["a"]) == "rank"
    with pytest.raises(SaswotError, match="root 'x'; expected one of auto, plain, rank"):
        resolve_root("x", ["a"])


def test_rank_pairs_of_the_seeds_compete_in_the_choice_on_validation(tmp_path):
    from saswot_gp.evolution.report import rank_pairs
    from saswot_gp.handcrafted import handcrafted_proxies
    seeds = handcrafted_proxies()
    pairs = rank_pairs(seeds)
    assert len(pairs) == len(seeds) * (len(seeds) - 1) // 2
    assert pairs["flops + nwot_gp"].tokens == ["rank2"] + seeds["flops"].tokens + seeds["nwot_gp"].tokens
    out = tmp_path / "run"
    res = CliRunner().invoke(main, ["evolve", "--benchmark", "synthetic", "--population", "8", "--generations", "1",
                                    "--seed", "0", "--out", str(out), "--train-size", "40", "--threads", "1",
                                    "--root", "rank", "--select", "val"])
    assert res.exit_code == 0, res.output
    rows = json.loads((out / "hall_of_fame.json").read_text())["evolved"]
    paired = [r for r in rows if " + " in r.get("origin", "")]
    assert paired and all(Proxy(r["tokens"]).is_ranked for r in paired)
    vals = [r["val_kendall"] for r in rows if np.isfinite(r.get("val_kendall", np.nan))]
    assert rows[0]["val_kendall"] == max(vals)  # nothing, pair or single seed, validates above the choice
