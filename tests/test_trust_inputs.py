"""Bad input answered in one line, nothing lost (issue 22, cases 1-5 and 12, and the small messages): memory
limits, long proxy specs, gradients under no_grad, a damaged statistics cache, scheduler addresses, unsafe
checkpoints. Each test runs in a fresh folder and checks that nothing outside the output folder changed."""

import math
import random
import re
import resource
import time

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from saswot_gp.cli import main
from saswot_gp.errors import SaswotError

FAST = ["--population", "8", "--train-size", "30", "--threads", "1", "--generations", "1"]


def _files(root, skip=None):
    """Every file under ``root`` (except under ``skip``) with its size and modification time."""
    return {p: (p.stat().st_size, p.stat().st_mtime_ns) for p in root.rglob("*")
            if p.is_file() and (skip is None or skip not in p.parents)}


def _one_line_error(res, *needles):
    assert res.exit_code == 2, res.output
    assert res.output.count("\n") == 1 and res.output.startswith("error: "), res.output
    for needle in needles:
        assert needle in res.output, (needle, res.output)


def _tiny_csv(path, n=12):
    sp, rng, archs = _space("tiny"), random.Random(0), []
    while len(archs) < n:
        a = sp.sample(rng)
        archs += [a] if a not in archs else []
    path.write_text("# space: tiny\n# metric: mIoU\narch,mIoU\n" + "".join(f"{a},{0.3 + i / 50}\n"
                                                                         for i, a in enumerate(archs)))
    return path


def _realtime_arch():
    return _space("realtime").sample(random.Random(0))


def _space(name, **kw):
    from saswot_gp.spaces import get_space
    return get_space(name, **kw)


# --------------------------------------------------------------------------- case 1: memory


def test_batch_far_beyond_the_memory_limit_is_refused_at_once_without_allocating(tmp_path, monkeypatch):
    from saswot_gp.batches import check_memory, default_batch
    from saswot_gp.groundtruth.base import Benchmark
    monkeypatch.chdir(tmp_path)
    bench = Benchmark("b", "tiny", [_space("tiny").sample(random.Random(0))], np.zeros(1))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    t0 = time.perf_counter()
    with pytest.raises(SaswotError) as err:
        default_batch(bench, n=8, resolution=(100_000, 100_000))
    assert time.perf_counter() - t0 < 1.0
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 200 * 1024  # nothing large was allocated
    msg = str(err.value)
    assert "8 images at 100000x100000 for space 'tiny'" in msg and "SASWOT_MAX_MEMORY" in msg
    assert "over the memory limit" in msg and "at up to" in msg and "\n" not in msg
    # the limit is the user's: what fits under a small one is refused, and allowed once they raise it
    monkeypatch.setenv("SASWOT_MAX_MEMORY", "1G")
    with pytest.raises(SaswotError, match=r"limit of 1\.0 GB; expected at most 8 images at up to 2\d\dx2\d\d or 2 images "
                                          r"at 512x512 \(raise the limit with SASWOT_MAX_MEMORY, such as SASWOT_MAX_MEMORY=4G"):
        check_memory(_space("tiny"), (512, 512), 8)
    monkeypatch.setenv("SASWOT_MAX_MEMORY", "100G")
    check_memory(_space("tiny"), (512, 512), 8)
    assert default_batch(bench, n=2, resolution=(32, 32))[0].shape == (2, 3, 32, 32)
    monkeypatch.setenv("SASWOT_MAX_MEMORY", "lots")
    with pytest.raises(SaswotError, match="SASWOT_MAX_MEMORY='lots'; expected a positive size such as 32G"):
        check_memory(_space("tiny"), (32, 32), 2)


@pytest.mark.parametrize("args", [
    ["evolve", "--benchmark", "{csv}", "--resolution", "10000x10000", *FAST, "--select", "train", "--out", "{out}"],
    ["proxies", "--benchmark", "{csv}", "--resolution", "10000x10000", "--measures", "params", "--out", "{out}"],
    ["train", "32k3s2_32k3s2", "--space", "tiny", "--input-size", "10000", "--steps", "1"],
    ["search", "--proxy", "params", "--max-latency", "5", "--resolution", "9984x9984", "--out", "{out}"],
    ["export-net", "{arch}", "--resolution", "9984x9984", "--onnx", "{out}/n.onnx"],
])
def test_every_command_refuses_a_batch_beyond_the_limit(tmp_path, monkeypatch, args):
    monkeypatch.chdir(tmp_path)
    csv, out = _tiny_csv(tmp_path / "b.csv"), tmp_path / "out"
    before = _files(tmp_path, skip=out)
    t0 = time.perf_counter()
    res = CliRunner().invoke(main, [a.format(csv=csv, out=out, arch=_realtime_arch()) for a in args])
    _one_line_error(res, "SASWOT_MAX_MEMORY", "over the memory limit")
    assert time.perf_counter() - t0 < 60  # loose: the refusal comes before any statistics
    assert _files(tmp_path, skip=out) == before


# --------------------------------------------------------------------------- case 2: long proxy specs

LONG = "layers_sum(l2_a(" + "neg_a(" * 40 + "A" + ")" * 40 + "))"  # 293 characters: no file name is that long


@pytest.mark.parametrize("args", [["export", LONG, "--format", "tokens"], ["draw", LONG, "-o", "{out}/p.svg"]])
def test_long_functional_notation_is_read_as_a_tree_never_as_a_path(tmp_path, monkeypatch, args):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "out").mkdir()
    before = _files(tmp_path, skip=tmp_path / "out")
    res = CliRunner().invoke(main, [a.format(out=tmp_path / "out") for a in args])
    assert res.exit_code == 0, res.output
    assert args[0] != "export" or res.output.split() == ["layers_sum", "l2_a"] + ["neg_a"] * 40 + ["A"]
    assert args[0] != "draw" or (tmp_path / "out" / "p.svg").stat().st_size > 0
    assert _files(tmp_path, skip=tmp_path / "out") == before


def test_every_reader_of_proxy_specs_takes_long_notation(tmp_path, monkeypatch):
    """search --proxy (ProxyScorer), proxies --proxy (load_proxy_files) and the resolver; a long spec with a
    mistake is the parser's one-line error, not an OSError."""
    from saswot_gp.proxy import Proxy, proxy_file
    from saswot_gp.proxyspec import resolve_proxy
    from saswot_gp.search import ProxyScorer
    from saswot_gp.zerocost.scoring import load_proxy_files
    monkeypatch.chdir(tmp_path)
    assert proxy_file(LONG) is None and proxy_file("x" * 300 + ".json") is None and proxy_file("a\0b") is None
    assert len(resolve_proxy(LONG).tree().tokens) == 43 and len(Proxy.load(LONG).tokens) == 43
    assert ProxyScorer(LONG).proxy.tokens[:2] == ["layers_sum", "l2_a"]
    assert list(load_proxy_files([LONG])) == [LONG]
    with pytest.raises(SaswotError, match="proxy file 'x{300}.json' not found"):
        resolve_proxy("x" * 300 + ".json")
    with pytest.raises(SaswotError, match="neg_a expects 1 argument, got 2"):
        resolve_proxy(LONG.replace("(A)", "(A, A)"))
    res = CliRunner().invoke(main, ["proxies", "--benchmark", "nope", "--proxy", LONG, "--out", "o"])
    _one_line_error(res, "benchmark 'nope' not found")  # the spec went through without an OSError
    Proxy.parse("layers_sum(l2_w(G))").save(tmp_path / "p.json")
    assert proxy_file("p.json") is not None and resolve_proxy("p.json").label.startswith("p.json")


# --------------------------------------------------------------------------- case 3: gradients under no_grad


def test_every_measure_scores_the_same_under_no_grad_and_inference_mode():
    from torch import nn
    from saswot_gp.proxyspec import resolve_proxy
    from saswot_gp.zerocost import compute_measures, measure_names
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 4, 1))
    x, y = torch.randn(4, 3, 16, 16), torch.randint(0, 4, (4, 16, 16))
    for name in [*measure_names(), "snip_gp", "saswot"]:
        free = resolve_proxy(name).score(model, x, y)
        with torch.no_grad():
            no_grad = resolve_proxy(name).score(model, x, y)
        with torch.inference_mode():
            xi, yi = x.clone(), y.clone()  # inference tensors
            inference = resolve_proxy(name).score(model, xi, yi)
        assert math.isfinite(free) and free == no_grad == inference, name
    with torch.no_grad():
        both = compute_measures(model, x, y, names=["snip", "synflow", "grad_norm", "fisher"])
    assert all(math.isfinite(v) for v in both.values()) and both["snip"] == resolve_proxy("snip").score(model, x, y)


# --------------------------------------------------------------------------- case 4: damaged statistics cache


def test_damaged_statistics_cache_entries_are_recomputed_and_said(tmp_path, capsys):
    from saswot_gp.batches import synthetic_batch
    from saswot_gp.stats.cache import stats_for_archs
    sp, cache = _space("tiny"), tmp_path / "cache"
    archs = ["16k3s2_16k3s2", "32k3s2_16k3s1", "16k5s2_32k3s2"]
    x, y = synthetic_batch(2, (32, 32), sp.num_classes)
    first = stats_for_archs(sp, archs, x, y, k=16, cache_dir=str(cache))
    files = sorted(cache.glob("*.npz"))
    files[0].write_bytes(files[0].read_bytes()[:100])  # truncated
    files[1].write_bytes(b"")                            # empty
    lines = []
    again = stats_for_archs(sp, archs, x, y, k=16, cache_dir=str(cache), log=lines.append)
    assert len(lines) == 1 and "2 damaged entries recomputed" in lines[0] and str(cache) in lines[0]
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a.a, b.a)
    assert stats_for_archs(sp, archs, x, y, k=16, cache_dir=str(cache), log=lines.append) and len(lines) == 1
    files[2].write_bytes(b"not a zip at all")
    stats_for_archs(sp, archs, x, y, k=16, cache_dir=str(cache))  # no log given: one line on standard error
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "1 damaged entry recomputed" in err


def test_evolve_recomputes_a_damaged_cache_entry(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    csv, cache = _tiny_csv(tmp_path / "b.csv"), tmp_path / "cache"
    args = ["evolve", "--benchmark", str(csv), "--cache-dir", str(cache), *FAST, "--batch-size", "2", "--select", "train"]
    assert CliRunner().invoke(main, [*args, "--out", str(tmp_path / "a")]).exit_code == 0
    for i, f in enumerate(sorted(cache.glob("*.npz"))[:2]):
        f.write_bytes(b"" if i else f.read_bytes()[:50])
    res = CliRunner().invoke(main, [*args, "--out", str(tmp_path / "b")])
    assert res.exit_code == 0, res.output
    said = re.findall(r"(\d+) damaged entr(?:y|ies) recomputed", res.output)  # per split: train, held out
    assert sum(map(int, said)) == 2 and "Traceback" not in res.output
    assert (tmp_path / "a" / "best_proxy.json").read_text() == (tmp_path / "b" / "best_proxy.json").read_text()


# --------------------------------------------------------------------------- case 5: scheduler addresses


@pytest.mark.parametrize("value", ["not a url", "localhost", "tcp://127.0.0.1:99999", "127.0.0.1:", "x" * 300])
def test_malformed_scheduler_is_one_line_naming_the_forms(tmp_path, monkeypatch, value):
    monkeypatch.chdir(tmp_path)
    csv = _tiny_csv(tmp_path / "b.csv")
    before = _files(tmp_path)
    res = CliRunner().invoke(main, ["evolve", "--benchmark", str(csv), "--scheduler", value, *FAST,
                                    "--out", str(tmp_path / "o")])
    _one_line_error(res, f"scheduler {value!r}", "tcp://127.0.0.1:8786", "scheduler-file")
    assert _files(tmp_path, skip=tmp_path / "o") == before


def test_unreachable_scheduler_fails_within_seconds(tmp_path, monkeypatch):
    from saswot_gp.execution import executor
    monkeypatch.chdir(tmp_path)
    t0 = time.perf_counter()
    with pytest.raises(SaswotError, match=r"cannot reach the Dask scheduler '127.0.0.1:1' at 127.0.0.1:1 \(connection "
                                          r"refused\); expected a running `dask scheduler`"):
        executor(scheduler="127.0.0.1:1")
    assert time.perf_counter() - t0 < 5
    (tmp_path / "s.json").write_text('{"address": "tcp://127.0.0.1:1"}')
    with pytest.raises(SaswotError, match="cannot reach the Dask scheduler"):
        executor(scheduler=str(tmp_path / "s.json"))
    (tmp_path / "bad.json").write_text('{"type": "Scheduler"}')
    with pytest.raises(SaswotError, match="has no scheduler address"):
        executor(scheduler=str(tmp_path / "bad.json"))


# --------------------------------------------------------------------------- case 12: checkpoints


@pytest.mark.parametrize("content", ["pickle", "text", "empty"])
def test_export_net_of_a_file_that_is_not_weights_never_suggests_unsafe_loading(tmp_path, monkeypatch, content):
    import pickle
    monkeypatch.chdir(tmp_path)
    ck = tmp_path / "c.pt"
    ck.write_bytes({"pickle": pickle.dumps({"model": {"w": 1}}, protocol=4), "text": b"hello", "empty": b""}[content])
    before = _files(tmp_path)
    res = CliRunner().invoke(main, ["export-net", _realtime_arch(), "--checkpoint", str(ck), "--onnx", "out/n.onnx"])
    _one_line_error(res, f"cannot read checkpoint {str(ck)!r}", "expected a checkpoint written by")
    assert "weights_only" not in res.output and "trust" not in res.output.lower()
    assert _files(tmp_path) == before


# --------------------------------------------------------------------------- smaller messages


def test_latency_budget_is_written_as_people_write_it():
    from saswot_gp.search.run import budget_text, format_top
    assert budget_text(100000.0) == "100000 ms (0.01 FPS)"
    assert budget_text(5.0) == "5 ms (200 FPS)" and budget_text(1000 / 30) == "33.3333 ms (30 FPS)"
    summary = {"top": [], "scored": 3, "wall_s": 1.0, "archs_per_s": 3.0, "proxy": "params", "max_latency_ms": 1e5,
               "lut": {"calibration": None},
               "remeasure": {"runtime": "eager", "threads": 1, "device": "cpu", "statistic": "min", "repeats": 5,
                             "rounds": 1, "over_budget": 0, "measured_over_predicted": 2.0}}
    text = format_top(summary)
    assert "latency budget 100000 ms (0.01 FPS)" in text
    assert "not calibrated" in text and "again" not in text  # no advice to recalibrate what was never calibrated
    summary["lut"]["calibration"] = "scale+macs on 60 networks (seed 1000)"
    assert "no longer fits this machine: `latency calibrate` it again" in format_top(summary)


@pytest.mark.parametrize("args, needles", [
    (["evolve", "--k", "0", "--out", "o"], ["--k '0'", "positive integer", "'full'"]),
    (["evolve", "--benchmark", "nope", "--out", "o"], ["benchmark 'nope' not found", "realtime-digits", "synthetic"]),
    (["export", "add_a(A)"], ["add_a expects 2 arguments, got 1"]),
    (["export", "layers_sum(l2_w(G, W))"], ["l2_w expects 1 argument, got 2"]),
    (["export", "layers_sum(l2_w(G(W)))"], ["G is a terminal and takes no arguments, got 1"]),
    (["latency", "calibrate", "--lut", "missing.json", "--n", "2", "--out", "c.json"],
     ["--n 2: calibration model 'scale+macs' needs at least 13 networks"]),
    (["latency", "calibrate", "--lut", "missing.json", "--n", "4", "--model", "affine", "--out", "c.json"],
     ["missing.json"]),  # 4 is enough for the 2-coefficient model: the table is read (and is missing)
    (["latency", "build", "--calibrate", "3", "--out", "t.json"], ["--calibrate 3", "needs at least 13 networks"]),
])
def test_small_messages_name_the_value_and_what_is_expected(tmp_path, monkeypatch, args, needles):
    monkeypatch.chdir(tmp_path)
    res = CliRunner().invoke(main, args)
    _one_line_error(res, *needles)
    assert [p.name for p in tmp_path.iterdir() if p.name != "o"] == []  # nothing written outside the output folder
