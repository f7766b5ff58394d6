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

from typing import Callable, Dict, Tuple

import torch

from .context import StatsContext
from .registry import Operator, finite, register
from .sympy_side import (  # noqa: F401  (imported from builtin elsewhere too)
    SYMPY_FUNCTIONS, SYMPY_SYMBOLS, _real_function, sym_abs, _symbol, _sym_of, _sym_of_abs, _sym_neg, _sym_square,
    _sym_sqrt, _sym_log, _sym_exp, _sym_sigmoid, _sym_tanh, _sym_relu, _sym_recip, _sym_add, _sym_sub, _sym_mul,
    _sym_div, _sym_max, _sym_min, _sym_zscore, _sym_minmax, _sym_logrank)
from .rank import rank_root

EPS = 1e-12

# ----------------------------------------------------------------------------- torch side: elementwise
# Elementwise functions take tensors only (no context); the table wraps them as fn(ctx, *tensors).
def _square(x: torch.Tensor) -> torch.Tensor:
    return finite(x * x)


def _sqrt(x: torch.Tensor) -> torch.Tensor:
    return torch.sqrt(x.abs())


def _log(x: torch.Tensor) -> torch.Tensor:
    return torch.log(x.abs().clamp_min(EPS))


def _exp(x: torch.Tensor) -> torch.Tensor:
    return torch.exp(x.clamp(max=80.0))


def _div(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return finite(torch.where(y.abs() > EPS, x / torch.where(y.abs() > EPS, y, torch.ones_like(y)), torch.ones_like(x)))


def _recip(x: torch.Tensor) -> torch.Tensor:
    return _div(torch.ones_like(x), x)


def _add(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return finite(x + y)


def _sub(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return finite(x - y)


def _mul(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return finite(x * y)


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


def _zscore(kind: str) -> Callable[[StatsContext, torch.Tensor], torch.Tensor]:
    def fn(ctx: StatsContext, x: torch.Tensor) -> torch.Tensor:
        m = ctx.seg_mean(kind, x)
        s = torch.sqrt(ctx.seg_mean(kind, (x - ctx.expand(kind, m)) ** 2))
        return finite((x - ctx.expand(kind, m)) / (ctx.expand(kind, s) + 1e-8))
    return fn


def _minmax(kind: str) -> Callable[[StatsContext, torch.Tensor], torch.Tensor]:
    def fn(ctx: StatsContext, x: torch.Tensor) -> torch.Tensor:
        lo, hi = ctx.seg_min(kind, x), ctx.seg_max(kind, x)
        return finite((x - ctx.expand(kind, lo)) / (ctx.expand(kind, hi - lo) + 1e-8))
    return fn


def _reduce_sum(kind: str) -> Callable[[StatsContext, torch.Tensor], torch.Tensor]:
    def fn(ctx: StatsContext, x: torch.Tensor) -> torch.Tensor:
        return finite(ctx.seg_sum(kind, x) * ctx.scale(kind))
    return fn


def _reduce_mean(kind: str) -> Callable[[StatsContext, torch.Tensor], torch.Tensor]:
    def fn(ctx: StatsContext, x: torch.Tensor) -> torch.Tensor:
        return ctx.seg_mean(kind, x)
    return fn


def _reduce_l1(kind: str) -> Callable[[StatsContext, torch.Tensor], torch.Tensor]:
    def fn(ctx: StatsContext, x: torch.Tensor) -> torch.Tensor:
        return finite(ctx.seg_sum(kind, x.abs()) * ctx.scale(kind))
    return fn


def _reduce_l2(kind: str) -> Callable[[StatsContext, torch.Tensor], torch.Tensor]:
    def fn(ctx: StatsContext, x: torch.Tensor) -> torch.Tensor:
        return finite(torch.sqrt(ctx.seg_sum(kind, x * x) * ctx.scale(kind)))
    return fn


def _reduce_std(kind: str) -> Callable[[StatsContext, torch.Tensor], torch.Tensor]:
    def fn(ctx: StatsContext, x: torch.Tensor) -> torch.Tensor:
        m = ctx.seg_mean(kind, x)
        return finite(torch.sqrt(ctx.seg_mean(kind, (x - ctx.expand(kind, m)) ** 2)))
    return fn


def _reduce_maxabs(kind: str) -> Callable[[StatsContext, torch.Tensor], torch.Tensor]:
    def fn(ctx: StatsContext, x: torch.Tensor) -> torch.Tensor:
        return ctx.seg_max(kind, x.abs())
    return fn


def _logdet_a(ctx: StatsContext, x: torch.Tensor) -> torch.Tensor:
    return ctx.logdet(x)


def _nwot_a(ctx: StatsContext, x: torch.Tensor) -> torch.Tensor:
    return ctx.arch_logdet(x)


def _layers_sum(ctx: StatsContext, x: torch.Tensor) -> torch.Tensor:
    return finite(ctx.seg_sum("L", x))


def _layers_mean(ctx: StatsContext, x: torch.Tensor) -> torch.Tensor:
    return ctx.seg_mean("L", x)


def _layers_max(ctx: StatsContext, x: torch.Tensor) -> torch.Tensor:
    return ctx.seg_max("L", x)


def _layers_min(ctx: StatsContext, x: torch.Tensor) -> torch.Tensor:
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
    ("abs_w", ("W",), "W", torch.abs, sym_abs, ELEM, "elementwise abs"),
    ("neg_w", ("W",), "W", torch.neg, _sym_neg, ELEM, "elementwise neg"),
    ("square_w", ("W",), "W", _square, _sym_square, ELEM, "elementwise square"),
    ("sqrt_w", ("W",), "W", _sqrt, _sym_sqrt, ELEM, "elementwise sqrt"),
    ("log_w", ("W",), "W", _log, _sym_log, ELEM, "elementwise log"),
    ("exp_w", ("W",), "W", _exp, _sym_exp, ELEM_MONO, "elementwise exp"),
    ("sigmoid_w", ("W",), "W", torch.sigmoid, _sym_sigmoid, ELEM_MONO, "elementwise sigmoid"),
    ("tanh_w", ("W",), "W", torch.tanh, _sym_tanh, ELEM_MONO, "elementwise tanh"),
    ("relu_w", ("W",), "W", torch.relu, _sym_relu, ELEM, "elementwise relu"),  # ties negatives: not rank-preserving
    ("recip_w", ("W",), "W", _recip, _sym_recip, ELEM, "elementwise recip"),
    ("add_w", ("W", "W"), "W", _add, _sym_add, ELEM, "elementwise add"),
    ("sub_w", ("W", "W"), "W", _sub, _sym_sub, ELEM, "elementwise sub"),
    ("mul_w", ("W", "W"), "W", _mul, _sym_mul, ELEM, "elementwise mul"),
    ("div_w", ("W", "W"), "W", _div, _sym_div, ELEM, "elementwise div"),
    ("max_w", ("W", "W"), "W", torch.maximum, _sym_max, ELEM, "elementwise max"),
    ("min_w", ("W", "W"), "W", torch.minimum, _sym_min, ELEM, "elementwise min"),
    ("zscore_w", ("W",), "W", _zscore("W"), _sym_zscore, MONO, "z-score within each layer"),
    ("minmax_w", ("W",), "W", _minmax("W"), _sym_minmax, MONO, "min-max scaling within each layer"),
    # activation-shaped tensors -----------------------------------------------------------------------
    ("abs_a", ("A",), "A", torch.abs, sym_abs, ELEM, "elementwise abs"),
    ("neg_a", ("A",), "A", torch.neg, _sym_neg, ELEM, "elementwise neg"),
    ("square_a", ("A",), "A", _square, _sym_square, ELEM, "elementwise square"),
    ("sqrt_a", ("A",), "A", _sqrt, _sym_sqrt, ELEM, "elementwise sqrt"),
    ("log_a", ("A",), "A", _log, _sym_log, ELEM, "elementwise log"),
    ("exp_a", ("A",), "A", _exp, _sym_exp, ELEM_MONO, "elementwise exp"),
    ("sigmoid_a", ("A",), "A", torch.sigmoid, _sym_sigmoid, ELEM_MONO, "elementwise sigmoid"),
    ("tanh_a", ("A",), "A", torch.tanh, _sym_tanh, ELEM_MONO, "elementwise tanh"),
    ("relu_a", ("A",), "A", torch.relu, _sym_relu, ELEM, "elementwise relu"),
    ("recip_a", ("A",), "A", _recip, _sym_recip, ELEM, "elementwise recip"),
    ("add_a", ("A", "A"), "A", _add, _sym_add, ELEM, "elementwise add"),
    ("sub_a", ("A", "A"), "A", _sub, _sym_sub, ELEM, "elementwise sub"),
    ("mul_a", ("A", "A"), "A", _mul, _sym_mul, ELEM, "elementwise mul"),
    ("div_a", ("A", "A"), "A", _div, _sym_div, ELEM, "elementwise div"),
    ("max_a", ("A", "A"), "A", torch.maximum, _sym_max, ELEM, "elementwise max"),
    ("min_a", ("A", "A"), "A", torch.minimum, _sym_min, ELEM, "elementwise min"),
    ("zscore_a", ("A",), "A", _zscore("A"), _sym_zscore, MONO, "z-score within each layer"),
    ("minmax_a", ("A",), "A", _minmax("A"), _sym_minmax, MONO, "min-max scaling within each layer"),
    # layer scalars -----------------------------------------------------------------------------------
    ("abs_l", ("L",), "L", torch.abs, sym_abs, ELEM, "elementwise abs"),
    ("neg_l", ("L",), "L", torch.neg, _sym_neg, ELEM, "elementwise neg"),
    ("square_l", ("L",), "L", _square, _sym_square, ELEM, "elementwise square"),
    ("sqrt_l", ("L",), "L", _sqrt, _sym_sqrt, ELEM, "elementwise sqrt"),
    ("log_l", ("L",), "L", _log, _sym_log, ELEM, "elementwise log"),
    ("exp_l", ("L",), "L", _exp, _sym_exp, ELEM_MONO, "elementwise exp"),
    ("sigmoid_l", ("L",), "L", torch.sigmoid, _sym_sigmoid, ELEM_MONO, "elementwise sigmoid"),
    ("tanh_l", ("L",), "L", torch.tanh, _sym_tanh, ELEM_MONO, "elementwise tanh"),
    ("relu_l", ("L",), "L", torch.relu, _sym_relu, ELEM, "elementwise relu"),
    ("recip_l", ("L",), "L", _recip, _sym_recip, ELEM, "elementwise recip"),
    ("add_l", ("L", "L"), "L", _add, _sym_add, ELEM, "elementwise add"),
    ("sub_l", ("L", "L"), "L", _sub, _sym_sub, ELEM, "elementwise sub"),
    ("mul_l", ("L", "L"), "L", _mul, _sym_mul, ELEM, "elementwise mul"),
    ("div_l", ("L", "L"), "L", _div, _sym_div, ELEM, "elementwise div"),
    ("max_l", ("L", "L"), "L", torch.maximum, _sym_max, ELEM, "elementwise max"),
    ("min_l", ("L", "L"), "L", torch.minimum, _sym_min, ELEM, "elementwise min"),
    ("zscore_l", ("L",), "L", _zscore("L"), _sym_zscore, MONO, "z-score within each architecture"),
    ("minmax_l", ("L",), "L", _minmax("L"), _sym_minmax, MONO, "min-max scaling within each architecture"),
    # architecture scores (no zscore_s / minmax_s: normalising across architectures would make a score
    # depend on the others) ---------------------------------------------------------------------------
    ("abs_s", ("S",), "S", torch.abs, sym_abs, ELEM, "elementwise abs"),
    ("neg_s", ("S",), "S", torch.neg, _sym_neg, ELEM, "elementwise neg"),
    ("square_s", ("S",), "S", _square, _sym_square, ELEM, "elementwise square"),
    ("sqrt_s", ("S",), "S", _sqrt, _sym_sqrt, ELEM, "elementwise sqrt"),
    ("log_s", ("S",), "S", _log, _sym_log, ELEM, "elementwise log"),
    ("exp_s", ("S",), "S", _exp, _sym_exp, ELEM_MONO, "elementwise exp"),
    ("sigmoid_s", ("S",), "S", torch.sigmoid, _sym_sigmoid, ELEM_MONO, "elementwise sigmoid"),
    ("tanh_s", ("S",), "S", torch.tanh, _sym_tanh, ELEM_MONO, "elementwise tanh"),
    ("relu_s", ("S",), "S", torch.relu, _sym_relu, ELEM, "elementwise relu"),
    ("recip_s", ("S",), "S", _recip, _sym_recip, ELEM, "elementwise recip"),
    ("add_s", ("S", "S"), "S", _add, _sym_add, ELEM, "elementwise add"),
    ("sub_s", ("S", "S"), "S", _sub, _sym_sub, ELEM, "elementwise sub"),
    ("mul_s", ("S", "S"), "S", _mul, _sym_mul, ELEM, "elementwise mul"),
    ("div_s", ("S", "S"), "S", _div, _sym_div, ELEM, "elementwise div"),
    ("max_s", ("S", "S"), "S", torch.maximum, _sym_max, ELEM, "elementwise max"),
    ("min_s", ("S", "S"), "S", torch.minimum, _sym_min, ELEM, "elementwise min"),
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
)


def _ignore_ctx(f: Callable[..., torch.Tensor]) -> Callable[..., torch.Tensor]:
    """``fn(ctx, *tensors)`` for a context-free elementwise function ``f(*tensors)``."""
    def fn(ctx: StatsContext, *args: torch.Tensor) -> torch.Tensor:
        return f(*args)
    return fn


def _operator(row: Row) -> Operator:
    name, in_types, out_type, fn, sympy_fn, flags, doc = row
    unknown = set(flags) - {"elementwise", "monotone"}
    if unknown:
        raise ValueError(f"built-in operator {name!r}: unknown flags {sorted(unknown)}")
    elementwise = "elementwise" in flags
    return Operator(name, in_types, out_type, _ignore_ctx(fn) if elementwise else fn, sympy_fn,
                    elementwise=elementwise, monotone="monotone" in flags, doc=doc)


# Elementwise families by name (the weight-shaped rows stand for all four types):
# name -> (context-free torch function, sympy twin[, monotone]).
UNARY: Dict[str, Tuple[Callable, Callable, bool]] = {
    r[0][:-2]: (r[3], r[4], "monotone" in r[5]) for r in BUILTINS if r[1] == ("W",) and r[2] == "W" and "elementwise" in r[5]}
BINARY: Dict[str, Tuple[Callable, Callable]] = {
    r[0][:-2]: (r[3], r[4]) for r in BUILTINS if r[1] == ("W", "W") and r[2] == "W" and "elementwise" in r[5]}

for _row in BUILTINS:
    register(_operator(_row))
del _row
