"""TransNAS-Bench-101 (micro/macro) and NAS-Bench-MR spaces: strings, operators, networks, and the
parameter counts against the benchmarks' recorded values (seeded subsets; the full check is
benchmarks/param_match.py)."""

import pickle
import random

import numpy as np
import pytest
from conftest import need_benchdata
import torch

from saswot_gp.errors import SaswotError
from saswot_gp.spaces import get_space, space_names
from saswot_gp.spaces.nbmr import embedding_to_arch, embedding_to_setting, record_to_arch
from saswot_gp.spaces.transnas import (MACRO_CODES, arch_to_naslib_key, naslib_key_to_arch, naslib_key_to_macro,
                                       naslib_key_to_micro)

torch.set_num_threads(1)
N_CHECK = 60
EMB = [16, 16, 1, 1, 16, 2, 3, 3, 16, 32, 3, 4, 4, 3, 64, 112, 96, 4, 2, 1, 3, 1, 32, 80, 112, 48, 48]
EMB_ARCH = "16_16-1_1_16-2_3_3_16_32-3_4_4_3_64_112_96-4_2_1_3_1_32_80_112_48-48"


_need = need_benchdata


# ------------------------------------------------------------------------------- strings

def test_registered():
    assert {"transnas-micro", "transnas-macro", "nbmr-seg"} <= set(space_names())
    assert get_space("transnas-micro").num_classes == 17 and get_space("nbmr-seg").num_classes == 19


def test_naslib_key_conversion():
    assert naslib_key_to_micro("(1, 0, 0, 2, 1, 0)") == "64-41414-1_00_210"
    assert naslib_key_to_macro("(1, 2, 4, 2, 0, 0)") == "64-1242-basic"
    assert naslib_key_to_macro((4, 1, 3, 3, 3, 1)) == "64-413331-basic"
    assert naslib_key_to_arch("(0, 1, 1, 2, 3, 3)", "transnas-micro") == "64-41414-0_11_233"
    assert arch_to_naslib_key("64-1242-basic") == "(1, 2, 4, 2, 0, 0)"
    assert arch_to_naslib_key("64-41414-1_00_210") == "(1, 0, 0, 2, 1, 0)"
    for bad in ("(1, 2)", "1,2,3", "(1, 0, 2, 0, 0, 0)x", "(1, 0, 4, 0, 0, 0)"):
        with pytest.raises(SaswotError):
            naslib_key_to_micro(bad)
    for bad in ("(1, 4, 0, 0, 0, 0)", "(1, 0, 2, 3, 0, 0)", "(1, 2, 5, 2, 0, 0)"):
        with pytest.raises(SaswotError):
            naslib_key_to_macro(bad)


@pytest.mark.parametrize("space,bad", [
    ("transnas-micro", "64-41414-1_00_21"), ("transnas-micro", "64-41414-4_00_210"), ("transnas-micro", "32-41414-1_00_210"),
    ("transnas-macro", "64-124-basic"), ("transnas-macro", "64-1111-basic"), ("transnas-macro", "64-3333311-basic"),
    ("transnas-macro", "64-1111111-basic"), ("nbmr-seg", "16_16-1_1_16"), ("nbmr-seg", EMB_ARCH.replace("-48", "-0")),
    ("nbmr-seg", EMB_ARCH.replace("16_16-", "a_16-")), ("transnas-micro", 42),
])
def test_decode_errors_name_string_and_format(space, bad):
    with pytest.raises(SaswotError) as e:
        get_space(space).decode(bad)
    msg = str(e.value)
    assert repr(bad) in msg and "expected" in msg and "\n" not in msg


def test_macro_space_size_and_rules():
    assert len(MACRO_CODES) == 3256  # the benchmark's 3256 macro architectures
    sp = get_space("transnas-macro")
    assert sp.decode("64-1242-basic") == "1242"
    with pytest.raises(SaswotError):
        sp.decode("64-11111-basic")  # no stride change, no channel change


@pytest.mark.parametrize("name", ["transnas-micro", "transnas-macro", "nbmr-seg"])
def test_sample_mutate_crossover_valid(name):
    sp = get_space(name)
    rng = random.Random(0)
    archs = [sp.sample(rng) for _ in range(30)]
    rng2 = random.Random(0)
    assert archs == [sp.sample(rng2) for _ in range(30)]  # seeded
    assert len(set(archs)) > 20
    new = 0
    for a, b in zip(archs, archs[1:]):
        assert sp.validate(a) == a
        m = sp.mutate(a, rng)
        assert m != a and sp.validate(m) == m
        c = sp.crossover(a, b, rng)
        assert sp.validate(c) == c
        new += c not in (a, b)
    assert new >= 25


def test_micro_mutation_changes_one_edge():
    sp = get_space("transnas-micro")
    rng = random.Random(3)
    a = "64-41414-1_02_333"
    for _ in range(20):
        diff = sum(x != y for x, y in zip(sp.decode(a), sp.decode(sp.mutate(a, rng))))
        assert diff == 1


def test_nbmr_crossover_takes_segments_from_parents():
    sp = get_space("nbmr-seg")
    a, b = EMB_ARCH, "8_8-1_1_8-1_1_1_8_8-1_1_1_1_8_8_8-1_1_1_1_1_8_8_8_8-8"
    mixed = 0
    for seed in range(10):
        parts = sp.crossover(a, b, random.Random(seed)).split("-")
        from_a = [p == x for p, x in zip(parts, a.split("-"))]
        from_b = [p == y for p, y in zip(parts, b.split("-"))]
        assert sum(not (x or y) for x, y in zip(from_a, from_b)) <= 1  # at most one segment mutated
        mixed += any(from_a) and any(from_b)
    assert mixed >= 8


# ------------------------------------------------------------------------------- networks

def test_transnas_forward_shapes_and_zero_cell():
    x = torch.randn(1, 3, 64, 64)
    mi, ma = get_space("transnas-micro"), get_space("transnas-macro")
    with torch.no_grad():
        assert mi.build("64-41414-1_02_313").eval()(x).shape == (1, 17, 64, 64)
        assert ma.build("64-1242-basic").eval()(x).shape == (1, 17, 64, 64)
        enc = mi.build("64-41414-0_00_000").encoder.eval()
        assert enc(x).abs().sum().item() == 0.0  # node 3 receives only 'zero' edges
        enc = mi.build("64-41414-1_11_111").encoder.eval()  # identity / factorized reduce everywhere
        assert enc(x).shape == (1, 512, 2, 2) and enc(x).abs().sum().item() > 0


def test_transnas_param_counts_known_values():
    # recorded in the benchmark (NASLib zc 'params' x 1e6) for these architectures
    assert get_space("transnas-micro").params("64-41414-1_00_210") == 11902545
    assert get_space("transnas-macro").params("64-1242-basic") == 22210641
    assert get_space("transnas-micro").params("64-41414-3_33_333") == 52435793


def test_nbmr_forward_and_conversions():
    sp = get_space("nbmr-seg")
    assert embedding_to_arch(EMB) == EMB_ARCH and list(sp.decode(EMB_ARCH)) == EMB
    ic, setting, last = embedding_to_setting(EMB)
    assert ic == [16, 16] and last == 48 and len(setting) == 10 and setting[-1] == [4, [2, 1, 3, 1], [32, 80, 112, 48]]
    rec = {"embedding": EMB, "input_channel": ic, "inverted_residual_setting": setting, "last_channel": last}
    assert record_to_arch(rec) == EMB_ARCH
    with pytest.raises(SaswotError, match="disagrees"):
        record_to_arch(dict(rec, last_channel=64))
    with torch.no_grad():
        out = sp.build(EMB_ARCH).eval()(torch.randn(1, 3, 64, 96))
    assert out.shape == (1, 19, 16, 24)
    # the benchmark records 11.291874 M for this arch: ours with 19 classes, and exactly with a 50-way classifier
    assert sp.params(EMB_ARCH) == 11290355
    with torch.device("meta"):
        assert sum(p.numel() for p in sp.build(EMB_ARCH, num_classes=50).parameters()) == 11291874
    assert sp.flops(EMB_ARCH, (128, 128)) == 4 * sp.flops(EMB_ARCH, (64, 64))


# ---------------------------------------------------------------- recorded parameter counts

def _subset(n_total, seed=0):
    return sorted(random.Random(seed).sample(range(n_total), min(N_CHECK, n_total)))


@pytest.mark.parametrize("fname,space,convert", [
    ("zc_transbench101_micro.json", "transnas-micro", naslib_key_to_micro),
    ("zc_transbench101_macro.json", "transnas-macro", naslib_key_to_macro),
])
def test_transnas_params_match_recorded(fname, space, convert):
    import json
    data = json.loads(_need(f"transnas101/{fname}").read_text())["segmentsemantic"]
    keys = list(data)
    sp = get_space(space)
    idx = _subset(len(keys))
    ours = np.array([sp.params(convert(keys[i])) for i in idx], dtype=float)
    rec = np.array([data[keys[i]]["params"]["score"] * 1e6 for i in idx])
    rate = float(np.mean(np.abs(ours - rec) / rec <= 0.005))
    print(f"{fname}: parameter match rate {rate:.4f} over {len(idx)} seeded archs (exact: {np.mean(np.round(rec) == ours):.4f})")
    assert rate == 1.0 and np.array_equal(np.round(rec), ours)


@pytest.mark.parametrize("fname", ["seg_trainval.pkl", "seg-4x_trainval.pkl"])
def test_nbmr_params_match_recorded(fname):
    from saswot_gp.groundtruth.safe_pickle import safe_load
    recs = safe_load(_need(f"nasbench_mr/{fname}"))
    sp = get_space("nbmr-seg")
    idx = _subset(len(recs), seed=1)
    archs = [record_to_arch(recs[i]) for i in idx]
    rec = np.array([recs[i]["params"] * 1e6 for i in idx])
    ours = np.array([sp.params(a) for a in archs], dtype=float)
    rate = float(np.mean(np.abs(ours - rec) / rec <= 0.005))
    print(f"{fname}: parameter match rate {rate:.4f} over {len(idx)} seeded archs (median rel. error "
          f"{np.median(np.abs(ours - rec) / rec):.2e})")
    assert rate >= 0.98
    # the residual is exactly a 50-way classifier in the recorded count: 31 * (head width + 1) parameters
    last = np.array([recs[i]["last_channel"] for i in idx])
    assert np.array_equal(np.round(rec) - ours, 31 * (last + 1))


def test_nbmr_pickle_is_builtin_only():
    p = _need("nasbench_mr/seg_trainval.pkl")
    from saswot_gp.groundtruth.safe_pickle import safe_load
    assert safe_load(p)[0] == pickle.loads(p.read_bytes())[0]
