import os
import random
from pathlib import Path

import pytest
import torch

from saswot_gp.spaces import get_space
from saswot_gp.stats import collect_stats, pack
from saswot_gp.stats.cache import build_model
from saswot_gp.batches import synthetic_batch

torch.set_num_threads(1)


def benchdata_dir() -> Path:
    """The benchmark files: ``$SASWOT_BENCHDATA`` when set (as the README tells users), else ../shared/benchdata."""
    env = os.environ.get("SASWOT_BENCHDATA")
    return Path(env) if env else Path(__file__).resolve().parents[1].parent / "shared" / "benchdata"


def need_benchdata(rel: str) -> Path:
    """A benchmark file under :func:`benchdata_dir`, or skip the test saying where it was looked for."""
    p = benchdata_dir() / rel
    if not p.exists():
        pytest.skip(f"benchmark data {p} not present (set SASWOT_BENCHDATA to the folder of the benchmark files)")
    return p


@pytest.fixture(autouse=True)
def _in_a_temporary_folder(tmp_path, monkeypatch):
    """Every test runs in its own temporary folder, never the checkout: a command that writes to its default
    ``--out`` (``runs/evolve``, ...) must neither litter the checkout nor meet the README's main job's run there."""
    monkeypatch.chdir(tmp_path)


@pytest.fixture(autouse=True)
def _one_torch_thread():
    """Every test starts with 1 torch thread (commands under test may set another count and keep it)."""
    torch.set_num_threads(1)
    yield

TINY_ARCHS = ["8k3s2_16k3s1", "4k1s1_8k5s2_16k3s2", "16k3s1_16k3s2_32k3s2_8k1s1", "32k5s2_4k3s1",
              "8k3s1_8k3s1_8k3s1", "16k5s2_32k1s1_32k3s2_16k3s1_8k5s1"]


@pytest.fixture(scope="session")
def batch():
    return synthetic_batch(n=4, size=(16, 16), num_classes=5, seed=0)


@pytest.fixture(scope="session")
def tiny_space():
    return get_space("tiny", num_classes=5, input_size=(16, 16))


@pytest.fixture(scope="session")
def tiny_stats(tiny_space, batch):
    images, labels = batch
    return [collect_stats(build_model(tiny_space, a, seed=0), images, labels, k=64, seed=0) for a in TINY_ARCHS]


@pytest.fixture(scope="session")
def packed(tiny_stats):
    return pack(tiny_stats)


def random_trees(n, seed=0, min_=1, max_=5):
    """Random typed proxy token lists drawn with DEAP's ramped half-and-half."""
    from deap import gp
    from saswot_gp.evolution import build_pset
    pset = build_pset()
    random.seed(seed)
    return [[node.name for node in gp.PrimitiveTree(gp.genHalfAndHalf(pset, min_, max_))] for _ in range(n)]


@pytest.fixture(scope="module")
def space():
    """A small realtime space for search tests (base width 4, 32x32, 4 layers)."""
    return get_space("realtime", base_width=4, input_size=32, num_layers=4)


@pytest.fixture(scope="module")
def lut(space):
    """A latency table of :func:`space` whose entries are a fixed function of each part's MACs (0.01 ms + 0.01 ms
    per 1,000 MACs), not timings: which networks meet a budget must not depend on this machine's timing noise."""
    from saswot_gp.latency import LatencyTable, build_lut
    from saswot_gp.training import speed
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(speed, "forward_times", lambda model, x, warmup=5, repeats=20, sync=None: [1.0])
        table = build_lut(space, repeats=1, warmup=0)
    return LatencyTable({k: dict(e, ms=0.01 + e["macs"] / 1e5) for k, e in table.entries.items()}, table.meta)


@pytest.fixture(scope="module")
def limit(space, lut):
    """A latency budget about half the space meets (median predicted latency of 200 random networks)."""
    import statistics
    rng = random.Random(0)
    return statistics.median(lut.predict(space.sample(rng)) for _ in range(200))
