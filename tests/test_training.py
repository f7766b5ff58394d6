"""mIoU on hand-made cases, a short training run, checkpoint/resume equivalence, latency, train_arch."""

import math
import os

import pytest
import torch

from saswot_gp.datasets import DigitScenes, train_transform
from saswot_gp.errors import SaswotError
from saswot_gp.spaces import get_space
from saswot_gp.training import (SegmentationMeter, confusion_matrix, load_checkpoint, mean_iou, measure_latency,
                                scores_from_confusion, train_arch, train_segmenter)

torch.set_num_threads(1)

ARCH = "c3.w1.0.s-dw.w1.0.s-c3.w1.0.d-sk.w1.0.s-ir.w0.5.s-c3.w1.0.s-zc.w1.0.s-sk.w1.0.s-c3.w0.75.s-dc.w1.0.s"


def _scores(pred, target, n=3):
    return scores_from_confusion(confusion_matrix(torch.tensor(pred), torch.tensor(target), n))


def test_miou_perfect():
    s = _scores([[0, 1], [2, 2]], [[0, 1], [2, 2]])
    assert s["mIoU"] == 1.0 and s["pixel_acc"] == 1.0 and s["per_class_iou"] == [1.0, 1.0, 1.0]


def test_miou_half():
    s = _scores([0, 0, 0, 0], [0, 0, 1, 1], n=2)
    assert s["per_class_iou"] == [0.5, 0.0]
    assert s["mIoU"] == pytest.approx(0.25) and s["pixel_acc"] == pytest.approx(0.5)
    s = _scores([0, 1, 1, 1], [0, 0, 1, 1], n=2)  # IoU0 = 1/2, IoU1 = 2/3
    assert s["mIoU"] == pytest.approx((0.5 + 2 / 3) / 2) and s["pixel_acc"] == pytest.approx(0.75)


def test_miou_ignored_pixels_and_absent_classes():
    s = _scores([0, 2, 1, 1], [0, 255, 1, 255], n=5)
    assert s["mIoU"] == 1.0 and s["num_pixels"] == 2 and s["pixel_acc"] == 1.0
    assert all(math.isnan(v) for v in s["per_class_iou"][2:])
    # a class only predicted (never labelled) counts with IoU 0
    s = _scores([0, 3, 1, 1], [0, 0, 1, 1], n=5)
    assert s["per_class_iou"][3] == 0.0 and s["mIoU"] == pytest.approx((0.5 + 1 + 0) / 3)
    assert mean_iou(torch.tensor([1, 1]), torch.tensor([255, 255]), 2) != mean_iou(torch.tensor([1]), torch.tensor([1]), 2)


def test_meter_accumulates_logits_over_batches():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(4, 3, 5, 5, generator=g)
    target = torch.randint(0, 3, (4, 5, 5), generator=g)
    target[0, 0] = 255
    meter = SegmentationMeter(3)
    meter.update(logits[:2], target[:2])
    meter.update(logits[2:], target[2:])
    assert torch.equal(meter.conf, confusion_matrix(logits.argmax(1), target, 3))
    assert int(meter.conf.sum()) == 4 * 25 - 5


def _tiny(seed=0):
    sp = get_space("realtime", base_width=4, input_size=32)
    torch.manual_seed(seed)
    return sp.build(ARCH)


def test_short_training_reduces_loss():
    train = DigitScenes("train", 64, image_size=32, seed=0)
    val = DigitScenes("val", 16, image_size=32, seed=0)
    res = train_segmenter(_tiny(), train, val, steps=30, batch_size=8, optimizer="adamw", lr=1e-2, seed=0)
    first, last = sum(res["losses"][:5]) / 5, sum(res["losses"][-5:]) / 5
    assert last < 0.75 * first
    assert len(res["losses"]) == 30 and res["steps_done"] == 30
    assert 0.0 <= res["mIoU"] <= 1.0 and res["pixel_acc"] > 0.5 and len(res["per_class_iou"]) == 11


def test_checkpoint_resume_matches_uninterrupted_run(tmp_path):
    train = DigitScenes("train", 24, image_size=32, seed=1, transform=train_transform(32, scale_range=(0.75, 1.25)))
    kw = dict(steps=12, batch_size=4, optimizer="sgd", lr=0.02, seed=5, checkpoint_every=4)
    full_model = _tiny(0)
    full = train_segmenter(full_model, train, None, checkpoint=str(tmp_path / "a.pt"), **kw)

    class Interrupt(Exception):
        pass

    def stop_at_8(info):
        if info["step"] == 8:
            raise Interrupt

    ck = str(tmp_path / "b.pt")
    with pytest.raises(Interrupt):
        train_segmenter(_tiny(0), train, None, checkpoint=ck, progress=stop_at_8, progress_every=4, **kw)
    state = torch.load(ck, map_location="cpu", weights_only=True)
    assert state["step"] == 8 and len(state["losses"]) == 8
    assert [f for f in os.listdir(tmp_path) if f.endswith(".tmp")] == []
    resumed_model = _tiny(123)  # different init: the checkpoint must overwrite it
    resumed = train_segmenter(resumed_model, train, None, checkpoint=ck, resume=True, **kw)
    assert resumed["resumed_from"] == 8
    assert resumed["losses"] == pytest.approx(full["losses"], rel=1e-5, abs=1e-6)
    for (k, a), b in zip(full_model.state_dict().items(), resumed_model.state_dict().values()):
        assert torch.allclose(a.float(), b.float(), atol=1e-5), k
    assert load_checkpoint(ck)["step"] == 12
    with pytest.raises(SaswotError, match="cannot resume from checkpoint .*: lr was"):
        train_segmenter(_tiny(0), train, None, checkpoint=ck, resume=True, **{**kw, "lr": 0.1})


def test_progress_false_stops_early_with_checkpoint(tmp_path):
    train = DigitScenes("train", 16, image_size=32, seed=0)
    ck = str(tmp_path / "c.pt")
    res = train_segmenter(_tiny(), train, None, steps=10, batch_size=4, checkpoint=ck, checkpoint_every=100,
                          progress=lambda info: info["step"] < 3, progress_every=1)
    assert res["stopped_early"] and res["steps_done"] == 3
    assert load_checkpoint(ck)["step"] == 3
    with pytest.raises(SaswotError, match="exactly one of steps or epochs"):
        train_segmenter(_tiny(), train, None)
    with pytest.raises(SaswotError, match="class_weights has 2 entries"):
        train_segmenter(_tiny(), train, None, steps=1, class_weights=[1.0, 2.0])
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(SaswotError, match="cannot read checkpoint"):
        load_checkpoint(str(bad))


def test_measure_latency_echoes_settings():
    before = torch.get_num_threads()
    model = _tiny()
    model.train()
    r = measure_latency(model, (32, 64), threads=1, warmup=1, repeats=3)
    assert r["latency_ms"] > 0 and r["fps"] == pytest.approx(1000 / r["latency_ms"])
    assert r["threads"] == 1 and r["input_size"] == [32, 64] and r["repeats"] == 3
    assert torch.get_num_threads() == before and model.training


def test_train_arch_returns_a_result_row():
    row = train_arch(ARCH, "realtime", "digits", space_kwargs={"base_width": 4, "input_size": 32},
                     data_kwargs={"num_images": 8}, steps=3, batch_size=4, seed=2, latency_repeats=2)
    assert row["arch"] == ARCH and row["seed"] == 2 and row["steps"] == 3
    for key in ("mIoU", "pixel_acc", "latency_ms", "train_time_s"):
        assert isinstance(row[key], float) and row[key] >= 0
    sp = get_space("realtime", base_width=4, input_size=32)
    assert row["params"] == sp.params(ARCH) and row["flops"] == sp.flops(ARCH)
    with pytest.raises(SaswotError):
        train_arch("c3.w1.0.s", space_kwargs={"base_width": 4, "input_size": 32}, steps=1)


def test_lraspp_small_baseline_is_seeded_and_gives_logits():
    from saswot_gp.training.baselines import lraspp_mobilenet_v3_small
    a, b = lraspp_mobilenet_v3_small(11, seed=3), lraspp_mobilenet_v3_small(11, seed=3)
    c = lraspp_mobilenet_v3_small(11, seed=4)
    pa, pc = dict(a.named_parameters()), dict(c.named_parameters())
    assert all(torch.equal(p, dict(b.named_parameters())[n]) for n, p in pa.items())
    assert any(not torch.equal(p, pc[n]) for n, p in pa.items())
    a.eval()
    with torch.no_grad():
        out = a(torch.randn(2, 3, 64, 96))
    assert isinstance(out, torch.Tensor) and out.shape == (2, 11, 64, 96)
    # the 1/8 branch is the 24-channel MobileNetV3-Small stage, the high branch the last 576-channel conv
    assert a.model.classifier.low_classifier.in_channels == 24 and a.model.classifier.cbr[0].in_channels == 576
