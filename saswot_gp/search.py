"""Training-free architecture search: regularised (aging) evolution scored by a proxy under a latency budget.

Real et al. (2019), "Regularized evolution for image classifier architecture search": a population of
``population`` random architectures; at each step ``sample_size`` members are drawn at random, the
best of them (by proxy score) is mutated (``space.mutate``), the child joins the population and the
oldest member leaves. Here every architecture is feasible: its latency predicted by the latency
lookup table (:mod:`saswot_gp.latency`) is at most ``max_latency_ms`` (random members are
rejection-sampled, infeasible children are redrawn from the same parent up to a cap). Candidates are
never trained: each is built once with weights from ``seed`` and scored by the proxy on one fixed
batch (one forward and backward). ``budget`` counts distinct architectures scored; scores are cached
by architecture, so a revisited architecture costs nothing.

The search state (population, history of scores, RNG state) is checkpointed atomically as JSON
every few scores; resuming gives the same result as an uninterrupted run.

On a Dask cluster (``executor``, :mod:`saswot_gp.execution`) the search is asynchronous (steady-state): a few
candidates (``in_flight``, default twice the workers) are scored at once, each a task that builds the model
from (space, architecture, seed) and scores it on the batch scattered once to every worker. When a score
arrives the client records it, the candidate joins the population (the oldest leaves) and the next candidate
is proposed from the population as it is then. Every score equals the serial one for the same architecture,
and with one candidate in flight the run is the serial run exactly; with more in flight, proposals are made
before the results still in flight are known, and those results arrive in an order that depends on timing,
so which architectures get scored (the history, the top list) is not reproducible from the seed: not equal
to the serial run's and not equal between two asynchronous runs. Checkpoints also keep the candidates in
flight (``pending``); a resumed run scores them first, so nothing proposed is lost.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import math
import random
import time
from collections import deque
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Dict, List, Optional, Sequence, Tuple, Union

import torch

from .errors import SaswotError
from .io import atomic_write_json, atomic_write_text, check_same_settings, prepare_run_dir, read_checkpoint, rng_from_json, rng_to_json
from .latency import LatencyTable, space_kwargs

if TYPE_CHECKING:  # pragma: no cover
    from .execution import Executor

CHECKPOINT = "checkpoint.json"
CHECKPOINT_FORMAT = "saswot-gp-search-checkpoint"
RUN_FILES = (CHECKPOINT, "top.csv", "top.json")  # what marks a folder as holding a search
MUTATION_TRIES = 50
SAMPLE_TRIES = 10000
BATCH_KINDS = ("digits", "synthetic")
# settings that must agree between a checkpoint and the run resuming it
RESUME_KEYS = ("space", "space_kwargs", "proxy", "max_latency_ms", "seed", "population", "sample_size",
               "batch", "batch_size", "k", "lut_digest")

Progress = Callable[[int, int, str, float], None]


# ---------------------------------------------------------------------------------- the proxy

class ProxyScorer:
    """A proxy spec resolved by :func:`saswot_gp.proxyspec.resolve_proxy` (a discovered or named tree, or a
    registered zero-cost measure), with the sketch size and seed a search scores with."""

    def __init__(self, spec: str, k: Optional[int] = 256, seed: int = 0):
        from .proxyspec import resolve_proxy
        self.spec, self.k, self.seed = str(spec), k, int(seed)
        self.resolved = resolve_proxy(self.spec)
        self.proxy = self.resolved.proxy if self.resolved.kind == "tree" else None
        self.kind = "file" if self.proxy is not None else "measure"  # "file": a tree (kept for old checkpoints)
        self.label = self.resolved.label

    def __getstate__(self) -> Dict[str, object]:
        # a registered measure is a decorated function that does not pickle: it is looked up again by name where
        # the scorer is unpickled (a Dask worker); a tree travels as itself (its file need not exist there)
        state = dict(self.__dict__)
        if state["resolved"].measure is not None:
            state["resolved"] = dataclasses.replace(state["resolved"], measure=None)
        return state

    def __setstate__(self, state: Dict[str, object]) -> None:
        self.__dict__.update(state)
        if self.resolved.kind == "measure" and self.resolved.measure is None:
            from .zerocost import get_measure
            self.resolved = dataclasses.replace(self.resolved, measure=get_measure(self.spec))

    def identity(self) -> Dict[str, object]:
        """What identifies the proxy in a checkpoint (a tree by its tokens, a measure by its name)."""
        if self.proxy is not None:
            return {"kind": "file", "tokens": list(self.proxy.tokens)}
        return {"kind": "measure", "name": self.spec}

    def __call__(self, model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
        """Score ``model`` on the batch (higher is better); NaN when the proxy fails numerically."""
        return self.resolved.score(model, images, labels, k=self.k, seed=self.seed)


def search_batch(space, kind: str = "digits", n: int = 8) -> Tuple[torch.Tensor, torch.Tensor, str]:
    """The fixed scoring batch and its description: ``n`` digit scenes (train split, data seed 0) or the
    seeded synthetic batch (``synthetic_batch(seed=0)``), at the space's input size."""
    h, w = space.input_size
    if kind == "digits":
        from .batches import digits_batch
        if space.num_classes < 11:
            raise SaswotError(f"digit scenes have 11 classes but the space has {space.num_classes}; "
                              f"use the synthetic batch")
        images, labels = digits_batch(n=n, size=(h, w), seed=0)
        return images, labels, f"{n} digit scenes (digits train split, data seed 0, {h}x{w})"
    if kind == "synthetic":
        from .batches import synthetic_batch
        images, labels = synthetic_batch(n=n, size=(h, w), num_classes=space.num_classes, seed=0)
        return images, labels, f"seeded synthetic batch of {n} images (seed 0, {h}x{w}, {space.num_classes} classes)"
    raise SaswotError(f"unknown batch {kind!r}; expected one of {list(BATCH_KINDS)}")


# ------------------------------------------------------------------------------ the search

def _key(score: Optional[float]) -> float:
    return -math.inf if score is None or not math.isfinite(score) else score


class _State:
    def __init__(self, seed: int):
        self.rng = random.Random(seed)
        self.population: deque = deque()      # architecture strings, oldest first
        self.history: List[Dict[str, object]] = []  # one row per distinct scored architecture, in order
        self.scores: Dict[str, Optional[float]] = {}
        self.latency: Dict[str, float] = {}
        self.steps = 0                        # evolution steps taken (children proposed, including cached)
        self.infeasible = 0                   # infeasible proposals (samples and children) rejected
        self.elapsed = 0.0
        # asynchronous runs only: proposed, not yet scored candidates, [arch, step] in proposal order (an
        # architecture proposed again while in flight appears again: it joins the population once per proposal)
        self.pending: List[List[object]] = []

    def to_json(self, settings: Dict[str, object]) -> Dict[str, object]:
        doc = {"format": CHECKPOINT_FORMAT, "version": 1, "settings": settings,
               "rng": rng_to_json(self.rng.getstate()), "population": list(self.population),
               "history": self.history, "steps": self.steps, "infeasible": self.infeasible,
               "elapsed_s": self.elapsed}
        if self.pending:
            doc["pending"] = [list(p) for p in self.pending]
        return doc

    @classmethod
    def from_json(cls, doc: Dict[str, object]) -> "_State":
        st = cls(0)
        try:
            st.rng.setstate(rng_from_json(doc["rng"]))
            st.population = deque(doc["population"])  # type: ignore[arg-type]
            st.history = list(doc["history"])  # type: ignore[arg-type]
            st.steps, st.infeasible = int(doc["steps"]), int(doc["infeasible"])  # type: ignore[arg-type]
            st.elapsed = float(doc["elapsed_s"])  # type: ignore[arg-type]
            st.pending = [[str(a), int(step)] for a, step in doc.get("pending", [])]  # type: ignore[union-attr]
        except (KeyError, TypeError, ValueError) as exc:
            raise SaswotError(f"search checkpoint is damaged ({type(exc).__name__}: {exc})") from None
        for row in st.history:
            st.scores[row["arch"]] = row["score"]
            st.latency[row["arch"]] = row["latency_ms"]
        return st


def search_cost(scored: int, train_seconds: float, search_wall_s: float) -> Dict[str, float]:
    """Search wall time next to the time training every scored candidate would take (``scored x train_seconds``)."""
    train_all = float(scored) * float(train_seconds)
    return {"scored": int(scored), "train_seconds_per_network": float(train_seconds),
            "train_all_s": train_all, "train_all_h": train_all / 3600.0, "search_wall_s": float(search_wall_s),
            "speedup": train_all / search_wall_s if search_wall_s > 0 else math.inf}


def run_search(space, proxy: Union[str, ProxyScorer], lut: LatencyTable, max_latency_ms: float, budget: int,
               out_dir: Union[str, Path], top_k: int = 10, seed: int = 0, population: int = 50,
               sample_size: int = 10, batch: str = "digits", batch_size: int = 8, k: Optional[int] = 256,
               resume: bool = False, checkpoint_every: int = 5, progress: Optional[Progress] = None,
               log: Optional[Callable[[str], None]] = None, overwrite: bool = False,
               train_time: Optional[float] = None, executor: Optional["Executor"] = None,
               in_flight: Optional[int] = None) -> Dict[str, object]:
    """Aging evolution over ``space`` scored by ``proxy`` under ``max_latency_ms`` (LUT-predicted); writes OUT.

    Writes OUT/checkpoint.json (atomic, every ``checkpoint_every`` scores and at the end), OUT/top.csv and
    OUT/top.json; returns the summary (``top``, ``scored``, ``wall_s``, ``archs_per_s``, ...). With ``resume``
    an existing checkpoint is continued (its settings must match; ``budget`` may grow); without it a folder that
    holds a search is refused unless ``overwrite``.
    ``progress(scored, budget, arch, score)`` is called after each new score. ``train_time``: measured seconds to
    train one network, to report what training every scored candidate would cost (``search_cost``).

    ``executor`` (:func:`saswot_gp.execution.executor`; the caller owns and closes it): on a Dask cluster the
    search is asynchronous with ``in_flight`` candidates scored at once (default: twice the workers); see the
    module's docstring for what it reproduces (each score; the serial run itself only with ``in_flight`` 1).
    Serial (default): exactly the serial search.
    """
    say = log or (lambda msg: None)
    if budget < 1 or top_k < 1 or population < 2 or sample_size < 1 or batch_size < 1:
        raise SaswotError(f"need budget >= 1, top >= 1, population >= 2, sample size >= 1, batch size >= 1; got "
                          f"{budget}, {top_k}, {population}, {sample_size}, {batch_size}")
    if not (max_latency_ms > 0 and math.isfinite(max_latency_ms)):
        raise SaswotError(f"latency budget {max_latency_ms!r} ms; expected a positive number")
    lut.check_compatible(space)
    scorer = proxy if isinstance(proxy, ProxyScorer) else ProxyScorer(proxy, k=k, seed=seed)
    out = Path(out_dir)
    settings = {"space": space.name, "space_kwargs": space_kwargs(space), "proxy": scorer.identity(),
                "proxy_spec": scorer.spec, "max_latency_ms": float(max_latency_ms), "seed": int(seed),
                "population": int(population), "sample_size": int(sample_size), "batch": batch,
                "batch_size": int(batch_size), "k": k, "lut_digest": lut.digest()}
    prepare_run_dir(out, RUN_FILES, resume, overwrite, "--resume")
    state = _State(seed)
    if resume:
        doc = read_checkpoint(out / CHECKPOINT, CHECKPOINT_FORMAT, ("settings", "rng", "population", "history", "steps"))
        old = doc["settings"] if isinstance(doc["settings"], dict) else {}
        check_same_settings(old, settings, RESUME_KEYS, f"the search in {str(out)!r}")
        state = _State.from_json(doc)
        say(f"resuming {out}: {len(state.history)} architectures already scored")
    images, labels, batch_text = search_batch(space, batch, batch_size)
    say(f"batch: {batch_text}; proxy: {scorer.label}; latency budget {max_latency_ms:.3f} ms "
        f"(predicted, {lut.threads} thread(s))")
    if executor is not None and executor.distributed:
        flight = int(in_flight) if in_flight is not None else 2 * executor.n_workers
        if flight < 1:
            raise SaswotError(f"in_flight {in_flight}; expected at least 1 candidate in flight")
        settings["asynchronous"] = {"in_flight": flight, "workers": executor.n_workers}
        say(f"asynchronous search on Dask: {flight} candidate(s) in flight on {executor.n_workers} worker(s); "
            f"the scored architectures depend on timing, not only on the seed")
        search = _AsyncEvolution(space, scorer, lut, max_latency_ms, state, (images, labels), seed, progress,
                                 executor, flight)
    else:
        search = _AgingEvolution(space, scorer, lut, max_latency_ms, state, (images, labels), seed, progress)
    search.run(budget, population, sample_size, checkpoint_every,
               lambda: atomic_write_json(out / CHECKPOINT, state.to_json(settings)))
    return finish(space, lut, state, settings, out, top_k, budget, batch_text, scorer.label, train_time)


class _AgingEvolution:
    """Regularised (aging) evolution under a latency budget: tournament parents, mutated feasible children, the
    oldest member leaves; every candidate scored once by the proxy (scores and predicted latencies in ``state``)."""

    def __init__(self, space, scorer: ProxyScorer, lut: LatencyTable, max_latency_ms: float, state: _State,
                 batch: Tuple[torch.Tensor, torch.Tensor], seed: int, progress: Optional[Progress]):
        self.space, self.scorer, self.lut, self.limit, self.state = space, scorer, lut, max_latency_ms, state
        self.images, self.labels = batch
        self.seed, self.progress, self.budget = seed, progress, 0
        for arch, _ in state.pending:  # a resumed run's candidates in flight: their predicted latency again
            self.feasible(str(arch))

    def feasible(self, arch: str) -> bool:
        """Predicted latency within the budget (memoised)."""
        if arch not in self.state.latency:
            self.state.latency[arch] = self.lut.predict(arch)
        return self.state.latency[arch] <= self.limit

    def score(self, arch: str, step: Optional[int] = None) -> None:
        """Score ``arch`` once (None for a non-finite score) and record it in the history."""
        from .stats.cache import build_model
        if arch in self.state.scores:
            return
        t = time.perf_counter()
        value = self.scorer(build_model(self.space, arch, self.seed), self.images, self.labels)
        self.record(arch, value, time.perf_counter() - t, step)

    def record(self, arch: str, value: float, seconds: float, step: Optional[int] = None) -> None:
        """Put the score of ``arch`` (proposed at ``step``, default: now) in the history; report progress."""
        st = self.state
        value = value if math.isfinite(value) else None
        st.scores[arch] = value
        st.history.append({"arch": arch, "score": value, "latency_ms": st.latency[arch],
                           "step": st.steps if step is None else step, "score_s": seconds})
        if self.progress:
            self.progress(len(st.history), self.budget, arch, math.nan if value is None else value)

    def join(self, arch: str, population: int) -> None:
        """``arch`` joins the population; the oldest member leaves when it is over ``population``."""
        st = self.state
        st.population.append(arch)
        if len(st.population) > population:
            st.population.popleft()

    def random_feasible(self) -> str:
        """A random architecture within the budget (one-line error when none is found)."""
        fastest = math.inf
        for _ in range(SAMPLE_TRIES):
            arch = self.space.sample(self.state.rng)
            if self.feasible(arch):
                return arch
            self.state.infeasible += 1
            fastest = min(fastest, self.state.latency[arch])
        raise SaswotError(f"no architecture met the latency budget {self.limit:.3f} ms in {SAMPLE_TRIES} random "
                          f"draws (the fastest was {fastest:.3f} ms); raise --max-latency or lower --min-fps")

    def propose(self, population: int, sample_size: int, pending: int = 0) -> str:
        """The next candidate: random while the population fills (counting ``pending`` candidates still being
        scored), then a feasible mutant of a tournament winner."""
        st = self.state
        if len(st.population) + pending < population or not st.population:
            return self.random_feasible()
        members = st.rng.sample(list(st.population), min(sample_size, len(st.population)))
        parent = max(members, key=lambda a: _key(st.scores[a]))
        for _ in range(MUTATION_TRIES):
            child = self.space.mutate(parent, st.rng)
            if self.feasible(child):
                return child
            st.infeasible += 1
        return self.random_feasible()

    def run(self, budget: int, population: int, sample_size: int, checkpoint_every: int,
            checkpoint: Callable[[], None]) -> None:
        """Score until ``budget`` architectures are in the history; checkpoint every ``checkpoint_every`` scores."""
        st, self.budget = self.state, budget
        t_start, elapsed0, last_ckpt = time.perf_counter(), st.elapsed, len(st.history)
        max_steps = 50 * budget + population
        while st.pending and len(st.history) < budget:  # an asynchronous run's candidates in flight: first
            arch, step = st.pending[0]
            self.score(str(arch), int(step))  # type: ignore[call-overload]
            st.pending.pop(0)
            self.join(str(arch), population)
        while len(st.history) < budget and st.steps < max_steps:
            arch = self.propose(population, sample_size)
            st.steps += 1
            self.score(arch)
            self.join(arch, population)
            st.elapsed = elapsed0 + time.perf_counter() - t_start
            if len(st.history) - last_ckpt >= checkpoint_every:
                checkpoint()
                last_ckpt = len(st.history)
        st.elapsed = elapsed0 + time.perf_counter() - t_start
        checkpoint()


class _ScoreContext:
    """What every scoring task needs besides the architecture; scattered once to every worker."""

    def __init__(self, space, scorer: ProxyScorer, images: torch.Tensor, labels: torch.Tensor, seed: int):
        self.space, self.scorer, self.images, self.labels, self.seed = space, scorer, images, labels, seed


def _score_task(arch: str, ctx: _ScoreContext) -> Tuple[float, float]:
    """Build ``arch`` with weights from the seed and score it (a Dask task): (score, seconds)."""
    from .stats.cache import build_model
    t = time.perf_counter()
    value = ctx.scorer(build_model(ctx.space, arch, ctx.seed), ctx.images, ctx.labels)
    return float(value), time.perf_counter() - t


class _AsyncEvolution(_AgingEvolution):
    """Asynchronous (steady-state) aging evolution on a Dask cluster: ``in_flight`` candidates are scored at once;
    each score, as it arrives, is recorded and its candidate joins the population, then the next is proposed."""

    def __init__(self, space, scorer: ProxyScorer, lut: LatencyTable, max_latency_ms: float, state: _State,
                 batch: Tuple[torch.Tensor, torch.Tensor], seed: int, progress: Optional[Progress],
                 executor: "Executor", in_flight: int):
        super().__init__(space, scorer, lut, max_latency_ms, state, batch, seed, progress)
        self.executor, self.in_flight = executor, in_flight

    def run(self, budget: int, population: int, sample_size: int, checkpoint_every: int,
            checkpoint: Callable[[], None]) -> None:
        """Score until ``budget`` architectures are in the history, ``in_flight`` at a time; checkpoint (with the
        candidates in flight) every ``checkpoint_every`` scores."""
        from distributed import as_completed

        from .execution import RETRIES
        st, self.budget = self.state, budget
        t_start, elapsed0, last_ckpt = time.perf_counter(), st.elapsed, len(st.history)
        max_steps = 50 * budget + population
        client = self.executor.client
        ctx = self.executor.scatter(_ScoreContext(self.space, self.scorer, self.images, self.labels, self.seed))
        flying: Dict[str, object] = {}  # architecture -> its future
        arrivals = as_completed()

        def submit(arch: str) -> None:
            if arch not in flying:
                fut = client.submit(_score_task, arch, ctx, retries=RETRIES, pure=False)
                flying[arch] = fut
                arrivals.add(fut)

        try:
            for arch, _ in st.pending:  # a resumed run's candidates in flight (as many as the budget takes)
                if len(st.history) + len(flying) < budget:
                    submit(str(arch))
            while True:
                while (len(flying) < self.in_flight and len(st.history) + len(flying) < budget
                       and st.steps < max_steps):
                    arch = self.propose(population, sample_size, pending=len(st.pending))
                    st.steps += 1
                    if arch in st.scores:  # scored before: joins at once, as in the serial search
                        self.join(arch, population)
                        continue
                    st.pending.append([arch, st.steps])
                    submit(arch)
                if not flying:
                    break
                fut = next(arrivals)
                arch = next(a for a, f in flying.items() if f is fut)
                value, seconds = fut.result()  # type: ignore[attr-defined]
                del flying[arch]
                steps = [int(p[1]) for p in st.pending if p[0] == arch]  # type: ignore[call-overload]
                self.record(arch, value, seconds, steps[0])
                st.pending = [p for p in st.pending if p[0] != arch]
                for _ in steps:
                    self.join(arch, population)
                st.elapsed = elapsed0 + time.perf_counter() - t_start
                if len(st.history) - last_ckpt >= checkpoint_every:
                    checkpoint()
                    last_ckpt = len(st.history)
        finally:
            if flying:
                client.cancel(list(flying.values()))
        st.elapsed = elapsed0 + time.perf_counter() - t_start
        checkpoint()


def _top(space, state: _State, top_k: int, lut: LatencyTable) -> List[Dict[str, object]]:
    from .spaces.base import count_flops, count_params
    order = sorted(range(len(state.history)), key=lambda i: (-_key(state.history[i]["score"]), i))
    rows = []
    h, w = space.input_size
    for rank, i in enumerate(order[:top_k], 1):
        row = state.history[i]
        arch = str(row["arch"])
        with torch.random.fork_rng(devices=[]):
            model = space.build(arch)
        lat = float(row["latency_ms"])
        rows.append({"rank": rank, "arch": arch, "score": row["score"], "latency_ms": lat,
                     "fps": 1000.0 / lat if lat > 0 else math.inf, "params": count_params(model),
                     "flops": count_flops(model, torch.zeros(1, 3, h, w))})
    return rows


def finish(space, lut: LatencyTable, state: _State, settings: Dict[str, object], out: Path, top_k: int,
           budget: int, batch_text: str, proxy_label: str, train_time: Optional[float] = None) -> Dict[str, object]:
    """Write OUT/top.csv and OUT/top.json for the search ``state``; return the summary (with ``search_cost``
    when the measured training time of one network, ``train_time`` seconds, is given)."""
    top = _top(space, state, top_k, lut)
    scored = len(state.history)
    summary = {"scored": scored, "budget": int(budget), "steps": state.steps, "infeasible_rejected": state.infeasible,
               "wall_s": state.elapsed, "archs_per_s": scored / state.elapsed if state.elapsed > 0 else math.inf,
               "proxy": proxy_label, "max_latency_ms": settings["max_latency_ms"],
               "min_fps": 1000.0 / float(settings["max_latency_ms"]), "batch": batch_text,
               "resolution": list(space.input_size), "lut": {"digest": lut.digest(), "threads": lut.threads,
                                                            "date": lut.meta.get("date")},
               "settings": settings, "top": top}
    if train_time is not None:
        summary["search_cost"] = search_cost(scored, train_time, state.elapsed)
    atomic_write_json(out / "top.json", summary)
    buf = io.StringIO()
    fields = ["rank", "arch", "score", "latency_ms", "fps", "params", "flops"]
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for row in top:
        writer.writerow({f: row[f] for f in fields})
    atomic_write_text(out / "top.csv", buf.getvalue())
    return summary


def format_top(summary: Dict[str, object]) -> str:
    """A plain-text table of the summary's top architectures and its cost line."""
    lines = [f"{'rank':>4}  {'score':>12}  {'lat ms':>8}  {'FPS':>8}  {'params':>9}  {'MMACs':>8}  arch"]
    for r in summary["top"]:  # type: ignore[union-attr]
        s = "nan" if r["score"] is None else f"{r['score']:.5g}"
        lines.append(f"{r['rank']:>4}  {s:>12}  {r['latency_ms']:8.3f}  {r['fps']:8.1f}  {r['params']:9d}  "
                     f"{r['flops'] / 1e6:8.2f}  {r['arch']}")
    lines.append(f"scored {summary['scored']} architectures in {summary['wall_s']:.1f} s "
                 f"({summary['archs_per_s']:.2f}/s); proxy {summary['proxy']}; latency budget "
                 f"{summary['max_latency_ms']:.3f} ms ({summary['min_fps']:.1f} FPS)")
    return "\n".join(lines)


def parse_budget(max_latency: Optional[float], min_fps: Optional[float]) -> float:
    """The latency budget (ms) from exactly one of ``max_latency`` (ms) and ``min_fps``."""
    if (max_latency is None) == (min_fps is None):
        raise SaswotError("give exactly one of --max-latency MS and --min-fps F")
    if max_latency is not None:
        if not max_latency > 0:
            raise SaswotError(f"--max-latency {max_latency}; expected a positive number of ms")
        return float(max_latency)
    if not min_fps > 0:  # type: ignore[operator]
        raise SaswotError(f"--min-fps {min_fps}; expected a positive number")
    return 1000.0 / float(min_fps)  # type: ignore[arg-type]


def resolve_lut(space_name: str, resolution: Optional[Sequence[int]], lut_path: Optional[str], out: Path,
                threads: int = 1, log: Optional[Callable[[str], None]] = None) -> Tuple[object, LatencyTable]:
    """The search space and its LUT: loaded from ``lut_path`` (space settings from it), else OUT/latency_lut.json
    if present, else built now at ``resolution`` and saved there."""
    from .latency import build_lut
    from .spaces import get_space
    say = log or (lambda msg: None)
    saved = out / "latency_lut.json"
    path = Path(lut_path) if lut_path else (saved if saved.is_file() else None)
    if path is not None:
        lut = LatencyTable.load(path)
        if lut.space_name != space_name:
            raise SaswotError(f"latency table {str(path)!r} is for space {lut.space_name!r}, not {space_name!r}")
        if resolution is not None and tuple(resolution) != lut.resolution:
            raise SaswotError(f"latency table {str(path)!r} is for {lut.resolution[0]}x{lut.resolution[1]}, "
                              f"not {resolution[0]}x{resolution[1]}")
        say(f"latency table {path} ({len(lut.entries)} entries, {lut.resolution[0]}x{lut.resolution[1]}, "
            f"{lut.threads} thread(s))")
        return lut.space(), lut
    space = get_space(space_name, **({"input_size": tuple(resolution)} if resolution else {}))
    say(f"no --lut: building a latency table of {space_name} at {space.input_size[0]}x{space.input_size[1]} "
        f"with {threads} thread(s) -> {saved}")
    lut = build_lut(space, threads=threads)
    lut.save(saved)
    return space, lut
