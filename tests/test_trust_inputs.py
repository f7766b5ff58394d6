"""Bad input answered in one line, nothing lost (issue 22, cases 1-5 and 12, and the small messages): memory
limits, long proxy specs, gradients under no_grad, a damaged statistics cache, scheduler addresses, unsafe
checkpoints. Each test runs in a fresh folder and checks that nothing outside the output folder changed."""

import math
import random
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
    ["evolve", "--benchmark", "{csv}", "--resolution", "10000x10000", *FAST, "--out", "{out}"],
    ["proxies", "--benchmark", "{csv}", "--resolution", "10000x10000", "--measures", "params", "--out", "{out}"],
    ["train", "32k3s2_32k3s2", "--space", "tiny", "--input-size", "10000", "--steps", "1"],
    ["search", "--proxy", "params", "--max-latency", "5", "--resolution", "9984x9984", "--out", "{out}"],
    ["export-net", "c3.w1.0.s", "--resolution", "9984x9984", "--onnx", "{out}/n.onnx"],
])
def test_every_command_refuses_a_batch_beyond_the_limit(tmp_path, monkeypatch, args):
    monkeypatch.chdir(tmp_path)
    csv, out = _tiny_csv(tmp_path / "b.csv"), tmp_path / "out"
    before = _files(tmp_path, skip=out)
    t0 = time.perf_counter()
    res = CliRunner().invoke(main, [a.format(csv=csv, out=out) for a in args])
    _one_line_error(res, "SASWOT_MAX_MEMORY", "over the memory limit")
    assert time.perf_counter() - t0 < 60  # loose: the refusal comes before any statistics
    assert _files(tmp_path, skip=out) == before
