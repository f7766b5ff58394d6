"""The reference evaluation: a frozen copy of the built-in operators as they were before the fast path (commit
7b3cac3, ``saswot_gp/primitives/builtin.py``), evaluated the old way (no argument ever overwritten).

Used by ``fast_eval_check.py`` and ``bench_engine.py`` (old vs new candidates/s) and by ``tests/test_fast_eval.py``
(bit-identity). ``protect=False`` gives "bare torch": the same arithmetic with ``finite`` replaced by the identity
(the guards inside ``div``/``recip``, ``log`` and ``exp`` stay; they are part of the operators' values).
Terminals are fetched with the library's own terminal functions (a fetch has nothing to protect).
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


def reference_ops(protect: bool = True) -> Dict[str, Callable[..., torch.Tensor]]:
    """Token -> ``fn(ctx, *children)`` of every built-in non-terminal operator, old definitions."""
    finite = old_finite if protect else (lambda x: x)

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
    ops["logdet_a"] = lambda ctx, x: ctx.logdet(x)
    ops["nwot_a"] = lambda ctx, x: ctx.arch_logdet(x)
    ops["layers_sum"] = lambda ctx, x: finite(ctx.seg_sum("L", x))
    ops["layers_mean"] = lambda ctx, x: ctx.seg_mean("L", x)
    ops["layers_max"] = lambda ctx, x: ctx.seg_max("L", x)
    ops["layers_min"] = lambda ctx, x: ctx.seg_min("L", x)
    return ops


REFERENCE = reference_ops(True)
BARE = reference_ops(False)


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
