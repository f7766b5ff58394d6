"""SIGKILL at a random point, then resume: the result equals the uninterrupted run (evolve, search, bench build)."""

import csv
import json
import os
import random
import signal
import subprocess
import sys
import time

import pytest

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX SIGKILL")

CLI = [sys.executable, "-m", "saswot_gp.cli"]
ENV = {**os.environ, "OMP_NUM_THREADS": "1"}


def _run(args, cwd):
    res = subprocess.run(CLI + args, cwd=cwd, env=ENV, capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    return res


def _kill_when(args, cwd, ready, seed):
    """Start the command, wait until ``ready()``, then SIGKILL it after a seeded random delay (0-0.4 s)."""
    proc = subprocess.Popen(CLI + args, cwd=cwd, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    t0 = time.time()
    while not ready():
        if proc.poll() is not None or time.time() - t0 > 240:
            proc.kill()
            pytest.fail("the run ended (or hung) before it could be interrupted")
        time.sleep(0.02)
    time.sleep(random.Random(seed).uniform(0.0, 0.4))
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    return proc.returncode


def _evolve_result(out):
    hof = json.loads((out / "hall_of_fame.json").read_text())
    log = [json.loads(ln) for ln in (out / "log.jsonl").read_text().splitlines()]
    return ([(e["tokens"], round(e["train_kendall"], 12)) for e in hof["evolved"]],
            [(r["gen"], r["best"], r["median"]) for r in log])


@pytest.mark.parametrize("seed", [0, 1])
def test_evolve_killed_then_resumed_equals_uninterrupted(tmp_path, seed):
    args = ["evolve", "--benchmark", "synthetic", "--population", "16", "--generations", "14", "--seed", str(seed),
            "--train-size", "30", "--cache-dir", str(tmp_path / "cache")]
    _run(args + ["--out", str(tmp_path / "straight")], tmp_path)
    killed = tmp_path / "killed"
    rc = _kill_when(args + ["--out", str(killed)], tmp_path, lambda: (killed / "checkpoint.json").is_file(), seed)
    was_killed = rc == -signal.SIGKILL
    if was_killed:
        _run(["evolve", "--resume", str(killed)], tmp_path)
    assert _evolve_result(killed) == _evolve_result(tmp_path / "straight")
    assert was_killed, "finished before the kill: the test did not interrupt anything"


@pytest.fixture(scope="module")
def lut_file(tmp_path_factory):
    from saswot_gp.latency import build_lut
    from saswot_gp.spaces import get_space
    path = tmp_path_factory.mktemp("lut") / "lut.json"
    build_lut(get_space("realtime", base_width=4, input_size=32, num_layers=4), repeats=1, warmup=0).save(path)
    return path


def test_search_killed_then_resumed_equals_uninterrupted(tmp_path, lut_file):
    args = ["search", "--proxy", "snip", "--lut", str(lut_file), "--min-fps", "50", "--budget", "60",
            "--population", "6", "--sample-size", "3", "--batch-size", "2", "--top", "5", "--seed", "2"]
    _run(args + ["--out", str(tmp_path / "straight")], tmp_path)
    killed = tmp_path / "killed"
    rc = _kill_when(args + ["--out", str(killed)], tmp_path, lambda: (killed / "checkpoint.json").is_file(), 0)
    assert rc == -signal.SIGKILL, "finished before the kill"
    _run(args + ["--out", str(killed), "--resume"], tmp_path)

    def result(out):
        top = json.loads((out / "top.json").read_text())["top"]
        hist = json.loads((out / "checkpoint.json").read_text())["history"]
        return [(r["arch"], r["score"]) for r in top], [(h["arch"], h["score"]) for h in hist]
    assert result(killed) == result(tmp_path / "straight")


def test_bench_build_killed_then_rerun_equals_uninterrupted(tmp_path):
    args = ["bench", "build", "--space", "realtime", "--n", "5", "--seeds", "2", "--repeat", "1", "--steps", "3",
            "--batch-size", "4", "--input-size", "32", "--base-width", "4"]
    _run(args + ["--out", str(tmp_path / "straight.csv")], tmp_path)
    killed = tmp_path / "killed.csv"

    def rows_written():
        return killed.is_file() and sum(1 for ln in killed.read_text().splitlines() if ln and not ln.startswith("#")) >= 2
    rc = _kill_when(args + ["--out", str(killed)], tmp_path, rows_written, 0)
    assert rc == -signal.SIGKILL, "finished before the kill"
    _run(args + ["--out", str(killed)], tmp_path)

    def rows(path):  # what training determines (times vary from run to run)
        keep = ("arch", "seed", "mIoU", "pixel_acc", "params", "flops", "final_loss")
        with open(path) as fh:
            body = [ln for ln in fh if not ln.startswith("#")]
        return sorted(tuple(r[k] for k in keep) for r in csv.DictReader(body))
    assert rows(killed) == rows(tmp_path / "straight.csv")
    assert len(rows(killed)) == 6
