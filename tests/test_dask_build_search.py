"""bench build and search on the execution seam's Dask cluster: a Dask build writes the serial build's rows (also
when a worker is killed mid-build), an asynchronous search with one candidate in flight is the serial search, with
more in flight every score equals the serial one and checkpoints (with the candidates in flight) resume."""

import csv
import json
import os
import pickle
import random
import signal
import threading

import pytest
from click.testing import CliRunner

from saswot_gp import benchbuild
from saswot_gp.cli import main
from saswot_gp.execution import executor
from saswot_gp.search import ProxyScorer, run_search
from saswot_gp.spaces import get_space
from saswot_gp.stats.cache import build_model
from saswot_gp.zerocost import measure_names


BUILD_ARGS = ["--space", "realtime", "--n", "5", "--seeds", "2", "--repeat", "1", "--steps", "3", "--batch-size", "4",
              "--input-size", "32", "--base-width", "4"]
BUILD = dict(space="realtime", n=5, seeds=2, repeat=1, steps=3, batch_size=4,
             space_kwargs={"input_size": 32, "base_width": 4})
KEEP = ("arch", "seed", "mIoU", "pixel_acc", "params", "flops", "final_loss")  # what training determines (not times)
SEARCH = dict(top_k=4, population=5, sample_size=3, batch_size=2, checkpoint_every=2)
TIMEOUT = 240  # seconds any one build or search may take here


def _rows(path):
    with open(path) as fh:
        body = [ln for ln in fh if not ln.startswith("#")]
    return sorted(tuple(r[k] for k in KEEP) for r in csv.DictReader(body))


def _bounded(fn, timeout=TIMEOUT):
    """``fn()`` in a thread, failing the test when it takes over ``timeout`` s; its error is re-raised here."""
    out, err = [], []

    def target():
        try:
            out.append(fn())
        except BaseException as exc:  # noqa: BLE001 - handed to the test
            err.append(exc)
    th = threading.Thread(target=target, daemon=True)
    th.start()
    th.join(timeout)
    if th.is_alive():
        pytest.fail(f"did not finish within {timeout} s")
    if err:
        raise err[0]
    return out[0]


@pytest.fixture(scope="module")
def cluster():
    """One local cluster of 2 single-thread workers for the module, always shut down."""
    with executor(2) as ex:
        yield ex


@pytest.fixture(scope="module")
def serial_build(tmp_path_factory):
    """The undisturbed serial build through the command (--workers 1 = serial, in-process: no Dask)."""
    out = tmp_path_factory.mktemp("serial") / "serial.csv"
    res = CliRunner().invoke(main, ["bench", "build", *BUILD_ARGS, "--workers", "1", "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "serially, in-process" in res.output and "dask:" not in res.output
    rows = _rows(out)
    assert len(rows) == 6
    return rows


# ----------------------------------------------------------------------------------------------- bench build

def test_dask_build_through_the_command_equals_serial(serial_build, tmp_path):
    out = tmp_path / "dask.csv"
    res = _bounded(lambda: CliRunner().invoke(main, ["bench", "build", *BUILD_ARGS, "--workers", "2", "--out", str(out)]))
    assert res.exit_code == 0, res.output
    assert "dask: local cluster of 2 single-thread workers; dashboard http" in res.output
    assert "on Dask (2 worker(s), one task per job)" in res.output
    assert _rows(out) == serial_build
    # the same command again resumes: nothing left to train, rows untouched
    before = out.read_text()
    res = CliRunner().invoke(main, ["bench", "build", *BUILD_ARGS, "--out", str(out)])
    assert res.exit_code == 0 and "6 already in" in res.output and out.read_text() == before


def test_worker_killed_during_build_gives_the_serial_rows(cluster, serial_build, tmp_path):
    client = cluster.client
    client.wait_for_workers(2, timeout=60)
    out, killed = tmp_path / "killed.csv", []

    def log(msg):  # called by the client after it wrote a row: kill a worker that is training a job
        if msg.startswith("  1/") and not killed:
            busy = [w for w, keys in client.processing().items() if keys]
            target = busy[0] if busy else sorted(client.scheduler_info()["workers"])[0]
            pid = client.run(os.getpid, workers=[target])[target]
            os.kill(pid, signal.SIGKILL)
            killed.append((pid, bool(busy)))

    _bounded(lambda: benchbuild.build(str(out), executor=cluster, log=log, **BUILD))
    assert killed, "no row was written"
    assert killed[0][1], "the killed worker had no job running: nothing was interrupted"
    assert _rows(out) == serial_build
    client.wait_for_workers(2, timeout=60)  # the nanny started a new worker process
    assert killed[0][0] not in client.run(os.getpid).values()


def test_dask_build_resumes_a_partial_file(cluster, serial_build, tmp_path):
    out = tmp_path / "partial.csv"
    n = {"rows": 0}

    def stop_after_two(msg):
        if msg.startswith("  "):
            n["rows"] += 1
            if n["rows"] == 2:
                raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        _bounded(lambda: benchbuild.build(str(out), executor=cluster, log=stop_after_two, **BUILD))
    assert len(benchbuild.done_rows(out)) == 2
    _bounded(lambda: benchbuild.build(str(out), executor=cluster, log=lambda m: None, **BUILD))
    assert _rows(out) == serial_build


# ---------------------------------------------------------------------------------------------------- search

def test_proxy_scorer_pickles_for_every_registered_measure_and_a_tree(tmp_path):
    sp = get_space("realtime", base_width=4, input_size=32, num_layers=4)
    from saswot_gp.batches import synthetic_batch
    images, labels = synthetic_batch(n=2, size=(32, 32), num_classes=sp.num_classes, seed=0)
    model = build_model(sp, sp.sample(random.Random(1)), 0)
    for spec in list(measure_names()) + ["nwot_gp", "layers_sum(l2_w(G))"]:
        scorer = ProxyScorer(spec, k=64, seed=0)
        copy = pickle.loads(pickle.dumps(scorer))
        assert copy.identity() == scorer.identity() and copy.label == scorer.label
        if spec in ("params", "flops", "nwot", "layers_sum(l2_w(G))"):
            a, b = scorer(model, images, labels), copy(model, images, labels)
            assert a == b or (a != a and b != b), spec




def _search_batch(space):
    from saswot_gp.search import search_batch
    images, labels, _ = search_batch(space, "digits", SEARCH["batch_size"])
    return images, labels


def _history(out):
    return json.loads((out / "checkpoint.json").read_text())["history"]


def test_async_search_with_one_in_flight_is_the_serial_search(cluster, space, lut, limit, tmp_path):
    serial = run_search(space, "snip", lut, limit, 12, tmp_path / "serial", seed=1, **SEARCH)
    one = _bounded(lambda: run_search(space, "snip", lut, limit, 12, tmp_path / "one", seed=1, executor=cluster,
                                      in_flight=1, per_task=1, **SEARCH))
    strip = lambda h: [(r["arch"], r["score"], r["latency_ms"], r["step"]) for r in h]  # noqa: E731
    assert strip(_history(tmp_path / "one")) == strip(_history(tmp_path / "serial"))
    assert one["top"] == serial["top"] and one["steps"] == serial["steps"]
    assert one["settings"]["asynchronous"] == {"in_flight": 1, "per_task": 1, "workers": 2}
    assert "asynchronous" not in serial["settings"]


def test_async_search_of_a_rank_aggregate_with_one_in_flight_is_the_serial_search(cluster, space, lut, limit,
                                                                                  tmp_path):
    """A rank-aggregate proxy: workers return the subtree scores, the client ranks them against its archive."""
    proxy = "rank2(params, layers_sum(l2_w(G)))"
    serial = run_search(space, proxy, lut, limit, 8, tmp_path / "serial", seed=1, **SEARCH)
    one = _bounded(lambda: run_search(space, proxy, lut, limit, 8, tmp_path / "one", seed=1, executor=cluster,
                                      in_flight=1, per_task=1, **SEARCH))
    strip = lambda h: [(r["arch"], r["score"], r["parts"], r["step"]) for r in h]  # noqa: E731
    assert strip(_history(tmp_path / "one")) == strip(_history(tmp_path / "serial"))
    assert one["top"] == serial["top"] and _history(tmp_path / "one")[0]["score"] == 0.0


def test_async_search_scores_equal_serial_and_resumes(cluster, space, lut, limit, tmp_path):
    out, budget = tmp_path / "async", 16
    seen = {"n": 0}

    def stop(i, n, arch, score):  # the client stops after 7 scores (checkpoints every 2, with candidates in flight)
        seen["n"] += 1
        if seen["n"] == 7:
            raise KeyboardInterrupt
    with pytest.raises(KeyboardInterrupt):
        _bounded(lambda: run_search(space, "snip", lut, limit, budget, out, seed=1, executor=cluster, in_flight=4,
                                    progress=stop, **SEARCH))
    doc = json.loads((out / "checkpoint.json").read_text())
    assert len(doc["history"]) == 6 and doc["pending"], "the checkpoint keeps the candidates in flight"
    first, pending = [h["arch"] for h in doc["history"]], list(dict.fromkeys(a for a, _ in doc["pending"]))
    # resumed serially (the candidates in flight are scored first), then asynchronously to a larger budget
    run_search(space, "snip", lut, limit, 6 + len(pending), out, seed=1, resume=True, **SEARCH)
    hist = _history(out)
    assert [h["arch"] for h in hist[:6]] == first and [h["arch"] for h in hist[6:6 + len(pending)]] == pending
    summary = _bounded(lambda: run_search(space, "snip", lut, limit, budget, out, seed=1, resume=True,
                                          executor=cluster, in_flight=4, **SEARCH))
    hist = _history(out)
    assert summary["scored"] == budget == len(hist) == len({h["arch"] for h in hist})
    assert "pending" not in json.loads((out / "checkpoint.json").read_text())
    images, labels = _search_batch(space)
    scorer = ProxyScorer("snip", seed=1)
    for h in hist:  # every architecture feasible, and scored exactly as the serial search scores it
        assert h["latency_ms"] == lut.predict(h["arch"]) <= limit
        assert h["score"] == scorer(build_model(space, h["arch"], 1), images, labels)


def test_search_command_on_an_existing_scheduler(cluster, lut, limit, tmp_path):
    lut_file = tmp_path / "lut.json"
    lut.save(lut_file)
    address = cluster.client.scheduler.address
    args = ["search", "--proxy", "params", "--lut", str(lut_file), "--max-latency", str(limit), "--budget", "10",
            "--population", "5", "--sample-size", "3", "--batch-size", "2", "--top", "3", "--out", str(tmp_path / "s")]
    res = _bounded(lambda: CliRunner().invoke(main, args + ["--scheduler", address]))
    assert res.exit_code == 0, res.output
    assert f"dask: connected to {address} (2 workers)" in res.output and "2 worker(s)" in res.output
    hist = _history(tmp_path / "s")
    assert len(hist) == 10 == len({h["arch"] for h in hist})
    assert cluster.client.status == "running"  # the command closed its own client, not the cluster
    res = CliRunner().invoke(main, args + ["--scheduler", address, "--workers", "2", "--overwrite"])
    assert res.exit_code != 0 and "give --workers or --scheduler, not both" in res.output
    assert len(_history(tmp_path / "s")) == 10  # refused before --overwrite deleted the run
