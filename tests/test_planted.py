"""Evolution recovers a planted proxy: the benchmark's ground truth is a known proxy's rank plus noise."""

import pytest

from saswot_gp.evolution import EvolutionConfig, ProxyEvaluator, evolve
from saswot_gp.groundtruth.synthetic import planted_benchmark
from saswot_gp.handcrafted import handcrafted_proxies
from saswot_gp.batches import default_batch
from saswot_gp.evolution.report import evaluate_proxies
from saswot_gp.stats import stats_and_targets
from saswot_gp.proxy import Proxy

PLANTED = "layers_max(l2_w(mul_w(W, G)))"  # not a seed: two node changes away from snip
# benchmarks/bench_planted.py measures the recovery rate over 8 seeds (see RESULTS.md); this test pins seed 1


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    cache = str(tmp_path_factory.mktemp("stats"))
    bench = planted_benchmark(n_archs=80, proxy=PLANTED, noise=0.05, seed=0, cache_dir=cache)
    train, test = bench.split(40, seed=0)
    images, labels = default_batch(bench)
    ptrain, _ = stats_and_targets(train, images, labels, cache_dir=cache)
    ptest, _ = stats_and_targets(test, images, labels, cache_dir=cache)
    return train, test, ptrain, ptest


def test_planted_proxy_is_recovered(planted):
    train, test, ptrain, ptest = planted
    ceiling = evaluate_proxies({"p": Proxy.parse(PLANTED)}, ptest, test.target)["p"]["kendall"]
    assert ceiling > 0.95  # the noise leaves the planted proxy itself near-perfect
    seeds = list(handcrafted_proxies().values())
    hand = evaluate_proxies(dict(handcrafted_proxies()), ptest, test.target)
    assert max(v["kendall"] for v in hand.values()) < 0.9  # no seed already solves it
    res = evolve(ProxyEvaluator(ptrain, train.target), EvolutionConfig(population=100, generations=30, seed=1), seeds=seeds)
    held = evaluate_proxies({"best": res.best}, ptest, test.target)["best"]
    assert held["kendall"] >= 0.9, (res.best.expression(), held)
