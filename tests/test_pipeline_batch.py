"""The statistics batch a benchmark gets: its own digit scenes for digits-trained realtime benchmarks."""

import numpy as np
import torch

from saswot_gp.datasets import get_dataset
from saswot_gp.groundtruth.base import Benchmark
from saswot_gp.pipeline import batch_source, default_batch, describe_batch


def _bench(name, space="realtime", kw=None):
    return Benchmark(name, space, ["a", "b"], np.array([0.1, 0.2]), metric="mIoU", space_kwargs=kw or {})


def test_digits_benchmark_gets_digit_scenes():
    b = _bench("realtime-digits")
    assert batch_source(b) == "digits"
    x, y = default_batch(b, n=3, seed=0, resolution=(32, 32))
    ds = get_dataset("digits", "train", image_size=(32, 32), seed=0)
    assert x.shape == (3, 3, 32, 32) and torch.equal(x[1], ds[1][0]) and torch.equal(y[2], ds[2][1])
    assert y.max() > 0 and set(y.unique().tolist()) <= set(range(11))    # digits on background
    assert "digit scenes" in describe_batch(b, x, 0)


def test_other_benchmarks_get_the_synthetic_batch():
    b = _bench("transnas-micro-test", space="transnas-micro")
    assert batch_source(b) == "synthetic" and batch_source(_bench("realtime-cityscapes")) == "synthetic"
    x1, y1 = default_batch(b, n=2, seed=4, resolution=(32, 32))
    x2, _ = default_batch(b, n=2, seed=4, resolution=(32, 32))
    assert torch.equal(x1, x2) and "synthetic" in describe_batch(b, x1, 4)
