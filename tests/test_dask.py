"""The execution seam on dask.distributed: statistics and evolution on local clusters equal the serial run,
a killed worker's tasks are redone, clusters are always shut down."""

import json
import os
import random
import signal
import threading
import time

import numpy as np
import pytest
import torch

from saswot_gp.batches import synthetic_batch
from saswot_gp.errors import SaswotError
from saswot_gp.execution import Executor, check_device, executor
from saswot_gp.spaces import get_space
from saswot_gp.stats.cache import stats_for_archs




def _same_stats(a, b):
    for x, y in zip(a, b):
        for name, arr in x.to_arrays().items():
            assert np.array_equal(arr, y.to_arrays()[name]), name


@pytest.fixture(scope="module")
def space_and_batch():
    sp = get_space("realtime", base_width=4, input_size=32, num_layers=4)
    rng = random.Random(0)
    archs = list(dict.fromkeys(sp.sample(rng) for _ in range(40)))[:24]
    return sp, archs, synthetic_batch(n=4, size=(32, 32), num_classes=sp.num_classes, seed=0)


def test_serial_executor_runs_in_order_without_dask():
    ex = executor(0)
    assert not ex.distributed and ex.n_workers == 1
    assert list(ex.as_completed(pow, [2, 3, 4], 2)) == [(0, 4), (1, 9), (2, 16)]
    assert ex.map(pow, [5], 3) == [125]


@pytest.mark.parametrize("kwargs, message", [
    ({"workers": -1}, "--workers -1"),
    ({"workers": 2, "scheduler": "tcp://x:1"}, "not both"),
    ({"scheduler": "/nonexistent/scheduler.json"}, "scheduler file '/nonexistent/scheduler.json' not found"),
])
def test_bad_executor_settings_are_one_line_errors(kwargs, message):
    with pytest.raises(SaswotError, match=message):
        executor(**kwargs)


def test_device_is_checked():
    assert check_device("cpu") == "cpu"
    with pytest.raises(SaswotError, match="expected cpu, cuda or cuda:N"):
        check_device("gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(SaswotError, match="no CUDA device"):
            check_device("cuda")


def test_statistics_on_two_workers_equal_serial_bit_for_bit(space_and_batch, tmp_path):
    sp, archs, (x, y) = space_and_batch
    serial = stats_for_archs(sp, archs, x, y, k=64, seed=3)
    with executor(2) as ex:
        assert ex.distributed and ex.n_workers == 2
        spread = stats_for_archs(sp, archs, x, y, k=64, seed=3, cache_dir=str(tmp_path), executor=ex)
    _same_stats(serial, spread)
    assert len(list(tmp_path.glob("*.npz"))) == len(archs)  # written by the client as tasks finished
    again = stats_for_archs(sp, archs, x, y, k=64, seed=3, cache_dir=str(tmp_path))  # all from the cache
    _same_stats(serial, again)


def test_statistics_survive_a_killed_worker(space_and_batch, tmp_path):
    """SIGKILL one worker process mid-collection: its tasks run again elsewhere; the result equals serial."""
    sp, archs, (x, y) = space_and_batch
    serial = stats_for_archs(sp, archs, x, y, k=64, seed=1)
    with executor(2) as ex:
        pids = list(ex.client.run(os.getpid).values())
        killed = {}

        def kill_after_first_file():
            t0 = time.time()
            while not list(tmp_path.glob("*.npz")) and time.time() - t0 < 120:
                time.sleep(0.01)
            os.kill(pids[0], signal.SIGKILL)
            killed["at"] = len(list(tmp_path.glob("*.npz")))
        th = threading.Thread(target=kill_after_first_file)
        th.start()
        spread = stats_for_archs(sp, archs, x, y, k=64, seed=1, cache_dir=str(tmp_path), executor=ex)
        th.join(timeout=60)
    assert 0 < killed["at"] < len(archs), "the worker was not killed mid-run"
    _same_stats(serial, spread)


def test_connecting_to_an_existing_cluster_by_address():
    from distributed import LocalCluster
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster:
        with executor(scheduler=cluster.scheduler_address) as ex:
            assert ex.distributed and ex.cluster is None and ex.map(pow, [2, 3], 3) == [8, 27]
        assert cluster.scheduler_address  # the user's cluster is left running for the user to shut


def test_evolve_on_workers_equals_serial(tmp_path, monkeypatch):
    from saswot_gp.evolution import parallel
    from saswot_gp.evolution.job import run_evolve
    monkeypatch.setattr(parallel, "MIN_GENERATION_S", 0.0)  # every generation but the first on the workers
    common = dict(benchmark="synthetic", population=16, generations=2, seed=2, train_size=30, log=lambda m: None,
                  cache_dir=str(tmp_path / "cache"))
    a = run_evolve(out_dir=str(tmp_path / "serial"), **common)
    b = run_evolve(out_dir=str(tmp_path / "dask"), workers=2, **common)
    assert [r["tokens"] for r in a["evolved"]] == [r["tokens"] for r in b["evolved"]]
    assert [r["train_kendall"] for r in a["evolved"]] == [r["train_kendall"] for r in b["evolved"]]
    log_a = [json.loads(ln)["best"] for ln in (tmp_path / "serial" / "log.jsonl").read_text().splitlines()]
    log_b = [json.loads(ln)["best"] for ln in (tmp_path / "dask" / "log.jsonl").read_text().splitlines()]
    assert log_a == log_b


def test_executor_context_shuts_the_local_cluster():
    with executor(1) as ex:
        cluster = ex.cluster
        assert cluster.status.name == "running"
    assert ex.client is None and cluster.status.name == "closed"
    assert isinstance(Executor(), Executor) and not Executor().distributed


def test_proxies_on_workers_equal_serial(tmp_path):
    from saswot_gp.zerocost.evaluate import run_proxies
    common = dict(measures=["params", "snip", "grad_norm", "nwot"], proxy_specs=["nwot_gp"], n=12, seed=1, n_boot=0)
    a = run_proxies("synthetic", out_dir=tmp_path / "serial", **common)
    b = run_proxies("synthetic", out_dir=tmp_path / "dask", workers=2, **common)
    assert (tmp_path / "serial" / "scores.csv").read_text() == (tmp_path / "dask" / "scores.csv").read_text()
    assert [r["kendall"] for r in a["rows"]] == [r["kendall"] for r in b["rows"]]


def test_device_cpu_paths_are_the_default_paths(space_and_batch):
    """``device='cpu'`` given explicitly runs the same code path as the default (the GPU path is the same code
    with the model and batch moved; benchmarks/gpu_check.py compares them on a GPU)."""
    from saswot_gp.latency import build_lut
    from saswot_gp.stats.cache import collect_arch
    sp, archs, (x, y) = space_and_batch
    a = collect_arch(archs[0], sp, x, y, k=64, seed=0)
    b = collect_arch(archs[0], sp, x, y, k=64, seed=0, device="cpu")
    _same_stats([a], [b])
    lut = build_lut(sp, repeats=1, warmup=0, device="cpu")
    assert lut.meta["device"] == "cpu" and lut.meta["device_name"]


def test_stream_takes_tasks_back_as_they_finish():
    serial = executor(0).stream()
    serial.submit_items(["a"], pow, [2], 3)
    serial.submit_items(["a", "b"], pow, [9, 3], 2)  # a key in flight is not started twice
    assert len(serial) == 2 and [serial.next(), serial.next()] == [("a", 8), ("b", 9)]
    assert len(serial.seconds) == 2
    serial.submit_items(["c", "d"], pow, [2, 3], 3)
    assert len(serial) == 2 and [serial.next(), serial.next()] == [("c", 8), ("d", 27)] and len(serial.seconds) == 3
    with executor(2) as ex:
        s = ex.stream()
        for i in range(4):
            s.submit_items([i], pow, [i], 2)
        s.submit_items(["x", "y", "z", 3], pow, [4, 5, 6, 7], 2)  # key 3 is in flight: left out with its item
        assert len(s) == 7 and s.n_tasks == 5
        got = dict(s.next() for _ in range(7))
        assert got == {0: 0, 1: 1, 2: 4, 3: 9, "x": 16, "y": 25, "z": 36} and len(s) == 0 and s.n_tasks == 0
        assert len(s.seconds) == 5  # every task taken back was timed


def _holding(_item, obj) -> tuple:
    from distributed import get_worker
    time.sleep(0.3)
    return get_worker().address, len(obj)


def _is_none(_item, obj) -> bool:
    return obj is None


def _held_keys() -> int:
    from saswot_gp import execution
    return len(execution._HELD)


def test_scattered_objects_reach_late_workers_and_leave_with_the_executor():
    from distributed import Client, LocalCluster
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=":0") as cluster:
        with executor(scheduler=cluster.scheduler_address) as ex:
            handle = ex.scatter(list(range(7)))
            assert repr(handle).startswith("Shared(")
            cluster.scale(2)
            ex.client.wait_for_workers(2, timeout=60)
            got = ex.map(_holding, range(4), handle)
            assert {n for _, n in got} == {7}
            assert len({addr for addr, _ in got}) == 2  # tasks with a held object are spread over both workers
            assert set(ex.client.run(_held_keys).values()) == {1}
            assert ex.map(_is_none, [0], ex.scatter(None)) == [True]  # None is an object like any other
        with Client(cluster) as client:  # closing the executor dropped the object from every worker
            assert set(client.run(_held_keys).values()) == {0}


def test_workers_spread_over_the_gpus_of_a_machine(monkeypatch):
    from types import SimpleNamespace
    from saswot_gp import execution
    from saswot_gp.execution import _task, _worker_setup, worker_gpu
    assert [worker_gpu(n, 2) for n in (0, 1, 2, 3)] == [0, 1, 0, 1]
    assert worker_gpu("tcp-node7-5", 4) == 1 and worker_gpu("node-a", 4) is None
    assert worker_gpu("tcp://10.0.0.7:40123", 2) is None  # an unnamed worker's address: its port is no number
    assert worker_gpu(3, 1) is None and worker_gpu(3, 0) is None  # one visible GPU (dask cuda worker) or none
    monkeypatch.setattr(execution, "_WORKER_GPU", None)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    chosen = []
    monkeypatch.setattr(torch.cuda, "set_device", chosen.append)
    _worker_setup(SimpleNamespace(name=3))
    assert execution._WORKER_GPU == 1
    assert _task(pow, 2, 5) == 32 and chosen == [1]  # set in the thread that runs the task


@pytest.mark.parametrize("per_item, remaining, workers, target, expected", [
    ([], 200, 2, 0.25, 1),                   # nothing timed yet: one item per task
    ([0.037, 0.040, 0.5], 200, 2, 0.1, 3),   # median 40 ms: three items make a task of about 100 ms
    ([0.037, 0.040, 0.5], 200, 2, 0.25, 7),  # seven make one of about 250 ms
    ([0.46], 200, 2, 0.25, 1),               # items slower than the target keep a task each
    ([0.001], 200, 2, 0.25, 50),             # quick items, but two tasks per worker stay for the rest
    ([0.001], 3, 2, 0.25, 1),
    ([0.001], 0, 2, 0.25, 0),
])
def test_chunk_size_aims_at_tasks_of_the_target_length(per_item, remaining, workers, target, expected):
    from saswot_gp import tasks
    assert tasks.chunk_size(per_item, remaining, workers, min_task_s=target) == expected
    assert tasks.chunk_size(per_item, remaining, workers, min_task_s=0) == min(1, remaining)  # 0: one item per task
    assert tasks.chunk_size(per_item, remaining, workers) == tasks.chunk_size(per_item, remaining, workers,
                                                                              tasks.MIN_TASK_S)  # the default


def _slow_square(x: int, pause: float) -> int:
    time.sleep(pause)
    return x * x


def test_quick_items_share_tasks_and_slow_ones_do_not():
    with executor(2) as ex:
        got = dict(ex.as_completed(_slow_square, list(range(60)), 0.002))
        assert got == {i: i * i for i in range(60)}
        quick_tasks = ex.tasks_submitted
        assert 4 < quick_tasks < 40  # the first four alone, then ~50 items per 100 ms task, capped
        assert ex.map(_slow_square, list(range(6)), 0.15) == [i * i for i in range(6)]
        assert ex.tasks_submitted - quick_tasks == 6  # 150 ms each: a task per item


_FAULTS = """
import resource, sys
import numpy as np
from saswot_gp.execution import _keep_freed_blocks
if sys.argv[1] == "fixed":
    assert _keep_freed_blocks()
np.ones(2 ** 18)  # 2 MiB: allocate and free once
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(50):
    np.ones(2 ** 18)
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def test_worker_setup_stops_freed_tensors_going_back_to_the_system():
    """Under Dask's ``MALLOC_TRIM_THRESHOLD_`` every 2 MiB array is mapped anew (hundreds of page faults
    each); after the worker set-up's mallopt calls the freed block is reused."""
    import subprocess
    import sys
    if not sys.platform.startswith("linux"):
        pytest.skip("glibc's mallopt: Linux only")
    env = {**os.environ, "MALLOC_TRIM_THRESHOLD_": "65536"}
    faults = {mode: int(subprocess.run([sys.executable, "-c", _FAULTS, mode], env=env, capture_output=True,
                                       text=True, check=True, timeout=120).stdout.strip())
              for mode in ("dask", "fixed")}
    assert faults["dask"] > 50 * 100 and faults["fixed"] < 50 * 10, faults
