"""Hand-designed zero-cost proxies computed on a live segmenter and one batch, registered by name.

Every measure is ``fn(model, images, labels, **opts) -> float`` registered with
:func:`register_measure` (the NASLib / Samsung "foresight" convention). The model is never changed:
a measure that runs the network in training mode, changes weights or hooks modules works on a
``copy.deepcopy``; the others only read it. Conventions (NASLib's, where it has the measure):

* weight layers are ``nn.Conv2d`` and ``nn.Linear`` (NASLib's ``get_layer_metric_array``; transposed
  convolutions are not included), and a per-weight score is aggregated as the sum over layers of
  its sum over the layer's elements;
* gradients come from one forward and one backward of :func:`segmentation_loss` (pixel-wise
  cross-entropy, ignore 255) on the whole batch in training mode (batch-statistics BatchNorm);
* ``synflow`` is reported as ``log`` of the SynFlow sum, as NASLib's ``ZeroCost`` predictor does.

Registered: ``snip grasp synflow fisher grad_norm jacov nwot zen zico swap l2_norm plain params flops``.
A measure that fails numerically (NaN, inf, singular kernel, linear-algebra error) returns NaN;
a user error (labels outside the model's classes) raises :class:`SaswotError`.
"""

from __future__ import annotations

import copy
import functools
import math
import time
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch import nn

from ..errors import NUMERICAL_ERRORS, SaswotError
from ..spaces.base import count_flops, count_params
from ..stats import segmentation_loss

WEIGHT_LAYERS: Tuple[type, ...] = (nn.Conv2d, nn.Linear)
NWOT_LAYERS: Tuple[type, ...] = (nn.ReLU, nn.ReLU6, nn.LeakyReLU)   # NASLib hooks every '*ReLU*' module
SWAP_LAYERS: Tuple[type, ...] = (nn.ReLU, nn.ReLU6)                  # SWAP hooks nn.ReLU outputs

MeasureFn = Callable[..., float]
_MEASURES: Dict[str, MeasureFn] = {}
_RAW: Dict[str, MeasureFn] = {}


def _finite(value) -> float:
    try:
        v = float(value)
    except (TypeError, ValueError, OverflowError):
        return math.nan
    return v if math.isfinite(v) else math.nan


def register_measure(name: str) -> Callable[[MeasureFn], MeasureFn]:
    """Decorator registering ``fn(model, images, labels, **opts) -> float`` under ``name`` (NaN-safe)."""
    def deco(fn: MeasureFn) -> MeasureFn:
        if name in _MEASURES:
            raise ValueError(f"zero-cost measure {name!r} is already registered")

        @functools.wraps(fn)
        def safe(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, **opts) -> float:
            try:
                return _finite(fn(model, images, labels, **opts))
            except SaswotError:
                raise
            except NUMERICAL_ERRORS:
                return math.nan

        safe.raw = fn  # type: ignore[attr-defined]
        _MEASURES[name] = safe
        _RAW[name] = fn
        return safe
    return deco


def measure_names() -> List[str]:
    """Names of all registered measures, in registration order."""
    return list(_MEASURES)


def get_measure(name: str) -> MeasureFn:
    """The NaN-safe registered measure ``name`` (SaswotError listing the known names if unknown)."""
    if name not in _MEASURES:
        raise SaswotError(f"unknown zero-cost measure {name!r}; expected one of {', '.join(_MEASURES)}")
    return _MEASURES[name]


# ------------------------------------------------------------------------------------- helpers

def _logits(out) -> torch.Tensor:
    if isinstance(out, dict):
        out = out["out"]
    if isinstance(out, (tuple, list)):
        out = out[0]
    return out


def _check_batch(images: torch.Tensor, labels: torch.Tensor) -> None:
    if not isinstance(images, torch.Tensor) or images.dim() != 4:
        raise SaswotError(f"images must be a (N, C, H, W) tensor; got {getattr(images, 'shape', type(images))}")
    if not isinstance(labels, torch.Tensor) or labels.dim() != 3 or labels.shape[0] != images.shape[0]:
        raise SaswotError(f"labels must be a (N, H, W) tensor with N = {images.shape[0]}; "
                          f"got {getattr(labels, 'shape', type(labels))}")


def _shared(opts: dict) -> dict:
    """The per-call scratch space ``compute_measures`` shares between measures (a fresh one otherwise)."""
    s = opts.get("_shared")
    return s if isinstance(s, dict) else {}


def _train_copy(model: nn.Module, shared: dict) -> nn.Module:
    """A deepcopy of ``model`` in training mode with cleared gradients (shared by gradient measures)."""
    net = shared.get("train_copy")
    if net is None:
        net = copy.deepcopy(model)
        net.train()
        shared["train_copy"] = net
    net.zero_grad(set_to_none=True)
    return net


def _weight_layers(net: nn.Module) -> List[nn.Module]:
    return [m for m in net.modules() if isinstance(m, WEIGHT_LAYERS) and m.weight.requires_grad]


def _grad_pass(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, shared: dict) -> List[dict]:
    """One forward + backward of the loss in training mode: per weight layer W, dL/dW and Fisher terms.

    The Fisher term of output channel k is 0.5 * mean_n (sum_hw a * dL/da)^2 (Theis et al. 2018, as
    NASLib), obtained as the gradient of a per-(sample, channel) scale s = 1 put on the layer output.
    """
    if "grad_pass" in shared:
        return shared["grad_pass"]
    net = _train_copy(model, shared)
    layers = _weight_layers(net)
    probes: Dict[int, List[torch.Tensor]] = {}

    def hook(mod, inp, out):
        if not isinstance(out, torch.Tensor) or out.dim() < 2:
            return None
        s = torch.ones(out.shape[0], out.shape[1], *([1] * (out.dim() - 2)), dtype=out.dtype,
                       device=out.device, requires_grad=True)
        probes.setdefault(id(mod), []).append(s)
        return out * s

    handles = [m.register_forward_hook(hook) for m in layers]
    try:
        segmentation_loss(net(images), labels).backward()
    finally:
        for h in handles:
            h.remove()
    res = []
    for m in layers:
        w = m.weight.detach()
        g = m.weight.grad.detach().clone() if m.weight.grad is not None else torch.zeros_like(w)
        fisher = torch.zeros(w.shape[0], dtype=torch.float64, device=w.device)
        for s in probes.get(id(m), []):
            if s.grad is not None:
                fisher += 0.5 * s.grad.detach().reshape(s.shape[0], -1).double().pow(2).mean(0)
        res.append({"w": w, "g": g, "fisher": fisher})
    net.zero_grad(set_to_none=True)
    shared["grad_pass"] = res
    return res


def _layer_sum(values: Iterable[torch.Tensor]) -> float:
    """Sum over layers of the sum of each layer's tensor (NASLib's ``sum_arr``), in double precision."""
    total = 0.0
    for v in values:
        total += float(v.double().sum())
    return total


# ------------------------------------------------------------------------------------- measures

@register_measure("snip")
def snip(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, **opts) -> float:
    """SNIP (Lee et al. 2019): sum over layers of sum |W * dL/dW|."""
    return _layer_sum((r["w"] * r["g"]).abs() for r in _grad_pass(model, images, labels, _shared(opts)))


@register_measure("grad_norm")
def grad_norm(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, **opts) -> float:
    """Gradient norm (Abdelfattah et al. 2021): sum over layers of ||dL/dW||_2."""
    return _layer_sum(r["g"].double().norm() for r in _grad_pass(model, images, labels, _shared(opts)))


@register_measure("plain")
def plain(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, **opts) -> float:
    """Plain (NASLib / Mozer & Smolensky): sum over layers of sum W * dL/dW (signed)."""
    return _layer_sum(r["w"] * r["g"] for r in _grad_pass(model, images, labels, _shared(opts)))


@register_measure("fisher")
def fisher(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, **opts) -> float:
    """Fisher (Theis et al. 2018): per output channel 0.5 * mean_n (sum_hw a * dL/da)^2 of each layer output.

    As NASLib, each channel's value is broadcast to the channel's weights before summing, i.e. it is
    weighted by the layer's fan-in (``prod(weight.shape[1:])``).
    """
    total = 0.0
    for r in _grad_pass(model, images, labels, _shared(opts)):
        total += float(r["fisher"].sum()) * int(np.prod(r["w"].shape[1:]))
    return total


@register_measure("grasp")
def grasp(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, **opts) -> float:
    """GraSP (Wang et al. 2020): sum over layers of sum -W * (H g), H g the Hessian-gradient product."""
    net = _train_copy(model, _shared(opts))
    weights = [m.weight for m in _weight_layers(net)]
    g = torch.autograd.grad(segmentation_loss(net(images), labels), weights, allow_unused=True)
    gf = torch.autograd.grad(segmentation_loss(net(images), labels), weights, create_graph=True, allow_unused=True)
    terms = [(a.detach() * b).sum() for a, b in zip(g, gf) if a is not None and b is not None]
    if not terms:
        return math.nan
    hg = torch.autograd.grad(torch.stack(terms).sum(), weights, allow_unused=True)
    return _layer_sum(-w.detach() * h for w, h in zip(weights, hg) if h is not None)


@register_measure("synflow")
def synflow(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, **opts) -> float:
    """log SynFlow (Tanaka et al. 2020): log sum |W * dR/dW|, R = sum of the output of |W| on an all-ones input.

    As NASLib: a copy with every parameter and buffer made absolute, BatchNorm bypassed (identity),
    double precision, one all-ones image of the batch's shape; the log is NASLib's reported form.
    """
    net = copy.deepcopy(model)
    for mod in list(net.modules()):
        for name, child in list(mod._modules.items()):
            if isinstance(child, nn.modules.batchnorm._BatchNorm):
                mod._modules[name] = nn.Identity()
    net = net.double().eval()
    with torch.no_grad():
        for t in list(net.parameters()) + list(net.buffers()):
            if t.is_floating_point():
                t.abs_()
    x = torch.ones((1,) + tuple(images.shape[1:]), dtype=torch.float64, device=images.device)
    _logits(net(x)).sum().backward()
    s = _layer_sum((m.weight.detach() * m.weight.grad).abs() for m in _weight_layers(net) if m.weight.grad is not None)
    return math.log(s) if s > 0 else math.nan


@register_measure("jacov")
def jacov(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, **opts) -> float:
    """Jacobian covariance (Mellor et al. 2020, NASLib form): -sum(log(v + k) + 1/(v + k)), k = 1e-5.

    ``v`` are the eigenvalues of the correlation matrix of the per-sample input Jacobians of the
    summed output logits (training mode, as NASLib).
    """
    net = _train_copy(model, _shared(opts))
    x = images.detach().clone().requires_grad_(True)
    (jac,) = torch.autograd.grad(_logits(net(x)).sum(), x)
    j = jac.reshape(jac.shape[0], -1).double().cpu().numpy()
    if j.shape[0] < 2:
        return math.nan
    with np.errstate(all="ignore"):
        corr = np.corrcoef(j)
    if not np.all(np.isfinite(corr)):
        return math.nan
    v = np.linalg.eigvalsh(corr)
    k = 1e-5
    return float(-np.sum(np.log(v + k) + 1.0 / (v + k)))


@register_measure("nwot")
def nwot(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, **opts) -> float:
    """NASWOT (Mellor et al. 2021, v2): log|K|, K_ij = number of equal bits of the ReLU binary codes of samples i, j.

    Codes are ``input > 0`` of every ReLU / ReLU6 / LeakyReLU module (NASLib hooks every '*ReLU*'
    module); K sums x x^T + (1 - x)(1 - x)^T over layers (N - Hamming distance).
    """
    net = _train_copy(model, _shared(opts))
    n = images.shape[0]
    kern = torch.zeros(n, n, dtype=torch.float64)

    def hook(mod, inp, out):
        x = (inp[0].detach().reshape(n, -1) > 0).double().cpu()
        kern.add_(x @ x.T).add_((1.0 - x) @ (1.0 - x).T)

    if not _forward_with_hooks(net, images, NWOT_LAYERS, hook):
        return math.nan
    sign, logdet = np.linalg.slogdet(kern.numpy())
    return float(logdet) if sign != 0 else math.nan


def _forward_with_hooks(net: nn.Module, images: torch.Tensor, layer_types, hook) -> int:
    """One gradient-free forward with ``hook`` on every module of ``layer_types``; returns how many were hooked."""
    handles = [m.register_forward_hook(hook) for m in net.modules() if isinstance(m, layer_types)]
    try:
        with torch.no_grad():
            net(images)
    finally:
        for h in handles:
            h.remove()
    return len(handles)


def _pack_bits(bits: torch.Tensor) -> torch.Tensor:
    """(positions, N) booleans -> (positions, ceil(N / 62)) int64 codes (62 bits a word)."""
    n = bits.shape[1]
    words = []
    for start in range(0, n, 62):
        chunk = bits[:, start:start + 62].long()
        pw = torch.pow(2, torch.arange(chunk.shape[1], dtype=torch.int64, device=bits.device))
        words.append((chunk * pw).sum(1))
    return torch.stack(words, 1)


SWAP_ADVICE_BATCH = 32              # batch size suggested when swap saturates (2^32 patterns)


@register_measure("swap")
def swap(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, **opts) -> float:
    """SWAP (Peng et al. 2024): number of distinct sample-wise activation patterns.

    Each post-ReLU unit (every channel and position of every 4-D ReLU output) gives one binary
    vector ``out > 0`` over the N samples; the score counts the distinct vectors over all units.
    No parameter regularisation. The count is at most 2^N: with few images every network with
    enough units reaches it and the score no longer ranks anything (:func:`swap_saturation` says so;
    use a batch of 16 or more, 32 in this project's results). A network without a 4-D ReLU / ReLU6
    output has no patterns: ``ValueError`` (NaN from the registered measure, the reason in
    ``compute_measures``' ``errors``).
    """
    net = _train_copy(model, _shared(opts))
    n = images.shape[0]
    codes: List[torch.Tensor] = []

    def hook(mod, inp, out):
        if isinstance(out, torch.Tensor) and out.dim() == 4:
            bits = (out.detach().reshape(n, -1) > 0).T
            codes.append(torch.unique(_pack_bits(bits), dim=0))

    hooked = _forward_with_hooks(net, images, SWAP_LAYERS, hook)
    if not codes:
        raise ValueError(f"no activation patterns: the network has {hooked} nn.ReLU / nn.ReLU6 modules "
                         f"and none gave a 4-D output")
    return float(torch.unique(torch.cat(codes), dim=0).shape[0])


def swap_saturation(scores, n_images: int) -> Optional[str]:
    """Why swap scores of a batch of ``n_images`` cannot rank, or None: how many reach the ceiling 2^n_images.

    ``scores`` is one swap score or several (NaN ones are left out). The text starts with
    'saturated:' and suggests a larger ``--batch-size``.
    """
    s = np.atleast_1d(np.asarray(scores, dtype=np.float64))
    s = s[np.isfinite(s)]
    ceiling = 2.0 ** int(n_images)
    at = int((s >= ceiling).sum())
    if at == 0:
        return None
    who = (f"all {at} architectures show" if at == len(s) and at > 1 else
           "the architecture shows" if at == len(s) else f"{at} of {len(s)} architectures show")
    return (f"saturated: {who} all {ceiling:.0f} = 2^{int(n_images)} activation patterns that {int(n_images)} "
            f"images allow; use --batch-size {SWAP_ADVICE_BATCH} or more")


@register_measure("zico")
def zico(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, splits: int = 2, **opts) -> float:
    """ZiCo (Li et al. 2023): sum over layers of log sum_theta mean_b|g_b| / std_b(g_b).

    ``g_b`` is the weight gradient on mini-batch ``b``; the batch is split into ``splits`` (>= 2)
    mini-batches; weights whose gradient has zero deviation are skipped, as in the official code.
    """
    n = images.shape[0]
    splits = int(splits)
    if splits < 2 or n < splits:
        return math.nan
    net = _train_copy(model, _shared(opts))
    layers = _weight_layers(net)
    grads: List[List[torch.Tensor]] = [[] for _ in layers]
    for idx in torch.tensor_split(torch.arange(n), splits):
        net.zero_grad(set_to_none=True)
        segmentation_loss(net(images[idx]), labels[idx]).backward()
        for i, m in enumerate(layers):
            g = m.weight.grad
            grads[i].append(g.detach().reshape(-1).double().clone() if g is not None else torch.zeros(m.weight.numel(), dtype=torch.float64))
    net.zero_grad(set_to_none=True)
    total = 0.0
    for gl in grads:
        mean = sum(gl) / len(gl)
        std = (sum((g - mean).square() for g in gl) / len(gl)).sqrt()   # row-wise ops: fast on CPU
        mean_abs = sum(g.abs() for g in gl) / len(gl)
        nz = std > 0
        s = float((mean_abs[nz] / std[nz]).sum())
        if s > 0:
            total += math.log(s)
    return total


ZEN_BN_STATS = ("running_var", "batch_var")


@register_measure("zen")
def zen(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, seed: int = 0, mixup_gamma: float = 1e-2,
        repeat: int = 1, bn_stat: str = "running_var", **opts) -> float:
    """Zen-score (Lin et al. 2021), as the published Zen-NAS code computes it (``compute_zen_score.py``).

    Per repeat, on a copy in training mode: every ``nn.Conv2d`` and ``nn.Linear`` weight is redrawn
    from N(0, 1) and its bias zeroed, ``nn.BatchNorm2d`` / ``nn.GroupNorm`` affine set to 1 / 0 (other
    layers, e.g. ``nn.ConvTranspose2d``, keep the caller's weights and biases); Gaussian x, e of the
    batch's shape; ``f`` is the segmenter's logit map (Zen-NAS's pre-pooling feature). The score is
    ``log mean_n ||f(x) - f(x + mixup_gamma e)||_1 + sum over nn.BatchNorm2d of log sqrt(mean running_var)``,
    the running variances being those left by the two forwards (each layer's own momentum, 0.1 by
    default: ``0.9 * 1 + 0.1 * unbiased batch var`` after the first). No layer is skipped: a BN whose
    running variance is 0 (``momentum=None`` and only zeros seen) or identical outputs make the raw
    value -inf, which the registered measure reports as NaN; so does a BN without running statistics.
    ``repeat`` > 1 averages the per-repeat scores, running statistics carrying over between repeats
    as in the reference. The copy's BN running statistics start from their reset values (mean 0,
    var 1), as on the freshly built networks the reference scores. Draws come from a
    ``torch.Generator`` seeded with ``seed``: per repeat the weights in module order, then x, then e.

    ``bn_stat="batch_var"`` is this project's earlier definition (Spearman 0.916 against the
    reference): the BN term uses each ``_BatchNorm`` layer's biased mini-batch variance of its input on
    x, layers fed only zeros are skipped, and every ``_ConvNd`` (transposed convolutions too) is redrawn.
    """
    if bn_stat not in ZEN_BN_STATS:
        raise SaswotError(f"zen: unknown bn_stat {bn_stat!r}; expected one of {', '.join(ZEN_BN_STATS)}")
    repeat = int(repeat)
    if repeat < 1:
        raise SaswotError(f"zen: repeat must be >= 1; got {repeat}")
    legacy = bn_stat == "batch_var"
    redrawn = (nn.modules.conv._ConvNd, nn.Linear) if legacy else (nn.Conv2d, nn.Linear)
    affine = (nn.modules.batchnorm._BatchNorm, nn.GroupNorm) if legacy else (nn.BatchNorm2d, nn.GroupNorm)
    bn_layers = (nn.modules.batchnorm._BatchNorm,) if legacy else (nn.BatchNorm2d,)
    gen = torch.Generator().manual_seed(int(seed))
    net = copy.deepcopy(model)
    net.train()
    if not legacy:
        for m in net.modules():
            if isinstance(m, nn.BatchNorm2d) and m.track_running_stats:
                m.reset_running_stats()
    scores: List[float] = []
    for _ in range(repeat):
        with torch.no_grad():
            for m in net.modules():
                if isinstance(m, redrawn):
                    m.weight.copy_(torch.randn(m.weight.shape, generator=gen))
                    if m.bias is not None:
                        m.bias.zero_()
                elif isinstance(m, affine) and m.weight is not None:
                    m.weight.fill_(1.0)
                    m.bias.zero_()
        x = torch.randn(images.shape, generator=gen).to(images.device, images.dtype)
        e = torch.randn(images.shape, generator=gen).to(images.device, images.dtype)
        log_bn: List[float] = []

        def hook(mod, inp, out):
            v = inp[0].detach().double()
            dims = [d for d in range(v.dim()) if d != 1]
            var = float(v.var(dim=dims, unbiased=False).mean())
            if var > 0:                  # a BN fed only zeros (a dead branch) carries no signal: skipped
                log_bn.append(0.5 * math.log(var))

        handles = ([m.register_forward_hook(hook) for m in net.modules() if isinstance(m, bn_layers)]
                   if legacy else [])
        try:
            with torch.no_grad():
                out = _logits(net(x)).double()
        finally:
            for h in handles:
                h.remove()
        with torch.no_grad():
            out2 = _logits(net(x + mixup_gamma * e)).double()
        delta = (out - out2).abs().reshape(out.shape[0], -1).sum(1).mean()
        if not legacy:
            for m in net.modules():
                if isinstance(m, bn_layers):
                    if m.running_var is None:
                        return math.nan          # no running statistics: the reference's term is undefined
                    log_bn.append(float(torch.log(m.running_var.double().mean().sqrt())))
        scores.append(float(torch.log(delta)) + sum(log_bn))
    return sum(scores) / len(scores)


@register_measure("l2_norm")
def l2_norm(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, **opts) -> float:
    """L2 norm (NASLib): sum over layers of ||W||_2 (no forward pass)."""
    return _layer_sum(m.weight.detach().double().norm() for m in _weight_layers(model))


@register_measure("params")
def params(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, **opts) -> float:
    """Number of trainable parameters (``count_params``)."""
    return float(count_params(model))


@register_measure("flops")
def flops(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, **opts) -> float:
    """Multiply-accumulates of conv and linear layers for one image of the batch's size (``count_flops``)."""
    return float(count_flops(model, images[:1]))


# ---------------------------------------------------------------------------------------- driver

def compute_measures(model: nn.Module, images: torch.Tensor, labels: torch.Tensor,
                     names: Optional[Sequence[str]] = None, seed: int = 0,
                     times: Optional[Dict[str, float]] = None,
                     errors: Optional[Dict[str, str]] = None) -> Dict[str, float]:
    """Several measures (all registered by default) on one model and batch; NaN where one fails.

    Measures share one training-mode copy of the model and one gradient pass (snip, grad_norm, plain,
    fisher). ``times`` (if given) receives seconds per measure (a shared pass counts for the first
    measure that needs it); ``errors`` receives the exception text of measures that failed.
    """
    names = list(measure_names() if names is None else names)
    for n in names:
        get_measure(n)
    _check_batch(images, labels)
    shared: dict = {}
    out: Dict[str, float] = {}
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        for n in names:
            t0 = time.perf_counter()
            try:
                out[n] = _finite(_RAW[n](model, images, labels, seed=int(seed), _shared=shared))
            except SaswotError:
                raise
            except NUMERICAL_ERRORS as exc:
                out[n] = math.nan
                if errors is not None:
                    errors[n] = f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
            if times is not None:
                times[n] = time.perf_counter() - t0
    return out
