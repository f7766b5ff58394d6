"""The statistics batch a benchmark gets: its own digit scenes when its file declares digit-scene training data."""

import numpy as np
import torch

from saswot_gp.datasets import get_dataset
from saswot_gp.groundtruth.base import Benchmark
from saswot_gp.batches import batch_source, default_batch, describe_batch


def _bench(name, space="realtime", kw=None, data=None):
    return Benchmark(name, space, ["a", "b"], np.array([0.1, 0.2]), metric="mIoU", space_kwargs=kw or {}, data=data)


def test_digits_benchmark_gets_digit_scenes():
    b = _bench("realtime-digits", data="digits")
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


def test_the_batch_follows_what_the_file_declares_not_its_name(tmp_path):
    from saswot_gp.groundtruth.loaders import load_benchmark
    assert batch_source(_bench("realtime-digits")) == "synthetic"  # a name says nothing
    assert batch_source(_bench("my-bench", data="digits")) == "digits"
    import random
    from saswot_gp.spaces import get_space
    arch = get_space("realtime").sample(random.Random(0))
    f = tmp_path / "mine.csv"
    f.write_text(f'# space: realtime\n# training: {{"data": "digits", "steps": 5}}\narch,mIoU\n{arch},0.1\n')
    assert load_benchmark(f).data == "digits" and load_benchmark("realtime-digits").data == "digits"
    f.write_text(f"# space: realtime\n# data: cityscapes\narch,mIoU\n{arch},0.1\n")
    assert load_benchmark(f).data == "cityscapes" and batch_source(load_benchmark(f)) == "synthetic"


def test_the_synthetic_batch_is_the_same_bits_at_any_thread_count():
    """The statistics cache keys on the batch's bytes: a 2-thread caller must get the 1-thread batch (torch sums
    in a thread-dependent order, and the images' normalisation is such a sum), and keep its own thread count."""
    import torch
    from saswot_gp.batches import synthetic_batch
    old = torch.get_num_threads()
    try:
        got = {}
        for n in (1, 2):
            torch.set_num_threads(n)
            got[n] = synthetic_batch(n=8, size=(64, 64), num_classes=17, seed=0)
            assert torch.get_num_threads() == n
        assert torch.equal(got[1][0], got[2][0]) and torch.equal(got[1][1], got[2][1])
    finally:
        torch.set_num_threads(old)


def test_torch_threads_sets_the_count_for_the_block_and_restores_it_even_after_an_error():
    import pytest
    import torch
    from saswot_gp.execution import torch_threads
    old = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        with torch_threads(None):  # None: the caller's count
            assert torch.get_num_threads() == 2
        with pytest.raises(RuntimeError):
            with torch_threads(1):
                assert torch.get_num_threads() == 1
                raise RuntimeError("inside")
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(old)
