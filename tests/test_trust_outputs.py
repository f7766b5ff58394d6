"""Runs a user can trust, continued (issue 22, cases 6-11): output paths checked before any work, resume refuses
other settings and other runs' files, proxies refuses a folder that holds results, dropped benchmark rows are
said, a proxy file must agree with itself, written files follow the umask."""

import hashlib
import json
import os
import random
import shutil
import stat
import time

import pytest
from click.testing import CliRunner

from saswot_gp.cli import main
from saswot_gp.errors import SaswotError

FAST = ["--benchmark", "synthetic", "--population", "8", "--train-size", "30", "--threads", "1"]


def _hashes(root):
    """Every file under ``root`` (relative path -> sha256), to show a refusal changed nothing."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


def _one_line_error(res, *texts):
    assert res.exit_code == 2, res.output
    assert res.output.startswith("error: ") and res.output.count("\n") == 1, res.output
    for t in texts:
        assert t in res.output, res.output


def _arch():
    from saswot_gp.spaces import get_space
    return get_space("realtime").sample(random.Random(0))


# ------------------------------------------------------------------- case 6: an output path under a file

@pytest.mark.parametrize("args, text", [
    (["evolve", *FAST, "--generations", "1", "--out", "FILE/sub"], "'FILE' is a file, not a folder"),
    (["evolve", *FAST, "--generations", "1", "--out", "o", "--cache-dir", "FILE/c"], "'FILE' is a file"),
    (["draw", "saswot", "-o", "FILE/p.svg"], "drawing file 'FILE/p.svg': 'FILE' is a file"),
    (["draw", "saswot", "-o", "/proc/p.png"], "cannot write in folder '/proc'"),
    (["train", "ARCH", "--steps", "2", "--checkpoint", "FILE/c.pt"], "checkpoint 'FILE/c.pt': 'FILE' is a file"),
    (["export-net", "ARCH", "--onnx", "FILE/n.onnx"], "ONNX file 'FILE/n.onnx': 'FILE' is a file"),
    (["proxies", "--benchmark", "synthetic", "--measures", "params", "--out", "FILE/sub"], "'FILE' is a file"),
    (["search", "--proxy", "params", "--max-latency", "5", "--out", "FILE/sub"], "'FILE' is a file"),
    (["bench", "build", "--n", "1", "--steps", "1", "--out", "FILE/b.csv"], "benchmark file 'FILE/b.csv'"),
    (["latency", "build", "--out", "FILE/lut.json"], "latency table 'FILE/lut.json': 'FILE' is a file"),
    (["latency", "calibrate", "--lut", "FILE", "--out", "FILE/lut.json"], "latency table 'FILE/lut.json'"),
    (["latency", "check", "--lut", "FILE", "--out", "FILE/r.json"], "results file 'FILE/r.json'"),
    (["latency", "check", "--lut", "FILE", "--plot", "FILE/r.png"], "plot file 'FILE/r.png'"),
])
def test_output_path_under_a_file_is_refused_before_any_work(tmp_path, monkeypatch, args, text):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "FILE").write_text("a file, not a folder\n")
    before = _hashes(tmp_path)
    t0 = time.perf_counter()
    res = CliRunner().invoke(main, [_arch() if a == "ARCH" else a for a in args])
    assert time.perf_counter() - t0 < 5, "checked only after work"
    _one_line_error(res, text)
    assert _hashes(tmp_path) == before and sorted(p.name for p in tmp_path.iterdir()) == ["FILE"]


def test_output_path_check_names_a_folder_given_for_a_file(tmp_path):
    from saswot_gp.io import check_output_path
    with pytest.raises(SaswotError, match="is a folder; expected a file name"):
        check_output_path(tmp_path, what="checkpoint")
    assert check_output_path(tmp_path / "new" / "deeper" / "x.json") == tmp_path / "new" / "deeper" / "x.json"
    assert not (tmp_path / "new").exists()          # a check creates nothing


# ------------------------------------------------------------------- case 7: resume with other settings

@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A finished one-generation evolve run (read-only for the tests: they copy it)."""
    out = tmp_path_factory.mktemp("evolve") / "run"
    res = CliRunner().invoke(main, ["evolve", *FAST, "--generations", "1", "--out", str(out)])
    assert res.exit_code == 0, res.output
    return out, res.output


def test_wrote_line_lists_every_file_of_the_run(finished_run):
    from saswot_gp.evolution.job import RUN_FILES
    out, output = finished_run
    wrote = [ln for ln in output.splitlines() if ln.startswith("wrote ")]
    assert len(wrote) == 1 and all(f in wrote[0] for f in RUN_FILES) and "stats_cache/" in wrote[0]
    assert all((out / f).exists() for f in RUN_FILES) and (out / "stats_cache").is_dir()


def test_resume_refuses_settings_that_differ_from_the_checkpoint(finished_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(finished_run[0], run)
    before = _hashes(tmp_path)
    res = CliRunner().invoke(main, ["evolve", "--resume", str(run), "--benchmark", "synthetic", "--population", "16",
                                    "--seed", "3"])
    _one_line_error(res, "cannot resume", "population was 8, now 16", "seed was 0, now 3")
    assert "benchmarks" not in res.output            # given, but equal to the checkpoint's
    assert _hashes(tmp_path) == before


def test_resuming_a_finished_run_says_so_and_writes_nothing(finished_run, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(finished_run[0], run)
    before = _hashes(tmp_path)
    res = CliRunner().invoke(main, ["evolve", "--resume", str(run), "--benchmark", "synthetic"])
    assert res.exit_code == 0, res.output
    assert "is finished (generation 1 of 1 done)" in res.output and "generation 2 of 1" not in res.output
    assert "nothing written" in res.output and "wrote" not in res.output
    assert _hashes(tmp_path) == before


# ------------------------------------------------------------------- case 8: a checkpoint of another run

def test_resume_refuses_a_checkpoint_of_another_run(finished_run, tmp_path):
    other = tmp_path / "other"
    res = CliRunner().invoke(main, ["evolve", *FAST, "--generations", "1", "--seed", "1", "--out", str(other)])
    assert res.exit_code == 0, res.output
    run = tmp_path / "run"
    shutil.copytree(finished_run[0], run)
    shutil.copy(other / "checkpoint.json", run / "checkpoint.json")
    before = _hashes(tmp_path)
    res = CliRunner().invoke(main, ["evolve", "--resume", str(run), "--generations", "2"])
    _one_line_error(res, "cannot resume", "belongs to run", "log.jsonl", "mixes two runs")
    assert _hashes(tmp_path) == before
    ids = {json.loads(ln)["run_id"] for ln in (other / "log.jsonl").read_text().splitlines()}
    assert ids == {json.loads((other / "checkpoint.json").read_text())["run"]["run_id"]}
    assert ids == {json.loads((other / "summary.json").read_text())["run_id"]}


def test_search_resume_refuses_a_checkpoint_of_another_search(space, lut, limit, tmp_path):
    from saswot_gp.search import run_search
    kw = dict(top_k=2, population=3, sample_size=2, batch_size=2, checkpoint_every=2)
    run_search(space, "params", lut, limit, 4, tmp_path / "a", seed=0, **kw)
    run_search(space, "params", lut, limit, 4, tmp_path / "b", seed=1, **kw)
    shutil.copy(tmp_path / "b" / "checkpoint.json", tmp_path / "a" / "checkpoint.json")
    before = _hashes(tmp_path)
    with pytest.raises(SaswotError, match="checkpoint.json belongs to run .* but top.json to run .*mixes two searches"):
        run_search(space, "params", lut, limit, 6, tmp_path / "a", seed=1, resume=True, **kw)
    assert _hashes(tmp_path) == before
    res = run_search(space, "params", lut, limit, 6, tmp_path / "b", seed=1, resume=True, **kw)  # its own: fine
    assert res["scored"] == 6


def test_train_resume_refuses_a_checkpoint_of_another_network(tmp_path):
    from saswot_gp.spaces import get_space
    sp = get_space("realtime")
    one, other = sp.sample(random.Random(0)), sp.sample(random.Random(1))
    ck = tmp_path / "c.pt"
    args = ["--steps", "2", "--batch-size", "2", "--checkpoint", str(ck)]
    assert CliRunner().invoke(main, ["train", one, *args]).exit_code == 0
    before = _hashes(tmp_path)
    res = CliRunner().invoke(main, ["train", other, *args, "--resume"])
    _one_line_error(res, "cannot resume from checkpoint", "holds another network", "Missing key(s)")
    assert _hashes(tmp_path) == before


# ------------------------------------------------------------------- case 9: proxies into a folder with results

def test_proxies_refuses_a_folder_that_holds_results_unless_overwrite(tmp_path):
    out = tmp_path / "pr"
    base = ["proxies", "--benchmark", "synthetic", "--n", "6", "--bootstrap", "0", "--batch-size", "2",
            "--out", str(out)]
    res = CliRunner().invoke(main, base + ["--measures", "params,flops"])
    assert res.exit_code == 0, res.output
    assert "score_cache.jsonl" in res.output.splitlines()[-1]
    before = _hashes(tmp_path)
    res = CliRunner().invoke(main, base + ["--measures", "params"])
    _one_line_error(res, "already holds a run (proxies.csv)", "--overwrite")
    assert _hashes(tmp_path) == before
    res = CliRunner().invoke(main, base + ["--measures", "params", "--overwrite"])
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in out.glob("scatter_*.png")) == ["scatter_params.png"]  # no stale plot left


# ------------------------------------------------------------------- case 10: rows without a target

def test_rows_without_a_target_are_said(tmp_path):
    from saswot_gp.groundtruth.csvfile import load_csv
    from saswot_gp.spaces import get_space
    sp, rng = get_space("tiny"), random.Random(0)
    archs = list(dict.fromkeys(sp.sample(rng) for _ in range(40)))[:20]
    rows = [f"{a},{'nan' if i < 3 else i / 20}" for i, a in enumerate(archs)] + [f"{archs[5]},"]
    path = tmp_path / "b.csv"
    path.write_text("# space: tiny\narch,mIoU\n" + "\n".join(rows) + "\n")
    bench = load_csv(path)
    assert len(bench) == 17 and len(bench.notes) == 1
    assert "4 row(s) without a 'mIoU' value" in bench.notes[0] and "3 architecture(s)" in bench.notes[0]
    res = CliRunner().invoke(main, ["proxies", "--benchmark", str(path), "--measures", "params", "--bootstrap", "0",
                                    "--batch-size", "2", "--out", str(tmp_path / "o")])
    assert res.exit_code == 0, res.output
    assert "note: " + bench.notes[0] in res.output


# ------------------------------------------------------------------- case 11: expression against tokens

def test_proxy_file_whose_expression_disagrees_with_its_tokens_is_refused(tmp_path):
    from saswot_gp.proxy import Proxy
    doc = Proxy.parse("layers_sum(l2_w(G))").to_json()
    good = tmp_path / "good.json"
    good.write_text(json.dumps(dict(doc, expression="layers_sum( l2_w(G) )")))  # spacing is not a difference
    assert Proxy.load(good).tokens == doc["tokens"]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(dict(doc, expression="layers_sum(l2_w(W))")))
    before = _hashes(tmp_path)
    res = CliRunner().invoke(main, ["export", str(bad)])
    _one_line_error(res, "'layers_sum(l2_w(W))' disagrees with its 'tokens'", "'layers_sum(l2_w(G))'")
    assert _hashes(tmp_path) == before


# ------------------------------------------------------------------- smaller: modes and messages

@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_atomic_writes_follow_the_umask(tmp_path, umask, mode):
    from saswot_gp.io import atomic_write_json
    old = os.umask(umask)
    try:
        atomic_write_json(tmp_path / "a.json", {"a": 1})
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.json").stat().st_mode) == mode


def test_bench_build_with_one_seed_says_agreement_needs_two(tmp_path):
    res = CliRunner().invoke(main, ["bench", "build", "--n", "1", "--seeds", "1", "--steps", "1", "--batch-size", "2",
                                    "--out", str(tmp_path / "b.csv")])
    assert res.exit_code == 0, res.output
    assert "nan" not in res.output and "needs architectures trained with two seeds" in res.output
