"""The search engines: serial aging evolution, and its asynchronous form on Dask, over a checkpointable state.

A rank-aggregate proxy (``rank1`` .. ``rank4``) scores a candidate relative to a set: here, each candidate is ranked
against the archive of the candidates scored before it (:func:`~saswot_gp.primitives.rank.log_rank_against`: its
rank among archive + itself in every subtree), and that score is kept. So a candidate's score depends on the archive
when it was scored: the first has rank 1 of 1 (score 0, the highest a rank aggregate can have), and later ones are
ranked among more. The history keeps every candidate's subtree scores (``parts``), so a resumed run has the same
archive, and the final top K is ranked within the whole archive (:func:`archive_scores`).
"""

from __future__ import annotations

import math
import random
import time
from collections import deque
from typing import TYPE_CHECKING, Callable, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch

from ..errors import SaswotError
from ..io import rng_from_json, rng_to_json
from ..latency import LatencyTable
from .scorer import ProxyScorer

if TYPE_CHECKING:  # pragma: no cover
    from ..execution import Executor

CHECKPOINT_FORMAT = "saswot-gp-search-checkpoint"
MUTATION_TRIES = 50
SAMPLE_TRIES = 10000

Progress = Callable[[int, int, str, float], None]


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
        self.archive: List[List[float]] = []  # a rank aggregate's finite subtree scores, in the order scored

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
            if row.get("parts") is not None:
                st.archive.append([float(v) for v in row["parts"]])
        return st


def archive_scores(history: Sequence[Dict[str, object]]) -> Optional[List[Optional[float]]]:
    """For a rank aggregate's search history (rows with ``parts``), every row's score ranked within the whole
    archive (None where its parts are not finite); None for any other proxy's history."""
    if not history or "parts" not in history[0]:
        return None
    from ..primitives.rank import log_rank_aggregate
    ok = [i for i, row in enumerate(history) if row.get("parts") is not None]  # parts are kept only when finite
    out: List[Optional[float]] = [None] * len(history)
    if ok:
        agg = log_rank_aggregate(np.array([history[i]["parts"] for i in ok], dtype=np.float64).T).tolist()
        for i, v in zip(ok, agg):
            out[i] = float(v)
    return out


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
        from ..stats.cache import build_model
        if arch in self.state.scores:
            return
        t = time.perf_counter()
        value = self.scorer.measure(build_model(self.space, arch, self.seed), self.images, self.labels)
        self.record(arch, value, time.perf_counter() - t, step)

    def record(self, arch: str, value: Union[float, Sequence[float]], seconds: float, step: Optional[int] = None) -> None:
        """Put the score of ``arch`` (proposed at ``step``, default: now) in the history; report progress. A list
        ``value`` is a rank aggregate's subtree scores: the score is their rank against the archive of the
        candidates scored before (module docstring), and finite parts join the archive."""
        st = self.state
        parts = None
        if isinstance(value, (list, tuple)):
            parts = [float(v) for v in value]
            if all(math.isfinite(v) for v in parts):
                from ..primitives.rank import log_rank_against
                value = log_rank_against(st.archive, parts)
                st.archive.append(parts)
            else:
                parts, value = None, math.nan
        value = value if math.isfinite(value) else None
        st.scores[arch] = value
        row = {"arch": arch, "score": value, "latency_ms": st.latency[arch],
               "step": st.steps if step is None else step, "score_s": seconds}
        if self.scorer.ranked:
            row["parts"] = parts
        st.history.append(row)
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


def _score_task(arch: str, ctx: _ScoreContext) -> Tuple[Union[float, List[float]], float]:
    """Build ``arch`` with weights from the seed and score it (a Dask task): (score, or a rank aggregate's subtree
    scores, seconds)."""
    from ..stats.cache import build_model
    t = time.perf_counter()
    value = ctx.scorer.measure(build_model(ctx.space, arch, ctx.seed), ctx.images, ctx.labels)
    return (float(value) if not isinstance(value, list) else value), time.perf_counter() - t


class _AsyncEvolution(_AgingEvolution):
    """Asynchronous (steady-state) aging evolution on a Dask cluster: ``in_flight`` tasks of ``per_task``
    candidates (None: :func:`~saswot_gp.tasks.chunk_size` for tasks of ``SEARCH_TASK_S``, from the candidates timed
    so far) are scored at once; each score, as it arrives, is recorded and its candidate joins the population, then
    more are proposed."""

    def __init__(self, space, scorer: ProxyScorer, lut: LatencyTable, max_latency_ms: float, state: _State,
                 batch: Tuple[torch.Tensor, torch.Tensor], seed: int, progress: Optional[Progress],
                 executor: "Executor", in_flight: int, per_task: Optional[int] = None):
        super().__init__(space, scorer, lut, max_latency_ms, state, batch, seed, progress)
        self.executor, self.in_flight, self.per_task = executor, in_flight, per_task

    def _group_size(self, flying, left: int, workers: int) -> int:
        from .. import tasks
        if self.per_task is not None:
            return max(1, min(int(self.per_task), left))
        return tasks.chunk_size(flying.seconds, left, workers, min_task_s=tasks.SEARCH_TASK_S)

    def run(self, budget: int, population: int, sample_size: int, checkpoint_every: int,
            checkpoint: Callable[[], None]) -> None:
        """Score until ``budget`` architectures are in the history, ``in_flight`` tasks at a time; checkpoint (with
        the candidates in flight) every ``checkpoint_every`` scores."""
        st, self.budget = self.state, budget
        t_start, elapsed0, last_ckpt = time.perf_counter(), st.elapsed, len(st.history)
        max_steps = 50 * budget + population
        ctx = self.executor.scatter(_ScoreContext(self.space, self.scorer, self.images, self.labels, self.seed))
        flying = self.executor.stream()  # architecture -> the scoring task that carries it
        workers = self.executor.n_workers  # asks the scheduler: once, not for every group

        def submit(archs: List[str]) -> None:
            if archs:
                flying.submit_items(archs, _score_task, archs, ctx)

        try:
            resumed = [str(arch) for arch, _ in st.pending]  # a resumed run's candidates in flight
            submit(list(dict.fromkeys(resumed))[:max(0, budget - len(st.history))])
            while True:
                while (flying.n_tasks < self.in_flight and len(st.history) + len(flying) < budget
                       and st.steps < max_steps):
                    group: List[str] = []
                    size = self._group_size(flying, budget - len(st.history) - len(flying), workers)
                    while (len(group) < size and len(st.history) + len(flying) + len(group) < budget
                           and st.steps < max_steps):
                        arch = self.propose(population, sample_size, pending=len(st.pending))
                        st.steps += 1
                        if arch in st.scores:  # scored before: joins at once, as in the serial search
                            self.join(arch, population)
                            continue
                        st.pending.append([arch, st.steps])
                        if arch not in group and arch not in flying:
                            group.append(arch)
                    submit(group)
                if not flying:
                    break
                arch, (value, seconds) = flying.next()
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
            flying.cancel()
        st.elapsed = elapsed0 + time.perf_counter() - t_start
        checkpoint()
