"""The built-in operator library: one explicit table (:data:`BUILTINS`), registered on import.

Tokens carry their type as a suffix: ``add_w`` works on weight-shaped tensors, ``add_a`` on
activation-shaped ones, ``add_l`` on layer scalars and ``add_s`` on architecture scores. Reductions
(``sum_w``, ``l2_a``, ``logdet_a`` ...) map tensors to layer scalars; aggregations (``layers_sum`` ...)
map layer scalars to the architecture score. Normalisations (``zscore``, ``minmax``) act within a layer
(tensors) or within an architecture (layer scalars), so every architecture's score depends only on
its own statistics. The exception is the rank-aggregation root (``rank1`` .. ``rank4``, type ``R``; see
:mod:`.rank`), which ranks score subtrees within the set being scored; only a primitive set built with ``root='rank'``
has it.

Every token is spelled out in :data:`BUILTINS`, one row per operator, in registration order. The order
is part of the contract: keep new rows at the end (seeded evolution runs depend on the registry).
This module is imported by ``saswot_gp.primitives`` right after the registry; it imports the registry,
never the reverse.
"""

from __future__ import annotations

from typing import Callable, Dict, Optional, Tuple

import torch

from .context import StatsContext
from .registry import Operator, finite, register
from .sympy_side import (  # noqa: F401  (imported from builtin elsewhere too)
    SYMPY_FUNCTIONS, SYMPY_SYMBOLS, _real_function, sym_abs, _symbol, _sym_of, _sym_of_abs, _sym_neg, _sym_square,
    _sym_sqrt, _sym_log, _sym_exp, _sym_sigmoid, _sym_tanh, _sym_relu, _sym_recip, _sym_add, _sym_sub, _sym_mul,
    _sym_div, _sym_max, _sym_min, _sym_zscore, _sym_minmax, _sym_logrank)
from .rank import rank_root
from .types import MEASURE_PREFIX

EPS = 1e-12

# ----------------------------------------------------------------------------- torch side: elementwise
# Elementwise functions take tensors only (no context); the table wraps them as fn(ctx, *tensors). Every function
# takes ``spare`` (None or one of its arguments that nothing else holds; see ``Operator.spare``) and writes its
# result there instead of into a new tensor: at 1,000 packed networks a weight-shaped tensor is 60 MB, and a new one
# costs more (page faults) than the arithmetic. ``torch.f(x, out=x)`` gives the bits of ``torch.f(x)``.
# ``finite`` only where finite inputs can give a non-finite result (overflow: square, add, sub, mul, div); the others
# map finite inputs to finite values (sqrt|x|, log of |x| >= EPS, exp of x <= 80, 1/y for |y| > EPS, sigmoid, tanh,
# relu, abs, neg, max, min) and pass a non-finite input's NaN/inf on, exactly as before.
def _abs(x: torch.Tensor, spare: Optional[torch.Tensor] = None) -> torch.Tensor:
    return torch.abs(x, out=spare)


def _neg(x: torch.Tensor, spare: Optional[torch.Tensor] = None) -> torch.Tensor:
    return torch.neg(x, out=spare)


def _square(x: torch.Tensor, spare: Optional[torch.Tensor] = None) -> torch.Tensor:
    return finite(torch.mul(x, x, out=spare))


def _sqrt(x: torch.Tensor, spare: Optional[torch.Tensor] = None) -> torch.Tensor:
    return torch.abs(x, out=spare).sqrt_()


def _log(x: torch.Tensor, spare: Optional[torch.Tensor] = None) -> torch.Tensor:
    return torch.abs(x, out=spare).clamp_min_(EPS).log_()


def _exp(x: torch.Tensor, spare: Optional[torch.Tensor] = None) -> torch.Tensor:
    return torch.clamp(x, max=80.0, out=spare).exp_()


def _sigmoid(x: torch.Tensor, spare: Optional[torch.Tensor] = None) -> torch.Tensor:
    return torch.sigmoid(x, out=spare)


def _tanh(x: torch.Tensor, spare: Optional[torch.Tensor] = None) -> torch.Tensor:
    return torch.tanh(x, out=spare)


def _relu(x: torch.Tensor, spare: Optional[torch.Tensor] = None) -> torch.Tensor:
    return torch.relu(x) if spare is None else spare.relu_()


def _safe_divisor(y: torch.Tensor, spare: Optional[torch.Tensor]) -> Tuple[torch.Tensor, torch.Tensor]:
    """(y with 1 where |y| <= EPS or y is NaN, that mask): in ``spare`` if it is y, else in a new tensor."""
    small = torch.gt(y, EPS)
    small |= torch.lt(y, -EPS)  # |y| > EPS, without a float temporary; false for NaN
    small.logical_not_()
    return (y.masked_fill_(small, 1.0) if spare is y else y.masked_fill(small, 1.0)), small


def _div(x: torch.Tensor, y: torch.Tensor, spare: Optional[torch.Tensor] = None) -> torch.Tensor:
    d, small = _safe_divisor(y, spare)
    return finite(torch.div(x, d, out=d).masked_fill_(small, 1.0))


def _recip(x: torch.Tensor, spare: Optional[torch.Tensor] = None) -> torch.Tensor:
    d, small = _safe_divisor(x, spare)
    return torch.reciprocal(d, out=d).masked_fill_(small, 1.0)  # finite: |1/y| < 1/EPS, and 1/inf = 0


def _add(x: torch.Tensor, y: torch.Tensor, spare: Optional[torch.Tensor] = None) -> torch.Tensor:
    return finite(torch.add(x, y, out=spare))


def _sub(x: torch.Tensor, y: torch.Tensor, spare: Optional[torch.Tensor] = None) -> torch.Tensor:
    return finite(torch.sub(x, y, out=spare))


def _mul(x: torch.Tensor, y: torch.Tensor, spare: Optional[torch.Tensor] = None) -> torch.Tensor:
    return finite(torch.mul(x, y, out=spare))


def _max(x: torch.Tensor, y: torch.Tensor, spare: Optional[torch.Tensor] = None) -> torch.Tensor:
    return torch.maximum(x, y, out=spare)


def _min(x: torch.Tensor, y: torch.Tensor, spare: Optional[torch.Tensor] = None) -> torch.Tensor:
    return torch.minimum(x, y, out=spare)


# ----------------------------------------------------------------------------- torch side: with context
def _w(ctx: StatsContext) -> torch.Tensor:
    return ctx.w


def _g(ctx: StatsContext) -> torch.Tensor:
    return ctx.g


def _a(ctx: StatsContext) -> torch.Tensor:
    return ctx.a


def _ag(ctx: StatsContext) -> torch.Tensor:
    return ctx.ag


def _layer_scalar(key: str) -> Callable[[StatsContext], torch.Tensor]:
    def fn(ctx: StatsContext) -> torch.Tensor:
        return ctx.layer[key]
    return fn


def _arch_scalar(key: str) -> Callable[[StatsContext], torch.Tensor]:
    def fn(ctx: StatsContext) -> torch.Tensor:
        return ctx.arch[key]
    return fn


def _measure_scalar(measure: str) -> Callable[[StatsContext], torch.Tensor]:
    key = MEASURE_PREFIX + measure

    def fn(ctx: StatsContext) -> torch.Tensor:
        try:
            return ctx.arch[key]
        except KeyError:
            from ..errors import SaswotError
            raise SaswotError(f"terminal {key!r} needs the zero-cost measure {measure!r}, which was not computed "
                              f"for these statistics; expected statistics prepared with measure terminals "
                              f"(--terminals all+measures, or saswot_gp.zerocost.terminals.attach_measures)") from None
    return fn


ContextFn = Callable[..., torch.Tensor]
"""``fn(ctx, x, spare=None)``: an operator function that needs the context."""


def _centred(ctx: StatsContext, kind: str, x: torch.Tensor, spare: Optional[torch.Tensor]) -> torch.Tensor:
    """x minus its segment mean, in ``spare`` when given."""
    return torch.sub(x, ctx.expand(kind, ctx.seg_mean(kind, x)), out=spare)


def _zscore(kind: str) -> ContextFn:
    def fn(ctx: StatsContext, x: torch.Tensor, spare: Optional[torch.Tensor] = None) -> torch.Tensor:
        d = _centred(ctx, kind, x, spare)
        s = torch.sqrt(ctx.seg_mean(kind, d ** 2))
        return finite(d.div_(ctx.expand(kind, s) + 1e-8))
    return fn


def _minmax(kind: str) -> ContextFn:
    def fn(ctx: StatsContext, x: torch.Tensor, spare: Optional[torch.Tensor] = None) -> torch.Tensor:
        lo, hi = ctx.seg_min(kind, x), ctx.seg_max(kind, x)
        return finite(torch.sub(x, ctx.expand(kind, lo), out=spare).div_(ctx.expand(kind, hi - lo) + 1e-8))
    return fn


def _reduce_sum(kind: str) -> ContextFn:
    def fn(ctx: StatsContext, x: torch.Tensor, spare: Optional[torch.Tensor] = None) -> torch.Tensor:
        return finite(ctx.seg_sum(kind, x) * ctx.scale(kind))
    return fn


def _reduce_mean(kind: str) -> ContextFn:
    def fn(ctx: StatsContext, x: torch.Tensor, spare: Optional[torch.Tensor] = None) -> torch.Tensor:
        return ctx.seg_mean(kind, x)
    return fn


def _reduce_l1(kind: str) -> ContextFn:
    def fn(ctx: StatsContext, x: torch.Tensor, spare: Optional[torch.Tensor] = None) -> torch.Tensor:
        return finite(ctx.seg_sum(kind, torch.abs(x, out=spare)) * ctx.scale(kind))
    return fn


def _reduce_l2(kind: str) -> ContextFn:
    def fn(ctx: StatsContext, x: torch.Tensor, spare: Optional[torch.Tensor] = None) -> torch.Tensor:
        return finite(torch.sqrt(ctx.seg_sum(kind, torch.mul(x, x, out=spare)) * ctx.scale(kind)))
    return fn


def _reduce_std(kind: str) -> ContextFn:
    def fn(ctx: StatsContext, x: torch.Tensor, spare: Optional[torch.Tensor] = None) -> torch.Tensor:
        return finite(torch.sqrt(ctx.seg_mean(kind, _centred(ctx, kind, x, spare).pow_(2))))
    return fn


def _reduce_maxabs(kind: str) -> ContextFn:
    def fn(ctx: StatsContext, x: torch.Tensor, spare: Optional[torch.Tensor] = None) -> torch.Tensor:
        return ctx.seg_max(kind, torch.abs(x, out=spare))
    return fn


def _logdet_a(ctx: StatsContext, x: torch.Tensor, spare: Optional[torch.Tensor] = None) -> torch.Tensor:
    return ctx.logdet(x)


def _nwot_a(ctx: StatsContext, x: torch.Tensor, spare: Optional[torch.Tensor] = None) -> torch.Tensor:
    return ctx.arch_logdet(x)


def _layers_sum(ctx: StatsContext, x: torch.Tensor, spare: Optional[torch.Tensor] = None) -> torch.Tensor:
    return finite(ctx.seg_sum("L", x))


def _layers_mean(ctx: StatsContext, x: torch.Tensor, spare: Optional[torch.Tensor] = None) -> torch.Tensor:
    return ctx.seg_mean("L", x)


def _layers_max(ctx: StatsContext, x: torch.Tensor, spare: Optional[torch.Tensor] = None) -> torch.Tensor:
    return ctx.seg_max("L", x)


def _layers_min(ctx: StatsContext, x: torch.Tensor, spare: Optional[torch.Tensor] = None) -> torch.Tensor:
    return ctx.seg_min("L", x)


# ----------------------------------------------------------------------------- the table
# Flags. "elementwise": applies value by value, and the row's function takes tensors only (no context);
# "monotone": increasing in its single argument over all reals (never changes a ranking).
NO_FLAGS: Tuple[str, ...] = ()
ELEM = ("elementwise",)
ELEM_MONO = ("elementwise", "monotone")
MONO = ("monotone",)

Row = Tuple[str, Tuple[str, ...], str, Callable, Callable, Tuple[str, ...], str]
"""(token, input types, output type, function, sympy twin, flags, docstring)."""

BUILTINS: Tuple[Row, ...] = (
    # terminals ---------------------------------------------------------------------------------------
    ("W", (), "W", _w, _symbol("W"), NO_FLAGS, "layer weights"),
    ("G", (), "W", _g, _symbol("G"), NO_FLAGS, "gradient of the loss w.r.t. the weights"),
    ("A", (), "A", _a, _symbol("A"), NO_FLAGS, "layer output activations"),
    ("AG", (), "A", _ag, _symbol("AG"), NO_FLAGS, "gradient of the loss w.r.t. the layer output"),
    ("params_l", (), "L", _layer_scalar("params"), _symbol("params_l"), NO_FLAGS, "per-layer parameter count"),
    ("flops_l", (), "L", _layer_scalar("flops"), _symbol("flops_l"), NO_FLAGS, "per-layer multiply-accumulates"),
    ("channels_l", (), "L", _layer_scalar("channels"), _symbol("channels_l"), NO_FLAGS, "per-layer output channels"),
    ("resolution_l", (), "L", _layer_scalar("resolution"), _symbol("resolution_l"), NO_FLAGS,
     "per-layer output pixels (H*W)"),
    ("params", (), "S", _arch_scalar("params"), _symbol("params"), NO_FLAGS, "architecture parameter count"),
    ("flops", (), "S", _arch_scalar("flops"), _symbol("flops"), NO_FLAGS, "architecture multiply-accumulates"),
    # weight-shaped tensors ---------------------------------------------------------------------------
    ("abs_w", ("W",), "W", _abs, sym_abs, ELEM, "elementwise abs"),
    ("neg_w", ("W",), "W", _neg, _sym_neg, ELEM, "elementwise neg"),
    ("square_w", ("W",), "W", _square, _sym_square, ELEM, "elementwise square"),
    ("sqrt_w", ("W",), "W", _sqrt, _sym_sqrt, ELEM, "elementwise sqrt"),
    ("log_w", ("W",), "W", _log, _sym_log, ELEM, "elementwise log"),
    ("exp_w", ("W",), "W", _exp, _sym_exp, ELEM_MONO, "elementwise exp"),
    ("sigmoid_w", ("W",), "W", _sigmoid, _sym_sigmoid, ELEM_MONO, "elementwise sigmoid"),
    ("tanh_w", ("W",), "W", _tanh, _sym_tanh, ELEM_MONO, "elementwise tanh"),
    ("relu_w", ("W",), "W", _relu, _sym_relu, ELEM, "elementwise relu"),  # ties negatives: not rank-preserving
    ("recip_w", ("W",), "W", _recip, _sym_recip, ELEM, "elementwise recip"),
    ("add_w", ("W", "W"), "W", _add, _sym_add, ELEM, "elementwise add"),
    ("sub_w", ("W", "W"), "W", _sub, _sym_sub, ELEM, "elementwise sub"),
    ("mul_w", ("W", "W"), "W", _mul, _sym_mul, ELEM, "elementwise mul"),
    ("div_w", ("W", "W"), "W", _div, _sym_div, ELEM, "elementwise div"),
    ("max_w", ("W", "W"), "W", _max, _sym_max, ELEM, "elementwise max"),
    ("min_w", ("W", "W"), "W", _min, _sym_min, ELEM, "elementwise min"),
    ("zscore_w", ("W",), "W", _zscore("W"), _sym_zscore, MONO, "z-score within each layer"),
    ("minmax_w", ("W",), "W", _minmax("W"), _sym_minmax, MONO, "min-max scaling within each layer"),
    # activation-shaped tensors -----------------------------------------------------------------------
    ("abs_a", ("A",), "A", _abs, sym_abs, ELEM, "elementwise abs"),
    ("neg_a", ("A",), "A", _neg, _sym_neg, ELEM, "elementwise neg"),
    ("square_a", ("A",), "A", _square, _sym_square, ELEM, "elementwise square"),
    ("sqrt_a", ("A",), "A", _sqrt, _sym_sqrt, ELEM, "elementwise sqrt"),
    ("log_a", ("A",), "A", _log, _sym_log, ELEM, "elementwise log"),
    ("exp_a", ("A",), "A", _exp, _sym_exp, ELEM_MONO, "elementwise exp"),
    ("sigmoid_a", ("A",), "A", _sigmoid, _sym_sigmoid, ELEM_MONO, "elementwise sigmoid"),
    ("tanh_a", ("A",), "A", _tanh, _sym_tanh, ELEM_MONO, "elementwise tanh"),
    ("relu_a", ("A",), "A", _relu, _sym_relu, ELEM, "elementwise relu"),
    ("recip_a", ("A",), "A", _recip, _sym_recip, ELEM, "elementwise recip"),
    ("add_a", ("A", "A"), "A", _add, _sym_add, ELEM, "elementwise add"),
    ("sub_a", ("A", "A"), "A", _sub, _sym_sub, ELEM, "elementwise sub"),
    ("mul_a", ("A", "A"), "A", _mul, _sym_mul, ELEM, "elementwise mul"),
    ("div_a", ("A", "A"), "A", _div, _sym_div, ELEM, "elementwise div"),
    ("max_a", ("A", "A"), "A", _max, _sym_max, ELEM, "elementwise max"),
    ("min_a", ("A", "A"), "A", _min, _sym_min, ELEM, "elementwise min"),
    ("zscore_a", ("A",), "A", _zscore("A"), _sym_zscore, MONO, "z-score within each layer"),
    ("minmax_a", ("A",), "A", _minmax("A"), _sym_minmax, MONO, "min-max scaling within each layer"),
    # layer scalars -----------------------------------------------------------------------------------
    ("abs_l", ("L",), "L", _abs, sym_abs, ELEM, "elementwise abs"),
    ("neg_l", ("L",), "L", _neg, _sym_neg, ELEM, "elementwise neg"),
    ("square_l", ("L",), "L", _square, _sym_square, ELEM, "elementwise square"),
    ("sqrt_l", ("L",), "L", _sqrt, _sym_sqrt, ELEM, "elementwise sqrt"),
    ("log_l", ("L",), "L", _log, _sym_log, ELEM, "elementwise log"),
    ("exp_l", ("L",), "L", _exp, _sym_exp, ELEM_MONO, "elementwise exp"),
    ("sigmoid_l", ("L",), "L", _sigmoid, _sym_sigmoid, ELEM_MONO, "elementwise sigmoid"),
    ("tanh_l", ("L",), "L", _tanh, _sym_tanh, ELEM_MONO, "elementwise tanh"),
    ("relu_l", ("L",), "L", _relu, _sym_relu, ELEM, "elementwise relu"),
    ("recip_l", ("L",), "L", _recip, _sym_recip, ELEM, "elementwise recip"),
    ("add_l", ("L", "L"), "L", _add, _sym_add, ELEM, "elementwise add"),
    ("sub_l", ("L", "L"), "L", _sub, _sym_sub, ELEM, "elementwise sub"),
    ("mul_l", ("L", "L"), "L", _mul, _sym_mul, ELEM, "elementwise mul"),
    ("div_l", ("L", "L"), "L", _div, _sym_div, ELEM, "elementwise div"),
    ("max_l", ("L", "L"), "L", _max, _sym_max, ELEM, "elementwise max"),
    ("min_l", ("L", "L"), "L", _min, _sym_min, ELEM, "elementwise min"),
    ("zscore_l", ("L",), "L", _zscore("L"), _sym_zscore, MONO, "z-score within each architecture"),
    ("minmax_l", ("L",), "L", _minmax("L"), _sym_minmax, MONO, "min-max scaling within each architecture"),
    # architecture scores (no zscore_s / minmax_s: normalising across architectures would make a score
    # depend on the others) ---------------------------------------------------------------------------
    ("abs_s", ("S",), "S", _abs, sym_abs, ELEM, "elementwise abs"),
    ("neg_s", ("S",), "S", _neg, _sym_neg, ELEM, "elementwise neg"),
    ("square_s", ("S",), "S", _square, _sym_square, ELEM, "elementwise square"),
    ("sqrt_s", ("S",), "S", _sqrt, _sym_sqrt, ELEM, "elementwise sqrt"),
    ("log_s", ("S",), "S", _log, _sym_log, ELEM, "elementwise log"),
    ("exp_s", ("S",), "S", _exp, _sym_exp, ELEM_MONO, "elementwise exp"),
    ("sigmoid_s", ("S",), "S", _sigmoid, _sym_sigmoid, ELEM_MONO, "elementwise sigmoid"),
    ("tanh_s", ("S",), "S", _tanh, _sym_tanh, ELEM_MONO, "elementwise tanh"),
    ("relu_s", ("S",), "S", _relu, _sym_relu, ELEM, "elementwise relu"),
    ("recip_s", ("S",), "S", _recip, _sym_recip, ELEM, "elementwise recip"),
    ("add_s", ("S", "S"), "S", _add, _sym_add, ELEM, "elementwise add"),
    ("sub_s", ("S", "S"), "S", _sub, _sym_sub, ELEM, "elementwise sub"),
    ("mul_s", ("S", "S"), "S", _mul, _sym_mul, ELEM, "elementwise mul"),
    ("div_s", ("S", "S"), "S", _div, _sym_div, ELEM, "elementwise div"),
    ("max_s", ("S", "S"), "S", _max, _sym_max, ELEM, "elementwise max"),
    ("min_s", ("S", "S"), "S", _min, _sym_min, ELEM, "elementwise min"),
    # reductions: tensors -> layer scalars ------------------------------------------------------------
    ("sum_w", ("W",), "L", _reduce_sum("W"), _sym_of("sum"), NO_FLAGS, "per-layer sum of a weight-shaped tensor"),
    ("mean_w", ("W",), "L", _reduce_mean("W"), _sym_of("mean"), NO_FLAGS, "per-layer mean of a weight-shaped tensor"),
    ("l1_w", ("W",), "L", _reduce_l1("W"), _sym_of_abs("l1"), NO_FLAGS, "per-layer l1 of a weight-shaped tensor"),
    ("l2_w", ("W",), "L", _reduce_l2("W"), _sym_of_abs("l2"), NO_FLAGS, "per-layer l2 of a weight-shaped tensor"),
    ("std_w", ("W",), "L", _reduce_std("W"), _sym_of("std"), NO_FLAGS, "per-layer std of a weight-shaped tensor"),
    ("maxabs_w", ("W",), "L", _reduce_maxabs("W"), _sym_of_abs("maxabs"), NO_FLAGS,
     "per-layer maxabs of a weight-shaped tensor"),
    ("sum_a", ("A",), "L", _reduce_sum("A"), _sym_of("sum"), NO_FLAGS, "per-layer sum of a activation-shaped tensor"),
    ("mean_a", ("A",), "L", _reduce_mean("A"), _sym_of("mean"), NO_FLAGS,
     "per-layer mean of a activation-shaped tensor"),
    ("l1_a", ("A",), "L", _reduce_l1("A"), _sym_of_abs("l1"), NO_FLAGS, "per-layer l1 of a activation-shaped tensor"),
    ("l2_a", ("A",), "L", _reduce_l2("A"), _sym_of_abs("l2"), NO_FLAGS, "per-layer l2 of a activation-shaped tensor"),
    ("std_a", ("A",), "L", _reduce_std("A"), _sym_of("std"), NO_FLAGS, "per-layer std of a activation-shaped tensor"),
    ("maxabs_a", ("A",), "L", _reduce_maxabs("A"), _sym_of_abs("maxabs"), NO_FLAGS,
     "per-layer maxabs of a activation-shaped tensor"),
    ("logdet_a", ("A",), "L", _logdet_a, _sym_of("logdet"), NO_FLAGS,
     "per-layer log-determinant of the batch kernel of binary codes x>0 (NWOT-like)"),
    # architecture scores from tensors and layer scalars ---------------------------------------------
    ("nwot_a", ("A",), "S", _nwot_a, _sym_of("nwot"), NO_FLAGS,
     "log-determinant of one batch kernel of binary codes x>0 over all layers (NWOT; layers weighted by full / "
     "sketched size)"),
    ("layers_sum", ("L",), "S", _layers_sum, _sym_of("layers_sum"), NO_FLAGS, "sum over the layers of each architecture"),
    ("layers_mean", ("L",), "S", _layers_mean, _sym_of("layers_mean"), NO_FLAGS,
     "mean over the layers of each architecture"),
    ("layers_max", ("L",), "S", _layers_max, _sym_of("layers_max"), NO_FLAGS, "max over the layers of each architecture"),
    ("layers_min", ("L",), "S", _layers_min, _sym_of("layers_min"), NO_FLAGS, "min over the layers of each architecture"),
    # the rank-aggregation root (only in a primitive set built with root='rank'): the log-rank aggregate of score
    # subtrees over the set of architectures being ranked (saswot_gp.primitives.rank) ----------------------
    ("rank1", ("S",), "R", rank_root, _sym_logrank, NO_FLAGS, "log of the rank of a score within the set ranked"),
    ("rank2", ("S", "S"), "R", rank_root, _sym_logrank, NO_FLAGS,
     "sum of the log-ranks of two scores within the set ranked (AZ-NAS)"),
    ("rank3", ("S", "S", "S"), "R", rank_root, _sym_logrank, NO_FLAGS,
     "sum of the log-ranks of three scores within the set ranked (AZ-NAS)"),
    ("rank4", ("S", "S", "S", "S"), "R", rank_root, _sym_logrank, NO_FLAGS,
     "sum of the log-ranks of four scores within the set ranked (AZ-NAS)"),
    # measure terminals (types.MEASURE_TERMINALS): registered zero-cost measures of the live model, computed beside
    # the statistics (saswot_gp.zerocost.terminals); only in the '+measures' terminal sets --------------------
    ("zc_snip", (), "S", _measure_scalar("snip"), _symbol("zc_snip"), NO_FLAGS, "the live measure snip"),
    ("zc_grad_norm", (), "S", _measure_scalar("grad_norm"), _symbol("zc_grad_norm"), NO_FLAGS, "the live measure grad_norm"),
    ("zc_plain", (), "S", _measure_scalar("plain"), _symbol("zc_plain"), NO_FLAGS, "the live measure plain"),
    ("zc_fisher", (), "S", _measure_scalar("fisher"), _symbol("zc_fisher"), NO_FLAGS, "the live measure fisher"),
    ("zc_grasp", (), "S", _measure_scalar("grasp"), _symbol("zc_grasp"), NO_FLAGS, "the live measure grasp"),
    ("zc_synflow", (), "S", _measure_scalar("synflow"), _symbol("zc_synflow"), NO_FLAGS, "the live measure synflow"),
    ("zc_jacov", (), "S", _measure_scalar("jacov"), _symbol("zc_jacov"), NO_FLAGS, "the live measure jacov"),
    ("zc_nwot", (), "S", _measure_scalar("nwot"), _symbol("zc_nwot"), NO_FLAGS, "the live measure nwot"),
    ("zc_swap", (), "S", _measure_scalar("swap"), _symbol("zc_swap"), NO_FLAGS, "the live measure swap"),
    ("zc_zico", (), "S", _measure_scalar("zico"), _symbol("zc_zico"), NO_FLAGS, "the live measure zico"),
    ("zc_zen", (), "S", _measure_scalar("zen"), _symbol("zc_zen"), NO_FLAGS, "the live measure zen"),
    ("zc_l2_norm", (), "S", _measure_scalar("l2_norm"), _symbol("zc_l2_norm"), NO_FLAGS, "the live measure l2_norm"),
)


def _ignore_ctx(f: Callable[..., torch.Tensor]) -> Callable[..., torch.Tensor]:
    """``fn(ctx, *tensors, spare=None)`` for a context-free elementwise function ``f(*tensors, spare=None)``."""
    def fn(ctx: StatsContext, *args: torch.Tensor, spare: Optional[torch.Tensor] = None) -> torch.Tensor:
        return f(*args, spare=spare)
    return fn


def _operator(row: Row) -> Operator:
    name, in_types, out_type, fn, sympy_fn, flags, doc = row
    unknown = set(flags) - {"elementwise", "monotone"}
    if unknown:
        raise ValueError(f"built-in operator {name!r}: unknown flags {sorted(unknown)}")
    elementwise = "elementwise" in flags
    return Operator(name, in_types, out_type, _ignore_ctx(fn) if elementwise else fn, sympy_fn,
                    elementwise=elementwise, monotone="monotone" in flags, doc=doc,
                    spare=bool(in_types) and out_type != "R")  # a rank root allocates its aggregate


# Elementwise families by name (the weight-shaped rows stand for all four types):
# name -> (context-free torch function, sympy twin[, monotone]).
UNARY: Dict[str, Tuple[Callable, Callable, bool]] = {
    r[0][:-2]: (r[3], r[4], "monotone" in r[5]) for r in BUILTINS if r[1] == ("W",) and r[2] == "W" and "elementwise" in r[5]}
BINARY: Dict[str, Tuple[Callable, Callable]] = {
    r[0][:-2]: (r[3], r[4]) for r in BUILTINS if r[1] == ("W", "W") and r[2] == "W" and "elementwise" in r[5]}

for _row in BUILTINS:
    register(_operator(_row))
del _row
