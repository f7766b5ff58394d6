"""The sympy twins of the built-in operators: symbols of the terminals, the opaque real functions of the
reductions and aggregations, and one sympy function per operator (used to simplify, deduplicate and export
proxies). :mod:`.builtin`'s table pairs each with its torch function."""

from __future__ import annotations

import sympy

from .types import MEASURE_TOKENS

_SYM = {
    "W": sympy.Symbol("W", real=True), "G": sympy.Symbol("G", real=True),
    "A": sympy.Symbol("A", real=True), "AG": sympy.Symbol("AG", real=True),
    "params_l": sympy.Symbol("params_l", positive=True), "flops_l": sympy.Symbol("flops_l", positive=True),
    "channels_l": sympy.Symbol("channels_l", positive=True), "resolution_l": sympy.Symbol("resolution_l", positive=True),
    "params": sympy.Symbol("params", positive=True), "flops": sympy.Symbol("flops", positive=True),
}
_SYM.update({t: sympy.Symbol(t, real=True) for t in MEASURE_TOKENS})
SYMPY_SYMBOLS = dict(_SYM)


def _real_function(name: str, sign: str = "real"):
    """An undefined sympy function that sympy knows to be real (and non-negative or positive when
    ``sign`` says so, or when ``sign == 'arg'``, exactly when its argument is non-negative). Never a number,
    even of a numeric argument: it stands for a statistic of the network (``minmax(1)`` is not comparable, and
    Min/Max/simplify must not try to compare it)."""
    attrs = {"is_real": True, "is_number": False}
    if sign == "nonneg":
        attrs["is_nonnegative"] = True
    elif sign == "positive":
        attrs["is_positive"] = True
    elif sign == "arg":
        attrs["_eval_is_nonnegative"] = lambda self: self.args[0].is_nonnegative
        attrs["_eval_is_positive"] = lambda self: self.args[0].is_positive
    return type(name, (sympy.Function,), attrs)


SYMPY_FUNCTIONS = {
    "sigmoid": _real_function("sigmoid", "positive"),
    "zscore": _real_function("zscore"),
    "minmax": _real_function("minmax", "nonneg"),
    "l1": _real_function("l1", "nonneg"),
    "l2": _real_function("l2", "nonneg"),
    "std": _real_function("std", "nonneg"),
    "maxabs": _real_function("maxabs", "nonneg"),
    "sum": _real_function("sum"),
    "mean": _real_function("mean"),
    "logdet": _real_function("logdet"),
    "nwot": _real_function("nwot"),
    "layers_sum": _real_function("layers_sum", "arg"),
    "layers_mean": _real_function("layers_mean", "arg"),
    "layers_max": _real_function("layers_max", "arg"),
    "layers_min": _real_function("layers_min", "arg"),
}


class logrank(sympy.Function):
    """The unevaluated log-rank aggregate of its 1 to 4 score arguments (relative to the set being ranked)."""

    nargs = (1, 2, 3, 4)
    is_real = True
    is_number = False


SYMPY_FUNCTIONS["logrank"] = logrank
sigmoid, zscore, minmax = SYMPY_FUNCTIONS["sigmoid"], SYMPY_FUNCTIONS["zscore"], SYMPY_FUNCTIONS["minmax"]


def sym_abs(x):
    """|x| with products split into products of |factor| (so |G*W| and |G|*|W| coincide)."""
    if isinstance(x, sympy.Mul):
        return sympy.Mul(*[sympy.Abs(a) for a in x.args])
    return sympy.Abs(x)


def _symbol(name: str):
    """The sympy twin of terminal ``name`` (a constant: the terminal's symbol)."""
    s = _SYM[name]
    return lambda: s


def _sym_of(name: str):
    """The sympy twin ``f(x)`` for the undefined function ``SYMPY_FUNCTIONS[name]``."""
    f = SYMPY_FUNCTIONS[name]
    return lambda x: f(x)


def _sym_of_abs(name: str):
    """The sympy twin ``f(|x|)``, for reductions that depend on |x| only (``l1(G*W) == l1(|G|*|W|)``)."""
    f = SYMPY_FUNCTIONS[name]
    return lambda x: f(sym_abs(x))


def _sym_neg(x):
    return -x


def _sym_square(x):
    return x ** 2


def _sym_sqrt(x):
    return sympy.sqrt(sym_abs(x))


def _sym_log(x):
    return sympy.log(sym_abs(x))


def _sym_exp(x):
    return sympy.exp(x)


def _sym_sigmoid(x):
    return sigmoid(x)


def _sym_tanh(x):
    return sympy.tanh(x)


def _sym_relu(x):
    return sympy.Max(x, 0)


def _sym_recip(x):
    return 1 / x


def _sym_add(x, y):
    return x + y


def _sym_sub(x, y):
    return x - y


def _sym_mul(x, y):
    return x * y


def _sym_div(x, y):
    return x / y


def _sym_max(x, y):
    return sympy.Max(x, y)


def _sym_min(x, y):
    return sympy.Min(x, y)


def _sym_zscore(x):
    return zscore(x)


def _sym_minmax(x):
    return minmax(x)


def _sym_logrank(*args):
    return logrank(*args)
