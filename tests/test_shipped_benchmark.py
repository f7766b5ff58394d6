"""The ground truth shipped inside the package meets what issue 4 asks of it."""
import json
from collections import defaultdict
from pathlib import Path

import saswot_gp
from saswot_gp.benchbuild import done_rows, read_header
from saswot_gp.groundtruth.loaders import load_benchmark
from saswot_gp.spaces import get_space

SHIPPED = Path(saswot_gp.__file__).resolve().parent / "resources" / "realtime-digits.csv"


def _rows():
    return read_header(SHIPPED), list(done_rows(SHIPPED).values())


def test_size_and_seeds_are_what_the_issue_asks_for():
    header, rows = _rows()
    seeds = defaultdict(set)
    for r in rows:
        seeds[r["arch"]].add(int(r["seed"]))
    assert len(seeds) >= 200
    assert sum(1 for s in seeds.values() if s >= {0, 1}) >= 50
    # one row per architecture and seed: done_rows keys by (arch, seed), so a repeated pair would be lost
    data_lines = [ln for ln in SHIPPED.read_text(encoding="utf-8").splitlines() if ln and not ln.startswith("#")]
    assert len(data_lines) - 1 == len(rows)
    assert header["space"] == "realtime" and header["metric"] == "mIoU"
    training = json.loads(header["training"])
    assert training["data"] == "digits" and training["steps"] >= 1000
    assert f"{training['steps']} steps" in header["description"]


def test_every_row_is_a_valid_realtime_architecture_with_consistent_sizes():
    _, rows = _rows()
    space = get_space("realtime")
    for r in rows[:: max(1, len(rows) // 25)]:  # a spread sample: building every network is slow
        assert space.validate(r["arch"]) == r["arch"]
        assert space.params(r["arch"]) == int(r["params"])
        assert 0.0 < float(r["mIoU"]) < 1.0 and 0.0 < float(r["pixel_acc"]) <= 1.0
        assert float(r["latency_ms"]) > 0 and float(r["train_time_s"]) > 0


def test_loader_averages_the_seeds_and_keeps_only_reference_columns():
    _, rows = _rows()
    bench = load_benchmark("realtime-digits")
    per_arch = defaultdict(list)
    for r in rows:
        per_arch[r["arch"]].append(float(r["mIoU"]))
    assert sorted(bench.archs) == sorted(per_arch)
    target = dict(zip(bench.archs, bench.target))
    two = next(a for a, v in per_arch.items() if len(v) == 2)
    assert abs(target[two] - sum(per_arch[two]) / 2) < 1e-5
    assert set(bench.reference) == {"params", "flops"}
