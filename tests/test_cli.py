import json

import pytest
from click.testing import CliRunner

from saswot_gp.cli import main
from saswot_gp.proxy import Proxy


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("evolve")
    res = CliRunner().invoke(main, ["evolve", "--benchmark", "synthetic", "--population", "12", "--generations", "2",
                                    "--seed", "1", "--out", str(out), "--train-size", "40", "--threads", "1"])
    assert res.exit_code == 0, res.output
    return out, res.output


def test_evolve_writes_everything_and_prints_table(run_dir):
    out, output = run_dir
    for f in ["best_proxy.json", "hall_of_fame.json", "log.jsonl", "proxy.png", "evolution.png", "summary.json", "checkpoint.json"]:
        assert (out / f).stat().st_size > 0, f
    best = Proxy.load(out / "best_proxy.json")
    assert best.meta["n_train"] == 30 and best.meta["n_heldout"] == 40  # the last quarter of 40 is validation
    for name in ["evolved-1", "snip", "grad_norm", "fisher", "synflow", "nwot", "params", "flops"]:
        assert name in output
    assert "held tau" in output and "gen   2/2" in output
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["gen"] for r in log] == [0, 1, 2]
    hof = json.loads((out / "hall_of_fame.json").read_text())
    assert hof["evolved"][0]["tokens"] == best.tokens and hof["pareto_by_size"]
    assert (out / "proxy.png").read_bytes()[:4] == b"\x89PNG"


def test_resume_extends_a_finished_run(run_dir):
    out, _ = run_dir
    res = CliRunner().invoke(main, ["evolve", "--resume", str(out), "--generations", "3", "--threads", "1"])
    assert res.exit_code == 0, res.output
    assert "resuming" in res.output and "gen   3/3" in res.output and "gen   1/3" not in res.output
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert [r["gen"] for r in log] == [0, 1, 2, 3]


def test_default_benchmark_is_the_embedded_realtime_digits_one(tmp_path):
    """No --benchmark: the shipped trained ground truth of the realtime space, scored on its own digit scenes."""
    res = CliRunner().invoke(main, ["evolve", "--population", "8", "--generations", "1", "--train-size", "8",
                                    "--heldout-size", "4", "--out", str(tmp_path / "d"), "--threads", "1"])
    assert res.exit_code == 0, res.output
    assert "benchmark realtime-digits" in res.output and "of space 'realtime', target mIoU" in res.output
    assert "training digit scenes" in res.output
    summary = json.loads((tmp_path / "d" / "summary.json").read_text())
    assert summary["n_train"] == 8 and summary["n_heldout"] == 4
    assert {r["name"] for r in summary["reference"]} == {"params (file)", "flops (file)"}


@pytest.mark.parametrize("fmt, expect", [
    ("sympy", "layers_sum(l1(Abs(G*W)))"),
    ("latex", "\\operatorname"),
    ("expression", "layers_sum(l1_w(mul_w(W, G)))"),
    ("tokens", "layers_sum l1_w mul_w W G"),
    ("dot", "digraph"),
    ("json", '"format": "saswot-gp-proxy"'),
])
def test_export_formats(fmt, expect, tmp_path):
    Proxy.parse("layers_sum(l1_w(mul_w(W, G)))", name="snip").save(tmp_path / "p.json")
    res = CliRunner().invoke(main, ["export", str(tmp_path / "p.json"), "--format", fmt])
    assert res.exit_code == 0 and expect in res.output


@pytest.mark.parametrize("ext, magic", [(".png", b"\x89PNG"), (".svg", b"<?xml"), (".dot", b"digraph")])
def test_draw(ext, magic, tmp_path):
    res = CliRunner().invoke(main, ["draw", "snip_gp", "-o", str(tmp_path / f"t{ext}")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / f"t{ext}").read_bytes()[: len(magic)] == magic


@pytest.mark.parametrize("args, msg", [
    (["export", "nosuch.json"], "proxy file 'nosuch.json' not found"),
    (["export", "layers_sum(l2_w(A))"], "token 2 'A' gives an activation-shaped tensor"),
    (["draw", "snip_gp", "-o", "x.jpg"], "unsupported extension '.jpg'"),
    (["evolve", "--benchmark", "nosuch"], "benchmark 'nosuch' not found"),
    (["evolve", "--k", "zero"], "expected a positive integer or 'full'"),
    (["evolve", "--resume", "/nonexistent/run"], "not found"),
])
def test_bad_input_gives_one_line_error(args, msg):
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 2
    assert msg in res.output
    assert "Traceback" not in res.output


def test_operators_lists_registry():
    res = CliRunner().invoke(main, ["operators", "--type", "S"])
    assert res.exit_code == 0
    assert "layers_sum" in res.output and "terminal -> S" in res.output and "add_w" not in res.output
