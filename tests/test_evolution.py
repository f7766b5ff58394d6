import json
import math

import numpy as np
import pytest

from saswot_gp.errors import SaswotError
from saswot_gp.evolution import INVALID, EvolutionConfig, ProxyEvaluator, evolve, make_map, rank_quality
from saswot_gp.handcrafted import handcrafted_proxies
from saswot_gp.proxy import Proxy


@pytest.mark.parametrize("scores, reason", [
    ([1.0, np.nan, 3.0, 4.0], "non-finite"),
    ([1.0, np.inf, 3.0, 4.0], "non-finite"),
    ([2.0, 2.0, 2.0, 2.0], "constant"),
    ([1.0, 1.0, 1.0, 2.0, 2.0, 2.0], "ties"),
])
def test_numerical_accidents_are_invalid(scores, reason):
    tau, valid, why = rank_quality(scores, np.arange(len(scores), dtype=float))
    assert (tau, valid, why) == (INVALID, False, reason)


def test_rank_quality_is_kendall():
    tau, valid, _ = rank_quality([1, 2, 3, 5, 4], [1, 2, 3, 4, 5])
    assert valid and tau == pytest.approx(0.8)


@pytest.fixture(scope="module")
def evaluator(packed):
    target = Proxy.parse("layers_max(l2_w(G))").evaluate(packed).numpy()
    return ProxyEvaluator(packed, target)


def _cfg(**kw):
    base = dict(population=16, generations=4, seed=3, hof_size=8)
    base.update(kw)
    return EvolutionConfig(**base)


def test_seeded_runs_are_reproducible(evaluator):
    a = evolve(evaluator, _cfg())
    b = evolve(evaluator, _cfg())
    c = evolve(evaluator, _cfg(seed=4))
    assert a.hall_of_fame == b.hall_of_fame and a.history[-1]["best"] == b.history[-1]["best"]
    assert [h["evals"] for h in a.history] == [h["evals"] for h in b.history]
    assert a.hall_of_fame != c.hall_of_fame


def test_resume_continues_identically(evaluator, tmp_path):
    full = evolve(evaluator, _cfg(generations=5), out_dir=str(tmp_path / "full"))
    evolve(evaluator, _cfg(generations=2), out_dir=str(tmp_path / "part"))
    # a kill after writing the log line but before the checkpoint leaves an extra line: it is dropped
    with open(tmp_path / "part" / "log.jsonl", "a") as fh:
        fh.write(json.dumps({"gen": 3, "partial": True}) + "\n")
    resumed = evolve(evaluator, _cfg(generations=5), out_dir=str(tmp_path / "part"), resume=True)
    assert resumed.hall_of_fame == full.hall_of_fame
    ck_full = json.loads((tmp_path / "full" / "checkpoint.json").read_text())
    ck_part = json.loads((tmp_path / "part" / "checkpoint.json").read_text())
    assert ck_full["population"] == ck_part["population"]
    log = [json.loads(line) for line in (tmp_path / "part" / "log.jsonl").read_text().splitlines()]
    assert [r["gen"] for r in log] == list(range(6)) and not any(r.get("partial") for r in log)
    assert not list((tmp_path / "part").glob("*.tmp"))


def test_resume_refuses_changed_settings(evaluator, tmp_path):
    evolve(evaluator, _cfg(generations=1), out_dir=str(tmp_path))
    with pytest.raises(SaswotError, match="--population was 16"):
        evolve(evaluator, _cfg(generations=2, population=20), out_dir=str(tmp_path), resume=True)
    with pytest.raises(SaswotError, match="checkpoint.json' not found"):
        evolve(evaluator, _cfg(), out_dir=str(tmp_path / "nothing"), resume=True)


def test_cache_evaluates_equivalent_trees_once(evaluator):
    calls = []

    def counting(tokens):
        calls.append(tuple(tokens))
        return evaluator(tokens)

    seeds = [Proxy.parse(e) for e in ["layers_sum(l2_w(G))", "tanh_s(layers_sum(l2_w(G)))",
                                      "neg_s(layers_sum(l2_w(G)))", "layers_sum(l2_w(abs_w(G)))"]]
    res = evolve(counting, _cfg(generations=0, population=4, local_search=0), seeds=seeds)
    assert len(calls) == 1
    taus = sorted(h["train_kendall"] for h in res.hall_of_fame)
    assert taus[0] == pytest.approx(-taus[-1])  # the negated proxy got the negated fitness


def test_nan_producing_evaluator_never_crashes(packed):
    target = np.full(packed.n_archs, np.nan)
    target[:] = np.arange(packed.n_archs)

    def flaky(tokens):
        if len(tokens) % 2:
            return (INVALID, False, "non-finite")
        return ProxyEvaluator(packed, target)(tokens)

    res = evolve(flaky, _cfg(generations=3))
    assert all(math.isfinite(h["best"]) for h in res.history)
    # only candidates the flaky evaluator scored enter the hall of fame, with the tau it gave them (entries keep
    # the rank core of a tree, which may drop a rank-preserving root: re-scoring the core gives the same tau)
    assert res.hall_of_fame and all(e["train_kendall"] > INVALID for e in res.hall_of_fame)
    for e in res.hall_of_fame:
        assert ProxyEvaluator(packed, target)(e["tokens"])[0] == pytest.approx(e["train_kendall"], abs=1e-6)


def test_all_invalid_raises_clear_error(packed):
    with pytest.raises(SaswotError, match="no valid proxy"):
        evolve(lambda t: (INVALID, False, "constant"), _cfg(generations=1))


def test_limits_and_seeds_respected(evaluator, tmp_path):
    cfg = _cfg(generations=4, max_height=5, max_size=12)
    seeds = list(handcrafted_proxies().values())[:5]
    evolve(evaluator, _cfg(generations=0, max_height=5, max_size=12), seeds=seeds, out_dir=str(tmp_path / "g0"))
    first = json.loads((tmp_path / "g0" / "checkpoint.json").read_text())["population"]
    assert [r["tokens"] for r in first[:5]] == [p.tokens for p in seeds]
    evolve(evaluator, cfg, seeds=seeds, out_dir=str(tmp_path / "g4"))
    for ck in (first, json.loads((tmp_path / "g4" / "checkpoint.json").read_text())["population"]):
        for r in ck:
            p = Proxy(r["tokens"])
            assert p.size <= 12 and p.height <= 5, p.expression()


def test_bad_config_rejected():
    with pytest.raises(SaswotError, match="population 2"):
        EvolutionConfig(population=2).check()
    with pytest.raises(SaswotError, match="elite"):
        EvolutionConfig(population=8, elite=8).check()


def test_dask_workers_give_the_same_result(evaluator):
    from saswot_gp.execution import executor
    with executor(2) as ex:
        sent = []
        real = ex.map
        ex.map = lambda *a, **k: sent.append(len(a[1])) or real(*a, **k)
        pooled = evolve(evaluator, _cfg(generations=2), map_fn=make_map(evaluator, ex, min_generation_s=0.0))
        assert sent and all(1 <= n <= 4 for n in sent)  # every generation after the first: <= 2 batches per worker
    serial = evolve(evaluator, _cfg(generations=2))
    assert pooled.hall_of_fame == serial.hall_of_fame


def test_small_generations_stay_in_process(evaluator):
    from saswot_gp.execution import executor
    with executor(1) as ex:
        sent = []
        real = ex.map
        ex.map = lambda *a, **k: sent.append(len(a[1])) or real(*a, **k)
        cands = [Proxy.parse(e).tokens for e in ("layers_max(l2_w(G))", "layers_sum(l2_w(W))", "layers_max(l2_w(W))")]
        quick = make_map(evaluator, ex)  # default floor: these take far less than a second in this process
        assert quick(None, cands) == quick(None, cands) == [evaluator(c) for c in cands] and sent == []
        forced = make_map(evaluator, ex, min_generation_s=0.0)
        assert forced(None, cands) == [evaluator(c) for c in cands] and sent == []  # the first one is timed here
        assert forced(None, cands) == [evaluator(c) for c in cands] and sent == [2]  # then to the worker, 2 batches


REPRO_SCRIPT = """
import json, torch
torch.set_num_threads(1)
from saswot_gp.spaces import get_space
from saswot_gp.batches import synthetic_batch
from saswot_gp.stats import collect_stats, pack
from saswot_gp.stats.cache import build_model
from saswot_gp.proxy import Proxy
from saswot_gp.evolution import EvolutionConfig, ProxyEvaluator, evolve
sp = get_space("tiny", num_classes=5, input_size=(16, 16))
im, lb = synthetic_batch(4, (16, 16), 5, seed=0)
archs = ["8k3s2_16k3s1", "4k1s1_8k5s2_16k3s2", "16k3s1_16k3s2_32k3s2_8k1s1", "32k5s2_4k3s1", "8k3s1_8k3s1_8k3s1"]
p = pack([collect_stats(build_model(sp, a, 0), im, lb, k=64) for a in archs])
t = Proxy.parse("layers_max(l2_w(G))").evaluate(p).numpy()
r = evolve(ProxyEvaluator(p, t), EvolutionConfig(population=16, generations=4, seed=3))
print(json.dumps([r.hall_of_fame, [h["evals"] for h in r.history]]))
"""


def test_seeded_runs_reproduce_across_processes():
    """Same seed, separate interpreters with different hash seeds: identical runs."""
    import os
    import subprocess
    import sys
    outs = []
    for h in ("1", "2"):
        env = dict(os.environ, PYTHONHASHSEED=h)
        outs.append(subprocess.run([sys.executable, "-c", REPRO_SCRIPT], env=env, capture_output=True, text=True,
                                   check=True).stdout)
    assert outs[0] == outs[1] and outs[0].strip()


def test_report_score_memo_lives_and_dies_with_its_statistics(packed):
    import gc
    from saswot_gp.evolution import report
    from saswot_gp.stats import PackedStats
    proxy = Proxy.parse("layers_max(l2_w(G))")
    first = report.proxy_scores(proxy, packed)
    assert report.proxy_scores(proxy, packed) is first  # memoised
    copy = PackedStats.__new__(PackedStats)
    copy.__dict__.update(packed.__dict__)  # other statistics object (same values): its own memo entry
    assert report.proxy_scores(proxy, copy) is not first and packed in report._SCORE_MEMO
    n = len(report._SCORE_MEMO)
    del copy
    gc.collect()
    assert len(report._SCORE_MEMO) == n - 1  # gone with its statistics: no id can be reused for stale scores
