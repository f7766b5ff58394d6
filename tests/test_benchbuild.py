import math
import random

import pytest
from click.testing import CliRunner

from saswot_gp import benchbuild
from saswot_gp.cli import main
from saswot_gp.errors import SaswotError
from saswot_gp.groundtruth.loaders import load_benchmark
from saswot_gp.spaces import get_space


def fake_job(args):
    arch, seed, space, skw, data, kw = args
    r = random.Random(hash((arch, seed)) % 1000)
    return {"arch": arch, "mIoU": 0.1 + 0.01 * len(arch) % 0.5 + 0.001 * seed, "pixel_acc": 0.9, "params": 10,
            "flops": 20, "latency_ms": 1.0, "fps": 1000.0, "train_time_s": r.random(), "final_loss": 0.5, "seed": seed}


def test_plan_is_deterministic_and_covers_seeds():
    sp = get_space("tiny")
    a = benchbuild.plan(sp, 6, seeds=2, repeat=3, sample_seed=1)
    assert a == benchbuild.plan(sp, 6, seeds=2, repeat=3, sample_seed=1)
    assert len(a) == 9 and len({x for x, _ in a}) == 6
    assert [s for _, s in a].count(1) == 3
    with pytest.raises(SaswotError, match="expected n >= 1"):
        benchbuild.plan(sp, 0, 1, 0)


def test_build_appends_and_resumes(tmp_path, monkeypatch):
    calls = []

    def counting(args):
        calls.append((args[0], args[1]))
        return fake_job(args)
    monkeypatch.setattr(benchbuild, "_train_job", counting)
    out = tmp_path / "b.csv"
    benchbuild.build(str(out), space="tiny", n=3, seeds=2, repeat=2, steps=5, log=lambda m: None)
    assert len(calls) == 5
    first = out.read_text()
    # a larger build on the same file trains only the new jobs and keeps the old rows untouched
    benchbuild.build(str(out), space="tiny", n=5, seeds=2, repeat=2, steps=5, log=lambda m: None)
    assert len(calls) == 7 and out.read_text().startswith(first)
    bench = load_benchmark(out)
    assert len(bench) == 5 and bench.space == "tiny" and bench.metric == "mIoU"
    with pytest.raises(SaswotError, match="cannot resume the build in .*: training was"):
        benchbuild.build(str(out), space="tiny", n=5, steps=6, log=lambda m: None)


def test_interrupted_build_keeps_finished_rows(tmp_path, monkeypatch):
    n = {"i": 0}

    def dying(args):
        n["i"] += 1
        if n["i"] == 3:
            raise KeyboardInterrupt
        return fake_job(args)
    monkeypatch.setattr(benchbuild, "_train_job", dying)
    out = tmp_path / "b.csv"
    with pytest.raises(KeyboardInterrupt):
        benchbuild.build(str(out), space="tiny", n=4, seeds=1, repeat=0, steps=5, log=lambda m: None)
    assert len(benchbuild.done_rows(out)) == 2
    monkeypatch.setattr(benchbuild, "_train_job", fake_job)
    benchbuild.build(str(out), space="tiny", n=4, seeds=1, repeat=0, steps=5, log=lambda m: None)
    assert len(benchbuild.done_rows(out)) == 4


def test_noise_ceiling(tmp_path, monkeypatch):
    monkeypatch.setattr(benchbuild, "_train_job", fake_job)
    out = tmp_path / "b.csv"
    benchbuild.build(str(out), space="tiny", n=6, seeds=2, repeat=6, steps=5, log=lambda m: None)
    nc = benchbuild.noise_ceiling(str(out))
    assert nc["n"] == 6 and nc["kendall"] == pytest.approx(1.0)  # seed 1 adds a constant: same ranking


def test_real_training_row_through_cli(tmp_path):
    out = tmp_path / "real.csv"
    res = CliRunner().invoke(main, ["bench", "build", "--space", "realtime", "--n", "1", "--seeds", "1", "--repeat", "0",
                                    "--steps", "2", "--batch-size", "4", "--input-size", "32", "--base-width", "4",
                                    "--out", str(out)])
    assert res.exit_code == 0, res.output
    rows = list(benchbuild.done_rows(out).values())
    assert len(rows) == 1
    r = rows[0]
    assert 0.0 <= float(r["mIoU"]) <= 1.0 and int(r["params"]) > 0 and float(r["latency_ms"]) > 0
    assert not math.isnan(float(r["train_time_s"]))


def test_diverse_sampler_spans_more_capacity_than_uniform():
    """Per-architecture preferences give architectures dominated by one operator far more often."""
    from collections import Counter
    sp = get_space("realtime")
    div = [a for a, _ in benchbuild.plan(sp, 80, 1, 0, sample_seed=3, sampler="diverse")]
    uni = [a for a, _ in benchbuild.plan(sp, 80, 1, 0, sample_seed=3, sampler="uniform")]
    assert div == [a for a, _ in benchbuild.plan(sp, 80, 1, 0, sample_seed=3, sampler="diverse")]
    assert all(sp.validate(a) == a for a in div) and len(set(div)) == 80

    def top_share(a):
        return Counter(layer.op for layer in sp.decode(a)).most_common(1)[0][1] / sp.num_layers
    mean = lambda xs: sum(xs) / len(xs)
    assert mean([top_share(a) for a in div]) > mean([top_share(a) for a in uni]) + 0.15
    with pytest.raises(SaswotError, match="sampler 'bogus'"):
        benchbuild.plan(sp, 3, 1, 0, sampler="bogus")
    with pytest.raises(SaswotError, match="no diverse sampler"):
        benchbuild.plan(get_space("tiny"), 3, 1, 0, sampler="diverse")
    with pytest.raises(SaswotError, match="concentration"):
        sp.sample_diverse(random.Random(0), concentration=0)


def test_training_settings_go_into_the_header(tmp_path, monkeypatch):
    seen = []

    def spy(args):
        seen.append(args[5])
        return fake_job(args)
    monkeypatch.setattr(benchbuild, "_train_job", spy)
    out = tmp_path / "w.csv"
    benchbuild.build(str(out), space="tiny", n=2, seeds=1, repeat=0, steps=5, lr=0.01, warmup=3, log=lambda m: None)
    assert all(kw["warmup_steps"] == 3 and kw["lr"] == 0.01 for kw in seen)
    head = out.read_text()
    assert '"warmup_steps": 3' in head and '"lr": 0.01' in head
    # a different warm-up is a different benchmark: refuse to append to this file
    with pytest.raises(SaswotError, match="cannot resume the build in .*: training was"):
        benchbuild.build(str(out), space="tiny", n=2, seeds=1, repeat=0, steps=5, lr=0.01, warmup=4, log=lambda m: None)
