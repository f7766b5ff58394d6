import numpy as np
import pytest
import torch
from torch import nn

from saswot_gp.errors import SaswotError
from saswot_gp.proxy import Proxy
from saswot_gp.stats import collect_stats, pack, stats_for_archs
from saswot_gp.stats.cache import build_model

from conftest import TINY_ARCHS


def _convs(model):
    return [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear))]


def _reference(model, images, labels):
    """Full W, G, A, AG per layer by plain autograd (no sketching)."""
    outs = {}

    def keep(m, i, o):
        o.retain_grad()
        outs[m] = o
    hooks = [m.register_forward_hook(keep) for m in _convs(model)]
    model.train()
    model.zero_grad()
    from saswot_gp.stats import segmentation_loss
    segmentation_loss(model(images), labels).backward()
    for h in hooks:
        h.remove()
    return [(m.weight.detach().clone(), m.weight.grad.clone(), outs[m].detach().clone(), outs[m].grad.clone()) for m in _convs(model)]


def test_full_statistics_equal_autograd(tiny_space, batch):
    images, labels = batch
    model = build_model(tiny_space, TINY_ARCHS[2], seed=3)
    st = collect_stats(model, images, labels, k=None)
    ref = _reference(model, images, labels)
    assert st.n_layers == len(ref) == 5
    for i, (w, g, a, ag) in enumerate(ref):
        np.testing.assert_allclose(st.w[st.w_layer == i], w.flatten().numpy(), rtol=1e-6)
        np.testing.assert_allclose(st.g[st.w_layer == i], g.flatten().numpy(), rtol=1e-4, atol=1e-8)
        np.testing.assert_allclose(st.a[st.a_layer == i], a.reshape(a.shape[0], -1).t().numpy(), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(st.ag[st.a_layer == i], ag.reshape(ag.shape[0], -1).t().numpy(), rtol=1e-4, atol=1e-9)
        assert st.w_numel[i] == w.numel() and st.a_numel[i] == a.numel()
        assert st.layer["channels"][i] == a.shape[1] and st.layer["resolution"][i] == a.shape[2] * a.shape[3]
    assert st.arch["params"] == sum(p.numel() for p in model.parameters())


def test_sketches_are_aligned(tiny_space, batch):
    """Sketched G sits at the same positions as sketched W; A rows are the same positions in every sample."""
    images, labels = batch
    model = build_model(tiny_space, TINY_ARCHS[1], seed=0)
    with torch.no_grad():
        for m in _convs(model):  # weight value identifies its position
            m.weight.copy_(torch.arange(m.weight.numel(), dtype=torch.float32).reshape(m.weight.shape) * 1e-3 + 1e-4)
    ref = _reference(model, images, labels)
    st = collect_stats(model, images, labels, k=32, seed=7)
    for i, (w, g, a, ag) in enumerate(ref):
        sw = st.w[st.w_layer == i]
        assert len(sw) == min(32, w.numel())
        pos = np.rint((sw - 1e-4) / 1e-3).astype(int)
        np.testing.assert_allclose(st.g[st.w_layer == i], g.flatten().numpy()[pos], rtol=1e-4, atol=1e-9)
        full_a = a.reshape(a.shape[0], -1).numpy()
        rows = st.a[st.a_layer == i]
        assert rows.shape[1] == images.shape[0] and rows.shape[0] == min(32 // images.shape[0], full_a.shape[1])
        for r, agr in zip(rows, st.ag[st.a_layer == i]):
            j = np.flatnonzero(np.all(np.isclose(full_a.T, r, rtol=1e-5, atol=1e-6), axis=1))
            assert len(j) >= 1, "activation row is not one position across the batch"
            assert any(np.allclose(ag.reshape(ag.shape[0], -1).numpy()[:, jj], agr, rtol=1e-4, atol=1e-9) for jj in j)


def test_sketched_sums_estimate_full_sums(tiny_space, batch):
    images, labels = batch
    model = build_model(tiny_space, "32k3s1_32k3s1", seed=0)
    full = pack([collect_stats(model, images, labels, k=None)])
    est = [pack([collect_stats(model, images, labels, k=512, seed=s)]) for s in range(20)]
    p = Proxy.parse("layers_sum(l1_w(W))")
    truth = p.evaluate(full).item()
    mean_est = np.mean([p.evaluate(e).item() for e in est])
    assert abs(mean_est - truth) / truth < 0.05
    # the estimate is scaled: without scaling it would be about numel/k times too small
    assert abs(p.evaluate(est[0]).item() - truth) / truth < 0.3


def test_collection_is_deterministic(tiny_space, batch):
    images, labels = batch
    a = collect_stats(build_model(tiny_space, TINY_ARCHS[0], seed=1), images, labels, k=16, seed=5)
    b = collect_stats(build_model(tiny_space, TINY_ARCHS[0], seed=1), images, labels, k=16, seed=5)
    c = collect_stats(build_model(tiny_space, TINY_ARCHS[0], seed=1), images, labels, k=16, seed=6)
    np.testing.assert_array_equal(a.w, b.w)
    np.testing.assert_array_equal(a.ag, b.ag)
    assert not np.array_equal(a.w, c.w)


def test_packing_segments_and_vectorised_equals_live(tiny_space, batch, packed, tiny_stats):
    images, labels = batch
    assert packed.n_archs == len(TINY_ARCHS)
    assert packed.n_layers == sum(s.n_layers for s in tiny_stats)
    p = Proxy.parse("layers_mean(div_l(std_a(AG), add_l(l2_w(mul_w(W, G)), logdet_a(A))))")
    vec = p.evaluate(packed)
    for i, arch in enumerate(TINY_ARCHS):
        live = p.score(build_model(tiny_space, arch, seed=0), images, labels, k=64, seed=0)
        assert live == pytest.approx(vec[i].item(), rel=1e-9)
        single = p.evaluate(pack([tiny_stats[i]]))
        assert single.item() == pytest.approx(vec[i].item(), rel=1e-12)


def test_params_terminal_and_layer_sums(packed, tiny_space):
    params = Proxy.parse("params").evaluate(packed).numpy()
    layer_sum = Proxy.parse("layers_sum(params_l)").evaluate(packed).numpy()
    built = [sum(p.numel() for p in tiny_space.build(a).parameters()) for a in TINY_ARCHS]
    np.testing.assert_array_equal(params, built)
    bn = [sum(m.weight.numel() * 2 for m in tiny_space.build(a).modules() if isinstance(m, nn.BatchNorm2d)) for a in TINY_ARCHS]
    np.testing.assert_array_equal(layer_sum + bn, built)  # params_l counts conv layers only


def test_logdet_matches_numpy_reference(packed):
    ld = packed.logdet(packed.a).numpy()
    a, seg = packed.a.numpy(), packed.a_seg.numpy()
    for layer in range(packed.n_layers):
        c = (a[seg == layer] > 0).astype(float)
        k = c.T @ c + (1 - c).T @ (1 - c) + 1e-3 * np.eye(c.shape[1])
        assert ld[layer] == pytest.approx(np.linalg.slogdet(k)[1], rel=1e-6, abs=1e-6)


def test_nwot_operator_is_one_kernel_over_all_layers_codes(tiny_space, batch):
    """nwot_a on full tensors equals NWOT's log|K| with K summed over every unit of every layer (numpy)."""
    images, labels = batch
    arch = TINY_ARCHS[5]
    st = collect_stats(build_model(tiny_space, arch, seed=0), images, labels, k=None, seed=0)
    got = Proxy.parse("nwot_a(A)").evaluate(pack([st])).item()
    c = (st.a > 0).astype(float)  # (all units of all layers, batch)
    k = c.T @ c + (1 - c).T @ (1 - c) + 1e-3 * np.eye(c.shape[1])
    assert got == pytest.approx(np.linalg.slogdet(k)[1], rel=1e-9)
    # a sketch weights each layer's kernel by full / sketched positions: close to the full value, unlike a plain sum
    sk = collect_stats(build_model(tiny_space, arch, seed=0), images, labels, k=64, seed=0)
    approx = Proxy.parse("nwot_a(A)").evaluate(pack([sk])).item()
    assert abs(approx - got) < 0.1 * abs(got)


def test_cache_roundtrip_without_pickle(tiny_space, batch, tmp_path, monkeypatch):
    images, labels = batch
    first = stats_for_archs(tiny_space, TINY_ARCHS[:3], images, labels, k=32, cache_dir=str(tmp_path))
    files = sorted(tmp_path.glob("*.npz"))
    assert len(files) == 3 and not list(tmp_path.glob("*.tmp"))
    np.load(files[0], allow_pickle=False)  # plain arrays only

    def boom(*a, **k):
        raise AssertionError("collect_stats called despite the cache")
    monkeypatch.setattr("saswot_gp.stats.cache.collect_stats", boom)
    again = stats_for_archs(tiny_space, TINY_ARCHS[:3], images, labels, k=32, cache_dir=str(tmp_path))
    for x, y in zip(first, again):
        np.testing.assert_array_equal(x.a, y.a)
        assert x.arch == y.arch
    with pytest.raises(AssertionError, match="despite"):  # another K is another key
        stats_for_archs(tiny_space, TINY_ARCHS[:1], images, labels, k=16, cache_dir=str(tmp_path))


def test_bad_batches_rejected(tiny_space, batch):
    images, labels = batch
    model = tiny_space.build(TINY_ARCHS[0])
    with pytest.raises(SaswotError, match="expected images"):
        collect_stats(model, images[0], labels)
    with pytest.raises(SaswotError, match="sketch size"):
        collect_stats(model, images, labels, k=0)
    with pytest.raises(SaswotError, match="no Conv2d"):
        collect_stats(nn.Identity(), images, labels)
    with pytest.raises(SaswotError, match="class 4 but the model outputs 3"):
        collect_stats(tiny_space.build(TINY_ARCHS[0], num_classes=3), images, labels)


def test_dict_output_and_inplace_relu(batch):
    """torchvision-style dict outputs work; an in-place op after a conv does not corrupt its activation."""
    images, labels = batch

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.c1 = nn.Conv2d(3, 8, 3, padding=1)
            self.relu = nn.ReLU(inplace=True)
            self.c2 = nn.Conv2d(8, 5, 1)

        def forward(self, x):
            return {"out": self.c2(self.relu(self.c1(x)))}

    torch.manual_seed(0)
    net = Net()
    st = collect_stats(net, images, labels, k=None)
    with torch.no_grad():
        ref = net.c1(images)
    np.testing.assert_allclose(st.a[st.a_layer == 0], ref.reshape(4, -1).t().numpy(), rtol=1e-5, atol=1e-6)
    assert (st.a[st.a_layer == 0] < 0).any()
