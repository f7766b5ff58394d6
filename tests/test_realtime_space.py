"""The FasterSeg-style ``realtime`` search space: grammar, variation operators, networks."""

import hashlib
import itertools
import random

import pytest
import torch

from saswot_gp.errors import SaswotError
from saswot_gp.spaces import get_space, space_names
from saswot_gp.spaces.base import count_params
from saswot_gp.spaces.realtime import (OPS, WIDTHS, HeadPart, LayerPart, RealtimeHead, RealtimeSpace,
                                       StemPart)

torch.set_num_threads(1)

EXAMPLE = "c3.w1.0.s-ir.w0.5.d-zc.w1.25.s-sk.w1.0.s-dc.w0.75.d-dw.w1.0.s-c33.w1.0.s-c3.w0.5.s-ir.w1.0.s-sk.w1.0.s"


@pytest.fixture(scope="module")
def space():
    return get_space("realtime", base_width=4, input_size=64, num_classes=11)


def test_registered_and_defaults():
    assert "realtime" in space_names()
    sp = get_space("realtime")
    assert sp.num_classes == 11 and sp.input_size == (64, 64) and sp.num_layers == 10


def test_space_size_formula_and_at_least_1e8(space):
    assert space.size() == (len(OPS) * len(WIDTHS)) ** 10 * (10 + 45)
    assert space.size() >= 10 ** 8


def test_space_size_matches_brute_force_enumeration():
    sp = RealtimeSpace(num_layers=2)
    layers = [f"{o}.w{w}.{m}" for o in OPS for w in ("0.5", "0.75", "1.0", "1.25") for m in "sd"]
    valid = set()
    for a, b in itertools.product(layers, layers):
        try:
            valid.add(sp.validate(f"{a}-{b}"))
        except SaswotError:
            pass
    assert len(valid) == sp.size() == 28 ** 2 * 3


def test_round_trip_over_many_samples(space):
    rng = random.Random(0)
    archs = [space.sample(rng) for _ in range(500)]
    for a in archs:
        spec = space.decode(a)
        assert space.encode(spec) == a
        assert 1 <= sum(layer.down for layer in spec) <= 2
    assert len(set(archs)) == len(archs)
    # every op, width and both descent counts show up
    specs = [space.decode(a) for a in archs]
    assert {layer.op for s in specs for layer in s} == set(OPS)
    assert {layer.width for s in specs for layer in s} == set(WIDTHS)
    assert {sum(layer.down for layer in s) for s in specs} == {1, 2}


def test_non_canonical_width_is_normalised(space):
    loose = EXAMPLE.replace("c3.w1.0.s", "c3.w1.s", 1).replace("ir.w0.5.d", "ir.w0.50.d", 1)
    assert loose != EXAMPLE
    assert space.validate(loose) == EXAMPLE


def _diffs(space, a, b):
    out = []
    for i, (x, y) in enumerate(zip(space.decode(a), space.decode(b))):
        out += [(i, f) for f in ("op", "width", "down") if getattr(x, f) != getattr(y, f)]
    return out


def test_mutate_changes_exactly_one_field(space):
    rng = random.Random(1)
    kinds = set()
    for _ in range(300):
        a = space.sample(rng)
        b = space.mutate(a, rng)
        d = _diffs(space, a, b)
        assert b != a and len(d) == 1, (a, b, d)
        kinds.add(d[0][1])
    assert kinds == {"op", "width", "down"}


def test_mutate_keeps_descent_count_valid():
    sp = RealtimeSpace(num_layers=3)
    rng = random.Random(2)
    a = "c3.w1.0.d-c3.w1.0.s-c3.w1.0.s"
    for _ in range(200):
        a = sp.mutate(a, rng)
        assert 1 <= sum(layer.down for layer in sp.decode(a)) <= 2


def test_crossover_takes_layers_from_parents(space):
    rng = random.Random(3)
    for _ in range(100):
        a, b = space.sample(rng), space.sample(rng)
        c = space.crossover(a, b, rng)
        la, lb, lc = space.decode(a), space.decode(b), space.decode(c)
        for x, y, z in zip(la, lb, lc):
            assert (z.op, z.width) in {(x.op, x.width), (y.op, y.width)}
            assert z.down in (x.down, y.down) or not z.down


@pytest.mark.parametrize("size", [(64, 64), (96, 128)])
def test_output_shape_for_several_resolutions(space, size):
    rng = random.Random(4)
    for _ in range(3):
        model = space.build(space.sample(rng))
        out = model(torch.randn(2, 3, *size))
        assert out.shape == (2, 11, *size)
        model.eval()
        with torch.no_grad():
            assert model(torch.randn(1, 3, *size)).shape == (1, 11, *size)


def test_every_op_at_every_resolution_builds_and_runs(space):
    for op in OPS:
        arch = "-".join([f"{op}.w1.0.s", f"{op}.w0.5.s", f"{op}.w1.25.d", f"{op}.w1.0.s", f"{op}.w0.75.s",
                         f"{op}.w1.0.d", f"{op}.w1.0.s", f"{op}.w0.5.s", f"{op}.w1.25.s", f"{op}.w1.25.s"])
        assert space.resolutions(arch) == [8, 8, 16, 16, 16, 32, 32, 32, 32, 32]
        out = space.build(arch, num_classes=5)(torch.randn(2, 3, 64, 64))
        assert out.shape == (2, 5, 64, 64)
        assert torch.isfinite(out).all()


def test_params_and_flops_grow_with_width_and_resolution(space):
    narrow = "-".join(["c3.w0.5.s"] * 4 + ["c3.w0.5.d"] + ["c3.w0.5.s"] * 5)
    wide = narrow.replace("w0.5", "w1.25")
    assert space.params(wide) > space.params(narrow) > 0
    f64, f128 = space.flops(narrow), space.flops(narrow, (128, 128))
    assert 3.5 < f128 / f64 < 4.5
    bigger = RealtimeSpace(base_width=8)
    assert bigger.params(narrow) > space.params(narrow)


@pytest.mark.parametrize("bad, why", [
    ("c3.w1.0.s", "1 layers"),
    (EXAMPLE.replace("c3.w1.0.s", "c5.w1.0.s", 1), "unknown op 'c5'"),
    (EXAMPLE.replace("c3.w1.0.s", "c3.w0.6.s", 1), "unknown width '0.6'"),
    (EXAMPLE.replace("c3.w1.0.s", "c3.w1.0.x", 1), "unknown move 'x'"),
    (EXAMPLE.replace("c3.w1.0.s", "c3-1.0.s", 1), "11 layers"),
    (EXAMPLE.replace("c3.w1.0.s", "c3_w1.0_s", 1), "is not op.wWIDTH.move"),
    (EXAMPLE.replace(".s", ".d"), "10 'd' layers"),
    (EXAMPLE.replace(".d", ".s"), "0 'd' layers"),
    ("", "1 layers"),
])
def test_bad_strings_are_rejected_with_clear_messages(space, bad, why):
    with pytest.raises(SaswotError) as info:
        space.decode(bad)
    msg = str(info.value)
    assert why in msg
    assert repr(bad) in msg and "expected 10" in msg and "c3|c33|zc|dc|dw|ir|sk" in msg
    assert "\n" not in msg


def test_non_string_and_bad_constructor_args_rejected(space):
    with pytest.raises(SaswotError):
        space.decode(None)
    with pytest.raises(SaswotError, match="divisible by 32"):
        RealtimeSpace(input_size=(64, 48))
    with pytest.raises(SaswotError):
        space.encode([("c3", 0.6, True)] * 10)


# Recorded from the networks built before RealtimeSpace.build was assembled from the space's parts (walk, stem,
# layer_module, head): parameter count, digest of the state_dict keys and shapes (trained checkpoints load),
# and the output for fixed weights (torch.manual_seed) and input.
NETWORKS = [
    (dict(base_width=4, input_size=32, num_layers=4), 0, None, "dw.w1.0.s-sk.w1.25.d-sk.w1.25.s-dw.w1.0.d",
     4643, "abe786fa6448a1f7", 80, 3326.469345362857),
    (dict(base_width=4, input_size=32, num_layers=4), 1, None, "dw.w0.5.d-dc.w0.5.s-sk.w1.0.s-dc.w0.5.s",
     4767, "6b367a273eaccf9a", 86, 3875.8648729994893),
    (dict(base_width=6, input_size=(64, 96), num_layers=5, residual=False, head_width=10, num_classes=3), 2, None,
     "sk.w0.5.d-zc.w1.25.s-zc.w0.5.s-sk.w0.5.s-zc.w1.25.s", 14931, "3fef0862390fbeaa", 68, 7449.579615660012),
    (dict(base_width=6, input_size=(64, 96), num_layers=5, residual=False, head_width=10, num_classes=3), 5, 5,
     "c33.w0.5.s-c3.w0.75.s-zc.w1.0.s-dw.w0.75.d-c3.w1.0.s", 11677, "1e9537f7547ca9b6", 86, 11073.211529135704),
    (dict(), 1, None, "dc.w1.25.d-dc.w0.5.s-dw.w0.75.s-sk.w1.0.s-zc.w0.5.s-zc.w1.0.s-c3.w1.25.s-sk.w0.5.d-c33.w0.75.s-"
     "ir.w0.5.s", 410907, "cc91d36c3fa0d93f", 176, 7778.137664576061),
]


@pytest.mark.parametrize("kwargs, seed, classes, arch, params, digest, n_keys, abs_sum", NETWORKS)
def test_networks_keep_their_parameters_state_dict_and_output(kwargs, seed, classes, arch, params, digest, n_keys,
                                                              abs_sum):
    sp = get_space("realtime", **kwargs)
    torch.manual_seed(seed)
    net = sp.build(arch, num_classes=classes)
    sd = net.state_dict()
    assert count_params(net) == params
    assert len(sd) == n_keys
    assert hashlib.sha256("\n".join(f"{k}:{tuple(v.shape)}" for k, v in sd.items()).encode()).hexdigest()[:16] == digest
    net.eval()
    x = torch.randn(2, 3, *sp.input_size, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        out = net(x)
    assert out.shape == (2, classes or sp.num_classes, *sp.input_size)
    assert float(out.double().abs().sum()) == pytest.approx(abs_sum, rel=1e-5)


def test_walk_names_the_parts_the_network_is_built_from(space):
    rng = random.Random(5)
    for _ in range(10):
        arch = space.sample(rng)
        parts = space.walk(arch)
        net = space.build(arch).eval()
        assert isinstance(parts[0], StemPart) and isinstance(parts[-1], HeadPart)
        assert len(parts) == space.num_layers + 2 and all(isinstance(p, LayerPart) for p in parts[1:-1])
        assert [8 * 2 ** p.level_out for p in parts[1:-1]] == space.resolutions(arch)
        for prev, part in zip(parts, parts[1:-1]):
            assert part.cin == prev.cout and part.stride == (2 if part.level_out > part.level_in else 1)
        assert parts[-1].c_lo == parts[-2].cout and parts[-1].level_lo == net.levels
        y = net.stem(torch.randn(2, 3, *space.input_size))
        assert y.shape[1:] == (parts[0].cout, *space.level_size(0))
        for layer, part in zip(net.layers, parts[1:-1]):
            assert [v.shape for v in layer.state_dict().values()] == \
                [v.shape for v in space.layer_module(part).state_dict().values()]
            y = layer(y)
            assert y.shape[1:] == (part.cout, *space.level_size(part.level_out))
        head = space.head(parts[-1])
        assert count_params(net) == sum(count_params(space.part_module(p)) for p in parts)
        assert [v.shape for v in head.state_dict().values()] == \
            [v.shape for k, v in net.state_dict().items() if k.split(".")[0] in ("proj_hi", "proj_lo", "fuse",
                                                                                "classifier")]


def test_build_uses_the_space_methods(monkeypatch):
    sp = RealtimeSpace(base_width=4, input_size=32, num_layers=4)
    arch = "c3.w1.0.s-ir.w0.5.d-sk.w1.0.s-dw.w1.25.d"
    built = []
    original = RealtimeSpace.layer_module

    def layer_module(self, part):
        built.append(original(self, part))
        return built[-1]

    monkeypatch.setattr(RealtimeSpace, "layer_module", layer_module)
    heads = []
    monkeypatch.setattr(RealtimeSpace, "head", lambda self, part, num_classes=None: heads.append(
        RealtimeHead(part.c_hi, part.c_lo, 3, 2, self.input_size)) or heads[-1])
    net = sp.build(arch).eval()
    assert list(net.layers) == built and len(heads) == 1 and net.classifier is heads[0].classifier
    assert net.proj_hi.state_dict()["0.weight"].shape[0] == 3 and net(torch.randn(1, 3, 32, 32)).shape == (1, 2, 32, 32)
    # the channel rule is the space's: changing it changes the walk and the network together
    monkeypatch.setattr(RealtimeSpace, "channels", lambda self, level, width: 5 + level)
    parts = sp.walk(arch)
    assert [p.cout for p in parts[1:-1]] == [5, 6, 6, 7] and (parts[-1].c_hi, parts[-1].c_lo) == (5, 7)
    net = sp.build(arch).eval()
    assert net.layers[0].op[0].weight.shape[:2] == (5, 8) and net.layers[3].op[1][0].weight.shape[:2] == (7, 6)
    assert net(torch.randn(1, 3, 32, 32)).shape == (1, 2, 32, 32)
