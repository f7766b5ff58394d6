"""Hand-designed zero-cost measures: registry, finiteness, hand-computed values, invariances, no side effects."""

import copy
import math
import random

import pytest
import torch
from torch import nn

from saswot_gp.batches import synthetic_batch
from saswot_gp.errors import SaswotError
from saswot_gp.spaces import count_flops, count_params, get_space
from saswot_gp.stats import build_model, segmentation_loss
from saswot_gp.zerocost import compute_measures, get_measure, measure_names, register_measure

torch.set_num_threads(1)

EXPECTED = {"snip", "grasp", "synflow", "fisher", "grad_norm", "jacov", "nwot", "zen", "zico", "swap",
            "l2_norm", "plain", "params", "flops"}
TINY = ["8k3s2_16k3s1", "16k3s1_16k3s2_32k3s2_8k1s1"]


@pytest.fixture(scope="module")
def tiny():
    return get_space("tiny", num_classes=5, input_size=(16, 16))


@pytest.fixture(scope="module")
def tiny_batch():
    return synthetic_batch(n=4, size=(16, 16), num_classes=5, seed=0)


@pytest.fixture(scope="module")
def rt():
    return get_space("realtime", base_width=4, input_size=32, num_classes=5, num_layers=4)


@pytest.fixture(scope="module")
def rt_batch():
    return synthetic_batch(n=4, size=(32, 32), num_classes=5, seed=1)


def _networks(tiny, rt):
    rng = random.Random(3)
    return ([(tiny, a) for a in TINY] + [(rt, rt.sample(rng)) for _ in range(2)])


def _state(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


def _same(a, b):
    return all(torch.equal(a[k], b[k]) for k in a) and a.keys() == b.keys()


def _scaled(model, factor):
    m = copy.deepcopy(model)
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, (nn.Conv2d, nn.Linear)):
                mod.weight.mul_(factor)
    return m


def test_registry_has_the_usual_names():
    assert EXPECTED <= set(measure_names())
    assert all(callable(get_measure(n)) for n in EXPECTED)
    with pytest.raises(ValueError):
        register_measure("snip")(lambda m, x, y, **o: 0.0)


def test_unknown_name_lists_the_known_ones(tiny, tiny_batch):
    model = build_model(tiny, TINY[0], 0)
    with pytest.raises(SaswotError) as exc:
        compute_measures(model, *tiny_batch, names=["snip", "snap"])
    msg = str(exc.value)
    assert "'snap'" in msg and "snip" in msg and "zen" in msg and "\n" not in msg
    with pytest.raises(SaswotError):
        get_measure("naswot")


def test_every_measure_finite_and_model_untouched(tiny, rt, tiny_batch, rt_batch):
    for space, arch in _networks(tiny, rt):
        images, labels = tiny_batch if space is tiny else rt_batch
        x0, y0 = images.clone(), labels.clone()
        model = build_model(space, arch, 0)
        model.eval() if space is rt else model.train()
        mode = model.training
        before = _state(model)
        errors = {}
        out = compute_measures(model, images, labels, errors=errors)
        assert set(out) == set(measure_names())
        bad = {k: v for k, v in out.items() if not (isinstance(v, float) and math.isfinite(v))}
        assert not bad, (space.name, arch, bad, errors)
        assert _same(before, _state(model)), (space.name, arch)       # weights and BN buffers unchanged
        assert model.training == mode
        assert all(p.grad is None for p in model.parameters())
        assert torch.equal(images, x0) and torch.equal(labels, y0)
        assert out["params"] == count_params(model)
        assert out["flops"] == count_flops(model, images[:1])


def test_deterministic_for_a_seed(rt, rt_batch):
    model = build_model(rt, rt.sample(random.Random(5)), 0)
    a = compute_measures(model, *rt_batch, seed=0)
    b = compute_measures(model, *rt_batch, seed=0)
    assert a == b
    c = compute_measures(model, *rt_batch, names=["zen"], seed=1)
    assert c["zen"] != a["zen"]                                        # the seed draws zen's weights and inputs


def test_snip_plain_grad_norm_by_hand(tiny, tiny_batch):
    images, labels = tiny_batch
    model = build_model(tiny, TINY[1], 0)
    net = copy.deepcopy(model).train()
    segmentation_loss(net(images), labels).backward()
    layers = [m for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    snip = sum(float((m.weight.detach() * m.weight.grad).abs().sum()) for m in layers)
    plain = sum(float((m.weight.detach() * m.weight.grad).sum()) for m in layers)
    gnorm = sum(float(m.weight.grad.norm()) for m in layers)
    assert get_measure("snip")(model, images, labels) == pytest.approx(snip, rel=1e-5)
    assert get_measure("plain")(model, images, labels) == pytest.approx(plain, rel=1e-4, abs=1e-7)
    assert get_measure("grad_norm")(model, images, labels) == pytest.approx(gnorm, rel=1e-5)


def test_fisher_by_hand(tiny, tiny_batch):
    images, labels = tiny_batch
    model = build_model(tiny, TINY[1], 0)
    net = copy.deepcopy(model).train()
    acts = []
    layers = [m for m in net.modules() if isinstance(m, nn.Conv2d)]

    def keep(mod, inp, out):
        out.retain_grad()
        acts.append((mod, out))

    hs = [m.register_forward_hook(keep) for m in layers]
    segmentation_loss(net(images), labels).backward()
    for h in hs:
        h.remove()
    want = 0.0
    for mod, a in acts:
        g_nk = (a.detach() * a.grad).sum((2, 3))
        want += float(0.5 * g_nk.pow(2).mean(0).sum()) * mod.weight[0].numel()
    assert get_measure("fisher")(model, images, labels) == pytest.approx(want, rel=1e-4)


def test_grasp_matches_finite_difference_hessian_product(tiny, tiny_batch):
    images, labels = tiny_batch
    model = build_model(tiny, TINY[0], 0).double()
    x = images.double()
    net = copy.deepcopy(model).train()
    ws = [m.weight for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]

    def grads():
        return torch.autograd.grad(segmentation_loss(net(x), labels), ws)

    g = [t.detach().clone() for t in grads()]
    eps = 1e-4
    with torch.no_grad():
        for w, d in zip(ws, g):
            w.add_(eps * d)
    gp = grads()
    with torch.no_grad():
        for w, d in zip(ws, g):
            w.sub_(2 * eps * d)
    gm = grads()
    with torch.no_grad():
        for w, d in zip(ws, g):
            w.add_(eps * d)
    want = sum(float((-w.detach() * (a - b) / (2 * eps)).sum()) for w, a, b in zip(ws, gp, gm))
    assert get_measure("grasp")(model, x, labels) == pytest.approx(want, rel=1e-3)


def test_swap_counts_distinct_patterns(tiny):
    images, labels = synthetic_batch(n=3, size=(16, 16), num_classes=5, seed=2)
    model = build_model(tiny, TINY[1], 0)
    net = copy.deepcopy(model).train()
    cols = set()

    def hook(mod, inp, out):
        for col in (out.reshape(3, -1) > 0).T.tolist():
            cols.add(tuple(col))

    hs = [m.register_forward_hook(hook) for m in net.modules() if isinstance(m, nn.ReLU)]
    with torch.no_grad():
        net(images)
    for h in hs:
        h.remove()
    assert get_measure("swap")(model, images, labels) == len(cols) <= 8


def test_scaling_weights(tiny, rt, tiny_batch, rt_batch):
    """synflow and l2_norm grow with the weights; BN networks' binary codes, jacov and zen do not change."""
    for space, arch in _networks(tiny, rt)[1:]:
        images, labels = tiny_batch if space is tiny else rt_batch
        model = build_model(space, arch, 0)
        big = _scaled(model, 2.0)
        a = compute_measures(model, images, labels, names=["synflow", "l2_norm", "nwot", "swap", "jacov", "zen", "params"])
        b = compute_measures(big, images, labels, names=list(a))
        assert b["synflow"] > a["synflow"] + 1.0
        assert b["l2_norm"] == pytest.approx(2 * a["l2_norm"], rel=1e-9)
        # codes are sign(x - batch mean): equal up to float rounding of values at the mean
        assert b["nwot"] == pytest.approx(a["nwot"], rel=1e-3) and b["swap"] == pytest.approx(a["swap"], rel=1e-2)
        assert b["jacov"] == pytest.approx(a["jacov"], rel=1e-3)
        assert b["zen"] == a["zen"] and b["params"] == a["params"]


def test_numerical_failure_gives_nan_not_an_exception(tiny, tiny_batch):
    images, labels = tiny_batch
    model = build_model(tiny, TINY[0], 0)
    with torch.no_grad():
        model.head.weight[0, 0] = float("nan")
    out = compute_measures(model, images, labels)
    assert math.isnan(out["snip"]) and math.isnan(out["grad_norm"])
    assert out["params"] == count_params(model)                        # what does not depend on values survives
    one = compute_measures(build_model(tiny, TINY[0], 0), images[:1], labels[:1], names=["zico", "jacov"])
    assert math.isnan(one["zico"]) and math.isnan(one["jacov"])          # need two or more samples


def test_bad_labels_are_a_user_error(tiny, tiny_batch):
    images, labels = tiny_batch
    model = build_model(tiny, TINY[0], 0)
    with pytest.raises(SaswotError):
        compute_measures(model, images, labels + 7, names=["snip"])
    with pytest.raises(SaswotError):
        compute_measures(model, images[0], labels, names=["snip"])
    ignored = labels.clone()
    ignored[:, :4] = 255
    assert math.isfinite(compute_measures(model, images, ignored, names=["snip"])["snip"])
