import ast
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import sympy
import torch

from saswot_gp.errors import SaswotError
from saswot_gp.primitives import StatsContext, get_operator, make_operator, operators, unregister
from saswot_gp.primitives.builtin import BUILTINS, SYMPY_FUNCTIONS, UNARY, BINARY
from saswot_gp.proxy import Proxy

EXTREME = torch.tensor([0.0, -0.0, -1.0, 1.0, -5.0, 1e-300, -1e-300, 1e30, -1e30, 1e200, -1e200], dtype=torch.float64)


def test_every_type_has_terminals_and_primitives():
    for t in "WALS":
        assert operators(out_type=t, terminals=True), t
        assert operators(out_type=t, terminals=False), t


def test_expected_operator_families_exist():
    for t in "wals":
        for name in ["abs", "neg", "square", "sqrt", "log", "exp", "sigmoid", "tanh", "relu", "recip",
                     "add", "sub", "mul", "div", "max", "min"]:
            get_operator(f"{name}_{t}")
    for t in "wal":
        get_operator(f"zscore_{t}"), get_operator(f"minmax_{t}")
    for t in "wa":
        for r in ["sum", "mean", "l1", "l2", "std", "maxabs"]:
            assert get_operator(f"{r}_{t}").out_type == "L"
    assert get_operator("logdet_a").in_types == ("A",)
    for a in ["sum", "mean", "max", "min"]:
        assert get_operator(f"layers_{a}").out_type == "S"
    assert get_operator("params").out_type == "S" and get_operator("params_l").out_type == "L"


@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_elementwise_protected_on_extremes(name):
    op = get_operator(f"{name}_w")
    out = op.fn(None, EXTREME)
    assert out.shape == EXTREME.shape
    assert torch.isfinite(out).all(), (name, out)


@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary_elementwise_protected_on_extremes(name):
    op = get_operator(f"{name}_l")
    x = EXTREME.repeat_interleave(len(EXTREME))
    y = EXTREME.repeat(len(EXTREME))
    out = op.fn(None, x, y)
    assert torch.isfinite(out).all(), name


def test_all_operators_finite_on_packed_extreme_statistics(packed):
    """Every operator, reductions included, stays finite when the statistics hold zeros and huge values."""
    import copy
    ctx = copy.copy(packed)
    rng = np.random.default_rng(0)
    pool = EXTREME.numpy()
    ctx.w = torch.from_numpy(rng.choice(pool, size=packed.w.shape))
    ctx.g = torch.zeros_like(packed.g)
    ctx.a = torch.from_numpy(rng.choice(pool, size=tuple(packed.a.shape)))
    ctx.ag = torch.from_numpy(rng.choice(pool, size=tuple(packed.ag.shape)))
    vals = {"W": ctx.w, "A": ctx.a, "L": torch.from_numpy(rng.choice(pool, size=packed.n_layers)),
            "S": torch.from_numpy(rng.choice(pool, size=packed.n_archs))}
    for op in operators(terminals=False):
        args = [vals[t] for t in op.in_types]
        if op.arity == 2 and op.in_types[0] == "W":
            args[1] = ctx.g
        out = op.fn(ctx, *args)
        assert torch.isfinite(out).all(), op.name


def _lambdify(expr, symbols):
    mods = [{"sigmoid": lambda x: 1 / (1 + np.exp(-x))}, "numpy"]
    return sympy.lambdify(symbols, expr, modules=mods)


@pytest.mark.parametrize("name", sorted(UNARY))
def test_unary_sympy_twin_matches_torch_away_from_singularities(name):
    x = sympy.Symbol("x", real=True)
    op = get_operator(f"{name}_l")
    f = _lambdify(op.sympy_fn(x), [x])
    v = np.array([-3.0, -0.7, 0.4, 1.5, 2.5])
    np.testing.assert_allclose(np.asarray(f(v), dtype=float) * np.ones_like(v),
                               op.fn(None, torch.tensor(v)).numpy(), rtol=1e-9)


@pytest.mark.parametrize("name", sorted(BINARY))
def test_binary_sympy_twin_matches_torch(name):
    x, y = sympy.symbols("x y", real=True)
    op = get_operator(f"{name}_l")
    f = _lambdify(op.sympy_fn(x, y), [x, y])
    a, b = np.array([-3.0, -0.7, 0.4, 1.5]), np.array([2.0, -1.5, 0.3, -4.0])
    np.testing.assert_allclose(f(a, b), op.fn(None, torch.tensor(a), torch.tensor(b)).numpy(), rtol=1e-9)


def test_custom_operator_accepted_and_usable(packed):
    try:
        op = make_operator("softsign_l", lambda x: x / (1 + x.abs()), ("L",), "L",
                           lambda x: x / (1 + sympy.Abs(x)), monotone=True)
        p = Proxy.parse("layers_sum(softsign_l(l2_w(G)))")
        s = p.evaluate(packed)
        assert s.shape == (packed.n_archs,) and torch.isfinite(s).all()
        assert str(p.sympy()) == "layers_sum(l2(Abs(G))/(l2(Abs(G)) + 1))"
        assert op.monotone and not op.builtin
    finally:
        unregister("softsign_l")
    with pytest.raises(SaswotError, match="not a registered"):
        Proxy.parse("layers_sum(softsign_l(l2_w(G)))")


@pytest.mark.parametrize("kwargs, msg", [
    (dict(name="bad_log", fn=torch.log, in_types=("L",), out_type="L", sympy_fn=sympy.log), "not closed"),
    (dict(name="inv", fn=lambda x: 1 / x, in_types=("W",), out_type="W", sympy_fn=lambda x: 1 / x), "not closed"),
    (dict(name="three", fn=lambda x, y, z: x, in_types=("L", "L", "L"), out_type="L", sympy_fn=lambda x, y, z: x), "arity 3"),
    (dict(name="red", fn=lambda x: x.sum(), in_types=("W",), out_type="W", sympy_fn=lambda x: x), "shaped like"),
    (dict(name="mixed", fn=lambda x, y: x, in_types=("W", "L"), out_type="W", sympy_fn=lambda x, y: x), "expected all equal"),
    (dict(name="not an id", fn=lambda x: x, in_types=("L",), out_type="L", sympy_fn=lambda x: x), "identifier"),
    (dict(name="boom", fn=lambda x: 1 // 0, in_types=("L",), out_type="L", sympy_fn=lambda x: x), "failed on probe"),
])
def test_custom_operator_validation_rejects(kwargs, msg):
    with pytest.raises(SaswotError, match=msg):
        make_operator(register_it=False, **kwargs)


def test_custom_operator_name_clash_rejected():
    with pytest.raises(SaswotError, match="already registered"):
        make_operator("add_l", lambda x, y: x + y, ("L", "L"), "L", lambda x, y: x + y)
    assert get_operator("add_l").builtin


def test_monotone_flags_are_truthful():
    """An operator flagged monotone must never reverse the order of two inputs."""
    v = torch.linspace(-50, 50, 2001, dtype=torch.float64)
    for op in operators(terminals=False):
        if op.monotone and op.elementwise and op.arity == 1:
            out = op.fn(None, v)
            assert (out[1:] >= out[:-1]).all(), op.name
    assert not get_operator("relu_s").monotone  # ties: not rank-preserving
    assert SYMPY_FUNCTIONS["sigmoid"].__name__ == "sigmoid"


# ----------------------------------------------------------------------------- structure (issue 12)
from saswot_gp.primitives.types import MEASURE_TERMINALS  # noqa: E402

PRIMITIVES_DIR = Path(__file__).resolve().parents[1] / "saswot_gp" / "primitives"


def test_every_builtin_token_is_spelled_out_in_the_source():
    """Each built-in token appears literally (quoted) in builtin.py, so searching the source finds it."""
    src = (PRIMITIVES_DIR / "builtin.py").read_text()
    builtins = [op.name for op in operators() if op.builtin]
    assert len(builtins) == 114  # 98, the rank-aggregation roots rank1 .. rank4 and 12 measure terminals
    missing = [n for n in builtins if f'("{n}", (' not in src]
    assert not missing, missing


def test_measure_terminals_are_the_registered_live_measures():
    """Every registered measure that needs the live model is a terminal; params and flops are terminals of their own."""
    from saswot_gp.zerocost import measure_names
    assert list(MEASURE_TERMINALS) == [m for m in measure_names() if m not in ("params", "flops")]
    from saswot_gp.commands.evolve import TERMINAL_CHOICES
    from saswot_gp.evolution.pset import TERMINAL_SETS
    assert TERMINAL_CHOICES == TERMINAL_SETS


def test_builtins_registered_once_in_table_order():
    from saswot_gp.primitives import registry
    names = [r[0] for r in BUILTINS]
    assert len(names) == len(set(names)) == 114  # 98, rank1 .. rank4 and the 12 measure terminals
    assert [n for n, op in registry._REGISTRY.items() if op.builtin] == names
    assert names[:4] == ["W", "G", "A", "AG"] and names[-17:-12] == ["layers_min", "rank1", "rank2", "rank3", "rank4"]
    assert names[-12:] == ["zc_" + m for m in MEASURE_TERMINALS]
    assert list(UNARY)[:3] == ["abs", "neg", "square"] and list(BINARY) == ["add", "sub", "mul", "div", "max", "min"]


def _stats_context_members():
    methods = {k for k, v in vars(StatsContext).items() if callable(v) and not k.startswith("_")}
    return set(StatsContext.__annotations__), methods


def test_packed_stats_satisfies_stats_context(packed):
    from saswot_gp.stats.pack import PackedStats
    attrs, methods = _stats_context_members()
    assert {"w", "g", "a", "ag", "layer", "arch"} <= attrs
    assert {"seg_sum", "seg_mean", "seg_max", "seg_min", "expand", "scale", "logdet", "arch_logdet"} <= methods
    for name in attrs | methods:
        assert hasattr(packed, name), name
    for name in methods:
        assert callable(getattr(packed, name)), name
        assert callable(getattr(PackedStats, name)), name
    assert isinstance(packed, StatsContext)
    assert not isinstance(object(), StatsContext)


def test_stats_context_covers_what_operators_use(tiny_stats):
    """Every built-in operator and proxy runs on a context that offers only the protocol's members."""
    from saswot_gp.stats import pack
    packed = pack(tiny_stats)  # its own: measure values are attached below
    attrs, methods = _stats_context_members()

    class OnlyProtocol:
        def __init__(self, inner):
            for name in attrs | methods:
                setattr(self, name, getattr(inner, name))

    from saswot_gp.errors import SaswotError
    from saswot_gp.zerocost.terminals import attach_measures
    with pytest.raises(SaswotError, match="zc_snip.*not computed"):  # a measure terminal without its values
        get_operator("zc_snip").fn(packed)
    attach_measures(packed, {m: torch.arange(packed.n_archs) + i for i, m in enumerate(MEASURE_TERMINALS)})
    ctx = OnlyProtocol(packed)
    assert isinstance(ctx, StatsContext)
    assert torch.equal(get_operator("zc_grad_norm").fn(ctx), torch.arange(packed.n_archs, dtype=torch.float64) + 1)
    vals = {"W": packed.w, "A": packed.a, "L": packed.layer["params"], "S": packed.arch["flops"]}
    for op in operators():
        a = op.fn(ctx, *[vals[t] for t in op.in_types])
        b = op.fn(packed, *[vals[t] for t in op.in_types])
        assert torch.equal(a, b), op.name
    p = Proxy.parse("layers_sum(l1_w(mul_w(W, G)))")
    assert torch.equal(p.evaluate(ctx), p.evaluate(packed))


def _run_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          cwd=str(PRIMITIVES_DIR.parents[1]))


def test_register_before_any_lookup_keeps_builtins():
    """A public register() made first (fresh interpreter) must not stop the built-ins from loading."""
    code = """
from saswot_gp.primitives.registry import Operator, get_operator, operators, register
register(Operator("my_id_l", ("L",), "L", lambda ctx, x: x, lambda x: x, elementwise=True, builtin=False))
assert get_operator("add_w").builtin and get_operator("l2_a").out_type == "L"
assert not get_operator("my_id_l").builtin
assert sum(op.builtin for op in operators()) == 114, len(operators())
print("ok")
"""
    r = _run_python(code)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr


def test_make_operator_before_any_lookup_keeps_builtins():
    code = """
import sympy
from saswot_gp.primitives import make_operator, get_operator, operators
make_operator("twice_l", lambda x: 2 * x, ("L",), "L", lambda x: 2 * x, monotone=True)
assert get_operator("add_w").builtin and not get_operator("twice_l").builtin
assert sum(op.builtin for op in operators()) == 114
print("ok")
"""
    r = _run_python(code)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr


@pytest.mark.parametrize("first", ["saswot_gp.primitives.registry", "saswot_gp.primitives.builtin",
                                   "saswot_gp.primitives.context", "saswot_gp.primitives"])
def test_primitives_import_in_any_order(first):
    code = f"""
import importlib
importlib.import_module({first!r})
from saswot_gp.primitives import registry, builtin
assert [n for n, op in registry._REGISTRY.items() if op.builtin] == [r[0] for r in builtin.BUILTINS]
print("ok")
"""
    r = _run_python(code)
    assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr


def test_registry_never_imports_builtin():
    """No import cycle: the registry imports nothing of builtin (the package imports builtin after it)."""
    tree = ast.parse((PRIMITIVES_DIR / "registry.py").read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            mods = [node.module or ""] + [a.name for a in node.names]
        elif isinstance(node, ast.Import):
            mods = [a.name for a in node.names]
        else:
            continue
        assert not any("builtin" in m for m in mods), ast.dump(node)
