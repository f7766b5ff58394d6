"""``saswot-gp proxies`` (invoked through the main command group) and the table helpers behind it."""

import csv
import json
import math

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from saswot_gp.cli import main
from saswot_gp.groundtruth.base import Benchmark
from saswot_gp.groundtruth.loaders import load_benchmark, save_csv
from saswot_gp.proxy import Proxy
from saswot_gp.spaces import count_params, get_space
from saswot_gp.stats import build_model
from saswot_gp.spaces.base import parse_resolution
from saswot_gp.ranking import rank_correlations
from saswot_gp.zerocost.evaluate import sample_benchmark

torch.set_num_threads(1)

ARCHS = ["8k3s2_16k3s1", "4k1s1_8k5s2_16k3s2", "16k3s1_16k3s2_32k3s2_8k1s1", "32k5s2_4k3s1",
         "8k3s1_8k3s1_8k3s1", "16k5s2_32k1s1_32k3s2_16k3s1_8k5s1", "4k3s2_4k3s2", "32k3s1_16k1s2_8k3s1"]
KW = {"num_classes": 5, "input_size": [16, 16]}


@pytest.fixture(scope="module")
def bench_csv(tmp_path_factory):
    """8 tiny networks whose target is their parameter count (so params must rank them perfectly)."""
    sp = get_space("tiny", **KW)
    target = [float(count_params(build_model(sp, a, 0))) for a in ARCHS]
    b = Benchmark("tiny-test", "tiny", ARCHS, np.array(target), metric="mIoU", space_kwargs=KW)
    return save_csv(b, tmp_path_factory.mktemp("bench") / "tiny.csv")


def _rows(path):
    with open(path, newline="") as fh:
        return {r["proxy"]: r for r in csv.DictReader(fh)}


def _invoke(args):
    return CliRunner().invoke(main, ["proxies"] + [str(a) for a in args])


BASE = ["--batch-size", "4", "--bootstrap", "100", "--threads", "1"]


def test_table_csv_plots_and_resume(bench_csv, tmp_path):
    out = tmp_path / "out"
    res = _invoke(["--benchmark", bench_csv, "--measures", "params,snip,nwot", "--out", out] + BASE)
    assert res.exit_code == 0, res.output
    assert "params" in res.stdout and "spearman" in res.stdout
    rows = _rows(out / "proxies.csv")
    assert list(rows) == ["params", "snip", "nwot"]
    p = rows["params"]
    assert float(p["spearman"]) == pytest.approx(1.0) and float(p["kendall"]) == pytest.approx(1.0)
    assert float(p["spearman_lo"]) == pytest.approx(1.0) and int(p["n"]) == len(ARCHS)
    assert all(math.isfinite(float(rows[k]["spearman"])) for k in rows)
    for k in rows:
        assert (out / f"scatter_{k}.png").stat().st_size > 1000
    with open(out / "scores.csv", newline="") as fh:
        scores = list(csv.DictReader(fh))
    assert [r["arch"] for r in scores] == ARCHS
    cache = (out / "score_cache.jsonl").read_text().splitlines()
    assert len(cache) == len(ARCHS)

    # same settings: everything from the cache, nothing appended, same table
    again = _invoke(["--benchmark", bench_csv, "--measures", "params,snip,nwot", "--out", out, "--overwrite"] + BASE)
    assert again.exit_code == 0, again.output
    assert (out / "score_cache.jsonl").read_text().splitlines() == cache
    assert _rows(out / "proxies.csv") == rows

    # an interrupted run (3 lines kept, a 4th cut short) continues and gives the same scores
    (out / "score_cache.jsonl").write_text("\n".join(cache[:3]) + "\n" + cache[3][:25])
    resumed = _invoke(["--benchmark", bench_csv, "--measures", "params,snip,nwot", "--out", out, "--overwrite"] + BASE)
    assert resumed.exit_code == 0, resumed.output
    with open(out / "scores.csv", newline="") as fh:
        assert list(csv.DictReader(fh)) == scores

    # one more measure: only it is computed for each architecture
    n_before = len((out / "score_cache.jsonl").read_text().splitlines())
    more = _invoke(["--benchmark", bench_csv, "--measures", "params,snip,nwot,l2_norm", "--out", out, "--overwrite"]
                   + BASE)
    assert more.exit_code == 0, more.output
    new = (out / "score_cache.jsonl").read_text().splitlines()[n_before:]
    assert len(new) == len(ARCHS) and all(set(json.loads(line)["scores"]) == {"l2_norm"} for line in new)


def test_sample_resolution_and_proxy_file(bench_csv, tmp_path):
    pfile = tmp_path / "mine.json"
    Proxy.parse("layers_sum(l1_w(mul_w(W, G)))", name="mine").save(pfile)
    out = tmp_path / "o"
    res = _invoke(["--benchmark", bench_csv, "--measures", "flops", "--proxy", pfile, "--n", "5", "--seed", "3",
                   "--resolution", "8x8", "--out", out] + BASE)
    assert res.exit_code == 0, res.output
    rows = _rows(out / "proxies.csv")
    assert rows["mine"]["kind"] == "file" and rows["flops"]["kind"] == "measure"
    assert int(rows["mine"]["n"]) == 5, (out / "scores.csv").read_text() + res.output
    assert math.isfinite(float(rows["mine"]["spearman"]))
    assert "(4, 3, 8, 8)" in res.output                       # the reduced batch is announced
    with open(out / "scores.csv", newline="") as fh:
        got = [r["arch"] for r in csv.DictReader(fh)]
    want = sample_benchmark(load_benchmark(bench_csv), 5, seed=3).archs
    assert got == want and len(set(got)) == 5


def test_heldout_split_matches_evolve(bench_csv, tmp_path):
    """--train-size/--heldout-size/--split-seed score exactly the held-out archs evolve's split holds out."""
    out = tmp_path / "split"
    res = _invoke(["--benchmark", bench_csv, "--measures", "params", "--train-size", "4", "--heldout-size", "3",
                   "--split-seed", "5", "--out", out] + BASE)
    assert res.exit_code == 0, res.output
    with open(out / "scores.csv", newline="") as fh:
        got = [r["arch"] for r in csv.DictReader(fh)]
    train, held = load_benchmark(bench_csv).split(4, seed=5, max_eval=3)
    assert got == held.archs and len(got) == 3 and not set(got) & set(train.archs)
    assert "held-out" in res.output
    other = _invoke(["--benchmark", bench_csv, "--measures", "params", "--train-size", "4", "--split-seed", "6",
                     "--out", tmp_path / "s6"] + BASE)
    assert other.exit_code == 0, other.output
    with open(tmp_path / "s6" / "scores.csv", newline="") as fh:
        assert [r["arch"] for r in csv.DictReader(fh)] == load_benchmark(bench_csv).split(4, seed=6)[1].archs


@pytest.mark.parametrize("args, text", [
    (["--heldout-size", "3"], "--heldout-size needs --train-size"),
    (["--train-size", "4", "--n", "5"], "not both"),
    (["--measures", "snip,snap"], "unknown zero-cost measure 'snap'"),
    (["--resolution", "64by64"], "resolution '64by64'"),
    (["--proxy", "no_such_proxy.json"], "not found"),
    (["--n", "2"], "--n"),
])
def test_bad_input(bench_csv, tmp_path, args, text):
    res = _invoke(["--benchmark", bench_csv, "--out", tmp_path / "o"] + BASE + args)
    assert res.exit_code == 2 and text in res.output, res.output
    assert "Traceback" not in res.output


def test_missing_or_bad_benchmark(tmp_path):
    res = _invoke(["--benchmark", tmp_path / "nope.csv", "--out", tmp_path / "o"])
    assert res.exit_code == 2 and res.output.startswith("error:") and "nope.csv" in res.output
    bad = tmp_path / "bad.csv"
    bad.write_text("# space: tiny\nnot_arch,mIoU\nx,1\n")
    res = _invoke(["--benchmark", bad, "--out", tmp_path / "o"])
    assert res.exit_code == 2 and "'arch'" in res.output


def test_rank_correlations_and_bootstrap():
    t = np.arange(30.0)
    perfect = rank_correlations(t * 2 + 1, t, n_boot=200, seed=0)
    assert perfect["spearman"] == pytest.approx(1.0) and perfect["kendall_lo"] == pytest.approx(1.0)
    assert perfect["n"] == 30
    rng = np.random.default_rng(0)
    noisy = t + rng.normal(0, 10, 30)
    a = rank_correlations(noisy, t, n_boot=300, seed=1)
    assert a == rank_correlations(noisy, t, n_boot=300, seed=1)             # seeded
    assert a["spearman_lo"] < a["spearman"] < a["spearman_hi"]
    s = noisy.copy()
    s[:5] = np.nan
    assert rank_correlations(s, t, n_boot=0)["n"] == 25
    assert math.isnan(rank_correlations(np.ones(30), t, n_boot=10)["spearman"])


def test_parse_resolution():
    assert parse_resolution("64x32") == (64, 32) and parse_resolution("48") == (48, 48)
    assert parse_resolution(None) is None
    for bad in ("0x4", "axb", "1x2x3"):
        with pytest.raises(ValueError):
            parse_resolution(bad)


def test_shipped_general_proxy_by_name(bench_csv, tmp_path):
    """`--proxy saswot` scores the shipped general proxy beside the registered measures, like a proxy file."""
    out = tmp_path / "ship"
    res = _invoke(["--benchmark", bench_csv, "--measures", "params", "--proxy", "saswot", "--out", out] + BASE)
    assert res.exit_code == 0, res.output
    rows = _rows(out / "proxies.csv")
    assert list(rows) == ["params", "saswot"] and rows["saswot"]["kind"] == "file"
    assert math.isfinite(float(rows["saswot"]["kendall"]))
