"""sympy -> proxy tree: rebuild a typed token list from a sympy expression made of the operators' twins.

This closes the round trip tree -> sympy (simplified or not) -> tree. Types are inferred from the
symbols (W, G: weight tensors; A, AG: activation tensors; *_l: layer scalars; params, flops: scores)
and from the reductions and aggregations; ``logrank(...)`` at the top is the rank-aggregation root. Rational constants are built exactly from ``div(x, x)``,
which the protected division makes 1 everywhere (0/0 included). Expressions outside the language
(floats, symbolic exponents, unknown functions) are refused with a SaswotError; nothing is evaluated
from text: the input is already a sympy object.
"""

from __future__ import annotations

from typing import List, Optional

import sympy

from .errors import SaswotError
from .primitives import get_operator, operators
from .primitives.builtin import SYMPY_FUNCTIONS

_SYMBOL_TYPE: dict = {}  # terminal name -> type code, filled lazily
_REDUCTIONS = {"sum", "mean", "l1", "l2", "std", "maxabs"}
_ELEMENTWISE_FN = {"sigmoid": "sigmoid", "zscore": "zscore", "minmax": "minmax"}


def _terminal_types():
    if not _SYMBOL_TYPE:
        _SYMBOL_TYPE.update({op.name: op.out_type for op in operators(terminals=True)})
    return _SYMBOL_TYPE


def _type_of(e) -> Optional[str]:
    if e.is_Number:
        return None
    if isinstance(e, sympy.Symbol):
        t = _terminal_types().get(e.name)
        if t is None:
            raise SaswotError(f"symbol {e.name!r} is not a terminal of the proxy language")
        return t
    name = type(e).__name__
    if name == "logrank" and SYMPY_FUNCTIONS.get(name) is type(e):
        return "R"
    if name.startswith("layers_") or name == "nwot":
        return "S"
    if name in _REDUCTIONS or name == "logdet":
        return "L"
    types = {t for t in (_type_of(a) for a in e.args) if t is not None}
    if len(types) > 1:
        raise SaswotError(f"sub-expression {e} mixes types {sorted(types)}")
    return types.pop() if types else None


def _one(t: str) -> List[str]:
    term = next(op.name for op in operators(out_type=t, terminals=True))
    return [f"div_{t.lower()}", term, term]  # protected x/x == 1 everywhere


def _chain(op: str, parts: List[List[str]]) -> List[str]:
    out = parts[0]
    for p in parts[1:]:
        out = [op] + out + p
    return out


def _integer(n: int, t: str) -> List[str]:
    if n == 0:
        term = next(op.name for op in operators(out_type=t, terminals=True))
        return [f"sub_{t.lower()}", term, term]
    if abs(n) > 64:
        raise SaswotError(f"constant {n} is too large to rebuild from ones")
    tok = _chain(f"add_{t.lower()}", [_one(t) for _ in range(abs(n))])
    return tok if n > 0 else [f"neg_{t.lower()}"] + tok


def _number(x, t: str) -> List[str]:
    if not x.is_Rational:
        raise SaswotError(f"constant {x} is not rational; the proxy language has no float constants")
    p, q = int(x.p), int(x.q)
    return _integer(p, t) if q == 1 else [f"div_{t.lower()}"] + _integer(p, t) + _integer(q, t)


def _conv(e, t: str) -> List[str]:
    s = t.lower()
    if t == "R" and type(e).__name__ != "logrank":
        raise SaswotError(f"{e}: a rank aggregate (logrank) is only ever the whole proxy; the proxy language has no "
                          f"arithmetic on it")
    if e.is_Number:
        return _number(e, t)
    if isinstance(e, sympy.Symbol):
        return [e.name]
    if isinstance(e, sympy.Add):
        return _chain(f"add_{s}", [_conv(a, t) for a in e.args])
    if isinstance(e, sympy.Mul):
        c, rest = e.as_coeff_Mul()
        if c == -1:
            return [f"neg_{s}"] + _conv(rest, t)
        return _chain(f"mul_{s}", [_conv(a, t) for a in e.args])
    if isinstance(e, sympy.Pow):
        b, x = e.args
        if x.is_Rational and abs(x.p) == 1 and x.q in (2, 4, 8, 16):
            depth = int(x.q).bit_length() - 1  # x**(1/2**d) is d nested square roots
            toks = [f"sqrt_{s}"] * depth + _conv(b, t)
            return toks if x > 0 else [f"recip_{s}"] + toks
        if x.is_Integer and x != 0 and abs(int(x)) <= 16:
            n = abs(int(x))
            base = _conv(b, t)
            toks = [f"square_{s}"] + base if n == 2 else _chain(f"mul_{s}", [base] * n)
            return toks if x > 0 else [f"recip_{s}"] + toks
        raise SaswotError(f"power {e} is outside the proxy language")
    if isinstance(e, sympy.Abs):
        return [f"abs_{s}"] + _conv(e.args[0], t)
    if e.func is sympy.exp:
        return [f"exp_{s}"] + _conv(e.args[0], t)
    if e.func is sympy.log:
        return [f"log_{s}"] + _conv(e.args[0], t)
    if e.func is sympy.tanh:
        return [f"tanh_{s}"] + _conv(e.args[0], t)
    if isinstance(e, (sympy.Max, sympy.Min)):
        args = list(e.args)
        if isinstance(e, sympy.Max) and len(args) == 2 and sympy.S.Zero in args:
            other = args[1] if args[0] == 0 else args[0]
            return [f"relu_{s}"] + _conv(other, t)
        return _chain(f"{'max' if isinstance(e, sympy.Max) else 'min'}_{s}", [_conv(a, t) for a in args])
    name = type(e).__name__
    if name == "logrank" and SYMPY_FUNCTIONS.get(name) is type(e) and t == "R":
        return [f"rank{len(e.args)}"] + [tok for a in e.args for tok in _conv(a, "S")]
    if name in _ELEMENTWISE_FN and SYMPY_FUNCTIONS.get(name) is type(e):
        return [f"{_ELEMENTWISE_FN[name]}_{s}"] + _conv(e.args[0], t)
    if name.startswith("layers_") and SYMPY_FUNCTIONS.get(name) is type(e):
        return [name] + _conv(e.args[0], "L")
    if name == "nwot" and SYMPY_FUNCTIONS.get(name) is type(e):
        return ["nwot_a"] + _conv(e.args[0], "A")
    if (name in _REDUCTIONS or name == "logdet") and SYMPY_FUNCTIONS.get(name) is type(e):
        arg = e.args[0]
        at = _type_of(arg)
        if at is None:
            at = "A" if name == "logdet" else "W"
        if name in ("l1", "l2", "maxabs") and isinstance(arg, sympy.Abs):
            arg = arg.args[0]  # the twin wraps |x|; the reduction already takes |x|
        elif name in ("l1", "l2", "maxabs") and isinstance(arg, sympy.Mul) and all(isinstance(a, sympy.Abs) for a in arg.args):
            arg = sympy.Mul(*[a.args[0] for a in arg.args])
        return [f"{name}_{at.lower()}"] + _conv(arg, at)
    raise SaswotError(f"sympy function {name!r} in {e} is not an operator of the proxy language")


def tokens_from_sympy(expr: sympy.Basic) -> List[str]:
    """Prefix tokens of a proxy whose sympy twin equals ``expr`` (up to sympy's automatic evaluation)."""
    if not isinstance(expr, sympy.Basic):
        raise SaswotError(f"expected a sympy expression, got {type(expr).__name__}")
    t = _type_of(expr)
    if t not in (None, "S", "R"):
        raise SaswotError(f"expression {expr} is a {t}-typed value; a proxy must produce an architecture score")
    toks = _conv(expr, t or "S")
    get_operator(toks[0])
    return toks
