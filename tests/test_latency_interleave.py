"""benchmarks/latency_interleave.py: calibration networks timed in the same rounds as the table's parts (tried, not
kept), with fake timings that emulate a slow spell of the machine."""

import importlib.util
from pathlib import Path

import pytest
import torch

from saswot_gp.latency import build_lut, calibrate_lut, check_lut, enumerate_configs
from saswot_gp.spaces import get_space
from saswot_gp.training import speed

torch.set_num_threads(1)
SMALL = dict(base_width=4, input_size=32, num_layers=4)
NETWORK_OVER_PARTS = 1.2   # a whole network runs this much slower than the sum of its parts
SLOW = 1.5                 # how much slower everything runs during the spell


class FakeMachine:
    """``speed.forward_times`` with a known truth: a part takes 0.01 + params / 1e4 ms, a whole network 1.2x the sum
    of its parts (its params are theirs: the entries add up to the network's), and calls ``slow_from`` onwards (a
    slow spell that lasts to the end) take 1.5x as long."""

    def __init__(self, slow_from=None):
        self.calls, self.slow_from = 0, slow_from

    def __call__(self, model, x, warmup=5, repeats=20, sync=None):
        params = sum(p.numel() for p in model.parameters())
        if type(model).__name__ == "RealtimeNet":
            ms = NETWORK_OVER_PARTS * (0.01 * (SMALL["num_layers"] + 2) + params / 1e4)
        else:
            ms = 0.01 + params / 1e4
        if self.slow_from is not None and self.calls >= self.slow_from:
            ms *= SLOW
        self.calls += 1
        return [ms] * repeats


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location(
        "latency_interleave", Path(__file__).resolve().parents[1] / "benchmarks" / "latency_interleave.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def space():
    return get_space("realtime", **SMALL)


def _checked_ratio(table, monkeypatch):
    """Median predicted / measured on 10 networks of seed 0, timed outside any spell."""
    monkeypatch.setattr(speed, "forward_times", FakeMachine())
    return check_lut(table, n=10, seed=0, repeats=2, warmup=0)["median_ratio"]


def test_a_slow_spell_during_the_calibration_misleads_it_only_when_timed_after_the_parts(bench, space, monkeypatch):
    """A spell over the second half of the timings: timed after the parts, every calibration network falls in it
    and the table predicts 1.5x too slow; timed in the same rounds as the parts, the first round is clean for parts
    and networks alike and the minimum over rounds predicts exactly."""
    n, rounds, parts = 12, 2, len(enumerate_configs(space))
    half = parts + n                       # both ways time (parts + n) x 2 things; the spell covers the last half
    kw = dict(repeats=2, warmup=0, rounds=rounds, statistic="min")
    monkeypatch.setattr(speed, "forward_times", FakeMachine(slow_from=half))
    sequential = calibrate_lut(build_lut(space, **kw), n=n, features="affine", warmup=0, repeats=2, rounds=rounds)
    monkeypatch.setattr(speed, "forward_times", FakeMachine(slow_from=half))
    together = bench.build_in_rounds(space, "rounds", n=n, features="affine", **kw)
    assert together.entries == sequential.entries           # the parts' minimum is the clean round either way
    info = together.calibration.info
    assert info["timed_with_parts"] == "rounds" and (info["n"], info["seed"], info["rounds"]) == (n, 1000, rounds)
    assert 1.0 / info["raw"]["median_ratio"] == pytest.approx(NETWORK_OVER_PARTS)
    assert 1.0 / sequential.calibration.info["raw"]["median_ratio"] == pytest.approx(NETWORK_OVER_PARTS * SLOW)
    assert _checked_ratio(together, monkeypatch) == pytest.approx(1.0)
    assert _checked_ratio(sequential, monkeypatch) == pytest.approx(SLOW)


def test_the_arms_layouts(bench):
    parts = {f"p{i}": (lambda i=i: float(i)) for i in range(10)}
    nets = [lambda: 100.0, lambda: 101.0, lambda: 102.0]
    rounds = bench.LAYOUTS["rounds"](parts, nets)
    assert list(rounds) == [*parts, "network:0", "network:1", "network:2"]
    assert [once() for once in rounds.values()] == [*range(10), 100.0, 101.0, 102.0]
    assert list(bench.LAYOUTS["spread"](parts, nets)) == [
        "network:0", "p0", "p1", "p2", "network:1", "p3", "p4", "p5", "network:2", "p6", "p7", "p8", "p9"]
