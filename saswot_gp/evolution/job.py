"""The ``saswot-gp evolve`` job: one or several benchmarks, each with its own statistics, batch and split.

Every benchmark is split (seeded) into training, optional validation and held-out architectures
(:mod:`.data`). Fitness aggregates the per-benchmark training Kendall tau (:class:`MultiEvaluator`, mean or
min); the final proxy is chosen among the hall of fame on training or on validation data (``select``), never
on held-out data. The report (:mod:`.report`) gives every benchmark's train, validation and held-out figures
and, for each benchmark, the best hand-designed proxy on the same held-out architectures.
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, List, Optional, Sequence, Tuple

from ..errors import SaswotError
from .data import BenchmarkData, prepare_benchmark
from .report import format_table  # noqa: F401  (printed by the command beside run_evolve's summary)

SELECT_RULES = ("train", "val")
# every file a run writes into its folder: an existing one marks the folder as holding a run
RUN_FILES = ("checkpoint.json", "summary.json", "best_proxy.json", "hall_of_fame.json", "log.jsonl", "proxy.png",
             "evolution.png")


@dataclass
class EvolveSettings:
    """Everything that defines an evolve run; stored in its checkpoint (``run``) and restored on resume."""

    benchmarks: List[str]
    metric: Optional[str] = None
    k: Optional[int] = 256
    train_size: Optional[int] = None
    batch_size: int = 8
    resolution: Optional[Tuple[int, int]] = None
    heldout_size: Optional[int] = None
    fitness: str = "mean"
    select: str = "val"
    val_frac: float = 0.0
    batch: str = "auto"
    data_seed: Optional[int] = None
    population: int = 64
    generations: int = 20
    seed: int = 0
    terminals: str = "all"
    split: str = "committed"
    resample: float = 0.5
    parsimony: float = 0.0
    root: str = "plain"  # run_evolve resolves 'auto' (resolve_root) before a settings object is made
    run_id: Optional[str] = None  # names the run in its checkpoint, log lines and summary (None: an older run)

    RUN_KEYS = ("benchmarks", "metric", "k", "train_size", "batch_size", "resolution", "heldout_size", "fitness",
                "select", "val_frac", "batch", "data_seed", "split", "run_id")
    # what a checkpoint written before a setting existed ran with
    OLD_RUN_DEFAULTS = {"split": "random"}

    @property
    def dseed(self) -> int:
        """The seed of splits, batches and network weights (``data_seed``, default ``seed``)."""
        return self.seed if self.data_seed is None else self.data_seed

    def run_info(self) -> dict:
        """The checkpoint's ``run`` entry."""
        d = asdict(self)
        out = {k: d[k] for k in self.RUN_KEYS}
        out["resolution"] = list(self.resolution) if self.resolution else None
        return out

    def report_settings(self) -> dict:
        """What the report writes beside the figures."""
        return {**asdict(self), "data_seed": self.dseed}

    def check(self) -> None:
        """One-line errors for settings that cannot run."""
        from .fitness import FITNESS_AGGREGATES
        if self.fitness not in FITNESS_AGGREGATES:
            raise SaswotError(f"fitness {self.fitness!r}; expected one of {', '.join(FITNESS_AGGREGATES)}")
        if self.select not in SELECT_RULES:
            raise SaswotError(f"select {self.select!r}; expected one of {', '.join(SELECT_RULES)}")
        if self.select == "val" and self.val_frac <= 0 and self.split == "random":
            raise SaswotError("--select val needs a validation split: give --val-frac > 0")
        from .data import SPLIT_RULES
        if self.split not in SPLIT_RULES:
            raise SaswotError(f"split {self.split!r}; expected one of {', '.join(SPLIT_RULES)}")
        from .pset import ROOTS
        if self.root not in ROOTS:
            raise SaswotError(f"root {self.root!r}; expected one of {', '.join(ROOTS)}")
        if len(set(self.benchmarks)) != len(self.benchmarks):
            raise SaswotError(f"benchmark given twice in {self.benchmarks}; expected distinct benchmarks")


ROOT_CHOICES = ("auto", "plain", "rank")


def resolve_root(root: str, benchmarks: Sequence[str]) -> str:
    """The tree root a run uses: ``root`` itself, or for 'auto' 'rank' when evolving on several benchmarks and
    'plain' on one (each the better on validation parts in benchmarks/RESULTS.md, *Evolution that generalises*)."""
    if root not in ROOT_CHOICES:
        raise SaswotError(f"root {root!r}; expected one of {', '.join(ROOT_CHOICES)}")
    if root != "auto":
        return root
    return "rank" if len(set(benchmarks)) > 1 else "plain"


def _read_checkpoint_run(out: Path) -> dict:
    from ..io import read_checkpoint
    from .loop import CHECKPOINT, CHECKPOINT_FORMAT, CHECKPOINT_KEYS
    ck = read_checkpoint(out / CHECKPOINT, CHECKPOINT_FORMAT, CHECKPOINT_KEYS)
    if not isinstance(ck["config"], dict) or not isinstance(ck["run"], dict) or not isinstance(ck["generation"], int) \
            or not all(k in ck["config"] for k in ("population", "seed")):
        raise SaswotError(f"cannot resume: checkpoint in {str(out)!r} is damaged (config, run or generation malformed)")
    return ck


def resumed_settings(out: Path, given: EvolveSettings, generations: Optional[int], log: Callable[[str], None],
                     explicit: Sequence[str] = ()) -> EvolveSettings:
    """The settings of the run checkpointed in ``out``: its own, except ``generations``, which may only grow.
    Settings an older checkpoint lacks take the ``given`` value; a setting named in ``explicit`` (the caller
    set it on purpose) that differs from the checkpoint's is a one-line SaswotError naming each such setting, and
    so is a folder whose files belong to another run (:func:`check_same_run`)."""
    from ..io import check_same_settings
    saved = _read_checkpoint_run(out)
    old, cfg = dict(saved["run"]), saved["config"]
    if "benchmarks" not in old and "benchmark" in old:  # checkpoints written before multi-benchmark runs
        old["benchmarks"] = [old.pop("benchmark")]
    run = {k: old.get(k, EvolveSettings.OLD_RUN_DEFAULTS.get(k, getattr(given, k))) for k in EvolveSettings.RUN_KEYS}
    run["resolution"] = tuple(run["resolution"]) if run["resolution"] else None
    run["run_id"] = old.get("run_id")  # an older checkpoint's run has none
    done, was = saved["generation"], cfg.get("generations", saved["generation"])
    st = EvolveSettings(**run, population=cfg["population"], seed=cfg["seed"], generations=was,
                        terminals=cfg.get("terminals", "all"),  # earlier checkpoints: all terminals
                        resample=cfg.get("resample", 0.0), parsimony=cfg.get("parsimony", 0.0),
                        root=cfg.get("root", "plain"))  # checkpoints written before --root: plain
    check_same_settings(asdict(st), asdict(given), [k for k in explicit if k not in ("generations", "run_id")],
                        repr(str(out)))
    check_same_run(out, st.run_id)
    if generations is not None and generations < done:
        raise SaswotError(f"cannot resume {str(out)!r} with --generations {generations}: the checkpoint has finished "
                          f"generation {done}; expected at least {done}")
    st.generations = was if generations is None else generations
    if done >= st.generations:
        log(f"{str(out)!r} is finished (generation {done} of {st.generations} done): nothing left to evolve; a "
            f"larger --generations extends it")
    else:
        log(f"resuming {str(out)!r} at generation {done + 1} of {st.generations}"
            + ("" if st.generations == was else f" (extended from {was})"))
    return st


def check_same_run(out: Path, run_id: Optional[str]) -> None:
    """Refuse (one-line SaswotError, nothing changed) a run folder whose ``log.jsonl`` or ``summary.json`` names
    another run than its checkpoint (``run_id``): resuming would mix two runs' files."""
    from .loop import LOG
    ids = []
    if (out / LOG).is_file():
        for line in (out / LOG).read_text(encoding="utf-8").splitlines():
            try:
                ids.append((LOG, json.loads(line).get("run_id")))
            except (ValueError, AttributeError):
                continue  # a line cut short by a kill (the resume drops it)
    if (out / "summary.json").is_file():
        try:
            doc = json.loads((out / "summary.json").read_text(encoding="utf-8"))
            ids.append(("summary.json", doc.get("run_id") if isinstance(doc, dict) else None))
        except ValueError:
            ids.append(("summary.json", "(unreadable)"))
    for name, other in ids:
        if other != run_id:
            raise SaswotError(f"cannot resume {str(out)!r}: checkpoint.json belongs to run {run_id} but {name} to "
                              f"run {other}; the folder mixes two runs (nothing was changed): resume the folder the "
                              f"checkpoint came from, or start a new run")


def run_evolve(benchmark="realtime-digits", metric: Optional[str] = None, out_dir: str = "runs/evolve",
               population: int = 64, generations: Optional[int] = None, seed: int = 0, k: Optional[int] = 256,
               train_size: Optional[int] = None, batch_size: int = 8, workers: int = 0, resume: bool = False,
               resolution: Optional[Tuple[int, int]] = None, top: int = 5, heldout_size: Optional[int] = None,
               fitness: str = "mean", terminals: str = "all", select: str = "val", val_frac: Optional[float] = None,
               batch: str = "auto", data_seed: Optional[int] = None, cache_dir: Optional[str] = None,
               overwrite: bool = False, scheduler: Optional[str] = None, device: str = "cpu",
               split: str = "committed", resample: float = 0.5, parsimony: float = 0.0, root: str = "auto",
               log: Callable[[str], None] = print, explicit: Sequence[str] = ()) -> dict:
    """Evolve proxies on the training splits of one or several benchmarks and report every split.

    ``benchmark``: a name or path, or a list of them. ``fitness``: 'mean' or 'min' of the per-benchmark
    training Kendall tau. ``terminals``: 'all', 'stats', 'sizes' or 'scalefree', each optionally ``+measures`` (the
    registered live measures join as terminals ``zc_snip`` ..., computed once per architecture and cached in the
    statistics cache folder as ``measure_scores.jsonl``). ``split``: 'committed' (a
    benchmark's committed train / validation / held-out split where it has one, ``train_size`` and
    ``heldout_size`` keeping the first architectures of those parts) or 'random' (seeded; ``train_size`` default
    200, the last ``val_frac`` of it validation: 0.25 by default with 'val', else 0). ``select``: the final
    proxy is the best by aggregated validation Kendall among the hall of fame and the hand-designed seeds
    ('val'), or the hall of fame's best by training Kendall ('train'). ``resample``: fitness on a fresh random
    fraction of each training split every generation (0: the whole split; default 0.5); ``parsimony``: Kendall tau charged
    per tree node in selection. ``root``: 'plain' (a tree is one score), 'rank' (a tree is ``rank1`` .. ``rank4`` of
    score subtrees: the sum of their log-ranks within the set being ranked, which is each resampled subset, the
    validation and the held-out part) or 'auto' (default: :func:`resolve_root`, rank on several benchmarks, plain on
    one). ``data_seed`` (default ``seed``) sets random splits, batches and network
    weights, ``seed`` the evolution. ``generations``: 20 for a new run; on ``resume`` the
    checkpoint's unless given (then it may only extend the run). A folder that holds a run is refused unless
    ``resume`` or ``overwrite``. Writes ``best_proxy.json``, ``hall_of_fame.json``, ``log.jsonl``,
    ``checkpoint.json``, ``proxy.png``, ``evolution.png`` and ``summary.json`` into ``out_dir``; returns the summary.
    ``workers`` (a local Dask cluster of that many single-thread processes) or ``scheduler`` (an existing one)
    spread statistics (one task per architecture) and fitness (batches of candidates) over workers; results
    equal the serial run's. ``device``: where statistics are computed ('cpu', 'cuda', 'cuda:N'). ``explicit``:
    on ``resume``, the settings the caller set on purpose; each must equal the checkpoint's. Resuming a finished
    run whose report is written writes nothing and returns that report, marked ``already_finished``. A folder
    whose files belong to another run than its checkpoint is refused.
    """
    from ..execution import executor
    from ..io import check_output_path, prepare_run_dir

    out = Path(out_dir)
    given = EvolveSettings(
        benchmarks=[benchmark] if isinstance(benchmark, str) else list(benchmark), metric=metric, k=k,
        train_size=train_size, batch_size=batch_size, resolution=tuple(resolution) if resolution else None,
        heldout_size=heldout_size, fitness=fitness, select=select,
        val_frac=(0.25 if select == "val" else 0.0) if val_frac is None else val_frac, batch=batch,
        data_seed=data_seed, population=population, generations=20 if generations is None else generations,
        seed=seed, terminals=terminals, split=split, resample=resample, parsimony=parsimony, root=root,
        run_id=None if resume else uuid.uuid4().hex)
    given.root = resolve_root(root, given.benchmarks)
    if resume and overwrite:  # refused (by the folder check) before the checkpoint is read
        prepare_run_dir(out, RUN_FILES, resume, overwrite, f"--resume {out}")
    st = resumed_settings(out, given, generations, log, explicit) if resume else given
    st.check()
    if resume:
        done = _finished_summary(out, st)
        if done is not None:
            return {**done, "already_finished": True}
    if cache_dir:
        check_output_path(cache_dir, folder=True, what="statistics cache folder")
    prepare_run_dir(out, RUN_FILES, resume, overwrite, f"--resume {out}")
    with executor(workers, scheduler, log) as ex:
        return _evolve_on(ex, out, st, resume, cache_dir, top, device, log)


def _finished_summary(out: Path, st: EvolveSettings) -> Optional[dict]:
    """The report of the run in ``out`` when its checkpoint has all ``st.generations`` and its summary is written
    (returned marked ``already_finished``)."""
    from .loop import CHECKPOINT
    done = json.loads((out / CHECKPOINT).read_text(encoding="utf-8"))["generation"]
    if done < st.generations or not (out / "summary.json").is_file():
        return None
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    return summary if isinstance(summary, dict) and summary.get("generations") == st.generations else None


def _evolve_on(ex, out: Path, st: EvolveSettings, resume: bool, cache_dir: Optional[str], top: int, device: str,
               log: Callable[[str], None]) -> dict:
    from ..handcrafted import seed_proxies
    from . import EvolutionConfig, evolve, make_map
    from .fitness import MultiEvaluator, ProxyEvaluator, Resampler
    from .report import write_report
    from ..progress import format_duration
    t0 = time.perf_counter()
    data = _prepare_all(st, cache_dir or str(out / "stats_cache"), log, ex, device)
    t_stats = time.perf_counter() - t0
    evaluator = MultiEvaluator({d.name: ProxyEvaluator(d.ptrain, d.train.target) for d in data}, how=st.fitness,
                               keep_scores=st.resample > 0)
    resampler = Resampler({d.name: d.train.target for d in data}, st.resample, st.seed, st.fitness) \
        if st.resample > 0 else None
    map_fn = make_map(evaluator, ex)
    cfg = EvolutionConfig(population=st.population, generations=st.generations, seed=st.seed, terminals=st.terminals,
                          resample=st.resample, parsimony=st.parsimony, root=st.root)

    spent: List[float] = []  # seconds of each generation run by this process

    def progress(rec):
        spent.append(rec["seconds"])
        left = sum(spent) / len(spent) * (st.generations - rec["gen"])  # mean generation time so far
        log(f"gen {rec['gen']:3d}/{st.generations}  best {rec['best']:+.4f}  median {rec['median']:+.4f}  "
            f"invalid {rec['invalid']:3d}  evals {rec['evals']:3d}  cache hits {rec['cache_hits']:3d}  "
            f"{rec['seconds']:.2f}s  ETA {format_duration(left)}  {rec['best_expression']}")

    t1 = time.perf_counter()
    res = evolve(evaluator, cfg, seeds=list(seed_proxies(st.terminals).values()), out_dir=str(out), resume=resume,
                 map_fn=map_fn, progress=progress, run_info=st.run_info(), resampler=resampler)
    seconds = {"stats": t_stats, "evolution": time.perf_counter() - t1}
    return write_report(out, res, data, st.report_settings(), top, seconds)


def _prepare_all(st: EvolveSettings, cache_dir: str, log: Callable[[str], None], ex=None,
                 device: str = "cpu") -> List[BenchmarkData]:
    from ..primitives.types import MEASURE_TERMINALS, uses_measures
    shared: dict = {}
    measures = MEASURE_TERMINALS if uses_measures(st.terminals) else ()
    data = [prepare_benchmark(s, st.metric, st.dseed, st.train_size, st.heldout_size, st.val_frac, st.batch_size,
                              st.resolution, st.k, st.batch, cache_dir, log, shared, ex, device, split=st.split,
                              measures=measures)
            for s in st.benchmarks]
    names = [d.name for d in data]
    if len(set(names)) != len(names):
        raise SaswotError(f"two benchmarks have the same name in {names}; expected distinct benchmarks")
    return data
