"""Do discovered proxies transfer? Leave-one-benchmark-out (LOBO) evolution, the transfer matrix, and the
general proxy evolved on all five benchmarks.

    python benchmarks/transfer.py run lobo --variant all-val --seeds 0 1 2      # evolve (resumable: finished runs are kept)
    python benchmarks/transfer.py run matrix --seeds 0 1 2
    python benchmarks/transfer.py run general --seeds 0 1 2
    python benchmarks/transfer.py pick --variant all-val --fold realtime-digits    # LOBO proxy for compare_search.py
    python benchmarks/transfer.py ship --variants all-val stats-val               # -> saswot_gp/resources/proxy_saswot.json
    python benchmarks/transfer.py report                                          # tables -> results/transfer.{json,md}

Every run is ``saswot_gp.evolution.job.run_evolve`` (what ``saswot-gp evolve`` calls) with population 48 and
12 generations (below the defaults 64 x 20, to fit 100 runs into an hour of two cores), fitness over the
training splits of its benchmarks, one torch thread.
Splits, batches and network weights use data seed 0 for every run (so the statistics are collected once,
cached in ``benchmarks/.stats_cache``); evolution seeds vary. Per benchmark: at most 200 training
architectures (100 of the 200 of realtime-digits) and the first 150 of the held-out permutation (100 for
realtime-digits), the same architectures on which ``saswot-gp proxies`` scored every registered measure
on live models (``benchmarks/runs/<name>/proxies*/scores.csv``; NAS-Bench-MR seg-4x has exactly the
architectures of seg, so seg's scores serve both). Batches: realtime-digits its own digit scenes, the
others the seeded synthetic batch, 8 images at 64x64, K = 256.

Variants (``--variant``): ``<terminals>-<select>[-min][-natural|-synthetic][-kN]``: terminal set
all|stats|sizes|scalefree, final proxy chosen by training (``train``) or validation Kendall (``val``: 25 % of each
training split kept aside), fitness mean (default) or min of the per-benchmark training Kendall, statistics batch
(default: each benchmark's own, see above; ``natural``: crops of scikit-learn's sample photographs for every
benchmark; the transferred proxy is then scored on the same kind of batch) and sketch size K (default 256).
Nothing about the left-out benchmark is used to evolve or to choose a proxy.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent

BENCHES = ["realtime-digits", "transnas-micro", "transnas-macro", "nbmr-seg", "nbmr-seg-4x"]
SHORT = {"realtime-digits": "digits", "transnas-micro": "micro", "transnas-macro": "macro", "nbmr-seg": "nbmr",
         "nbmr-seg-4x": "nbmr4x"}
# registered measures scored on live models on these held-out architectures (same batch, weights and split)
SCORE_FILES = {"realtime-digits": "realtime-digits", "transnas-micro": "transnas-micro",
               "transnas-macro": "transnas-macro", "nbmr-seg": "nbmr-seg", "nbmr-seg-4x": "nbmr-seg"}
FAMILY_OUT = {"nbmr-family": ["nbmr-seg", "nbmr-seg-4x"]}
CACHE = ROOT / ".stats_cache"
RUNS = ROOT / "runs" / "transfer"
RESULTS = ROOT / "results"
SETTINGS = dict(train_size=200, heldout_size=150, batch_size=8, resolution=(64, 64), k=256, data_seed=0,
                population=48, generations=12)
VAL_FRAC = 0.25


def parse_variant(v: str) -> dict:
    """``stats-val-natural-k1024`` -> terminals, select, fitness, batch, k."""
    parts = v.split("-")
    out = {"terminals": parts[0], "select": parts[1] if len(parts) > 1 else "", "fitness": "mean", "batch": "auto",
           "k": SETTINGS["k"]}
    ok = out["terminals"] in ("all", "stats", "sizes", "scalefree") and out["select"] in ("train", "val")
    for extra in parts[2:]:
        if extra == "min":
            out["fitness"] = "min"
        elif extra in ("natural", "synthetic"):
            out["batch"] = extra
        elif re.fullmatch(r"k[1-9][0-9]*", extra):
            out["k"] = int(extra[1:])
        else:
            ok = False
    if not ok:
        raise SystemExit(f"variant {v!r}; expected <all|stats|sizes|scalefree>-<train|val>[-min][-natural|-synthetic][-kN]")
    return out


def data_options(variant: str) -> dict:
    """The statistics batch and sketch size a variant's proxies are scored with."""
    v = parse_variant(variant)
    return {"batch": v["batch"], "k": v["k"]}


def evolve_run(benches, out: Path, seed: int, variant: str) -> dict:
    """One evolution run (kept if finished before)."""
    from saswot_gp.evolution.job import run_evolve
    done = out / "summary.json"
    if done.is_file():
        return json.loads(done.read_text())
    v = parse_variant(variant)
    resume = (out / "checkpoint.json").is_file()
    t = time.time()
    s = run_evolve(benchmark=list(benches), out_dir=str(out), seed=seed, resume=resume, cache_dir=str(CACHE),
                   split="random", root="plain",  # these runs predate the committed splits and the rank root
                   val_frac=VAL_FRAC if v["select"] == "val" else 0.0, overwrite=not resume, log=lambda m: None, **v,
                   **{k: x for k, x in SETTINGS.items() if k != "k"})
    print(f"  {out.relative_to(ROOT)}: {time.time() - t:.0f} s, train {s['evolved'][0]['train_kendall']:.3f}  "
          f"{s['evolved'][0]['expression']}", flush=True)
    return s


_DATA = {}


def heldout_data(name: str, batch: str = "auto", k: int = SETTINGS["k"]):
    """Held-out split of one benchmark with its packed statistics (the split every run reports on)."""
    if (name, batch, k) not in _DATA:
        from saswot_gp.evolution.data import prepare_benchmark
        _DATA[name, batch, k] = prepare_benchmark(
            name, seed=SETTINGS["data_seed"], train_size=SETTINGS["train_size"], heldout_size=SETTINGS["heldout_size"],
            batch_size=SETTINGS["batch_size"], resolution=SETTINGS["resolution"], k=k, batch=batch,
            cache_dir=str(CACHE), log=lambda m: None)
    return _DATA[name, batch, k]


def score_heldout(tokens, name: str, batch: str = "auto", k: int = SETTINGS["k"]) -> np.ndarray:
    """The proxy's scores on a benchmark's held-out architectures (NaN if it fails there)."""
    from saswot_gp.evolution.report import proxy_scores
    from saswot_gp.proxy import Proxy
    d = heldout_data(name, batch, k)
    s = proxy_scores(Proxy(tokens), d.ptest)
    return np.full(len(d.test), np.nan) if s is None else s


def run_lobo(variant: str, seeds, folds) -> None:
    for left in folds:
        train = [b for b in BENCHES if b not in FAMILY_OUT.get(left, [left])]
        for seed in seeds:
            evolve_run(train, RUNS / variant / f"without-{SHORT.get(left, left)}" / f"seed{seed}", seed, variant)


def run_matrix(variant: str, seeds) -> None:
    for b in BENCHES:
        for seed in seeds:
            evolve_run([b], RUNS / "matrix" / variant / f"on-{SHORT[b]}" / f"seed{seed}", seed, variant)


def run_general(variant: str, seeds) -> None:
    for seed in seeds:
        evolve_run(BENCHES, RUNS / "general" / variant / f"seed{seed}", seed, variant)


# ------------------------------------------------------------------------------------------- report

def pick(variant: str, fold: str) -> Path:
    """Of one LOBO fold's seeds, the run whose final proxy has the highest mean validation Kendall on the fold's
    training benchmarks (nothing of the left-out benchmark is looked at); copied to ``chosen_proxy.json``."""
    from saswot_gp.proxy import Proxy
    d = RUNS / variant / f"without-{SHORT.get(fold, fold)}"
    runs = [(json.loads(r.read_text())["evolved"][0].get("val_kendall", float("nan")), r.parent)
            for r in sorted(d.glob("seed*/summary.json"))]
    if not runs:
        raise SystemExit(f"no finished runs in {d}")
    val, best = max(runs, key=lambda x: np.nan_to_num(x[0], nan=-9))
    p = Proxy.load(best / "best_proxy.json")
    p.meta["chosen"] = {"rule": "highest mean validation Kendall over the fold's training benchmarks",
                        "from": {r.name: v for v, r in runs}, "run": best.name}
    p.save(d / "chosen_proxy.json")
    print(f"{d.relative_to(ROOT)}: {best.name} (validation {val:.3f}) {p.expression()} -> chosen_proxy.json")
    return d / "chosen_proxy.json"


def ship(variants) -> None:
    """Ship the general proxy: of all runs evolved on the five benchmarks with the given variants, the one whose
    final proxy has the highest mean validation Kendall over the five validation splits (training data only)."""
    runs = [(v, r) for v in variants for r in sorted((RUNS / "general" / v).glob("seed*/summary.json"))]
    if not runs:
        raise SystemExit("no general runs yet: python benchmarks/transfer.py run general --variant ...")
    ship_best(runs, " ; ".join(f"python benchmarks/transfer.py run general --variant {x} --seeds 0 1 2" for x in variants)
              + " ; python benchmarks/transfer.py ship --variants " + " ".join(variants))


def ship_best(runs, command: str, settings=None) -> None:
    """Write saswot_gp/resources/proxy_saswot.json: of ``runs`` ((variant, summary.json path) of evolutions on
    the five benchmarks), the final proxy with the highest mean validation Kendall (training data only), with
    its provenance (``command`` regenerates it; ``settings``, a dict, adds what the summaries do not record)."""
    from saswot_gp.proxy import Proxy, shipped_proxy_path
    loaded = []
    for v, r in runs:
        s = json.loads(Path(r).read_text())
        loaded.append((s["evolved"][0].get("val_kendall", float("nan")), v, s, Path(r).parent))
    val, v, s, run_dir = max(loaded, key=lambda x: np.nan_to_num(x[0], nan=-9))
    e = s["evolved"][0]
    meta = {"name": "saswot", "benchmarks": [b["name"] for b in s["benchmarks"]], "variant": v,
            "terminals": s["terminals"], "fitness": s["fitness"], "select": s["select"], "val_frac": s["val_frac"],
            "seeds": sorted({x[2]["seed"] for x in loaded}), "chosen_seed": s["seed"], "data_seed": s["data_seed"],
            "population": s["population"], "generations": s["generations"], "k": s["k"],
            "batch": {b["name"]: b["batch"] for b in s["benchmarks"]}, "command": command,
            "selection": f"highest mean validation Kendall among {len(loaded)} runs "
                         f"({', '.join(sorted({x[1] for x in loaded}))}; seeds {sorted({x[2]['seed'] for x in loaded})})",
            "run": str(run_dir.relative_to(ROOT.parent)), "train_kendall": e["train_kendall"], "val_kendall": val,
            "heldout_kendall": e["heldout_kendall"], "origin": e.get("origin", "evolved"),
            "per_benchmark": e["per_benchmark"], "candidates": [{"variant": x[1], "seed": x[2]["seed"], "val_kendall": x[0],
                                                                  "expression": x[2]["evolved"][0]["expression"]} for x in loaded],
            **(settings or {})}
    p = Proxy(e["tokens"], name="saswot", meta=meta)
    p.save(shipped_proxy_path("saswot"))
    print(f"shipped {p.expression()} (variant {v}, seed {s['seed']}, validation Kendall {val:.3f}) -> "
          f"{shipped_proxy_path('saswot')}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("what", choices=["run", "report", "ship", "pick"])
    ap.add_argument("--fold", default="realtime-digits", help="pick: the left-out benchmark")
    ap.add_argument("--variants", nargs="+", default=["all-val", "stats-val"])
    ap.add_argument("kind", nargs="?", choices=["lobo", "matrix", "general"])
    ap.add_argument("--variant", default="all-val")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--folds", nargs="+", default=BENCHES + list(FAMILY_OUT))
    a = ap.parse_args()
    import torch
    torch.set_num_threads(1)
    os.environ.setdefault("SASWOT_BENCHDATA", str(ROOT.parent.parent / "shared" / "benchdata"))
    if a.what == "report":
        from transfer_report import report
        return report()
    if a.what == "ship":
        return ship(a.variants)
    if a.what == "pick":
        pick(a.variant, a.fold)
        return None
    if a.kind == "lobo":
        run_lobo(a.variant, a.seeds, a.folds)
    elif a.kind == "matrix":
        run_matrix(a.variant, a.seeds)
    elif a.kind == "general":
        run_general(a.variant, a.seeds)
    else:
        raise SystemExit("run what? lobo, matrix or general")


if __name__ == "__main__":
    main()
