"""Within-benchmark generalisation of evolved proxies on the committed splits (saswot_gp/resources/splits.json).

    SASWOT_BENCHDATA=../shared/benchdata python benchmarks/generalise.py run --bench realtime-digits \
        --variants r0 r50 r50-p2 --seeds 0 1 2            # resumable: finished runs are kept
    python benchmarks/generalise.py report --bench realtime-digits     # -> results/generalise_<bench>.{md,json}
    python benchmarks/generalise.py lobo --variants r50-rank           # leave each benchmark out in turn
    python benchmarks/generalise.py general --variants r50-rank        # all five benchmarks; re-ships saswot

Every run is ``run_evolve`` (what ``saswot-gp evolve`` calls) on the benchmark's committed split: fitness on its
training part, the final proxy chosen on its validation part (``--select val``, the hand-designed seeds
competing), figures on its held-out part. Statistics: 8 images at 64x64 (realtime-digits: its digit scenes;
the public benchmarks: the seeded synthetic batch), K = 256, weights and batch from data seed 0, cached in
``--cache-dir``. One torch thread.

Variants ``r<P>[-p<Q>][-<terminals>][-rank]``: fitness on a fresh random P % of the training part every
generation (``r0``: the whole part, the fitness of earlier sessions), parsimony Q / 1000 Kendall per node,
terminal set (default ``all``; ``all+measures``: the registered live measures as terminals, issue 25), ``-rank``: the rank-aggregation root (``--root rank``), ``-tasks``: TransNAS-Bench-101's
six other tasks of the same architectures join the fitness as extra benchmarks (figures are the segmentation
task's; the run's own choice on validation is the mean over all seven tasks). The default of
``saswot-gp evolve`` is the variant with the best mean *validation* Kendall
over the seeds; held-out figures are only reported.

Baselines on the same held-out architectures: every hand-designed proxy of the proxy language (the seeds of
evolution; ``params`` and ``flops`` among them) and every precomputed score of the benchmark file (NASLib's, on
real images; marked ``(file)``), the one with the best validation Kendall (what a user without the
held-out ground truth would pick), the best rank-average of two or three of them chosen on validation, and the
oracle (the best hand-designed proxy on the held-out part itself, chosen with the data it is reported on).
Intervals: percentile bootstrap over held-out architectures (1000 resamples) of the seed-mean Kendall.
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent
RUNS = ROOT / "runs" / "generalise"
RESULTS = ROOT / "results"
OTHER_TASKS = ("class_scene", "class_object", "jigsaw", "room_layout", "autoencoder", "normal")
SETTINGS = dict(batch_size=8, resolution=(64, 64), k=256, data_seed=0, select="val", split="committed")


def parse_variant(v: str) -> dict:
    """``r50-p2-stats`` -> resample 0.5, parsimony 0.002, terminals 'stats'."""
    m = re.fullmatch(r"r(\d{1,3})(?:-p(\d+))?(?:-((?:all|stats|sizes|scalefree)(?:\+measures)?))?(-rank)?(-tasks)?", v)
    if not m or not 0 <= int(m.group(1)) <= 100:
        raise SystemExit(f"variant {v!r}; expected r<percent>[-p<thousandths>][-<all|stats|sizes|scalefree>[+measures]]"
                         f"[-rank][-tasks]")
    return {"resample": int(m.group(1)) / 100, "parsimony": int(m.group(2) or 0) / 1000,
            "terminals": m.group(3) or "all", "root": "rank" if m.group(4) else "plain"}


def fitness_benches(bench: str, variant: str):
    """What a within-benchmark run evolves on: ``bench``, and with ``-tasks`` also TransNAS-Bench-101's six other
    tasks of the same architectures (``bench@task``), each on the segmentation split restricted to its
    architectures."""
    if not variant.endswith("-tasks"):
        return bench
    if not bench.startswith("transnas-"):
        raise SystemExit(f"variant {variant!r}: only TransNAS-Bench-101 benchmarks have other tasks")
    return [bench] + [f"{bench}@{t}" for t in OTHER_TASKS]


def budget(population: int, generations: int, workers: int = 0) -> str:
    """'pop64-gen20', or 'pop64-gen20-dask2' for runs on a local Dask cluster of 2 workers."""
    return f"pop{population}-gen{generations}" + (f"-dask{workers}" if workers else "")


def run_dir(bench: str, variant: str, seed: int, population: int, generations: int, workers: int = 0) -> Path:
    """Where one run lives."""
    return RUNS / bench / budget(population, generations, workers) / variant / f"seed{seed}"


def evolve_run(benches, out: Path, variant: str, seed: int, population: int, generations: int, cache: str,
               workers: int = 0) -> dict:
    """One evolution run on one benchmark or a list of them (kept if finished before, resumed if killed)."""
    from saswot_gp.evolution.job import run_evolve
    if (out / "summary.json").is_file():
        return json.loads((out / "summary.json").read_text())
    resume = (out / "checkpoint.json").is_file()
    t = time.time()
    s = run_evolve(benchmark=benches, out_dir=str(out), seed=seed, resume=resume, overwrite=not resume, workers=workers,
                   cache_dir=cache, population=population, generations=generations, log=lambda m: None,
                   **parse_variant(variant), **SETTINGS)
    e = s["evolved"][0]
    print(f"  {out.relative_to(ROOT) if out.is_relative_to(ROOT) else out}: {time.time() - t:.0f} s, val {e['val_kendall']:.3f} held "
          f"{e['heldout_kendall']:.3f} ({e['origin']}) {e['expression']}", flush=True)
    return s


def _data(bench: str, cache: str, measures: bool = False):
    from saswot_gp.evolution.data import prepare_benchmark
    from saswot_gp.primitives.types import MEASURE_TERMINALS
    s = SETTINGS
    return prepare_benchmark(bench, seed=s["data_seed"], batch_size=s["batch_size"], resolution=s["resolution"],
                             k=s["k"], cache_dir=cache, log=lambda m: None, split=s["split"],
                             measures=MEASURE_TERMINALS if measures else ())


def _scores(tokens, packed, n: int) -> np.ndarray:
    from saswot_gp.evolution.report import proxy_scores
    from saswot_gp.proxy import Proxy
    s = proxy_scores(Proxy(tokens), packed)
    return np.full(n, np.nan) if s is None else s


def _rank_mean(cols) -> np.ndarray:
    from scipy.stats import rankdata
    return np.mean([rankdata(np.nan_to_num(c, nan=-np.inf)) for c in cols], axis=0)


def _boot(score_cols, target, n_boot: int = 1000, seed: int = 0):
    """Kendall of the mean over seeds of each seed's Kendall, with a percentile-bootstrap interval."""
    from saswot_gp.ranking import kendall
    rng = np.random.default_rng(seed)
    point = float(np.mean([kendall(c, target) for c in score_cols]))
    boots = []
    for idx in rng.integers(0, len(target), size=(n_boot, len(target))):
        boots.append(np.mean([kendall(c[idx], target[idx]) for c in score_cols]))
    lo, hi = np.nanpercentile(boots, [2.5, 97.5])
    return point, float(lo), float(hi)


def _hand_scores(d, files: bool = True, measures: bool = False) -> dict:
    """name -> (validation, held-out, training scores) of every hand-designed proxy of the proxy language, with
    ``measures`` of every registered live measure (``snip``: measure terminals, attached to ``d``'s statistics) and,
    with ``files``, of every precomputed score of the benchmark file (NASLib's, on real images)."""
    from saswot_gp.handcrafted import seed_proxies
    hand = {n: (_scores(p.tokens, d.pval, len(d.val)), _scores(p.tokens, d.ptest, len(d.test)),
                _scores(p.tokens, d.ptrain, len(d.train)))
            for n, p in seed_proxies("all+measures" if measures else "all").items()}
    for col in sorted(d.test.reference) if files else ():
        if np.isfinite(d.test.reference[col]).sum() >= 3 and col not in ("params", "flops"):
            hand[f"{col} (file)"] = (d.val.reference[col], d.test.reference[col], d.train.reference[col])
    return hand


def _learned(parts) -> dict:
    """Ridge and gradient boosting on the hand-designed proxies' ranks (benchmarks/learned_baselines.py):
    ``parts`` is a list of (hand scores, BenchmarkData) to fit on (training parts) and choose on (validation
    parts); returns a function of the left-out (hand scores, BenchmarkData) giving held-out figures."""
    from learned_baselines import learned_rows, rank_features
    names = sorted(set.intersection(*(set(h) for h, _ in parts)))
    train = [(rank_features([h[n][2] for n in names]), d.train.target) for h, d in parts]
    val = [(rank_features([h[n][0] for n in names]), d.val.target) for h, d in parts]
    return lambda h, d: dict(learned_rows(train, val, (rank_features([h[n][1] for n in names]), d.test.target)),
                             features=names)


def report(bench: str, variants, population: int, generations: int, cache: str, workers: int = 0,
           measures: bool = False) -> dict:
    """Tables of every variant's chosen proxies beside the hand-designed baselines; -> results/. ``measures`` (on
    by itself when a variant uses measure terminals): the registered live measures join the baselines (and the
    features of the learned ones), and the tables go to ``*_measures.{md,json}``."""
    from saswot_gp.ranking import kendall
    measures = measures or any("+measures" in v for v in variants)
    d = _data(bench, cache, measures)
    tv, th = d.val.target, d.test.target
    hand = _hand_scores(d, measures=measures)
    hand_val = {n: kendall(v[0], tv) for n, v in hand.items()}
    hand_held = {n: kendall(v[1], th) for n, v in hand.items()}
    best_val = max(hand_val, key=lambda n: np.nan_to_num(hand_val[n], nan=-9))
    oracle = max(hand_held, key=lambda n: np.nan_to_num(hand_held[n], nan=-9))
    combos = [c for r in (2, 3) for c in itertools.combinations(sorted(hand), r)]
    ens_val = {c: kendall(_rank_mean([hand[n][0] for n in c]), tv) for c in combos}
    ens = max(ens_val, key=lambda c: np.nan_to_num(ens_val[c], nan=-9))
    ens_held = kendall(_rank_mean([hand[n][1] for n in ens]), th)
    learned = _learned([(hand, d)])(hand, d)
    rows = []
    for v in variants:
        runs = [json.loads(p.read_text()) for p in
                sorted(run_dir(bench, v, 0, population, generations, workers).parent.glob("seed*/summary.json"))]
        if not runs:
            continue
        chosen = [dict(r["evolved"][0], **r["evolved"][0].get("per_benchmark", {}).get(d.name, {})) for r in runs]
        cols = [_scores(e["tokens"], d.ptest, len(th)) for e in chosen]
        k, lo, hi = _boot(cols, th)
        rows.append({"variant": v, "seeds": [r["seed"] for r in runs], **parse_variant(v),
                     "val_kendall": float(np.mean([e["val_kendall"] for e in chosen])),
                     "train_kendall": float(np.mean([e["train_kendall"] for e in chosen])),
                     "heldout_kendall": k, "heldout_lo": lo, "heldout_hi": hi,
                     "heldout_per_seed": [e["heldout_kendall"] for e in chosen],
                     "origins": [e["origin"] for e in chosen], "expressions": [e["expression"] for e in chosen],
                     "seconds": float(np.mean([r["evolution_seconds"] for r in runs]))})
    best = max(rows, key=lambda r: r["val_kendall"]) if rows else None
    out = {"benchmark": d.name, "n_train": len(d.train), "n_val": len(tv), "n_heldout": len(th),
           "population": population, "generations": generations, "variants": rows,
           "chosen_on_validation": best["variant"] if best else None,
           "handcrafted": {n: {"val_kendall": hand_val[n], "heldout_kendall": hand_held[n]} for n in hand},
           "best_handcrafted_on_val": {"name": best_val, "val_kendall": hand_val[best_val],
                                       "heldout_kendall": hand_held[best_val]},
           "best_ensemble_on_val": {"names": list(ens), "val_kendall": ens_val[ens], "heldout_kendall": ens_held},
           "learned": learned,
           "oracle": {"name": oracle, "heldout_kendall": hand_held[oracle]},
           "params": hand_held.get("params"), "flops": hand_held.get("flops")}
    RESULTS.mkdir(exist_ok=True)
    stem = RESULTS / (f"generalise_{bench}_{budget(population, generations, workers)}" + ("_measures" if measures else ""))
    stem.with_suffix(".json").write_text(json.dumps(out, indent=1))
    stem.with_suffix(".md").write_text(_markdown(out))
    print(_markdown(out))
    return out


def _learned_text(learned) -> str:
    """One sentence on the ridge and gradient-boosting baselines (empty without them)."""
    if not learned:
        return ""
    r, g = learned["ridge"], learned["gbm"]
    return (f" Fitted on the training part's ranks of the {len(learned['features'])} hand-designed proxies, setting "
            f"chosen on validation: ridge (alpha {r['setting']}) {r['heldout_kendall']:.3f} (val {r['val_kendall']:.3f});"
            f" gradient boosting (depth 2, {g['setting']} rounds) {g['heldout_kendall']:.3f} (val {g['val_kendall']:.3f}).")


def _markdown(o: dict) -> str:
    lines = [f"{o['benchmark']}: {o['n_train']} train / {o['n_val']} val / {o['n_heldout']} held-out architectures "
             f"(committed split), population {o['population']}, {o['generations']} generations", "",
             "| variant | seeds | train | val (chooses) | held-out [95% CI] | per seed | chosen proxies |",
             "|---|---|---:|---:|---|---|---|"]
    for r in o["variants"]:
        mark = " **(chosen)**" if r["variant"] == o["chosen_on_validation"] else ""
        lines.append(f"| `{r['variant']}`{mark} | {len(r['seeds'])} | {r['train_kendall']:.3f} | {r['val_kendall']:.3f} | "
                     f"{r['heldout_kendall']:.3f} [{r['heldout_lo']:.3f}, {r['heldout_hi']:.3f}] | "
                     f"{' / '.join(f'{x:.3f}' for x in r['heldout_per_seed'])} | "
                     f"{'; '.join(f'`{e}`' if o_ == 'evolved' else o_ for e, o_ in zip(r['expressions'], r['origins']))} |")
    b, e, orc = o["best_handcrafted_on_val"], o["best_ensemble_on_val"], o["oracle"]
    lines += ["", f"Baselines, held-out Kendall: best hand-designed chosen on validation `{b['name']}` "
              f"{b['heldout_kendall']:.3f} (val {b['val_kendall']:.3f}); best rank-average chosen on validation "
              f"`{' + '.join(e['names'])}` {e['heldout_kendall']:.3f} (val {e['val_kendall']:.3f}); oracle "
              f"`{orc['name']}` {orc['heldout_kendall']:.3f}; params {o['params']:.3f}; flops {o['flops']:.3f}."
              + _learned_text(o.get("learned")), "",

              "| hand-designed | val | held-out |", "|---|---:|---:|"]
    lines += [f"| `{n}` | {h['val_kendall']:.3f} | {h['heldout_kendall']:.3f} |" for n, h in o["handcrafted"].items()]
    return "\n".join(lines) + "\n"


LOBO_BENCHES = ["realtime-digits", "transnas-micro", "transnas-macro"]
GENERAL_BENCHES = ["realtime-digits", "transnas-micro", "transnas-macro", "nbmr-seg", "nbmr-seg-4x"]


def ship(variants, seeds, population: int, generations: int) -> None:
    """Re-ship ``saswot``: of the runs evolved on the training parts of all five benchmarks (``general``), the
    proxy with the highest mean validation Kendall (no held-out figure is looked at)."""
    from transfer import ship_best
    runs = [(v, RUNS / "general" / f"pop{population}-gen{generations}" / v / f"seed{s}" / "summary.json")
            for v in variants for s in seeds]
    missing = [str(r) for _, r in runs if not r.is_file()]
    if missing:
        raise SystemExit(f"general runs not finished: {', '.join(missing)}")
    cmd = (f"SASWOT_BENCHDATA=../shared/benchdata python benchmarks/generalise.py general --variants "
           f"{' '.join(variants)} --seeds {' '.join(map(str, seeds))} --population {population} "
           f"--generations {generations}")
    ship_best(runs, cmd, {"split": "committed", **{f"variant_{k}": v for k, v in parse_variant(variants[0]).items()}}
              if len(variants) == 1 else {"split": "committed"})


def _lobo_name(benches) -> str:
    """'lobo' for the three default benchmarks, else 'lobo-<benchmarks joined by +>' (runs and reports apart)."""
    return "lobo" if list(benches) == LOBO_BENCHES else "lobo-" + "+".join(benches)


def _lobo_dir(benches, left: str, variant: str, seed: int, population: int, generations: int) -> Path:
    return (RUNS / _lobo_name(benches) / f"pop{population}-gen{generations}" / variant / f"without-{left}"
            / f"seed{seed}")


def lobo_report(benches, variant: str, population: int, generations: int, cache: str) -> dict:
    """Leave-one-benchmark-out: each fold's chosen proxies (evolved on the other benchmarks' training parts,
    chosen on their validation parts) on the left-out benchmark's held-out part, beside the hand-designed proxy
    and the rank-average of two or three with the best mean validation Kendall on the training benchmarks (what
    a user without the new ground truth would pick), the oracle (best on the left-out held-out part), params and
    flops; -> results/generalise_lobo_*.{md,json}. A variant with measure terminals adds the registered live
    measures to the hand-designed candidates of every baseline."""
    from saswot_gp.ranking import kendall
    measures = "+measures" in variant  # the live measures join the singles, ensembles and learned baselines
    data = {b: _data(b, cache, measures) for b in benches}
    lang = {b: _hand_scores(d, files=False, measures=measures) for b, d in data.items()}
    names = sorted(next(iter(lang.values())))
    combos = [(n,) for n in names] + [c for r in (2, 3) for c in itertools.combinations(names, r)]
    rows = []
    for left in benches:
        train = [b for b in benches if b != left]
        d = data[left]
        th = d.test.target
        summaries = [json.loads(p.read_text()) for p in
                     sorted(_lobo_dir(benches, left, variant, 0, population, generations).parent.glob("seed*/summary.json"))]
        if not summaries:
            continue
        cols = [_scores(s_["evolved"][0]["tokens"], d.ptest, len(th)) for s_ in summaries]
        k, lo, hi = _boot(cols, th)
        val = {c: np.mean([kendall(_rank_mean([lang[b][n][0] for n in c]), data[b].val.target) for b in train])
               for c in combos}
        single = max((c for c in combos if len(c) == 1), key=lambda c: np.nan_to_num(val[c], nan=-9))
        ens = max((c for c in combos if len(c) > 1), key=lambda c: np.nan_to_num(val[c], nan=-9))
        held = {n: kendall(v[1], th) for n, v in _hand_scores(d, measures=measures).items()}
        learned = _learned([(lang[b], data[b]) for b in train])(lang[left], d)
        oracle = max(held, key=lambda n: np.nan_to_num(held[n], nan=-9))
        rows.append({"left_out": d.name, "train": train, "n_heldout": len(th), "seeds": [x["seed"] for x in summaries],
                     "transferred": k, "lo": lo, "hi": hi, "per_seed": [kendall(c, th) for c in cols],
                     "expressions": [x["evolved"][0]["expression"] for x in summaries],
                     "origins": [x["evolved"][0]["origin"] for x in summaries],
                     "val_on_training": float(np.mean([x["evolved"][0]["val_kendall"] for x in summaries])),
                     "single": {"name": single[0], "heldout": held[single[0]]},
                     "ensemble": {"names": list(ens), "heldout": kendall(_rank_mean([lang[left][n][1] for n in ens]), th)},
                     "oracle": {"name": oracle, "heldout": held[oracle]}, "params": held["params"],
                     "ridge": learned["ridge"], "gbm": learned["gbm"],
                     "flops": held["flops"]})
    out = {"variant": variant, "population": population, "generations": generations, "folds": rows}
    lines = [f"LOBO, variant `{variant}`, population {population}, {generations} generations, committed splits", "",
             "| left out (held out) | transferred [95% CI] | per seed | single chosen on training | rank-average "
             "chosen on training | ridge / boosting fitted on training | oracle | params | flops |",
             "|---|---|---|---|---|---|---|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['left_out']} ({r['n_heldout']}) | {r['transferred']:.3f} [{r['lo']:.3f}, {r['hi']:.3f}] | "
                     f"{' / '.join(f'{x:.3f}' for x in r['per_seed'])} | `{r['single']['name']}` "
                     f"{r['single']['heldout']:.3f} | `{' + '.join(r['ensemble']['names'])}` {r['ensemble']['heldout']:.3f}"
                     f" | {r['ridge']['heldout_kendall']:.3f} / {r['gbm']['heldout_kendall']:.3f} | `{r['oracle']['name']}` "
                     f"{r['oracle']['heldout']:.3f} | {r['params']:.3f} | {r['flops']:.3f} |")
    lines += ["", "Ridge and gradient boosting (depth 2): fitted on the pooled training parts of the training benchmarks "
                  "(ranks of the in-language hand-designed proxies and of the target, within each benchmark), alpha or "
                  "rounds chosen on their validation parts.",
              "", "Chosen proxies: " + "; ".join(f"{r['left_out']}: " + ", ".join(
        f"`{e}`" if o == "evolved" else o for e, o in zip(r["expressions"], r["origins"])) for r in rows)]
    stem = RESULTS / f"generalise_{_lobo_name(benches)}_{variant}_pop{population}-gen{generations}"
    stem.with_suffix(".json").write_text(json.dumps(out, indent=1))
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return out


WITHIN = ["realtime-digits", "transnas-micro", "transnas-macro", "nbmr-seg"]


def summary(population: int, generations: int) -> str:
    """The within-benchmark and LOBO tables of RESULTS.md, from the reports in results/ (nothing re-run);
    -> results/generalise_summary.md."""
    reps = {b: json.loads(p.read_text()) for b in WITHIN
            if (p := RESULTS / f"generalise_{b}_pop{population}-gen{generations}.json").is_file()}
    variants = list(dict.fromkeys(v["variant"] for r in reps.values() for v in r["variants"]))
    fmt = lambda x: f"{x:.3f}" if x is not None and np.isfinite(x) else "—"
    lines = ["| variant | " + " | ".join(f"{r['benchmark']} ({r['n_heldout']})" for r in reps.values())
             + " | mean validation, first three | all |", "|---|" + "---|" * len(reps) + "---:|---:|"]
    for v in variants:
        cells, vals = [], []
        for r in reps.values():
            row = next((x for x in r["variants"] if x["variant"] == v), None)
            cells.append("" if row is None else f"{row['heldout_kendall']:.3f} [{row['heldout_lo']:.3f}, "
                                                f"{row['heldout_hi']:.3f}] val {row['val_kendall']:.3f}")
            vals.append(None if row is None else row["val_kendall"])
        three = vals[:3] if None not in vals[:3] else None
        lines.append(f"| `{v}` | " + " | ".join(cells) + f" | {fmt(np.mean(three)) if three else '—'} | "
                     f"{fmt(np.mean(vals)) if None not in vals else '—'} |")
    base = [("best hand-designed chosen on validation", lambda r: f"`{r['best_handcrafted_on_val']['name']}` "
             f"{r['best_handcrafted_on_val']['heldout_kendall']:.3f}"),
            ("best rank-average chosen on validation", lambda r: f"`{' + '.join(r['best_ensemble_on_val']['names'])}` "
             f"{r['best_ensemble_on_val']['heldout_kendall']:.3f}"),
            ("ridge on hand-designed ranks (fitted on training)", lambda r: fmt(r.get("learned", {}).get("ridge", {}).get("heldout_kendall"))),
            ("gradient boosting, depth 2 (fitted on training)", lambda r: fmt(r.get("learned", {}).get("gbm", {}).get("heldout_kendall"))),
            ("oracle (best hand-designed on held-out)", lambda r: f"`{r['oracle']['name']}` {r['oracle']['heldout_kendall']:.3f}"),
            ("params / flops", lambda r: f"{fmt(r['params'])} / {fmt(r['flops'])}")]
    lines += [f"| {name} | " + " | ".join(f(r) for r in reps.values()) + " | | |" for name, f in base]
    lines += ["", "Per seed: " + "; ".join(f"{r['benchmark']} `{v['variant']}` " + " / ".join(f"{x:.3f}" for x in v["heldout_per_seed"])
                                           for r in reps.values() for v in r["variants"] if v["variant"] in ("r50", "r50-rank"))]
    for stem in sorted(RESULTS.glob(f"generalise_lobo*_pop{population}-gen{generations}.json")):
        o = json.loads(stem.read_text())
        lines += ["", f"LOBO `{stem.stem}`: " + "; ".join(
            f"{f['left_out']} {f['transferred']:.3f} (val {f['val_on_training']:.3f}; single {f['single']['heldout']:.3f}, "
            f"ensemble {f['ensemble']['heldout']:.3f}, ridge {fmt(f.get('ridge', {}).get('heldout_kendall'))}, "
            f"boosting {fmt(f.get('gbm', {}).get('heldout_kendall'))}, oracle {f['oracle']['heldout']:.3f})"
            for f in o["folds"]) + f"; mean transferred {np.mean([f['transferred'] for f in o['folds']]):.3f}, "
            f"validation {np.mean([f['val_on_training'] for f in o['folds']]):.3f}"]
    text = "\n".join(lines) + "\n"
    (RESULTS / "generalise_summary.md").write_text(text)
    print(text)
    return text


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("what", choices=["run", "report", "lobo", "general", "summary"],
                    help="general: evolve on all five benchmarks' training parts, then re-ship saswot")
    ap.add_argument("--bench", default="realtime-digits")
    ap.add_argument("--benches", nargs="+", default=LOBO_BENCHES,
                    help="lobo: the benchmarks, each left out in turn")
    ap.add_argument("--variants", nargs="+", default=["r0", "r50"])
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--population", type=int, default=64)
    ap.add_argument("--generations", type=int, default=20)
    ap.add_argument("--cache-dir", default=str(ROOT / ".stats_cache"))
    ap.add_argument("--measures", action="store_true",
                    help="report: the registered live measures join the baselines (issue 25; on by itself when a "
                         "variant uses measure terminals)")
    ap.add_argument("--workers", type=int, default=0,
                    help="run/report: fitness and statistics on a local Dask cluster of this many workers")
    a = ap.parse_args()
    import torch
    torch.set_num_threads(1)
    for v in a.variants:
        parse_variant(v)
    if a.what == "lobo":
        for left in a.benches:
            for seed in a.seeds:
                out = _lobo_dir(a.benches, left, a.variants[0], seed, a.population, a.generations)
                evolve_run([b for b in a.benches if b != left], out, a.variants[0], seed, a.population,
                           a.generations, a.cache_dir)
        lobo_report(a.benches, a.variants[0], a.population, a.generations, a.cache_dir)
        return
    if a.what == "summary":
        summary(a.population, a.generations)
        return
    if a.what == "general":
        for v in a.variants:
            for seed in a.seeds:
                evolve_run(GENERAL_BENCHES, RUNS / "general" / f"pop{a.population}-gen{a.generations}" / v / f"seed{seed}",
                           v, seed, a.population, a.generations, a.cache_dir)
        ship(a.variants, a.seeds, a.population, a.generations)
        return
    if a.what == "run":
        for v in a.variants:
            for seed in a.seeds:
                evolve_run(fitness_benches(a.bench, v), run_dir(a.bench, v, seed, a.population, a.generations,
                                                                 a.workers), v,
                           seed, a.population, a.generations, a.cache_dir, a.workers)
    report(a.bench, a.variants, a.population, a.generations, a.cache_dir, a.workers, a.measures)


if __name__ == "__main__":
    main()
