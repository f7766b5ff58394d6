"""Ground-truth loaders: NASLib zero-cost JSON, Zen JSON lists, NAS-Bench-MR pickles (restricted
unpickler), the project's CSV format, and dispatch by file type; plus the real shared files when present."""

import json
import math
import os
import pickle

import numpy as np
import pytest
from conftest import need_benchdata

from saswot_gp.errors import SaswotError
from saswot_gp.groundtruth.base import Benchmark
from saswot_gp.groundtruth.loaders import (load_benchmark, load_csv, load_naslib_zc, load_nbmr_pickle, load_zen,
                                           save_csv)
from saswot_gp.groundtruth.safe_pickle import safe_load, safe_loads

EMB_A = [16, 16, 1, 1, 16, 2, 3, 3, 16, 32, 3, 4, 4, 3, 64, 112, 96, 4, 2, 1, 3, 1, 32, 80, 112, 48, 48]
EMB_B = [8, 8, 1, 1, 8, 1, 1, 1, 8, 8, 1, 1, 1, 1, 8, 8, 8, 1, 1, 1, 1, 1, 8, 8, 8, 8, 8]
ARCH_A = "16_16-1_1_16-2_3_3_16_32-3_4_4_3_64_112_96-4_2_1_3_1_32_80_112_48-48"


def _proxy(score):
    return {"score": score, "time": 0.5}


def _zc_entry(acc, **scores):
    return {"idx": "0", "arch": "x", "val_accuracy": acc, **{k: _proxy(v) for k, v in scores.items()}}


@pytest.fixture
def zc_micro(tmp_path):
    data = {
        "segmentsemantic": {
            "(1, 0, 0, 2, 1, 0)": _zc_entry(93.1, flops=1198.8, params=11.9, nwot=477.4, epe_nas=-100000000.0),
            "(3, 3, 3, 3, 3, 3)": _zc_entry(94.5, flops=5000.0, params=52.4, nwot=-100000000.0, epe_nas=-100000000.0),
            "(0, 1, 1, 2, 3, 3)": _zc_entry(92.0, flops=4223.8, params=30.1, nwot=300.0, epe_nas=-100000000.0),
        },
        "class_scene": {"(1, 0, 0, 2, 1, 0)": _zc_entry(50.0, params=11.0)},
    }
    p = tmp_path / "zc_transbench101_micro.json"
    p.write_text(json.dumps(data))
    return p


# --------------------------------------------------------------------------- NASLib zc JSON

def test_naslib_zc_loads_task_and_nan(zc_micro):
    b = load_naslib_zc(zc_micro)
    assert b.space == "transnas-micro" and b.metric == "pixel accuracy" and len(b) == 3
    assert b.archs == ["64-41414-1_00_210", "64-41414-3_33_333", "64-41414-0_11_233"]
    np.testing.assert_allclose(b.target, [93.1, 94.5, 92.0])
    assert set(b.reference) == {"flops", "params", "nwot", "epe_nas"}
    assert np.isnan(b.reference["epe_nas"]).all()
    assert b.reference["nwot"][0] == 477.4 and math.isnan(b.reference["nwot"][1]) and b.reference["nwot"][2] == 300.0
    other = load_naslib_zc(zc_micro, task="class_scene")
    assert len(other) == 1 and other.target[0] == 50.0 and other.metric == "top-1 accuracy"
    with pytest.raises(SaswotError, match="task 'normal' not in the file"):
        load_naslib_zc(zc_micro, task="normal")


def test_naslib_zc_detects_macro_from_keys(tmp_path):
    data = {"segmentsemantic": {"(1, 2, 4, 2, 0, 0)": _zc_entry(94.7, params=22.2),
                                "(1, 2, 1, 1, 1, 3)": _zc_entry(94.5, params=20.0)}}
    p = tmp_path / "some_file.json"  # no hint in the name: the digit 4 / padding decide
    p.write_text(json.dumps(data))
    b = load_benchmark(p)
    assert b.space == "transnas-macro" and b.archs == ["64-1242-basic", "64-121113-basic"]
    p2 = tmp_path / "other.json"
    p2.write_text(json.dumps({"segmentsemantic": {"(1, 0, 3, 0, 0, 0)": _zc_entry(93.0)}}))
    assert load_benchmark(p2).space == "transnas-micro"  # a zero before a non-zero: micro
    (tmp_path / "plain").mkdir()
    p3 = tmp_path / "plain" / "ambiguous.json"  # neither the keys nor the folder/file names tell
    p3.write_text(json.dumps({"segmentsemantic": {"(1, 2, 3, 1, 2, 3)": _zc_entry(93.0)}}))
    with pytest.raises(SaswotError, match="cannot tell TransNAS micro from macro"):
        load_benchmark(p3)
    p3.write_text(json.dumps({"segmentsemantic": {"(1, 0, 3, 0, 0, 0)": _zc_entry(93.0), "(4, 4, 1, 1, 0, 0)": _zc_entry(94.0)}}))
    with pytest.raises(SaswotError, match="mix"):
        load_benchmark(p3)


def test_naslib_zc_metric_argument(zc_micro):
    assert load_benchmark(zc_micro, metric="val_accuracy").metric == "pixel accuracy"
    with pytest.raises(SaswotError, match="mIoU"):
        load_benchmark(zc_micro, metric="mIoU")


# ----------------------------------------------------------------------------------- Zen

def test_zen_folder_and_file(tmp_path):
    d = tmp_path / "zen_micro_segmentsemantic"
    d.mkdir()
    recs1 = [{"idx": "0", "arch": "(2, 3, 2, 3, 2, 3)", "zen": _proxy(150.6), "val_accuracy": 94.4},
             {"idx": "1", "arch": "(3, 1, 1, 2, 1, 2)", "zen": _proxy(-100000000.0), "val_accuracy": 94.1}]
    recs2 = [{"idx": "2", "arch": "(0, 0, 0, 0, 0, 0)", "zen": _proxy(10.0), "val_accuracy": 91.0}]
    (d / "benchmark--a--0.json").write_text(json.dumps(recs1))
    (d / "benchmark--a--2.json").write_text(json.dumps(recs2))
    b = load_benchmark(d)
    assert b.space == "transnas-micro" and len(b) == 3 and list(b.reference) == ["zen"]
    assert b.archs[0] == "64-41414-2_32_323" and b.archs[2] == "64-41414-0_00_000"
    assert b.reference["zen"][0] == 150.6 and math.isnan(b.reference["zen"][1])
    one = load_zen(d / "benchmark--a--2.json")
    assert len(one) == 1 and one.target[0] == 91.0
    (d / "bad.json").write_text(json.dumps({"not": "a list"}))
    with pytest.raises(SaswotError, match="bad.json"):
        load_zen(d)


# --------------------------------------------------------------------------- NAS-Bench-MR

def _nbmr_record(emb, miou, **kw):
    from saswot_gp.spaces.nbmr import embedding_to_setting
    ic, setting, last = embedding_to_setting(emb)
    return dict(mIoU=miou, mAcc=miou + 10, aAcc=95.0, flops=1.5, params=2.5, input_channel=ic,
                inverted_residual_setting=setting, last_channel=last, embedding=emb, **kw)


def test_nbmr_pickle_metrics(tmp_path):
    p = tmp_path / "seg_trainval.pkl"
    p.write_bytes(pickle.dumps([_nbmr_record(EMB_A, 70.0), _nbmr_record(EMB_B, 40.0)], protocol=4))
    b = load_benchmark(p)
    assert b.space == "nbmr-seg" and b.metric == "mIoU" and b.archs[0] == ARCH_A
    np.testing.assert_allclose(b.target, [70.0, 40.0])
    assert set(b.reference) == {"params", "flops"}
    np.testing.assert_allclose(load_benchmark(p, metric="mAcc").target, [80.0, 50.0])
    np.testing.assert_allclose(load_nbmr_pickle(p, "aAcc").target, [95.0, 95.0])
    with pytest.raises(SaswotError, match="'top1' not available"):
        load_benchmark(p, metric="top1")


class _Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_hostile_pickle_refused_payload_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    p = tmp_path / "seg_trainval.pkl"
    p.write_bytes(pickle.dumps([_nbmr_record(EMB_A, 70.0, extra=_Evil(marker))]))
    with pytest.raises(SaswotError) as e:
        load_benchmark(p)
    msg = str(e.value)
    assert "system" in msg and "refusing" in msg and str(p) in msg and "\n" not in msg
    assert not marker.exists()
    # any class lookup is refused, even harmless ones
    from collections import OrderedDict
    with pytest.raises(SaswotError, match="collections.OrderedDict"):
        safe_loads(pickle.dumps(OrderedDict(a=1)))
    with pytest.raises(SaswotError, match="builtins.eval"):
        safe_loads(pickle.dumps(eval))
    assert safe_loads(pickle.dumps({"a": [1, 2.5, "x", None, True, (1, 2)]})) == {"a": [1, 2.5, "x", None, True, (1, 2)]}


def test_corrupt_pickle_is_saswot_error(tmp_path):
    p = tmp_path / "x.pkl"
    p.write_bytes(b"\x80\x04garbage")
    with pytest.raises(SaswotError, match="not a readable pickle"):
        safe_load(p)
    p.write_bytes(pickle.dumps({"not": "a list"}))
    with pytest.raises(SaswotError, match="expected a pickled list"):
        load_benchmark(p)


# ---------------------------------------------------------------------------------- CSV

def test_csv_round_trip(tmp_path):
    b = Benchmark("mine", "transnas-micro", ["64-41414-1_00_210", "64-41414-3_33_333"], np.array([93.25, 94.125]),
                  metric="pixel accuracy", reference={"params": np.array([11.9, np.nan]), "zen": np.array([0.1, 1e-17])},
                  description="two archs\nsecond line", space_kwargs={"num_classes": 17})
    p = save_csv(b, tmp_path / "sub" / "bench.csv")
    c = load_benchmark(p)
    assert (c.name, c.space, c.metric, c.archs, c.space_kwargs) == (b.name, b.space, b.metric, b.archs, b.space_kwargs)
    assert c.description == "two archs second line"
    np.testing.assert_array_equal(c.target, b.target)
    assert set(c.reference) == {"params", "zen"}
    for k in b.reference:
        np.testing.assert_array_equal(c.reference[k], b.reference[k])  # exact, NaN included


def test_csv_seeds_averaged_and_columns(tmp_path):
    p = tmp_path / "runs.csv"
    p.write_text("# space: transnas-macro\n"
                 "arch,mIoU,mAcc,params,seed,notes\n"
                 "64-1242-basic,70,80,22.2,0,first\n"
                 "64-1242-basic,72,,22.2,1,second\n"
                 " 64-1242-basic ,74,84,22.2,2,third\n"
                 "64-4434-basic,60,70,24.5,0,x\n"
                 "64-4441-basic,,70,31.5,0,no target\n")
    b = load_csv(p)
    assert b.metric == "mIoU" and b.archs == ["64-1242-basic", "64-4434-basic"]
    np.testing.assert_allclose(b.target, [72.0, 60.0])
    np.testing.assert_allclose(b.reference["mAcc"], [82.0, 70.0])  # NaN-aware mean
    assert set(b.reference) == {"mAcc", "params"}  # seed groups, text column ignored
    assert "averaged" in b.description and "skipped" in b.description
    np.testing.assert_allclose(load_benchmark(p, metric="mAcc").target, [82.0, 70.0, 70.0])


def test_csv_reference_line_limits_reference_columns(tmp_path):
    body = ("arch,mIoU,pixel_acc,params,flops,seed\n"
            "64-1242-basic,70,90,22.2,5,0\n64-4434-basic,60,85,24.5,6,0\n")
    p = tmp_path / "built.csv"
    p.write_text("# space: transnas-macro\n# reference: params, flops\n" + body)
    b = load_csv(p)
    assert list(b.reference) == ["params", "flops"]               # the training outcome is not a proxy
    assert load_csv(p, metric="pixel_acc").target.tolist() == [90.0, 85.0]
    bad = tmp_path / "bad.csv"
    bad.write_text("# space: transnas-macro\n# reference: params, latency\n" + body)
    with pytest.raises(SaswotError, match="'latency'"):
        load_csv(bad)


def test_csv_space_column_and_errors(tmp_path):
    p = tmp_path / "a.csv"
    p.write_text("arch,space,acc\n64-41414-1_00_210,transnas-micro,93\n")
    b = load_benchmark(p)
    assert b.space == "transnas-micro" and b.metric == "acc" and b.name == "a"
    bad = {
        "arch,acc\n64-41414-1_00_210,93\n": "no search space named",
        "# space: transnas-micro\nname,acc\nx,1\n": "no 'arch' column",
        "# space: transnas-micro\narch,acc\n64-41414-1_00_210,abc\n": "not a number",
        "# space: transnas-micro\narch,acc\n64-41414-9_00_210,93\n": "line 3",
        "# space: transnas-micro\n# metric: mIoU\narch,acc\n64-41414-1_00_210,93\n": "target column 'mIoU' not found",
        "arch,space,acc\n64-41414-1_00_210,transnas-micro,93\n64-1242-basic,transnas-macro,94\n": "several spaces",
    }
    for text, msg in bad.items():
        p.write_text(text)
        with pytest.raises(SaswotError, match=msg):
            load_benchmark(p)


# ------------------------------------------------------------------------------ dispatch

def test_dispatch_errors(tmp_path, monkeypatch):
    with pytest.raises(SaswotError) as e:
        load_benchmark(tmp_path / "missing.pkl")
    assert "missing.pkl" in str(e.value) and "expected" in str(e.value) and "\n" not in str(e.value)
    (tmp_path / "x.txt").write_text("hello")
    with pytest.raises(SaswotError, match="unknown benchmark file type '.txt'"):
        load_benchmark(tmp_path / "x.txt")
    (tmp_path / "x.json").write_text("not json")
    with pytest.raises(SaswotError, match="x.json"):
        load_benchmark(tmp_path / "x.json")
    monkeypatch.delenv("SASWOT_BENCHDATA", raising=False)
    with pytest.raises(SaswotError, match="SASWOT_BENCHDATA"):
        load_benchmark("nbmr-seg")


def test_named_benchmark_via_env(zc_micro, monkeypatch):
    root = zc_micro.parent
    (root / "transnas101").mkdir()
    zc_micro.rename(root / "transnas101" / "zc_transbench101_micro.json")
    monkeypatch.setenv("SASWOT_BENCHDATA", str(root))
    assert len(load_benchmark("transnas-micro")) == 3


# --------------------------------------------------------------------------- real files

_need = need_benchdata


@pytest.mark.parametrize("rel,space,n,lo,hi", [
    ("transnas101/zc_transbench101_micro.json", "transnas-micro", 711, 91.9, 94.8),
    ("transnas101/zc_transbench101_macro.json", "transnas-macro", 725, 94.0, 95.1),
    ("transnas101/zen_micro_segmentsemantic", "transnas-micro", 4096, 0.0, 94.8),
    ("nasbench_mr/seg_trainval.pkl", "nbmr-seg", 1500, 32.9, 79.1),
    ("nasbench_mr/seg-4x_trainval.pkl", "nbmr-seg", 1500, 33.0, 68.7),
])
def test_real_files(rel, space, n, lo, hi):
    b = load_benchmark(_need(rel))
    assert b.space == space and len(b) == n and len(set(b.archs)) == n
    assert lo - 0.05 <= b.target.min() and b.target.max() <= hi + 0.05
    if "zc_" in rel:
        assert np.isnan(b.reference["epe_nas"]).all()  # -1e8 everywhere -> NaN
        assert not (np.nan_to_num(np.concatenate(list(b.reference.values()))) == -1e8).any()
        from scipy.stats import spearmanr
        expected = 0.73 if "macro" in rel else 0.71  # published Spearman of the flops proxy
        assert abs(spearmanr(b.reference["flops"], b.target)[0] - expected) < 0.02
    if "nasbench_mr" in rel:
        assert set(b.reference) == {"params", "flops"} and b.metric == "mIoU"


# ------------------------------------------------------------------ other TransNAS tasks as extra targets

def test_a_transnas_task_is_picked_with_at_and_takes_the_segmentation_split(tmp_path):
    """``file@task`` loads another task of the same file (its target, the same architectures), and the committed
    split of that task is the segmentation split restricted to the task's architectures: nothing held out or
    validated on segmentation enters the other task's training part."""
    from saswot_gp.groundtruth.loaders import resolve_benchmark
    from saswot_gp.groundtruth.splits import SPLITS_FORMAT, committed_split, make_split
    keys = [f"({a}, {b}, 0, {c}, 1, {d})" for a in (1, 2, 3) for b in (1, 2) for c in (2, 3) for d in (1, 2, 3)]
    data = {"segmentsemantic": {k: _zc_entry(90.0 + i / 10, params=float(i)) for i, k in enumerate(keys)},
            "class_scene": {k: _zc_entry(40.0 - i / 10) for i, k in enumerate(keys) if i % 4}}
    p = tmp_path / "zc_transbench101_micro.json"
    p.write_text(json.dumps(data))
    seg = resolve_benchmark(str(p))
    cls = resolve_benchmark(f"{p}@class_scene")
    assert cls.name == "transnas101-micro-class_scene" and cls.metric == "top-1 accuracy"
    assert set(cls.archs) < set(seg.archs) and cls.target[0] == pytest.approx(39.9)
    doc = {"format": SPLITS_FORMAT, "version": 1, "splits": {"micro": {"benchmarks": [seg.name], **make_split(seg)}}}
    s_seg, s_cls = committed_split(seg, doc), committed_split(cls, doc)
    for part in ("train", "val", "heldout"):
        assert s_cls[part] == [a for a in s_seg[part] if a in set(cls.archs)]
    removed = {a for v in s_seg["removed"].values() for a in v}  # duplicate or invalid cells: in no part
    assert sum(len(s_cls[part]) for part in ("train", "val", "heldout")) == len(set(cls.archs) - removed)


@pytest.mark.parametrize("spec, match", [("{p}@nope", "unknown TransNAS-Bench-101 task 'nope'; expected one of"),
                                          ("realtime-digits@class_scene", "only a TransNAS-Bench-101 NASLib")])
def test_a_bad_task_spec_is_one_clear_error(zc_micro, spec, match):
    from saswot_gp.groundtruth.loaders import resolve_benchmark
    with pytest.raises(SaswotError, match=match):
        resolve_benchmark(spec.format(p=zc_micro))
