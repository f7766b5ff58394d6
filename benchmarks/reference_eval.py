"""The reference evaluation: a frozen copy of the built-in operators as they were before the fast path (commit
7b3cac3, ``saswot_gp/primitives/builtin.py``), evaluated the old way (no argument ever overwritten).

Used by ``fast_eval_check.py`` and ``bench_engine.py`` (old vs new candidates/s) and by ``tests/test_fast_eval.py``
(bit-identity). Modes: ``reference`` (as the library was), ``bare`` (the same arithmetic with ``finite`` replaced by
the identity; the guards inside ``div``/``recip``, ``log`` and ``exp`` stay, so finite values are the reference's)
and ``plain`` (no protection at all: ``x / y``, ``1 / x``, ``log x``, ``sqrt x``, ``exp x``, no ``finite``; other
values wherever a guard would act: a cost floor, not a proxy language).
Terminals are fetched with the library's own terminal functions (a fetch has nothing to protect). ``logdet_a`` and
``nwot_a`` use a frozen copy of the old ``PackedStats.layer_kernels`` (needs a ``PackedStats``: private members).
"""

from __future__ import annotations

from typing import Callable, Dict, Sequence

import torch

from saswot_gp.primitives import get_operator

BIG = 1e100
EPS = 1e-12


def old_finite(x: torch.Tensor) -> torch.Tensor:
    """The old ``finite``: always a rewritten copy."""
    return torch.nan_to_num(x, nan=0.0, posinf=BIG, neginf=-BIG)


def old_layer_kernels(ctx, x: torch.Tensor) -> torch.Tensor:
    """The old ``PackedStats.layer_kernels``: codes gathered group by group, kernel arithmetic out of place."""
    counts = ctx._lengths["A"]
    starts = torch.cumsum(counts, 0) - counts
    c = (x > 0).to(torch.float32)
    out = torch.empty(ctx.n_layers, ctx.batch_size, ctx.batch_size, dtype=torch.float64)
    for r in torch.unique(counts).tolist():
        layers = torch.nonzero(counts == r).flatten()
        rows = starts[layers].unsqueeze(1) + torch.arange(r).unsqueeze(0)
        cg = c[rows]
        s = cg.sum(1)
        out[layers] = (2.0 * (cg.transpose(1, 2) @ cg) - s.unsqueeze(2) - s.unsqueeze(1) + rows.shape[1]).double()
    return out


def old_arch_logdet(ctx, x: torch.Tensor) -> torch.Tensor:
    """The old ``PackedStats.arch_logdet`` (on :func:`old_layer_kernels`)."""
    k = old_layer_kernels(ctx, x) * ctx._scale["A"].view(-1, 1, 1)
    n = ctx.batch_size
    ka = torch.zeros(ctx.n_archs, n, n, dtype=torch.float64).index_add_(0, ctx.layer_arch, k)
    return ctx._logdet(ka)


MODES = ("reference", "bare", "plain")


def reference_ops(mode: str = "reference") -> Dict[str, Callable[..., torch.Tensor]]:
    """Token -> ``fn(ctx, *children)`` of every built-in non-terminal operator, old definitions (``mode``: see the
    module docstring)."""
    if mode not in MODES:
        raise ValueError(f"mode {mode!r}; expected one of {MODES}")
    finite = old_finite if mode == "reference" else (lambda x: x)

    def _square(x):
        return finite(x * x)

    def _sqrt(x):
        return torch.sqrt(x.abs())

    def _log(x):
        return torch.log(x.abs().clamp_min(EPS))

    def _exp(x):
        return torch.exp(x.clamp(max=80.0))

    def _div(x, y):
        return finite(torch.where(y.abs() > EPS, x / torch.where(y.abs() > EPS, y, torch.ones_like(y)), torch.ones_like(x)))

    def _recip(x):
        return _div(torch.ones_like(x), x)

    def _add(x, y):
        return finite(x + y)

    def _sub(x, y):
        return finite(x - y)

    def _mul(x, y):
        return finite(x * y)

    def _zscore(kind):
        def fn(ctx, x):
            m = ctx.seg_mean(kind, x)
            s = torch.sqrt(ctx.seg_mean(kind, (x - ctx.expand(kind, m)) ** 2))
            return finite((x - ctx.expand(kind, m)) / (ctx.expand(kind, s) + 1e-8))
        return fn

    def _minmax(kind):
        def fn(ctx, x):
            lo, hi = ctx.seg_min(kind, x), ctx.seg_max(kind, x)
            return finite((x - ctx.expand(kind, lo)) / (ctx.expand(kind, hi - lo) + 1e-8))
        return fn

    def _reduce_sum(kind):
        return lambda ctx, x: finite(ctx.seg_sum(kind, x) * ctx.scale(kind))

    def _reduce_mean(kind):
        return lambda ctx, x: ctx.seg_mean(kind, x)

    def _reduce_l1(kind):
        return lambda ctx, x: finite(ctx.seg_sum(kind, x.abs()) * ctx.scale(kind))

    def _reduce_l2(kind):
        return lambda ctx, x: finite(torch.sqrt(ctx.seg_sum(kind, x * x) * ctx.scale(kind)))

    def _reduce_std(kind):
        def fn(ctx, x):
            m = ctx.seg_mean(kind, x)
            return finite(torch.sqrt(ctx.seg_mean(kind, (x - ctx.expand(kind, m)) ** 2)))
        return fn

    def _reduce_maxabs(kind):
        return lambda ctx, x: ctx.seg_max(kind, x.abs())

    if mode == "plain":
        _sqrt, _log, _exp, _recip = torch.sqrt, torch.log, torch.exp, torch.reciprocal

        def _div(x, y):
            return x / y

    unary = {"abs": torch.abs, "neg": torch.neg, "square": _square, "sqrt": _sqrt, "log": _log, "exp": _exp,
             "sigmoid": torch.sigmoid, "tanh": torch.tanh, "relu": torch.relu, "recip": _recip}
    binary = {"add": _add, "sub": _sub, "mul": _mul, "div": _div, "max": torch.maximum, "min": torch.minimum}
    ops: Dict[str, Callable[..., torch.Tensor]] = {}
    for t in "wals":
        for name, f in unary.items():
            ops[f"{name}_{t}"] = (lambda f: lambda ctx, x: f(x))(f)
        for name, f in binary.items():
            ops[f"{name}_{t}"] = (lambda f: lambda ctx, x, y: f(x, y))(f)
    for t, kind in (("w", "W"), ("a", "A"), ("l", "L")):
        ops[f"zscore_{t}"] = _zscore(kind)
        ops[f"minmax_{t}"] = _minmax(kind)
    for t, kind in (("w", "W"), ("a", "A")):
        ops[f"sum_{t}"] = _reduce_sum(kind)
        ops[f"mean_{t}"] = _reduce_mean(kind)
        ops[f"l1_{t}"] = _reduce_l1(kind)
        ops[f"l2_{t}"] = _reduce_l2(kind)
        ops[f"std_{t}"] = _reduce_std(kind)
        ops[f"maxabs_{t}"] = _reduce_maxabs(kind)
    ops["logdet_a"] = lambda ctx, x: ctx._logdet(old_layer_kernels(ctx, x))
    ops["nwot_a"] = old_arch_logdet
    ops["layers_sum"] = lambda ctx, x: finite(ctx.seg_sum("L", x))
    ops["layers_mean"] = lambda ctx, x: ctx.seg_mean("L", x)
    ops["layers_max"] = lambda ctx, x: ctx.seg_max("L", x)
    ops["layers_min"] = lambda ctx, x: ctx.seg_min("L", x)
    return ops


REFERENCE = reference_ops("reference")
BARE = reference_ops("bare")
PLAIN = reference_ops("plain")


def evaluate_reference(tokens: Sequence[str], ctx, ops: Dict[str, Callable[..., torch.Tensor]] = REFERENCE) -> torch.Tensor:
    """Scores of a token list the old way (prefix order, evaluated from the end): ``ops`` for operators, the
    library's terminal functions for terminals."""
    stack = []
    for tok in reversed(tokens):
        op = get_operator(tok)
        if op.arity == 0:
            stack.append(op.fn(ctx))
        elif op.arity == 1:
            stack.append(ops[tok](ctx, stack.pop()))
        else:
            x = stack.pop()
            y = stack.pop()
            stack.append(ops[tok](ctx, x, y))
    return stack[0]
