"""Latency lookup table (LUT) of the ``realtime`` space: time every building block once, predict by summing.

A realtime network is a stem (down to 1/8), ``num_layers`` searchable layers and a two-branch head, so
its batch-1 latency is approximately the sum of the latencies of those parts. :func:`build_lut`
enumerates every distinct part that can occur in the space at one input resolution, times each one
alone (batch 1, ``torch.inference_mode``, median of ``repeats`` after ``warmup``) and stores the
result keyed so that :meth:`LatencyTable.predict` is a pure lookup:

* ``stem:{base_width}:{H}x{W}``: the four stem convolutions on the ``H x W`` input;
* ``layer:{op}:{cin}:{cout}:{stride}:{h}x{w}``: one searchable layer (``make_op(op, cin, cout, stride,
  residual)``) on an ``h x w`` input;
* ``head:{c_hi}:{c_lo}:L{level_hi}:L{level_lo}``: ``proj_hi``, ``proj_lo``, the bilinear upsampling of
  the coarse branch, the sum, ``fuse``, ``classifier`` and the final upsampling to the input size
  (head width and class count are the table's, from its space settings).

Every entry also records its trainable parameters and multiply-accumulates, so the sums reproduce
``count_params`` / ``count_flops`` of the whole network (a check that the decomposition is complete).
Files are JSON (written atomically), validated on load; nothing in them is executed.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import math
import random
import statistics
import time
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import torch
import torch.nn.functional as F
from torch import nn

from .errors import SaswotError
from .io import atomic_write_json

LUT_FORMAT = "saswot-gp-latency-lut"
LUT_VERSION = 1
SPACE_KWARGS = ("base_width", "input_size", "num_classes", "num_layers", "head_width", "residual")

Progress = Callable[[int, int, str], None]


# ------------------------------------------------------------------------------------------ keys

def _hw(size: Sequence[int]) -> str:
    return f"{int(size[0])}x{int(size[1])}"


def stem_key(base_width: int, resolution: Sequence[int]) -> str:
    """Key of the stem for ``base_width`` on an input of ``resolution`` (H, W)."""
    return f"stem:{int(base_width)}:{_hw(resolution)}"


def layer_key(op: str, cin: int, cout: int, stride: int, in_size: Sequence[int]) -> str:
    """Key of one searchable layer (operator, channels in/out, stride, input spatial size)."""
    return f"layer:{op}:{int(cin)}:{int(cout)}:{int(stride)}:{_hw(in_size)}"


def head_key(c_hi: int, c_lo: int, level_hi: int, level_lo: int) -> str:
    """Key of the head fusing a ``c_hi``-channel branch at ``level_hi`` with a ``c_lo``-channel one at ``level_lo``."""
    return f"head:{int(c_hi)}:{int(c_lo)}:L{int(level_hi)}:L{int(level_lo)}"


def _level_size(resolution: Sequence[int], level: int) -> Tuple[int, int]:
    f = 8 * 2 ** level
    return (-(-int(resolution[0]) // f), -(-int(resolution[1]) // f))


def space_kwargs(space) -> Dict[str, object]:
    """The constructor settings of a realtime ``space`` as a JSON-friendly dict."""
    _require_realtime(space)
    return {"base_width": int(space.base_width), "input_size": [int(v) for v in space.input_size],
            "num_classes": int(space.num_classes), "num_layers": int(space.num_layers),
            "head_width": int(space.head_width), "residual": bool(space.residual)}


def _require_realtime(space) -> None:
    if getattr(space, "name", None) != "realtime":
        raise SaswotError(f"latency tables exist only for the 'realtime' space, not {getattr(space, 'name', space)!r}")


def arch_keys(space, arch: str) -> List[str]:
    """The LUT keys whose latencies add up to ``arch``'s (stem, one per layer, head), in network order."""
    from .spaces.realtime import _channels
    _require_realtime(space)
    layers = space.decode(arch)
    res = space.input_size
    c8 = 2 * space.base_width
    keys = [stem_key(space.base_width, res)]
    level, cin, c_hi = 0, c8, c8
    for layer in layers:
        in_size = _level_size(res, level)
        level += int(layer.down)
        cout = _channels(space.base_width, level, layer.width)
        keys.append(layer_key(layer.op, cin, cout, 2 if layer.down else 1, in_size))
        if level == 0:
            c_hi = cout
        cin = cout
    keys.append(head_key(c_hi, cin, 0, level))
    return keys


def enumerate_configs(space) -> Dict[str, Tuple]:
    """Every distinct stem, layer and head configuration reachable in ``space``: key -> config tuple.

    Reachability is exact: layer ``i`` sees the channel counts that layers before it can produce, and
    a path keeps 1-2 descents (the last layer must descend if none did).
    """
    from .spaces.realtime import MAX_DOWNS, MIN_DOWNS, OPS, WIDTHS, _channels
    _require_realtime(space)
    bw, res, n = space.base_width, space.input_size, space.num_layers
    c8 = 2 * bw
    out: Dict[str, Tuple] = {stem_key(bw, res): ("stem", bw, tuple(res))}
    states = {(0, c8, c8)}  # (level, current channels, channels of the last 1/8 feature)
    for i in range(n):
        remaining = n - 1 - i
        new_states = set()
        for level, cin, c_hi in sorted(states):
            for down in (False, True):
                new_level = level + int(down)
                if new_level > MAX_DOWNS or new_level + min(remaining, MAX_DOWNS) < MIN_DOWNS:
                    continue
                in_size = _level_size(res, level)
                for width in WIDTHS:
                    cout = _channels(bw, new_level, width)
                    for op in OPS:
                        stride = 2 if down else 1
                        out.setdefault(layer_key(op, cin, cout, stride, in_size), ("layer", op, cin, cout, stride,
                                                                                    in_size))
                    new_states.add((new_level, cout, cout if new_level == 0 else c_hi))
        states = new_states
    for level, c_lo, c_hi in sorted(states):
        if MIN_DOWNS <= level <= MAX_DOWNS:
            out.setdefault(head_key(c_hi, c_lo, 0, level), ("head", c_hi, c_lo, 0, level))
    return out


# ----------------------------------------------------------------------------------- modules

class HeadBlock(nn.Module):
    """The realtime head alone: input ``(hi, lo)``; same operations as ``RealtimeNet.forward`` after the layers."""

    def __init__(self, c_hi: int, c_lo: int, head_width: int, num_classes: int, out_size: Sequence[int]):
        super().__init__()
        from .spaces.realtime import ConvBNReLU
        self.out_size = (int(out_size[0]), int(out_size[1]))
        self.proj_hi = ConvBNReLU(c_hi, head_width, 1)
        self.proj_lo = ConvBNReLU(c_lo, head_width, 1)
        self.fuse = ConvBNReLU(head_width, head_width, 3)
        self.classifier = nn.Conv2d(head_width, num_classes, 1)

    def forward(self, xs: Tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
        """Logits at ``out_size`` from the 1/8 feature ``hi`` and the coarse feature ``lo``."""
        hi, lo = xs
        hi = self.proj_hi(hi)
        lo = F.interpolate(self.proj_lo(lo), size=hi.shape[-2:], mode="bilinear", align_corners=False)
        logits = self.classifier(self.fuse(hi + lo))
        return F.interpolate(logits, size=self.out_size, mode="bilinear", align_corners=False)


def config_module(space, config: Tuple) -> Tuple[nn.Module, object]:
    """The module and batch-1 input of one configuration from :func:`enumerate_configs`."""
    from .spaces.realtime import ConvBNReLU, make_op
    kind = config[0]
    res = space.input_size
    if kind == "stem":
        bw = config[1]
        c8 = 2 * bw
        module = nn.Sequential(ConvBNReLU(3, bw, 3, 2), ConvBNReLU(bw, c8, 3, 2), ConvBNReLU(c8, c8, 3, 1),
                               ConvBNReLU(c8, c8, 3, 2))
        return module, torch.randn(1, 3, *res)
    if kind == "layer":
        _, op, cin, cout, stride, in_size = config
        return make_op(op, cin, cout, stride, space.residual), torch.randn(1, cin, *in_size)
    if kind == "head":
        _, c_hi, c_lo, level_hi, level_lo = config
        module = HeadBlock(c_hi, c_lo, space.head_width, space.num_classes, res)
        return module, (torch.randn(1, c_hi, *_level_size(res, level_hi)),
                        torch.randn(1, c_lo, *_level_size(res, level_lo)))
    raise SaswotError(f"unknown LUT configuration kind {kind!r}")


STATISTICS = ("median", "min")


def time_module(module: nn.Module, x, warmup: int = 5, repeats: int = 20, statistic: str = "median") -> float:
    """Median (or ``statistic='min'``) wall time (ms) of ``module(x)`` at batch 1 under ``torch.inference_mode``."""
    if statistic not in STATISTICS:
        raise SaswotError(f"unknown latency statistic {statistic!r}; expected one of {list(STATISTICS)}")
    module.eval()
    times = []
    with torch.inference_mode():
        for _ in range(warmup):
            module(x)
        for _ in range(repeats):
            t0 = time.perf_counter()
            module(x)
            times.append((time.perf_counter() - t0) * 1000.0)
    return float(statistics.median(times) if statistic == "median" else min(times))


# ------------------------------------------------------------------------------------- table

class LatencyTable:
    """Per-configuration latencies (ms), params and MACs of one realtime space at one resolution."""

    def __init__(self, entries: Dict[str, Dict[str, float]], meta: Dict[str, object]):
        self.entries = entries
        self.meta = meta
        self._space = None

    # -------------------------------------------------------------- properties
    @property
    def space_name(self) -> str:
        """Name of the space the table was built for."""
        return str(self.meta["space"])

    @property
    def space_kwargs(self) -> Dict[str, object]:
        """Constructor settings of the table's space (``input_size`` is the resolution)."""
        return dict(self.meta["space_kwargs"])  # type: ignore[arg-type]

    @property
    def resolution(self) -> Tuple[int, int]:
        """Input (H, W) the table was measured at."""
        h, w = self.meta["resolution"]  # type: ignore[misc]
        return int(h), int(w)

    @property
    def threads(self) -> int:
        """Torch threads used for the measurements."""
        return int(self.meta["threads"])  # type: ignore[arg-type]

    @property
    def statistic(self) -> str:
        """How repeats were summarised: 'median' or 'min'."""
        return str(self.meta.get("statistic", "median"))

    def space(self):
        """The search space the table describes (built from its stored settings)."""
        if self._space is None:
            from .spaces import get_space
            kw = self.space_kwargs
            kw["input_size"] = tuple(kw["input_size"])  # type: ignore[arg-type]
            self._space = get_space(self.space_name, **kw)
        return self._space

    def digest(self) -> str:
        """Short SHA-256 of the entries (identifies the measurements)."""
        blob = json.dumps(self.entries, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    # -------------------------------------------------------------- prediction
    def check_compatible(self, space) -> None:
        """Raise SaswotError unless ``space`` is the space (name, settings, resolution) this table was built for."""
        name = getattr(space, "name", None)
        if name != self.space_name:
            raise SaswotError(f"latency table is for space {self.space_name!r}, not {name!r}")
        mine, theirs = self.space_kwargs, space_kwargs(space)
        diff = [f"{k}={theirs.get(k)!r} (table: {mine.get(k)!r})" for k in SPACE_KWARGS if mine.get(k) != theirs.get(k)]
        if diff:
            raise SaswotError(f"latency table does not match the search space: {', '.join(diff)}; "
                              f"build one with `saswot-gp latency build`")

    def _entry(self, key: str) -> Dict[str, float]:
        try:
            return self.entries[key]
        except KeyError:
            raise SaswotError(f"latency table has no entry {key!r} (built for {self.space_name} "
                              f"{self.space_kwargs}); rebuild it for this space and resolution") from None

    def keys_for(self, arch: str) -> List[str]:
        """Keys of ``arch``'s parts in this table's space (SaswotError if the arch is not of that space)."""
        return arch_keys(self.space(), arch)

    def predict(self, arch: str) -> float:
        """Predicted batch-1 latency (ms) of ``arch``: the sum of its parts' table entries."""
        return float(sum(self._entry(k)["ms"] for k in self.keys_for(arch)))

    def predict_params(self, arch: str) -> int:
        """Trainable parameters of ``arch`` from the table (equals ``count_params`` of the built network)."""
        return int(sum(self._entry(k)["params"] for k in self.keys_for(arch)))

    def predict_flops(self, arch: str) -> int:
        """Multiply-accumulates of ``arch`` from the table (equals ``count_flops`` at the table's resolution)."""
        return int(sum(self._entry(k)["macs"] for k in self.keys_for(arch)))

    # -------------------------------------------------------------- files
    def to_json(self) -> Dict[str, object]:
        """The JSON document of the table."""
        return {"format": LUT_FORMAT, "version": LUT_VERSION, "meta": self.meta, "entries": self.entries}

    def save(self, path: Union[str, Path]) -> None:
        """Write the table as JSON, atomically (temporary file then ``os.replace``)."""
        atomic_write_json(path, self.to_json())

    @classmethod
    def load(cls, path: Union[str, Path]) -> "LatencyTable":
        """Read and validate a table written by :meth:`save` (one-line SaswotError naming what is wrong)."""
        from .io import read_json
        where = f"latency table {str(Path(path))!r}"
        return cls.from_json(read_json(path, where, "build one with `saswot-gp latency build`"), where=where)

    @classmethod
    def from_json(cls, doc, where: str = "latency table") -> "LatencyTable":
        """Validate a JSON document (format, metadata, every entry) and build the table."""
        if not isinstance(doc, dict) or doc.get("format") != LUT_FORMAT:
            raise SaswotError(f"{where} is not a saswot-gp latency table (missing \"format\": \"{LUT_FORMAT}\")")
        if doc.get("version") != LUT_VERSION:
            raise SaswotError(f"{where} has version {doc.get('version')!r}; expected {LUT_VERSION}")
        meta, entries = doc.get("meta"), doc.get("entries")
        if not isinstance(meta, dict):
            raise SaswotError(f"{where} has no 'meta' object")
        if meta.get("statistic", "median") not in STATISTICS:
            raise SaswotError(f"{where}: meta.statistic {meta.get('statistic')!r} is not one of {list(STATISTICS)}")
        for k in ("space", "space_kwargs", "resolution", "threads"):
            if k not in meta:
                raise SaswotError(f"{where}: meta is missing key {k!r}")
        kw = meta["space_kwargs"]
        if not isinstance(kw, dict) or any(k not in kw for k in SPACE_KWARGS):
            missing = [k for k in SPACE_KWARGS if not isinstance(kw, dict) or k not in kw]
            raise SaswotError(f"{where}: meta.space_kwargs is missing key {missing[0]!r}")
        res = meta["resolution"]
        if (not isinstance(res, list) or len(res) != 2 or not all(isinstance(v, int) and v > 0 for v in res)):
            raise SaswotError(f"{where}: meta.resolution {res!r} is not [H, W]")
        if not isinstance(entries, dict) or not entries:
            raise SaswotError(f"{where} has no 'entries' object")
        for key, e in entries.items():
            if not isinstance(e, dict):
                raise SaswotError(f"{where}: entry {key!r} is not an object")
            for field in ("ms", "params", "macs"):
                v = e.get(field)
                if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v < 0:
                    raise SaswotError(f"{where}: entry {key!r} has bad or missing {field!r}: {v!r}")
        table = cls(entries, meta)
        try:
            table.space()
        except SaswotError as exc:
            raise SaswotError(f"{where}: {exc}") from None
        return table


def _space_at(space, resolution: Optional[Sequence[int]]):
    from .spaces import get_space
    if isinstance(space, str):
        space = get_space(space, **({"input_size": tuple(resolution)} if resolution else {}))
    _require_realtime(space)
    if resolution is not None and tuple(int(v) for v in resolution) != tuple(space.input_size):
        kw = space_kwargs(space)
        kw["input_size"] = (int(resolution[0]), int(resolution[1]))
        space = get_space(space.name, **kw)
    return space


def _summarise(values: Sequence[float], statistic: str) -> float:
    return float(statistics.median(values) if statistic == "median" else min(values))


def build_lut(space, resolution: Optional[Sequence[int]] = None, threads: int = 1, repeats: int = 20,
              warmup: int = 5, progress: Optional[Progress] = None, seed: int = 0,
              statistic: str = "median", rounds: int = 1) -> LatencyTable:
    """Time every configuration of a realtime ``space`` (instance or name) at ``resolution`` (default: its input).

    Each module is built with weights from ``seed`` (the global RNG is left alone) and timed alone at batch 1
    with ``threads`` torch threads: the median of ``repeats`` runs (or the minimum with ``statistic='min'``).
    With ``rounds > 1`` all entries are timed in turn ``rounds`` times and the rounds are summarised the
    same way, so that a burst of load from other processes does not land on a few entries only.
    ``progress(i, n, key)`` is called after each timing (``n`` = entries x rounds).
    """
    from .spaces.base import count_flops, count_params
    if repeats < 1 or warmup < 0 or threads < 1 or rounds < 1:
        raise SaswotError(f"need repeats >= 1, warmup >= 0, threads >= 1, rounds >= 1; got {repeats}, {warmup}, "
                          f"{threads}, {rounds}")
    if statistic not in STATISTICS:
        raise SaswotError(f"unknown latency statistic {statistic!r}; expected one of {list(STATISTICS)}")
    space = _space_at(space, resolution)
    configs = enumerate_configs(space)
    old_threads = torch.get_num_threads()
    torch.set_num_threads(int(threads))
    t0 = time.perf_counter()
    modules = {}
    times: Dict[str, List[float]] = {key: [] for key in configs}
    entries: Dict[str, Dict[str, float]] = {}
    total = len(configs) * int(rounds)
    try:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            for key, cfg in configs.items():
                module, x = config_module(space, cfg)
                modules[key] = (module, x)
                entries[key] = {"ms": 0.0, "params": count_params(module), "macs": count_flops(module, x)}
        done = 0
        for _ in range(int(rounds)):
            for key, (module, x) in modules.items():
                times[key].append(time_module(module, x, warmup=warmup, repeats=repeats, statistic=statistic))
                done += 1
                if progress:
                    progress(done, total, key)
    finally:
        torch.set_num_threads(old_threads)
    for key in entries:
        entries[key]["ms"] = _summarise(times[key], statistic)
    meta = {"space": space.name, "space_kwargs": space_kwargs(space), "resolution": list(space.input_size),
            "threads": int(threads), "repeats": int(repeats), "warmup": int(warmup), "rounds": int(rounds),
            "batch": 1, "statistic": statistic, "mode": "torch.inference_mode, eval", "torch": torch.__version__,
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "build_s": round(time.perf_counter() - t0, 3), "n_entries": len(entries)}
    return LatencyTable(entries, meta)


def kendall_tau(a: Sequence[float], b: Sequence[float]) -> float:
    """Kendall tau-b of two sequences (scipy)."""
    from scipy.stats import kendalltau
    return float(kendalltau(a, b).statistic)


def measure_archs(table: LatencyTable, archs: Sequence[str], seed: int = 0, warmup: int = 5, repeats: int = 20,
                  rounds: int = 1, progress: Optional[Callable[[int, int], None]] = None) -> List[float]:
    """Measured batch-1 latency (ms, ``measure_latency`` with the table's threads and statistic) of each arch.

    With ``rounds > 1`` the networks are measured in turn ``rounds`` times and the rounds summarised with
    the table's statistic (interleaving spreads load from other processes evenly over the networks).
    """
    from .stats.cache import build_model
    from .training.speed import measure_latency
    if rounds < 1:
        raise SaswotError(f"need rounds >= 1, got {rounds}")
    space = table.space()
    models = [build_model(space, arch, seed) for arch in archs]
    field = "latency_ms" if table.statistic == "median" else "min_ms"
    times: List[List[float]] = [[] for _ in models]
    done = 0
    for _ in range(int(rounds)):
        for i, model in enumerate(models):
            timing = measure_latency(model, table.resolution, threads=table.threads, warmup=warmup, repeats=repeats)
            times[i].append(float(timing[field]))
            done += 1
            if progress:
                progress(done, len(models) * int(rounds))
    return [_summarise(t, table.statistic) for t in times]


def check_lut(table: LatencyTable, n: int = 50, seed: int = 0, warmup: int = 5, repeats: int = 20,
              rounds: int = 1, archs: Optional[Iterable[str]] = None, repeatability: bool = False,
              progress: Optional[Callable[[int, int], None]] = None) -> Dict[str, object]:
    """Compare predicted with measured latency (:func:`measure_archs`) on ``n`` seeded samples (or ``archs``).

    Returns Kendall tau-b, the median predicted/measured ratio and one row per network. With
    ``repeatability`` the networks are measured a second, independent time: ``repeat_tau`` (measured vs
    measured) is the ceiling that timing noise on this machine puts on any predictor's tau.
    """
    space = table.space()
    if archs is None:
        rng = random.Random(seed)
        archs = [space.sample(rng) for _ in range(int(n))]
    archs = list(archs)
    if len(archs) < 2:
        raise SaswotError(f"need at least 2 networks to check a latency table, got {len(archs)}")
    pred = [table.predict(a) for a in archs]
    t0 = time.perf_counter()
    meas = measure_archs(table, archs, seed=seed, warmup=warmup, repeats=repeats, rounds=rounds, progress=progress)
    rows = [{"arch": a, "predicted_ms": p, "measured_ms": m, "ratio": p / m} for a, p, m in zip(archs, pred, meas)]
    out: Dict[str, object] = {
        "n": len(rows), "kendall_tau": kendall_tau(pred, meas),
        "median_ratio": float(statistics.median(r["ratio"] for r in rows)),
        "measured_ms_range": [min(meas), max(meas)], "predicted_ms_range": [min(pred), max(pred)],
        "seed": int(seed), "threads": table.threads, "statistic": table.statistic,
        "resolution": list(table.resolution), "warmup": int(warmup), "repeats": int(repeats), "rounds": int(rounds)}
    if repeatability:
        again = measure_archs(table, archs, seed=seed, warmup=warmup, repeats=repeats, rounds=rounds)
        out["repeat_tau"] = kendall_tau(meas, again)
        out["kendall_tau_second_pass"] = kendall_tau(pred, again)
        for r, m in zip(rows, again):
            r["measured_ms_again"] = m
    out["check_s"] = round(time.perf_counter() - t0, 3)
    out["lut"] = table.meta
    out["rows"] = rows
    return out
