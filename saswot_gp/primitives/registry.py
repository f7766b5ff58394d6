"""Operator records and the registry (gplearn-style: each record carries its protected function).

An :class:`Operator` is one declarative record: token name, typed signature, the protected torch
function (``fn(ctx, *args)``; ``ctx`` is a :class:`~saswot_gp.primitives.context.StatsContext`, in practice
``saswot_gp.stats.pack.PackedStats``), its sympy twin and flags. :func:`make_operator` validates a user's
custom operator before it is accepted. This module never imports DEAP or evolution code, nor the built-in
operators: ``saswot_gp.primitives`` (the package, imported before any of its modules) imports this module
and then :mod:`~saswot_gp.primitives.builtin`, which registers the built-ins, so they are loaded exactly
once, before any call here, whatever is called first.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Tuple

import torch

from ..errors import SaswotError
from .context import StatsContext
from .types import TYPES

BIG = 1e100  # protected functions clamp +-inf to this (float64 keeps headroom)


def finite(x: torch.Tensor) -> torch.Tensor:
    """``x`` with NaN replaced by 0 and +-inf by +-BIG (``x`` itself when it is all finite already).

    One read-only pass decides: a sum of floats is finite only if every term is (NaN and +-inf propagate
    through addition), so a finite sum proves there is nothing to rewrite; an infinite sum of finite terms
    (overflow) only costs the rewrite, which then changes nothing. Callers must not overwrite the result
    unless they own ``x``.
    """
    if math.isfinite(x.sum().item()):
        return x
    return torch.nan_to_num(x, nan=0.0, posinf=BIG, neginf=-BIG)


OperatorFn = Callable[..., torch.Tensor]
"""An operator's function: ``fn(ctx: StatsContext, *children: torch.Tensor) -> torch.Tensor``."""


@dataclass(frozen=True)
class Operator:
    """One primitive or terminal of the proxy language.

    ``in_types``/``out_type`` are type codes ``'W' 'A' 'L' 'S' 'R'`` (see ``primitives.types``); a terminal
    has no inputs and ``fn(ctx)`` fetches its value. ``sympy_fn`` builds the symbolic twin from the
    children's sympy expressions. ``elementwise``: applies value by value; ``monotone``: strictly or
    weakly increasing in its single argument over all reals (so it never changes a ranking).
    ``spare``: ``fn`` also takes a keyword ``spare``, None or one of its own arguments that nothing else holds,
    which it may overwrite (to write its result there instead of a new tensor), and its result never shares
    memory with the context or with an argument other than ``spare``. ``Proxy.evaluate`` passes intermediate
    results as spares; the values must be exactly those computed without one.
    """

    name: str
    in_types: Tuple[str, ...]
    out_type: str
    fn: OperatorFn
    sympy_fn: Callable
    elementwise: bool = False
    monotone: bool = False
    doc: str = ""
    builtin: bool = field(default=True, compare=False)
    spare: bool = field(default=False, compare=False)

    @property
    def arity(self) -> int:
        """Number of children."""
        return len(self.in_types)

    @property
    def is_terminal(self) -> bool:
        """True for leaves (no children)."""
        return not self.in_types


_REGISTRY: Dict[str, Operator] = {}


def register(op: Operator, replace: bool = False) -> Operator:
    """Add ``op`` to the registry (refuse a duplicate name unless ``replace``)."""
    if op.name in _REGISTRY and not replace:
        raise SaswotError(f"operator {op.name!r} is already registered")
    for t in (*op.in_types, op.out_type):
        if t not in TYPES:
            raise SaswotError(f"operator {op.name!r}: unknown type {t!r}; expected one of {sorted(TYPES)}")
    _REGISTRY[op.name] = op
    return op


def unregister(name: str) -> None:
    """Remove a (custom) operator from the registry."""
    _REGISTRY.pop(name, None)


def get_operator(name: str) -> Operator:
    """The registered operator called ``name`` (SaswotError listing nothing long if unknown)."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise SaswotError(f"unknown proxy token {name!r}; expected a registered operator or terminal "
                          f"(see `saswot-gp operators`)") from None


def operators(out_type: Optional[str] = None, terminals: Optional[bool] = None) -> List[Operator]:
    """Registered operators, optionally filtered by output type and by terminal-ness, in name order."""
    ops = sorted(_REGISTRY.values(), key=lambda o: o.name)
    if out_type is not None:
        ops = [o for o in ops if o.out_type == out_type]
    if terminals is not None:
        ops = [o for o in ops if o.is_terminal == terminals]
    return ops


_PROBES = (0.0, -1.0, 1.0, -3.5, 1e-12, 1e30, -1e30, 1e100)


def make_operator(name: str, fn: Callable[..., torch.Tensor], in_types: Tuple[str, ...], out_type: str,
                  sympy_fn: Callable, elementwise: bool = True, monotone: bool = False, doc: str = "",
                  register_it: bool = True) -> Operator:
    """Validate and (by default) register a user's custom elementwise operator.

    ``fn`` takes ``arity`` tensors (no context) and must return a tensor of the same shape, finite on
    zeros, negatives and huge values (checked on probe inputs). Only elementwise custom operators with
    equal input and output types are accepted: reductions need the packed-statistics context.
    """
    if not name.isidentifier():
        raise SaswotError(f"custom operator name {name!r} is not an identifier")
    if len(in_types) not in (1, 2):
        raise SaswotError(f"custom operator {name!r}: arity {len(in_types)} not supported; expected 1 or 2")
    value_types = sorted(t for t in TYPES if t != "R")  # a rank aggregate is only ever a root
    if any(t != out_type for t in in_types) or out_type not in value_types:
        raise SaswotError(f"custom operator {name!r}: types {in_types}->{out_type!r}; expected all equal to one of {value_types}")
    if not elementwise:
        raise SaswotError(f"custom operator {name!r}: only elementwise custom operators are supported")
    probe = torch.tensor(_PROBES, dtype=torch.float64)
    args = [probe] * len(in_types) if len(in_types) == 1 else [probe, probe.flip(0)]
    try:
        out = fn(*args)
    except Exception as exc:  # user code: report, never crash deep inside
        raise SaswotError(f"custom operator {name!r} failed on probe inputs {list(_PROBES)}: {exc}") from None
    if not isinstance(out, torch.Tensor) or out.shape != probe.shape:
        raise SaswotError(f"custom operator {name!r} must return a tensor shaped like its input {tuple(probe.shape)}")
    if not torch.isfinite(out).all():
        raise SaswotError(f"custom operator {name!r} is not closed: non-finite output on zeros, negatives or huge values")
    try:
        import sympy
        s = sympy.Symbol("x", real=True)
        sym = sympy_fn(*([s] * len(in_types)))
        if not isinstance(sym, sympy.Basic):
            raise TypeError("not a sympy expression")
    except Exception as exc:
        raise SaswotError(f"custom operator {name!r}: sympy twin failed: {exc}") from None
    def protected(ctx: StatsContext, *a: torch.Tensor) -> torch.Tensor:
        return finite(fn(*a))

    op = Operator(name, tuple(in_types), out_type, protected, sympy_fn,
                  elementwise=True, monotone=monotone, doc=doc, builtin=False)
    if register_it:
        register(op)
    return op
