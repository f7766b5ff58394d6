"""One proxy: a typed tree stored as a prefix token list.

A :class:`Proxy` round-trips through a versioned JSON document (tokens validated against the
operator registry; nothing is evaluated), a DEAP ``PrimitiveTree`` and a sympy expression (with
LaTeX). It scores all packed architectures in one vectorised pass (:meth:`Proxy.evaluate`) and a
live model on a batch (:meth:`Proxy.score`).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

import sympy
import torch

from .errors import SaswotError
from .io import atomic_write_json
from .primitives import get_operator
from .primitives.types import ROOT_TYPES, TYPE_DOC

FORMAT = "saswot-gp-proxy"
SHIPPED_PROXIES = {"saswot": "proxy_saswot.json"}  # name -> file under saswot_gp/resources
# Hand-designed proxies written in the proxy language, by name. Their definitions, and why most are named apart
# from the registry's live measures of the same idea (``snip_gp`` vs ``snip``), are in saswot_gp/handcrafted.py.
HANDCRAFTED: Dict[str, str] = {
    "snip_gp": "layers_sum(l1_w(mul_w(W, G)))",
    "grad_norm_gp": "layers_sum(l2_w(G))",
    "fisher_gp": "layers_sum(sum_a(square_a(mul_a(A, AG))))",
    "synflow_gp": "layers_sum(log_l(l1_w(W)))",
    "nwot_gp": "nwot_a(A)",
    "nwot_layers": "layers_sum(logdet_a(A))",
    "l2_norm_gp": "layers_sum(l2_w(W))",
    "plain_gp": "layers_sum(sum_w(mul_w(W, G)))",
    "params": "params",
    "flops": "flops",
}
VERSION = 1
MAX_TOKENS = 2000


def _a(noun: str) -> str:
    return ("an " if noun[0] in "aeiou" else "a ") + noun


def check_tokens(tokens: Sequence[str], where: str = "proxy") -> List[str]:
    """Validate a prefix token list against the registry and the type rules; return it as a list."""
    if not isinstance(tokens, (list, tuple)) or not tokens:
        raise SaswotError(f"{where}: tokens must be a non-empty list of operator names")
    if len(tokens) > MAX_TOKENS:
        raise SaswotError(f"{where}: {len(tokens)} tokens; expected at most {MAX_TOKENS}")
    need = ["S"]  # a rank aggregate ("R") is accepted at the root only
    for i, tok in enumerate(tokens):
        if not isinstance(tok, str):
            raise SaswotError(f"{where}: token {i} is {tok!r}; expected an operator name (string)")
        if not need:
            raise SaswotError(f"{where}: token {i} {tok!r} is left over after a complete tree")
        want = need.pop()
        try:
            op = get_operator(tok)
        except SaswotError:
            raise SaswotError(f"{where}: token {i} {tok!r} is not a registered operator or terminal") from None
        if op.out_type != want and not (i == 0 and op.out_type in ROOT_TYPES):
            raise SaswotError(f"{where}: token {i} {tok!r} gives {_a(TYPE_DOC[op.out_type])} where "
                              f"{_a(TYPE_DOC[want])} is expected")
        need.extend(reversed(op.in_types))
    if need:
        raise SaswotError(f"{where}: the tree ends early; {len(need)} more argument(s) expected, next {_a(TYPE_DOC[need[-1]])}")
    return list(tokens)


def shipped_proxy_path(name: str) -> Optional[Path]:
    """The file of a proxy shipped inside the package (``saswot``: the general proxy), or None for other names."""
    if name not in SHIPPED_PROXIES:
        return None
    return Path(__file__).resolve().parent / "resources" / SHIPPED_PROXIES[name]


def proxy_file(spec) -> Optional[Path]:
    """The existing file a proxy spec names, or None. A spec that cannot be a path (a NUL byte, a part longer
    than 255 bytes, 4096 bytes in all: long functional notation) is never looked up as one."""
    text = str(spec)
    raw = os.fsencode(text) if "\0" not in text else b""
    if not raw or len(raw) >= 4096 or any(len(part) > 255 for part in raw.split(b"/")):
        return None
    try:
        return Path(text) if Path(text).is_file() else None
    except OSError:  # a name the file system refuses
        return None


_TOKEN_RE = re.compile(r"\s*(?:([A-Za-z_][A-Za-z0-9_]*)|(\()|(\))|(,))")


def _check_arity(text: str, name: str, got: int) -> None:
    """A one-line SaswotError when the registered operator ``name`` takes another number of arguments than ``got``
    (an unknown name is left to :func:`check_tokens`)."""
    try:
        want = len(get_operator(name).in_types)
    except SaswotError:
        return
    if want != got:
        expects = f"expects {want} argument{'s' * (want != 1)}" if want else "is a terminal and takes no arguments"
        raise SaswotError(f"proxy expression {text!r}: {name} {expects}, got {got}")


def parse_expression(text: str) -> List[str]:
    """Parse the functional notation ``layers_sum(l2_w(G))`` into prefix tokens (no eval involved); a call with
    too few or too many arguments is a one-line SaswotError saying how many its operator expects."""
    tokens, depth_args, pos = [], [], 0  # depth_args: [name, arguments so far] of each open call
    text = text.strip()
    expect_name, bare = True, None  # bare: the last name, until a '(' follows it
    while pos < len(text):
        m = _TOKEN_RE.match(text, pos)
        if not m or m.end() == pos:
            raise SaswotError(f"proxy expression {text!r}: unexpected character at position {pos}; expected name(arg, ...)")
        pos = m.end()
        name, lp, rp, comma = m.groups()
        if bare is not None and not lp:
            _check_arity(text, bare, 0)
        if name:
            if not expect_name:
                raise SaswotError(f"proxy expression {text!r}: unexpected name {name!r} at position {m.start(1)}")
            tokens.append(name)
            if depth_args:
                depth_args[-1][1] += 1
            expect_name, bare = False, name
        elif lp:
            if expect_name or not tokens:
                raise SaswotError(f"proxy expression {text!r}: '(' without a function name at position {pos - 1}")
            depth_args.append([tokens[-1], 0])
            expect_name, bare = True, None
        elif rp or comma:
            if not depth_args or expect_name:
                raise SaswotError(f"proxy expression {text!r}: unexpected {'`)`' if rp else '`,`'} at position {pos - 1}")
            bare = None
            if rp:
                _check_arity(text, *depth_args.pop())
            else:
                expect_name = True
    if bare is not None:
        _check_arity(text, bare, 0)
    if depth_args:
        raise SaswotError(f"proxy expression {text!r}: unbalanced parentheses")
    return check_tokens(tokens, where=f"proxy expression {text!r}")


class Proxy:
    """A typed proxy tree (prefix tokens) with conversions and vectorised evaluation."""

    def __init__(self, tokens: Sequence[str], name: Optional[str] = None, meta: Optional[dict] = None):
        self.tokens: List[str] = check_tokens(tokens, where=f"proxy {name or ''}".strip())
        self.name = name
        self.meta: Dict[str, object] = dict(meta or {})

    # ------------------------------------------------------------------ basics
    def __len__(self) -> int:
        return len(self.tokens)

    def __eq__(self, other) -> bool:
        return isinstance(other, Proxy) and other.tokens == self.tokens

    def __hash__(self) -> int:
        return hash(tuple(self.tokens))

    def __repr__(self) -> str:
        return f"Proxy({self.expression()!r})"

    @property
    def size(self) -> int:
        """Number of nodes."""
        return len(self.tokens)

    @property
    def is_ranked(self) -> bool:
        """True for a rank-aggregation root (``rank1`` .. ``rank4``): scores are relative to the set ranked."""
        return get_operator(self.tokens[0]).out_type == "R"

    def subtrees(self) -> List["Proxy"]:
        """The root's children as proxies, in order (the score subtrees of a rank aggregate)."""
        out, i = [], 1
        for _ in range(get_operator(self.tokens[0]).arity):
            need, j = 1, i
            while need:
                need += get_operator(self.tokens[j]).arity - 1
                j += 1
            out.append(Proxy(self.tokens[i:j]))
            i = j
        return out

    @property
    def height(self) -> int:
        """Depth of the tree (a lone terminal has height 0)."""
        best, stack = 0, []
        for tok in reversed(self.tokens):
            op = get_operator(tok)
            h = 1 + max(stack.pop() for _ in range(op.arity)) if op.arity else 0
            stack.append(h)
            best = max(best, h)
        return best

    def expression(self) -> str:
        """Functional notation, e.g. ``layers_sum(l2_w(G))`` (parse it back with :func:`parse_expression`)."""
        stack: List[str] = []
        for tok in reversed(self.tokens):
            op = get_operator(tok)
            args = [stack.pop() for _ in range(op.arity)]
            stack.append(f"{tok}({', '.join(args)})" if args else tok)
        return stack[0]

    @classmethod
    def parse(cls, text: str, name: Optional[str] = None) -> "Proxy":
        """Build a proxy from functional notation (see :meth:`expression`)."""
        return cls(parse_expression(text), name=name)

    # ------------------------------------------------------------------ JSON
    def to_json(self) -> dict:
        """The versioned JSON document (tokens are authoritative; sympy/LaTeX and the measures it needs are
        informational)."""
        doc = {"format": FORMAT, "version": VERSION, "name": self.name, "tokens": list(self.tokens),
               "expression": self.expression()}
        need = self.measures()
        if need:
            doc["measures"] = need
        try:
            doc["sympy"] = str(self.sympy())
        except Exception:  # pragma: no cover - informational only
            pass
        if self.meta:
            doc["meta"] = self.meta
        return doc

    @classmethod
    def from_json(cls, doc, where: str = "proxy document") -> "Proxy":
        """Validate a JSON document (dict) and build the proxy; SaswotError on anything unexpected, an
        ``expression`` that is not its tokens' functional notation included."""
        if not isinstance(doc, dict):
            raise SaswotError(f"{where}: expected a JSON object with 'format', 'version' and 'tokens'")
        if doc.get("format") != FORMAT:
            raise SaswotError(f"{where}: format {doc.get('format')!r}; expected {FORMAT!r}")
        if doc.get("version") != VERSION:
            raise SaswotError(f"{where}: version {doc.get('version')!r}; expected {VERSION}")
        if "tokens" not in doc:
            raise SaswotError(f"{where}: missing 'tokens'")
        name = doc.get("name")
        if name is not None and not isinstance(name, str):
            raise SaswotError(f"{where}: name {name!r}; expected a string")
        meta = doc.get("meta") or {}
        if not isinstance(meta, dict):
            raise SaswotError(f"{where}: meta must be an object")
        proxy = cls(check_tokens(doc["tokens"], where=where), name=name, meta=meta)
        text = doc.get("expression")
        if text is not None:  # informational, but it must agree: compared as text, never parsed
            rendered = proxy.expression()
            if not isinstance(text, str) or "".join(text.split()) != "".join(rendered.split()):
                raise SaswotError(f"{where}: 'expression' {text!r} disagrees with its 'tokens', which read "
                                  f"{rendered!r}; expected both to name the same proxy (fix or drop 'expression')")
        if "measures" in doc and doc["measures"] != proxy.measures():  # informational, but it must agree
            raise SaswotError(f"{where}: 'measures' {doc['measures']!r} disagrees with its 'tokens', which read "
                              f"{proxy.measures()!r}; expected the measure terminals the tree uses (fix or drop "
                              f"'measures')")
        return proxy

    def save(self, path) -> None:
        """Write the JSON document atomically."""
        atomic_write_json(path, self.to_json())

    @classmethod
    def load(cls, path) -> "Proxy":
        """A proxy tree from a spec, as every command reads it: a proxy JSON file (validated, nothing in it is
        executed), a shipped proxy's name (``saswot``), a proxy-language name (``nwot_gp``; :data:`HANDCRAFTED`) or
        functional notation. A registered live measure's name (``nwot``) is a one-line error naming its
        proxy-language approximation. (:func:`saswot_gp.proxyspec.resolve_proxy` also accepts live measures.)"""
        from .io import read_json
        spec = str(path)
        if proxy_file(spec) is None:
            shipped = shipped_proxy_path(spec)
            if shipped is not None:
                path = shipped
            elif spec in HANDCRAFTED:
                return cls.parse(HANDCRAFTED[spec], name=spec)
            elif not spec.lower().endswith(".json"):
                return cls._from_name(spec)
        where = f"proxy file {str(Path(path))!r}"
        return cls.from_json(read_json(path, where, "expected a JSON file written by saswot-gp"), where=where)

    @classmethod
    def _from_name(cls, spec: str) -> "Proxy":
        from .zerocost import measure_names
        if spec in measure_names():
            alt = f"{spec}_gp"
            hint = f"; its proxy-language approximation is {alt!r}" if alt in HANDCRAFTED else ""
            raise SaswotError(f"{spec!r} is a registered zero-cost measure computed on live models, not a "
                              f"proxy-language tree{hint}")
        if "(" in spec:
            return cls.parse(spec)
        raise SaswotError(f"unknown proxy {spec!r}: not a proxy JSON file, a shipped proxy ({', '.join(SHIPPED_PROXIES)}), "
                          f"a proxy-language name ({', '.join(HANDCRAFTED)}), a registered measure "
                          f"({', '.join(measure_names())}) or a tree such as layers_sum(l2_w(G))")

    # ------------------------------------------------------------------ DEAP
    def to_deap(self, pset):
        """The DEAP ``PrimitiveTree`` over ``pset`` (from ``saswot_gp.evolution.build_pset``)."""
        from deap import gp
        try:
            return gp.PrimitiveTree([pset.mapping[t] for t in self.tokens])
        except KeyError as exc:
            raise SaswotError(f"token {exc.args[0]!r} is not in this primitive set") from None

    @classmethod
    def from_deap(cls, tree, name: Optional[str] = None) -> "Proxy":
        """Proxy from a DEAP ``PrimitiveTree``."""
        return cls([node.name for node in tree], name=name)

    # ------------------------------------------------------------------ sympy
    def sympy(self) -> sympy.Expr:
        """The sympy twin as constructed (sympy's automatic canonicalisation, no simplify)."""
        stack = []
        for tok in reversed(self.tokens):
            op = get_operator(tok)
            args = [stack.pop() for _ in range(op.arity)]
            stack.append(op.sympy_fn(*args))
        return stack[0]

    @classmethod
    def from_sympy(cls, expr: sympy.Basic, name: Optional[str] = None) -> "Proxy":
        """Rebuild a proxy from a sympy expression of the operators' twins (see ``sympy_import``)."""
        from .sympy_import import tokens_from_sympy
        return cls(tokens_from_sympy(expr), name=name)

    def simplified(self) -> sympy.Expr:
        """``sympy.simplify`` of the twin (slow: for export and display only)."""
        return sympy.simplify(self.sympy())

    def latex(self) -> str:
        """LaTeX of the simplified expression."""
        return sympy.latex(self.simplified())

    def canonical_key(self) -> Tuple[str, int]:
        """(key, sign): proxies with equal keys rank architectures identically up to ``sign``.

        Monotone increasing operators at the root and positive factors or added constants are
        stripped; a negative factor flips the sign. The key is sympy's ``srepr`` of the remainder. A rank
        aggregate's key is made of its subtrees' (key, sign) pairs in sorted order (the sum does not depend on
        their order; rank-preserving wrappers inside a subtree do not change it), with sign +1.
        """
        if self.is_ranked:
            parts = sorted(f"{sign:+d} {key}" for key, sign in (p.canonical_key() for p in self.subtrees()))
            if len(set(parts)) == 1:
                parts = parts[:1]  # rank2(x, x) ranks as rank1(x)
            return "logrank[" + "; ".join(parts) + "]", 1
        toks = self.tokens
        while True:
            op = get_operator(toks[0])
            if op.arity == 1 and op.monotone and op.out_type == "S":
                toks = toks[1:]
            else:
                break
        try:
            expr = Proxy(toks).sympy() if toks is not self.tokens else self.sympy()
            if expr.has(sympy.zoo, sympy.nan, sympy.oo, -sympy.oo):
                raise ValueError("singular twin")
            return canonical_expr_key(expr)
        except (ValueError, TypeError, ZeroDivisionError, RecursionError, AttributeError):
            # the twin is singular where the protected operators are not (e.g. 1/0): key on tokens
            return "tokens:" + " ".join(toks), 1

    def rank_core(self) -> "Proxy":
        """The proxy without root operators that cannot change its ranking (same canonical key and sign)."""
        if self.is_ranked:  # each subtree without its rank-preserving root operators
            toks = [self.tokens[0]] + [t for p in self.subtrees() for t in p.rank_core().tokens]
            return Proxy(toks, name=self.name, meta=self.meta)
        key, toks = self.canonical_key(), self.tokens
        while len(toks) > 1:
            op = get_operator(toks[0])
            if op.arity != 1 or op.in_types[0] != "S":
                break
            cand = Proxy(toks[1:])
            if cand.canonical_key() != key:
                break
            toks = cand.tokens
        return Proxy(toks, name=self.name, meta=self.meta)

    # ------------------------------------------------------------------ evaluation
    def evaluate(self, ctx) -> torch.Tensor:
        """Scores of every architecture in a ``PackedStats`` (float64 tensor, one per architecture).

        An intermediate result that only this evaluation holds (the output of an operator with ``spare``) is
        handed to its parent as a spare, so most operators write into it instead of allocating: same values.
        """
        stack: List[torch.Tensor] = []
        own: List[bool] = []  # own[i]: stack[i] is held by nothing else
        for tok in reversed(self.tokens):
            op = get_operator(tok)  # a terminal has no children and no spare: a statistic is never written into
            args = [stack.pop() for _ in range(op.arity)]  # children in order
            owned = [own.pop() for _ in range(op.arity)]
            spare = next((x for x, o in zip(args, owned) if o), None) if op.spare else None
            out = op.fn(ctx, *args) if spare is None else op.fn(ctx, *args, spare=spare)
            del args, spare  # drop the references so that a freed input's memory can be reused at once
            stack.append(out)
            own.append(op.spare)
        return stack[0]

    def evaluate_parts(self, ctx) -> torch.Tensor:
        """A (k, N) float64 tensor over the N architectures of ``ctx``: a rank aggregate's k subtree scores (its
        value is their :func:`~saswot_gp.primitives.rank.log_rank_aggregate`), any other proxy's own scores (k = 1)."""
        if not self.is_ranked:
            return self.evaluate(ctx).to(torch.float64)[None]
        return torch.stack([p.evaluate(ctx).to(torch.float64) for p in self.subtrees()])

    def score_parts(self, model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor, k: Optional[int] = 256,
                    seed: int = 0) -> List[float]:
        """:meth:`evaluate_parts` of a live model on a batch: its k subtree scores (its one score when not ranked)."""
        return [float(v) for v in self.evaluate_parts(self._live_stats(model, images, labels, k, seed))[:, 0]]

    def score(self, model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor, k: Optional[int] = 256,
              seed: int = 0) -> float:
        """Score a live model on a batch (one forward and backward, statistics sketched to ``k``); a rank aggregate
        ranks a set, not one model (SaswotError: see :meth:`score_parts` and the search's archive)."""
        if self.is_ranked:
            raise SaswotError(f"proxy {self.expression()} is a rank aggregate: it ranks a set of architectures, not "
                              f"one model; score a set (packed statistics) or search, which ranks each candidate "
                              f"against the ones scored before")
        return float(self.evaluate(self._live_stats(model, images, labels, k, seed))[0])

    def measures(self) -> List[str]:
        """The registered zero-cost measures this tree reads through measure terminals (``zc_snip`` -> ``snip``)."""
        from .zerocost.terminals import measures_in
        return measures_in(self.tokens)

    def _live_stats(self, model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor, k: Optional[int],
                    seed: int):
        """Packed statistics of one live model, with the values of the measures the tree reads."""
        from .stats import collect_stats, pack
        packed = pack([collect_stats(model, images, labels, k=k, seed=seed)])
        need = self.measures()
        if need:
            from .zerocost import compute_measures
            from .zerocost.terminals import attach_measures
            got = compute_measures(model, images, labels, names=need, seed=seed)
            attach_measures(packed, {m: [got[m]] for m in need})
        return packed


def canonical_expr_key(expr: sympy.Expr) -> Tuple[str, int]:
    """(srepr, sign) of ``expr`` with rank-preserving outer pieces stripped (see Proxy.canonical_key)."""
    sign = 1
    from .primitives.builtin import SYMPY_FUNCTIONS
    mono = {sympy.exp, sympy.tanh, SYMPY_FUNCTIONS["sigmoid"]}
    while True:
        if isinstance(expr, sympy.Mul):
            c, rest = expr.as_coeff_Mul()
            if c.is_Number and c != 1:
                if c < 0:
                    sign = -sign
                expr = rest
                continue
        if isinstance(expr, sympy.Add):
            c, rest = expr.as_coeff_Add()
            if c.is_Number and c != 0:
                expr = rest
                continue
        if expr.func in mono:
            expr = expr.args[0]
            continue
        if isinstance(expr, sympy.Pow) and expr.exp.is_Number and expr.exp > 0 and (
                expr.base.is_nonnegative or (expr.exp.is_Integer and expr.exp % 2 == 1)):
            expr = expr.base  # x**3, and x**p for x >= 0, are increasing
            continue
        if isinstance(expr, sympy.Pow) and expr.exp.is_Number and expr.exp < 0 and expr.base.is_positive:
            sign = -sign  # 1/x is decreasing for x > 0
            expr = expr.base
            continue
        if expr.func is sympy.log and expr.args[0].is_nonnegative:
            expr = expr.args[0]  # log|x| is increasing for x >= 0
            continue
        break
    return sympy.srepr(expr), sign
