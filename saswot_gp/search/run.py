"""``run_search`` and what surrounds it: settings and resume, the top list and its files, budgets, latency tables."""

from __future__ import annotations

import csv
import io
import json
import math
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Dict, List, Optional, Sequence, Tuple, Union

import torch

from ..errors import SaswotError
from ..io import atomic_write_json, atomic_write_text, check_same_settings, prepare_run_dir, read_checkpoint
from ..latency import LatencyTable, drifted, space_kwargs
from .engine import CHECKPOINT_FORMAT, Progress, _AgingEvolution, _AsyncEvolution, _key, _State, archive_scores
from .scorer import ProxyScorer, search_batch

if TYPE_CHECKING:  # pragma: no cover
    from ..execution import Executor

CHECKPOINT = "checkpoint.json"
RUN_FILES = (CHECKPOINT, "top.csv", "top.json", "search.png")  # what marks a folder as holding a search
# settings that must agree between a checkpoint and the run resuming it
RESUME_KEYS = ("space", "space_kwargs", "proxy", "max_latency_ms", "seed", "population", "sample_size",
               "batch", "batch_size", "k", "lut_digest")


def search_cost(scored: int, train_seconds: float, search_wall_s: float) -> Dict[str, float]:
    """Search wall time next to the time training every scored candidate would take (``scored x train_seconds``)."""
    train_all = float(scored) * float(train_seconds)
    return {"scored": int(scored), "train_seconds_per_network": float(train_seconds),
            "train_all_s": train_all, "train_all_h": train_all / 3600.0, "search_wall_s": float(search_wall_s),
            "speedup": train_all / search_wall_s if search_wall_s > 0 else math.inf}


def _check_same_search(out: Path, run_id: Optional[str]) -> None:
    """Refuse (one-line SaswotError, nothing changed) a folder whose top.json belongs to another search than its
    checkpoint: resuming would mix two searches' files."""
    if not (out / "top.json").is_file():
        return
    try:
        doc = json.loads((out / "top.json").read_text(encoding="utf-8"))
        other = doc["settings"].get("run_id")
    except (ValueError, KeyError, TypeError, AttributeError):
        other = "(unreadable)"
    if other != run_id:
        raise SaswotError(f"cannot resume the search in {str(out)!r}: checkpoint.json belongs to run {run_id} but "
                          f"top.json to run {other}; the folder mixes two searches (nothing was changed): resume "
                          f"the folder the checkpoint came from, or start a new search")


def run_search(space, proxy: Union[str, ProxyScorer], lut: LatencyTable, max_latency_ms: float, budget: int,
               out_dir: Union[str, Path], top_k: int = 10, seed: int = 0, population: int = 50,
               sample_size: int = 10, batch: str = "digits", batch_size: int = 8, k: Optional[int] = 256,
               resume: bool = False, checkpoint_every: int = 5, progress: Optional[Progress] = None,
               log: Optional[Callable[[str], None]] = None, overwrite: bool = False,
               train_time: Optional[float] = None, executor: Optional["Executor"] = None,
               in_flight: Optional[int] = None, runtime: Optional[str] = None,
               remeasure: bool = False, per_task: Optional[int] = None) -> Dict[str, object]:
    """Aging evolution over ``space`` scored by ``proxy`` under ``max_latency_ms`` (LUT-predicted); writes OUT.

    Writes OUT/checkpoint.json (atomic, every ``checkpoint_every`` scores and at the end), OUT/top.csv,
    OUT/top.json and OUT/search.png (scores against predicted latency, the budget and the top K); returns the
    summary (``top``, ``scored``, ``wall_s``, ``archs_per_s``, ...). With ``resume`` an existing checkpoint is continued (its settings must match; ``budget`` may grow); without it a folder that
    holds a search is refused unless ``overwrite``.
    ``progress(scored, budget, arch, score)`` is called after each new score. ``train_time``: measured seconds to
    train one network, to report what training every scored candidate would cost (``search_cost``).

    ``executor`` (:func:`saswot_gp.execution.executor`; the caller owns and closes it): on a Dask cluster the
    search is asynchronous with ``in_flight`` tasks of ``per_task`` candidates scored at once (defaults: twice
    the workers; enough candidates for about 100 ms, from those timed so far, 1 until then); see the module's
    docstring for what it reproduces (each score; the serial run itself only with ``in_flight`` and ``per_task`` 1).
    Serial (default): exactly the serial search.

    ``runtime`` ('eager' or 'onnxruntime'): what the search's latency budget is for; a ``lut`` measured with
    another runtime is refused (one line naming both; None: not checked), as is one for another resolution or
    space settings than ``space``'s (``LatencyTable.check_compatible``).

    ``remeasure``: measure the final top K on the table's runtime, threads and device (:func:`remeasure_top`; the
    CLI's default, off here so that a library run measures nothing unless asked).
    """
    say = log or (lambda msg: None)
    if budget < 1 or top_k < 1 or population < 2 or sample_size < 1 or batch_size < 1:
        raise SaswotError(f"need budget >= 1, top >= 1, population >= 2, sample size >= 1, batch size >= 1; got "
                          f"{budget}, {top_k}, {population}, {sample_size}, {batch_size}")
    if not (max_latency_ms > 0 and math.isfinite(max_latency_ms)):
        raise SaswotError(f"latency budget {max_latency_ms!r} ms; expected a positive number")
    lut.check_compatible(space)                 # the space's settings, its resolution included
    lut.check_measured_for(runtime)
    scorer = proxy if isinstance(proxy, ProxyScorer) else ProxyScorer(proxy, k=k, seed=seed)
    out = Path(out_dir)
    settings = {"space": space.name, "space_kwargs": space_kwargs(space), "proxy": scorer.identity(),
                "proxy_spec": scorer.spec, "max_latency_ms": float(max_latency_ms), "seed": int(seed),
                "population": int(population), "sample_size": int(sample_size), "batch": batch,
                "batch_size": int(batch_size), "k": k, "lut_digest": lut.digest()}
    prepare_run_dir(out, RUN_FILES, resume, overwrite, "--resume")
    settings["run_id"] = uuid.uuid4().hex  # names the search in its checkpoint and top.json
    state = _State(seed)
    if resume:
        doc = read_checkpoint(out / CHECKPOINT, CHECKPOINT_FORMAT, ("settings", "rng", "population", "history", "steps"))
        old = doc["settings"] if isinstance(doc["settings"], dict) else {}
        check_same_settings(old, settings, RESUME_KEYS, f"the search in {str(out)!r}")
        settings["run_id"] = old.get("run_id")  # an older checkpoint's search has none
        _check_same_search(out, settings["run_id"])
        state = _State.from_json(doc)
        say(f"resuming {out}: {len(state.history)} architectures already scored")
    images, labels, batch_text = search_batch(space, batch, batch_size)
    say(f"batch: {batch_text}; proxy: {scorer.label}; latency budget {budget_text(max_latency_ms)} "
        f"(predicted{' by the calibrated table' if lut.calibration is not None else ''}, {lut.threads} thread(s))")
    if executor is not None and executor.distributed:
        flight = int(in_flight) if in_flight is not None else 2 * executor.n_workers
        if flight < 1 or (per_task is not None and per_task < 1):
            raise SaswotError(f"in_flight {in_flight}, per_task {per_task}; expected at least 1 task in flight and "
                              f"1 candidate per task")
        settings["asynchronous"] = {"in_flight": flight, "per_task": per_task, "workers": executor.n_workers}
        say(f"asynchronous search on Dask: {flight} task(s) of {per_task or 'about 100 ms of'} candidate(s) in "
            f"flight on {executor.n_workers} worker(s); the scored architectures depend on timing, not only on the seed")
        search = _AsyncEvolution(space, scorer, lut, max_latency_ms, state, (images, labels), seed, progress,
                                 executor, flight, per_task)
    else:
        search = _AgingEvolution(space, scorer, lut, max_latency_ms, state, (images, labels), seed, progress)
    search.run(budget, population, sample_size, checkpoint_every,
               lambda: atomic_write_json(out / CHECKPOINT, state.to_json(settings)))
    return finish(space, lut, state, settings, out, top_k, budget, batch_text, scorer.label, train_time,
                  remeasure=remeasure, log=say)


def _top(space, state: _State, top_k: int, lut: LatencyTable) -> List[Dict[str, object]]:
    from ..spaces.base import count_flops, count_params
    final = archive_scores(state.history)  # a rank aggregate: ranked within the whole archive
    scores = final if final is not None else [row["score"] for row in state.history]
    order = sorted(range(len(state.history)), key=lambda i: (-_key(scores[i]), i))
    rows = []
    h, w = space.input_size
    for rank, i in enumerate(order[:top_k], 1):
        row = state.history[i]
        arch = str(row["arch"])
        with torch.random.fork_rng(devices=[]):
            model = space.build(arch)
        lat = float(row["latency_ms"])
        rows.append({"rank": rank, "arch": arch, "score": scores[i], "latency_ms": lat,
                     "fps": 1000.0 / lat if lat > 0 else math.inf, "measured_ms": None, "meets_budget": None,
                     "params": count_params(model), "flops": count_flops(model, torch.zeros(1, 3, h, w))})
    return rows


def remeasure_top(lut: LatencyTable, top: List[Dict[str, object]], max_latency_ms: float,
                  seed: int) -> Dict[str, object]:
    """Measure the ``top`` rows' networks (weights from ``seed``) as ``latency check`` does
    (:func:`saswot_gp.latency.measure_archs`: the table's runtime, threads, statistic and device, its warm-up,
    repeats and rounds) and set each row's ``measured_ms`` and ``meets_budget`` (measured <= ``max_latency_ms``).

    The rule that keeps a run's result reproducible: which architectures are in the top K and their ``rank`` come
    from the proxy scores alone (seeded, as without re-measuring); re-measuring only moves the rows whose measured
    latency misses the budget to the end of the list, keeping score order on both sides (a stable sort). Returns
    how it measured, how many rows missed the budget and the median of measured / predicted latency
    (``measured_over_predicted``: far from 1, the table's calibration no longer fits this machine)."""
    import statistics
    from ..latency import measure_archs
    how = {"runtime": lut.runtime, "threads": lut.threads, "statistic": lut.statistic,
           "device": str(lut.meta.get("device", "cpu")), **lut.timing, "seed": int(seed)}
    t0 = time.perf_counter()
    measured = measure_archs(lut, [str(r["arch"]) for r in top], seed=int(seed), warmup=how["warmup"],
                             repeats=how["repeats"], rounds=how["rounds"])
    for row, ms in zip(top, measured):
        row["measured_ms"], row["meets_budget"] = float(ms), bool(ms <= max_latency_ms)
    top.sort(key=lambda r: not r["meets_budget"])
    how.update(measure_s=round(time.perf_counter() - t0, 3), over_budget=sum(not r["meets_budget"] for r in top),
               measured_over_predicted=float(statistics.median(float(r["measured_ms"]) / float(r["latency_ms"])
                                                               for r in top)))
    return how


def _calibration_label(lut: LatencyTable) -> Optional[str]:
    """'MODEL on N networks (seed S)' for a calibrated table, else None (predictions are the plain sum)."""
    if lut.calibration is None:
        return None
    info = lut.calibration.info
    return f"{info.get('model', 'custom')} on {info.get('n', '?')} networks (seed {info.get('seed', '?')})"


def finish(space, lut: LatencyTable, state: _State, settings: Dict[str, object], out: Path, top_k: int,
           budget: int, batch_text: str, proxy_label: str, train_time: Optional[float] = None,
           remeasure: bool = False, log: Optional[Callable[[str], None]] = None) -> Dict[str, object]:
    """Write OUT/top.csv, OUT/top.json and OUT/search.png (:func:`saswot_gp.viz.plot_search`) for the search
    ``state``; return the summary (with ``search_cost`` when the measured training time of one network,
    ``train_time`` seconds, is given, and with the top K measured (:func:`remeasure_top`, ``remeasure`` in the
    summary) when ``remeasure``)."""
    top = _top(space, state, top_k, lut)
    measured = None
    if remeasure and top:
        (log or (lambda msg: None))(f"measuring the top {len(top)} on {lut.runtime} ({lut.threads} thread(s))")
        measured = remeasure_top(lut, top, float(settings["max_latency_ms"]), int(settings["seed"]))  # type: ignore
    scored = len(state.history)
    summary = {"scored": scored, "budget": int(budget), "steps": state.steps, "infeasible_rejected": state.infeasible,
               "wall_s": state.elapsed, "archs_per_s": scored / state.elapsed if state.elapsed > 0 else math.inf,
               "proxy": proxy_label, "max_latency_ms": settings["max_latency_ms"],
               "min_fps": 1000.0 / float(settings["max_latency_ms"]), "batch": batch_text,
               "resolution": list(space.input_size), "lut": {"digest": lut.digest(), "threads": lut.threads,
                                                            "runtime": lut.runtime, "date": lut.meta.get("date"),
                                                            "calibration": _calibration_label(lut)},
               "settings": settings, "remeasure": measured, "top": top}
    if train_time is not None:
        summary["search_cost"] = search_cost(scored, train_time, state.elapsed)
    atomic_write_json(out / "top.json", summary)
    buf = io.StringIO()
    fields = ["rank", "arch", "score", "latency_ms", "fps", "measured_ms", "meets_budget", "params", "flops"]
    writer = csv.DictWriter(buf, fieldnames=fields, lineterminator="\n")
    writer.writeheader()
    for row in top:
        writer.writerow({f: row[f] for f in fields})
    atomic_write_text(out / "top.csv", buf.getvalue())
    from ..viz import plot_search
    plot_search(state.history, top, float(settings["max_latency_ms"]), out / "search.png",  # type: ignore[arg-type]
                title=f"{proxy_label}: {scored} architectures scored, {space.input_size[0]}x{space.input_size[1]}")
    return summary


def budget_text(ms: float) -> str:
    """A latency budget and the frame rate it allows, as people write them: '5 ms (200 FPS)', '12.35 ms (81 FPS)',
    '100000 ms (0.01 FPS)'."""
    fps = 1000.0 / ms
    return f"{ms:.6g} ms ({fps:.0f} FPS)" if fps >= 100 else f"{ms:.6g} ms ({fps:.3g} FPS)"


def format_top(summary: Dict[str, object]) -> str:
    """A plain-text table of the summary's top architectures (predicted and, when re-measured, measured latency;
    rows that miss the budget when measured are marked and listed last) and its cost line."""
    lines = [f"{'rank':>4}  {'score':>12}  {'pred ms':>8}  {'meas ms':>8}  {'FPS':>8}  {'params':>9}  {'MMACs':>8}  "
             f"arch"]
    for r in summary["top"]:  # type: ignore[union-attr]
        s = "nan" if r["score"] is None else f"{r['score']:.5g}"
        meas = "-" if r.get("measured_ms") is None else f"{r['measured_ms']:.3f}" + ("" if r["meets_budget"] else "!")
        lines.append(f"{r['rank']:>4}  {s:>12}  {r['latency_ms']:8.3f}  {meas:>8}  {r['fps']:8.1f}  {r['params']:9d}  "
                     f"{r['flops'] / 1e6:8.2f}  {r['arch']}")
    how = summary.get("remeasure")
    if how:
        ratio = how.get("measured_over_predicted")  # type: ignore[union-attr]
        lines.append(f"measured on {how['runtime']}, {how['threads']} thread(s), {how['device']} "  # type: ignore
                     f"({how['statistic']} of {how['repeats']} x {how['rounds']} round(s))"  # type: ignore
                     + (f"; {how['over_budget']} over the budget when measured (!): listed last"  # type: ignore
                        if how["over_budget"] else "")  # type: ignore[index]
                     + (f"; measured/predicted median {ratio:.3f}" if ratio is not None else "")
                     + ((" (the table's calibration no longer fits this machine: `latency calibrate` it again)"
                         if summary["lut"]["calibration"] else  # type: ignore[index]
                         " (the table is not calibrated: `latency calibrate` fits its predictions to this machine)")
                        if ratio is not None and drifted(ratio) else ""))
    lines.append(f"scored {summary['scored']} architectures in {summary['wall_s']:.1f} s "
                 f"({summary['archs_per_s']:.2f}/s, {1 / summary['archs_per_s']:.3f} s per candidate); proxy "
                 f"{summary['proxy']}; latency budget "
                 f"{budget_text(float(summary['max_latency_ms']))}")  # type: ignore[arg-type]
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
                threads: int = 1, log: Optional[Callable[[str], None]] = None,
                runtime: str = "eager") -> Tuple[object, LatencyTable]:
    """The search space and its LUT: loaded from ``lut_path`` (space settings from it), else OUT/latency_lut.json
    if present, else built now at ``resolution`` with ``runtime`` and the recommended settings (those of
    ``latency build``: :data:`saswot_gp.latency.RECOMMENDED_TIMING`, calibrated on 60 networks) and saved there.

    A loaded table measured with another ``runtime`` (tables without the field are eager) or at another
    ``resolution`` than the search asks for is refused with a one-line SaswotError naming both."""
    from ..batches import check_memory
    from ..latency import RECOMMENDED_CALIBRATION_N, RECOMMENDED_TIMING, build_lut, calibrate_lut
    from ..progress import Progress
    from ..spaces import get_space
    say = log or (lambda msg: None)
    saved = out / "latency_lut.json"
    path = Path(lut_path) if lut_path else (saved if saved.is_file() else None)
    if path is not None:
        lut = LatencyTable.load(path)
        if lut.space_name != space_name:
            raise SaswotError(f"latency table {str(path)!r} is for space {lut.space_name!r}, not {space_name!r}")
        lut.check_measured_for(runtime, resolution, where=f"latency table {str(path)!r}")
        cal = _calibration_label(lut)
        say(f"latency table {path} ({len(lut.entries)} entries, {lut.resolution[0]}x{lut.resolution[1]}, "
            f"{lut.runtime}, {lut.threads} thread(s)" + (f", calibrated: {cal})" if cal else ")"))
        return lut.space(), lut
    space = get_space(space_name, **({"input_size": tuple(resolution)} if resolution else {}))
    check_memory(space, space.input_size, 1, backward=False, what="network input")
    say(f"no --lut: building a latency table of {space_name} at {space.input_size[0]}x{space.input_size[1]} "
        f"({runtime}) with {threads} thread(s), calibrated on {RECOMMENDED_CALIBRATION_N} networks -> {saved}")
    quiet = True if log is None else None  # Progress's own rule (bar or lines) when there is a log
    timing = Progress("  timing", unit="entry", disable=quiet)  # each made just before its step: its clock starts
    lut = build_lut(space, threads=threads, runtime=runtime, progress=lambda i, n, key: timing(i, n),
                    **RECOMMENDED_TIMING)
    lut = calibrate_lut(lut, n=RECOMMENDED_CALIBRATION_N, progress=Progress("  calibrating", unit="net", disable=quiet),
                        **lut.timing)
    lut.save(saved)
    return space, lut
