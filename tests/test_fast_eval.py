"""The fast evaluation (``finite`` only rewrites when something is non-finite; operators write into spare
intermediates) gives exactly the values of the reference: the built-in operators as they were before, with a
``nan_to_num`` rewrite after every protected operator (``benchmarks/reference_eval.py``), on random trees and on
trees built to overflow, divide by zero and take logs of zeros, over real, huge and poisoned statistics."""

import random

import pytest
import torch

from saswot_gp.evolution import build_pset
from saswot_gp.primitives import BIG, Operator, finite, operators, register, unregister
from saswot_gp.primitives import builtin
from saswot_gp.proxy import Proxy
from saswot_gp.stats import pack


@pytest.fixture(scope="module")
def bench():
    """benchmarks/reference_eval.py and fast_eval_check.py, imported from the checkout."""
    import importlib
    import sys
    from pathlib import Path
    path = str(Path(__file__).resolve().parents[1] / "benchmarks")
    sys.path.insert(0, path)
    try:
        ref = importlib.import_module("reference_eval")
        check = importlib.import_module("fast_eval_check")
    finally:
        sys.path.remove(path)
    return ref, check


@pytest.fixture(scope="module")
def trees():
    from deap import gp
    pset = build_pset()
    random.seed(7)
    return [[n.name for n in gp.PrimitiveTree(gp.genHalfAndHalf(pset, 2, 5))] for _ in range(300)]


@pytest.fixture(scope="module")
def ctxs(tiny_stats, bench):
    return bench[1].contexts(pack(tiny_stats))


def _terminals(ctx):
    return [ctx.w, ctx.g, ctx.a, ctx.ag, *ctx.layer.values(), *ctx.arch.values()]


def _bits(t: torch.Tensor) -> bytes:
    return t.contiguous().numpy().tobytes()


def test_finite_rewrites_exactly_like_nan_to_num():
    ok = torch.tensor([0.0, -0.0, 1.5, -1e300, 1e-300], dtype=torch.float64)
    assert finite(ok) is ok  # nothing to rewrite: no copy
    for bad in ([float("nan"), 1.0], [float("inf"), -2.0], [-float("inf"), 0.0], [1e308, 1e308]):  # last: sum overflows
        x = torch.tensor(bad, dtype=torch.float64)
        assert _bits(finite(x)) == _bits(torch.nan_to_num(x, nan=0.0, posinf=BIG, neginf=-BIG))


def test_random_and_overflowing_trees_match_the_reference_bit_for_bit(ctxs, trees, bench):
    ref, check = bench
    hand = [Proxy.parse(h).tokens for h in check.HAND]
    for name, ctx in ctxs.items():
        before = [t.clone() for t in _terminals(ctx)]
        with torch.no_grad():
            for toks in trees + hand:
                old = ref.evaluate_reference(toks, ctx)
                new = Proxy(toks).evaluate(ctx)
                assert _bits(new) == _bits(old), (name, Proxy(toks).expression())
        assert all(_bits(a) == _bits(b) for a, b in zip(before, _terminals(ctx))), f"{name}: statistics overwritten"


def test_the_overflow_cases_need_their_protection(ctxs, bench, monkeypatch):
    """Without ``finite`` the hand-written cases give other values on huge statistics: the bit-for-bit test above
    would catch a protection dropped where it is needed."""
    ref, check = bench
    ctx = ctxs["huge"]
    hand = [Proxy.parse(h).tokens for h in check.HAND]
    unprotected = sum(_bits(ref.evaluate_reference(t, ctx, ref.BARE)) != _bits(ref.evaluate_reference(t, ctx))
                      for t in hand)
    assert unprotected >= 5
    monkeypatch.setattr(builtin, "finite", lambda x: x)
    dropped = sum(_bits(Proxy(t).evaluate(ctx)) != _bits(ref.evaluate_reference(t, ctx)) for t in hand)
    assert dropped >= 5


def test_every_operator_gives_the_same_bits_with_a_spare(ctxs):
    """Writing into either argument, or into none, gives one result; without a spare the arguments are untouched."""
    ctx = ctxs["poisoned"]
    vals = {"W": ctx.w, "A": ctx.a, "L": ctx.layer["params"] * 1e150, "S": ctx.arch["flops"] * 1e150}
    second = {"W": ctx.g, "A": ctx.ag, "L": ctx.layer["flops"], "S": ctx.arch["params"]}
    for op in operators(terminals=False):
        if op.out_type == "R":  # a rank root allocates its aggregate (float64 over the set): no spare
            assert not op.spare, op.name
            continue
        assert op.spare, op.name
        args = [vals[op.in_types[0]]] + [second[t] for t in op.in_types[1:]]
        kept = [_bits(a) for a in args]
        want = _bits(op.fn(ctx, *args))
        assert [_bits(a) for a in args] == kept, op.name
        for i in range(op.arity):
            copies = [a.clone() for a in args]
            assert _bits(op.fn(ctx, *copies, spare=copies[i])) == want, (op.name, i)


def test_an_operator_without_spare_never_gets_its_result_overwritten(ctxs):
    """A custom operator may return its argument (here the terminal W itself): evaluation must not write into it."""
    ctx = ctxs["real"]
    register(Operator("same_w", ("W",), "W", lambda c, x: x, lambda x: x, elementwise=True, builtin=False))
    try:
        w = ctx.w.clone()
        s = Proxy.parse("layers_sum(sum_w(square_w(neg_w(same_w(W)))))").evaluate(ctx)
        assert torch.equal(ctx.w, w)
        assert torch.equal(s, Proxy.parse("layers_sum(sum_w(square_w(neg_w(W))))").evaluate(ctx))
    finally:
        unregister("same_w")


def _kernels_layer_by_layer(p, x):
    """The batch kernels of :meth:`PackedStats.layer_kernels`, one layer at a time with the original formula."""
    c = (x > 0).to(torch.float32)
    out = []
    for layer in range(p.n_layers):
        cg = c[p.a_seg == layer]
        s = cg.sum(0)
        out.append((2.0 * (cg.T @ cg) - s.unsqueeze(1) - s.unsqueeze(0) + cg.shape[0]).double())
    return torch.stack(out)


def test_layer_kernels_equal_the_original_formula_on_both_paths(tiny_stats, tiny_space, batch):
    """One group of equal row counts (a K sketch: a view of the codes) and several groups (full tensors: gathers)."""
    from saswot_gp.stats import collect_stats
    from saswot_gp.stats.cache import build_model
    from conftest import TINY_ARCHS
    images, labels = batch
    full = pack([collect_stats(build_model(tiny_space, a, seed=0), images, labels, k=None, seed=0) for a in TINY_ARCHS[:3]])
    for p in (pack(tiny_stats), full):
        want = _bits(_kernels_layer_by_layer(p, p.a))
        assert _bits(p.layer_kernels(p.a)) == want
        if p._uniform:
            p._uniform = False  # the gathering path on the same statistics
            assert _bits(p.layer_kernels(p.a)) == want
    assert not full._uniform and len(full._groups) > 1
