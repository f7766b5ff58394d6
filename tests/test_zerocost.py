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


# ------------------------------------------------------------------------------- zen (Zen-NAS reference)

def _zen_draws(gen, w_shape, x_shape):
    """What zen draws per repeat from its seeded generator: weights (module order), then x, then e."""
    w = torch.randn(w_shape, generator=gen).double()
    x = torch.randn(x_shape, generator=gen).double()
    e = torch.randn(x_shape, generator=gen).double()
    return w, x, e


def _zen_by_hand(w, x, e, gamma, rv):
    """1x1 conv (weight w, bias 0) -> train-mode BatchNorm2d (affine 1 / 0, momentum 0.1, eps 1e-5),
    written with plain tensor ops: (score, running_var after the two forwards)."""
    def conv(inp):
        return torch.einsum("oc,nchw->nohw", w.reshape(w.shape[0], w.shape[1]), inp)

    def bn(y):
        mu = y.mean((0, 2, 3), keepdim=True)
        return (y - mu) / torch.sqrt(y.var((0, 2, 3), unbiased=False, keepdim=True) + 1e-5)

    y1, y2 = conv(x), conv(x + gamma * e)
    rv = 0.9 * rv + 0.1 * y1.var((0, 2, 3), unbiased=True)
    rv = 0.9 * rv + 0.1 * y2.var((0, 2, 3), unbiased=True)
    delta = float((bn(y1) - bn(y2)).abs().sum((1, 2, 3)).mean())
    return math.log(delta) + math.log(math.sqrt(float(rv.mean()))), rv


def _conv_bn(c_in=2, c_out=3):
    model = nn.Sequential(nn.Conv2d(c_in, c_out, 1, bias=True), nn.BatchNorm2d(c_out)).double()
    with torch.no_grad():                              # the caller's values: redrawn, reset or unused by zen
        model[0].bias.fill_(0.7)
        model[1].weight.fill_(2.5)
        model[1].bias.fill_(-1.0)
        model[1].running_var.fill_(7.0)
        model[1].running_mean.fill_(3.0)
    return model


def test_zen_matches_the_published_definition_by_hand():
    model = _conv_bn()
    before = _state(model)
    images = torch.zeros(4, 2, 5, 6, dtype=torch.float64)
    labels = torch.zeros(4, 5, 6, dtype=torch.long)
    zen = get_measure("zen")
    for seed, gamma in [(0, 1e-2), (3, 0.5)]:
        gen = torch.Generator().manual_seed(seed)
        w, x, e = _zen_draws(gen, (3, 2, 1, 1), images.shape)
        want, rv = _zen_by_hand(w, x, e, gamma, torch.ones(3, dtype=torch.float64))
        assert zen(model, images, labels, seed=seed, mixup_gamma=gamma) == pytest.approx(want, abs=1e-8)
        # repeat = 2: fresh weights and inputs, running statistics carried over, scores averaged
        w, x, e = _zen_draws(gen, (3, 2, 1, 1), images.shape)
        want2, _ = _zen_by_hand(w, x, e, gamma, rv)
        got = zen(model, images, labels, seed=seed, mixup_gamma=gamma, repeat=2)
        assert got == pytest.approx((want + want2) / 2, abs=1e-8)
    assert _same(before, _state(model))                # caller's weights and BN buffers untouched
    assert compute_measures(model, images, labels, names=["zen"], seed=3)["zen"] == zen(model, images, labels, seed=3)


def test_zen_keeps_transposed_convolution_weights():
    """As the reference, only Conv2d / Linear are redrawn: the caller's ConvTranspose2d weights count."""
    model = nn.Sequential(nn.Conv2d(1, 2, 1, bias=False), nn.BatchNorm2d(2),
                          nn.ConvTranspose2d(2, 1, 2, stride=2)).double()
    images = torch.zeros(3, 1, 4, 4, dtype=torch.float64)
    labels = torch.zeros(3, 8, 8, dtype=torch.long)
    a = get_measure("zen")(model, images, labels, seed=1)
    w0 = model[2].weight.detach().clone()
    with torch.no_grad():
        model[2].weight.mul_(2.0)                      # output difference doubles; the bias cancels in it
        model[2].bias.fill_(5.0)
    b = get_measure("zen")(model, images, labels, seed=1)
    assert math.isfinite(a) and b == pytest.approx(a + math.log(2.0), abs=1e-9)
    assert torch.equal(model[2].weight, 2 * w0)
    # the earlier batch-variance definition redraws transposed convolutions too
    old_b = get_measure("zen")(model, images, labels, seed=1, bn_stat="batch_var")
    with torch.no_grad():
        model[2].weight.copy_(w0)
    old_a = get_measure("zen")(model, images, labels, seed=1, bn_stat="batch_var")
    assert old_a == old_b and math.isfinite(old_a)


class _DeadBranch(nn.Module):
    """conv -> BN plus a second BN that only ever sees zeros (a dead branch)."""

    def __init__(self, momentum=0.1):
        super().__init__()
        self.conv = nn.Conv2d(2, 3, 1, bias=False)
        self.bn = nn.BatchNorm2d(3)
        self.dead = nn.BatchNorm2d(3, momentum=momentum)

    def forward(self, x):
        y = self.bn(self.conv(x))
        return y + self.dead(torch.zeros_like(y))


def test_zen_counts_batchnorm_layers_that_see_only_zeros():
    images = torch.zeros(4, 2, 5, 6, dtype=torch.float64)
    labels = torch.zeros(4, 5, 6, dtype=torch.long)
    w, x, e = _zen_draws(torch.Generator().manual_seed(2), (3, 2, 1, 1), images.shape)
    base, _ = _zen_by_hand(w, x, e, 1e-2, torch.ones(3, dtype=torch.float64))
    zen = get_measure("zen")
    # running_var of the dead layer: 1 -> 0.9 -> 0.81, so it adds log sqrt(0.81); it is not skipped
    got = zen(_DeadBranch().double(), images, labels, seed=2)
    assert got == pytest.approx(base + 0.5 * math.log(0.81), abs=1e-8)
    live = nn.Sequential(nn.Conv2d(2, 3, 1, bias=False), nn.BatchNorm2d(3)).double()
    assert zen(_DeadBranch().double(), images, labels, seed=2, bn_stat="batch_var") == pytest.approx(
        zen(live, images, labels, seed=2, bn_stat="batch_var"), abs=1e-12)      # the earlier definition skips it
    # a cumulative-average BN fed zeros has running_var 0: log 0 = -inf, reported as NaN, no exception
    dead = _DeadBranch(momentum=None).double()
    assert zen.raw(dead, images, labels, seed=2) == -math.inf
    assert math.isnan(zen(dead, images, labels, seed=2))
    assert math.isnan(compute_measures(dead, images, labels, names=["zen"], seed=2)["zen"])
    nostats = _DeadBranch().double()
    nostats.bn.track_running_stats = False
    nostats.bn.running_var = None
    nostats.bn.running_mean = None
    assert math.isnan(zen(nostats, images, labels, seed=2))


def test_zen_options_are_checked(tiny, tiny_batch):
    model = build_model(tiny, TINY[0], 0)
    with pytest.raises(SaswotError):
        get_measure("zen")(model, *tiny_batch, bn_stat="mean")
    with pytest.raises(SaswotError):
        get_measure("zen")(model, *tiny_batch, repeat=0)
    a = get_measure("zen")(model, *tiny_batch)
    b = get_measure("zen")(model, *tiny_batch, bn_stat="batch_var")
    assert math.isfinite(a) and math.isfinite(b) and a != b
