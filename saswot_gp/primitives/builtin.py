"""The built-in operator library, registered on import.

Tokens carry their type as a suffix: ``add_w`` works on weight-shaped tensors, ``add_a`` on
activation-shaped ones, ``add_l`` on layer scalars and ``add_s`` on architecture scores. Reductions
(``sum_w``, ``l2_a``, ``logdet_a`` ...) map tensors to layer scalars; aggregations (``layers_sum`` ...)
map layer scalars to the architecture score. Normalisations (``zscore``, ``minmax``) act within a layer
(tensors) or within an architecture (layer scalars), so every architecture's score depends only on
its own statistics.
"""

from __future__ import annotations

import sympy
import torch

from .registry import Operator, finite, register

EPS = 1e-12

# ----------------------------------------------------------------------------- sympy side
_SYM = {
    "W": sympy.Symbol("W", real=True), "G": sympy.Symbol("G", real=True),
    "A": sympy.Symbol("A", real=True), "AG": sympy.Symbol("AG", real=True),
    "params_l": sympy.Symbol("params_l", positive=True), "flops_l": sympy.Symbol("flops_l", positive=True),
    "channels_l": sympy.Symbol("channels_l", positive=True), "resolution_l": sympy.Symbol("resolution_l", positive=True),
    "params": sympy.Symbol("params", positive=True), "flops": sympy.Symbol("flops", positive=True),
}
SYMPY_SYMBOLS = dict(_SYM)
def _real_function(name: str, sign: str = "real"):
    """An undefined sympy function that sympy knows to be real (and non-negative or positive when
    ``sign`` says so, or when ``sign == 'arg'``, exactly when its argument is non-negative)."""
    attrs = {"is_real": True}
    if sign == "nonneg":
        attrs["is_nonnegative"] = True
    elif sign == "positive":
        attrs["is_positive"] = True
    elif sign == "arg":
        attrs["_eval_is_nonnegative"] = lambda self: self.args[0].is_nonnegative
        attrs["_eval_is_positive"] = lambda self: self.args[0].is_positive
    return type(name, (sympy.Function,), attrs)


SYMPY_FUNCTIONS = {
    "sigmoid": _real_function("sigmoid", "positive"), "zscore": _real_function("zscore"),
    "minmax": _real_function("minmax", "nonneg"),
    **{n: _real_function(n, "nonneg") for n in ("l1", "l2", "std", "maxabs")},
    **{n: _real_function(n) for n in ("sum", "mean", "logdet", "nwot")},
    **{f"layers_{n}": _real_function(f"layers_{n}", "arg") for n in ("sum", "mean", "max", "min")},
}
sigmoid, zscore, minmax = SYMPY_FUNCTIONS["sigmoid"], SYMPY_FUNCTIONS["zscore"], SYMPY_FUNCTIONS["minmax"]


def sym_abs(x):
    """|x| with products split into products of |factor| (so |G*W| and |G|*|W| coincide)."""
    if isinstance(x, sympy.Mul):
        return sympy.Mul(*[sympy.Abs(a) for a in x.args])
    return sympy.Abs(x)


def _sfun(name):
    f = SYMPY_FUNCTIONS[name]
    return lambda x: f(x)


# ----------------------------------------------------------------------------- torch side
def _div(x, y):
    return finite(torch.where(y.abs() > EPS, x / torch.where(y.abs() > EPS, y, torch.ones_like(y)), torch.ones_like(x)))


def _log(x):
    return torch.log(x.abs().clamp_min(EPS))


def _exp(x):
    return torch.exp(x.clamp(max=80.0))


def _recip(x):
    return _div(torch.ones_like(x), x)


UNARY = {
    # name: (torch fn, sympy fn, monotone increasing over all reals)
    "abs": (torch.abs, sym_abs, False),
    "neg": (torch.neg, lambda x: -x, False),
    "square": (lambda x: finite(x * x), lambda x: x ** 2, False),
    "sqrt": (lambda x: torch.sqrt(x.abs()), lambda x: sympy.sqrt(sym_abs(x)), False),
    "log": (_log, lambda x: sympy.log(sym_abs(x)), False),
    "exp": (_exp, lambda x: sympy.exp(x), True),
    "sigmoid": (torch.sigmoid, lambda x: sigmoid(x), True),
    "tanh": (torch.tanh, lambda x: sympy.tanh(x), True),
    "relu": (torch.relu, lambda x: sympy.Max(x, 0), False),  # ties negatives: not rank-preserving
    "recip": (_recip, lambda x: 1 / x, False),
}
BINARY = {
    "add": (lambda x, y: finite(x + y), lambda x, y: x + y),
    "sub": (lambda x, y: finite(x - y), lambda x, y: x - y),
    "mul": (lambda x, y: finite(x * y), lambda x, y: x * y),
    "div": (_div, lambda x, y: x / y),
    "max": (torch.maximum, lambda x, y: sympy.Max(x, y)),
    "min": (torch.minimum, lambda x, y: sympy.Min(x, y)),
}


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


def _reductions(kind):
    def _sum(ctx, x):
        return finite(ctx.seg_sum(kind, x) * ctx.scale(kind))

    def _mean(ctx, x):
        return ctx.seg_mean(kind, x)

    def _l1(ctx, x):
        return finite(ctx.seg_sum(kind, x.abs()) * ctx.scale(kind))

    def _l2(ctx, x):
        return finite(torch.sqrt(ctx.seg_sum(kind, x * x) * ctx.scale(kind)))

    def _std(ctx, x):
        m = ctx.seg_mean(kind, x)
        return finite(torch.sqrt(ctx.seg_mean(kind, (x - ctx.expand(kind, m)) ** 2)))

    def _maxabs(ctx, x):
        return ctx.seg_max(kind, x.abs())

    return {"sum": _sum, "mean": _mean, "l1": _l1, "l2": _l2, "std": _std, "maxabs": _maxabs}


def _aggregations():
    return {
        "sum": lambda ctx, x: finite(ctx.seg_sum("L", x)),
        "mean": lambda ctx, x: ctx.seg_mean("L", x),
        "max": lambda ctx, x: ctx.seg_max("L", x),
        "min": lambda ctx, x: ctx.seg_min("L", x),
    }


def _terminal(name, typ, getter, doc):
    register(Operator(name, (), typ, getter, lambda s=_SYM[name]: s, doc=doc))


def _register_all() -> None:
    _terminal("W", "W", lambda ctx: ctx.w, "layer weights")
    _terminal("G", "W", lambda ctx: ctx.g, "gradient of the loss w.r.t. the weights")
    _terminal("A", "A", lambda ctx: ctx.a, "layer output activations")
    _terminal("AG", "A", lambda ctx: ctx.ag, "gradient of the loss w.r.t. the layer output")
    for key, doc in (("params", "parameter count"), ("flops", "multiply-accumulates"),
                     ("channels", "output channels"), ("resolution", "output pixels (H*W)")):
        _terminal(f"{key}_l", "L", (lambda k: lambda ctx: ctx.layer[k])(key), f"per-layer {doc}")
    _terminal("params", "S", lambda ctx: ctx.arch["params"], "architecture parameter count")
    _terminal("flops", "S", lambda ctx: ctx.arch["flops"], "architecture multiply-accumulates")

    for t in ("W", "A", "L", "S"):
        suffix = t.lower()
        for name, (fn, sfn, mono) in UNARY.items():
            register(Operator(f"{name}_{suffix}", (t,), t, (lambda f: lambda ctx, x: f(x))(fn), sfn,
                              elementwise=True, monotone=mono, doc=f"elementwise {name}"))
        for name, (fn, sfn) in BINARY.items():
            register(Operator(f"{name}_{suffix}", (t, t), t, (lambda f: lambda ctx, x, y: f(x, y))(fn), sfn,
                              elementwise=True, doc=f"elementwise {name}"))
        if t != "S":  # normalising scores across architectures would make a score depend on the others
            register(Operator(f"zscore_{suffix}", (t,), t, _zscore(t), lambda x: zscore(x), monotone=True,
                              doc="z-score within each " + ("layer" if t in "WA" else "architecture")))
            register(Operator(f"minmax_{suffix}", (t,), t, _minmax(t), lambda x: minmax(x), monotone=True,
                              doc="min-max scaling within each " + ("layer" if t in "WA" else "architecture")))
    for t in ("W", "A"):
        for name, fn in _reductions(t).items():
            sfn = _sfun(name)
            if name in ("l1", "l2", "maxabs"):  # depend on |x| only: l1(G*W) == l1(|G|*|W|)
                sfn = (lambda f: lambda x: f(sym_abs(x)))(sfn)
            register(Operator(f"{name}_{t.lower()}", (t,), "L", fn, sfn,
                              doc=f"per-layer {name} of a {'weight' if t == 'W' else 'activation'}-shaped tensor"))
    register(Operator("logdet_a", ("A",), "L", lambda ctx, x: ctx.logdet(x), _sfun("logdet"),
                      doc="per-layer log-determinant of the batch kernel of binary codes x>0 (NWOT-like)"))
    register(Operator("nwot_a", ("A",), "S", lambda ctx, x: ctx.arch_logdet(x), _sfun("nwot"),
                      doc="log-determinant of one batch kernel of binary codes x>0 over all layers (NWOT; layers "
                          "weighted by full / sketched size)"))
    for name, fn in _aggregations().items():
        register(Operator(f"layers_{name}", ("L",), "S", fn, _sfun(f"layers_{name}"),
                          doc=f"{name} over the layers of each architecture"))


_register_all()
