"""Tables of ``benchmarks/transfer.py``'s runs (``python benchmarks/transfer.py report``): LOBO per variant with
seeds, bootstrap intervals and the hand-designed baselines, the ablation summary, the transfer matrix, the general
runs, the shipped proxy per benchmark, NWOT in the language vs live, and the relative spread of hand-designed
proxies. Writes ``benchmarks/results/transfer.{json,md}``."""

from __future__ import annotations

import csv
import json

import numpy as np

from saswot_gp.io import atomic_write_json, atomic_write_text
from saswot_gp.ranking import kendall
from transfer import (BENCHES, FAMILY_OUT, RESULTS, ROOT, RUNS, SCORE_FILES, SETTINGS, SHORT, VAL_FRAC, data_options,
                      heldout_data, score_heldout)


def registry_scores(name: str):
    """{measure: scores} of the registered zero-cost measures on the held-out architectures, in their order."""
    from saswot_gp.zerocost import measure_names
    d = heldout_data(name)
    src = ROOT / "runs" / SCORE_FILES[name]
    cols = {}
    for sub in ("proxies", "proxies_swap32"):
        f = src / sub / "scores.csv"
        if not f.is_file():
            continue
        with open(f, newline="") as fh:
            rows = {r["arch"]: r for r in csv.DictReader(fh)}
        for m in measure_names():
            if sub == "proxies" and m == "swap":
                continue  # swap saturates on 8 images: its 32-image pass is used
            if all(a in rows and m in rows[a] for a in d.test.archs):
                cols[m] = np.array([float(rows[a][m] or "nan") for a in d.test.archs])
    return cols


def boot_ci(fn, n: int, reps: int = 1000, seed: int = 0):
    """Percentile-bootstrap 95 % interval of fn(idx) over resampled architectures. (``ranking.rank_correlations``
    bootstraps one score vector's correlation; here the statistic is a mean over seeds or a difference of two
    proxies' Kendall taus on the same resample, so the resampling is done here.)"""
    rng = np.random.default_rng(seed)
    vals = np.array([fn(rng.integers(0, n, n)) for _ in range(reps)])
    vals = vals[np.isfinite(vals)]
    return [float(v) for v in np.percentile(vals, [2.5, 97.5])] if len(vals) else [float("nan")] * 2


_BASE = {}


def baselines(name: str) -> dict:
    """Held-out Kendall of every hand-designed proxy on a benchmark: registry (live) and proxy language."""
    if name in _BASE:
        return _BASE[name]
    from saswot_gp.handcrafted import handcrafted_proxies
    d = heldout_data(name)
    t = d.test.target
    out = {f"{m} (live)": kendall(s, t) for m, s in registry_scores(name).items()}
    for n, p in handcrafted_proxies().items():
        out[f"{n} (lang)"] = kendall(score_heldout(p.tokens, name), t)
    _BASE[name] = {k: v for k, v in out.items() if np.isfinite(v)}
    return _BASE[name]


def chosen_handcrafted(train_benches) -> str:
    """The hand-designed proxy a user who knows only the training benchmarks would pick: best mean held-out
    Kendall over them (the left-out benchmark is not looked at)."""
    tables = [baselines(b) for b in train_benches]
    common = set.intersection(*(set(t) for t in tables))
    return max(sorted(common), key=lambda k: np.mean([t[k] for t in tables]))


def lobo_table(variant: str) -> dict:
    from saswot_gp.handcrafted import handcrafted_proxies
    rows = {}
    for left in BENCHES + list(FAMILY_OUT):
        targets = FAMILY_OUT.get(left, [left])
        for name in targets:
            d = heldout_data(name)
            t = d.test.target
            taus, scores, exprs, vals = [], [], [], []
            for sd in sorted((RUNS / variant / f"without-{SHORT.get(left, left)}").glob("seed*/best_proxy.json")):
                doc = json.loads(sd.read_text())
                per = doc.get("meta", {}).get("per_benchmark", {})
                v = [r["val_kendall"] for r in per.values() if "val_kendall" in r]
                vals.append(float(np.mean(v)) if v else float("nan"))
                s = score_heldout(doc["tokens"], name, **data_options(variant))
                taus.append(kendall(s, t))
                scores.append(s)
                exprs.append(doc.get("expression") or " ".join(doc["tokens"]))
            if not taus:
                continue
            base = baselines(name)
            best = max(base, key=base.get)
            measure = best.split(" ")[0]
            bs = registry_scores(name).get(measure) if best.endswith("(live)") else \
                score_heldout(handcrafted_proxies()[measure].tokens, name)
            mean_tau = lambda idx: float(np.mean([kendall(s[idx], t[idx]) for s in scores]))  # noqa: E731
            diff = lambda idx: mean_tau(idx) - kendall(bs[idx], t[idx])  # noqa: E731
            key = name if left == name else f"{name} (without {left})"
            train_b = [b for b in BENCHES if b not in targets]
            pick_h = chosen_handcrafted(train_b)
            rows[key] = {"left_out": left, "benchmark": name, "n": len(t), "seeds": len(taus), "kendall": taus,
                         "handcrafted_chosen_on_training": pick_h,
                         "handcrafted_chosen_on_training_kendall": base.get(pick_h, float("nan")),
                         "mean": float(np.mean(taus)), "sd": float(np.std(taus, ddof=1)) if len(taus) > 1 else 0.0,
                         "ci_mean": boot_ci(mean_tau, len(t)), "best_handcrafted": best,
                         "val_mean": float(np.mean(vals)) if vals else float("nan"),
                         "best_handcrafted_kendall": base[best], "margin": float(np.mean(taus)) - base[best],
                         "ci_margin": boot_ci(diff, len(t), seed=1), "expressions": exprs,
                         "params_kendall": base.get("params (live)", base.get("params (lang)"))}
    return rows


def matrix_table(variant: str) -> dict:
    out = {}
    for src in BENCHES:
        runs = sorted((RUNS / "matrix" / variant / f"on-{SHORT[src]}").glob("seed*/best_proxy.json"))
        if not runs:
            continue
        toks = [json.loads(r.read_text())["tokens"] for r in runs]
        out[src] = {}
        for dst in BENCHES:
            t = heldout_data(dst).test.target
            taus = [kendall(score_heldout(tk, dst), t) for tk in toks]
            out[src][dst] = {"mean": float(np.mean(taus)), "sd": float(np.std(taus, ddof=1)) if len(taus) > 1 else 0.0,
                             "n_seeds": len(taus)}
    return out


def general_table(variant: str) -> dict:
    out = []
    for r in sorted((RUNS / "general" / variant).glob("seed*/summary.json")):
        s = json.loads(r.read_text())
        e = s["evolved"][0]
        out.append({"run": str(r.parent.relative_to(ROOT)), "seed": s["seed"], "expression": e["expression"],
                    "sympy": e["sympy"], "tokens": e["tokens"], "train_kendall": e["train_kendall"],
                    "val_kendall": e.get("val_kendall"), "heldout_kendall": e["heldout_kendall"],
                    "per_benchmark": e["per_benchmark"]})
    return {"runs": out}


def spread_table() -> dict:
    """Relative spread (``fitness.relative_spread``) of every hand-designed proxy and of the earlier single-benchmark
    winners on each benchmark's held-out architectures: what the near-constant threshold (1e-3) has to let through."""
    from saswot_gp.evolution.fitness import relative_spread
    from saswot_gp.handcrafted import handcrafted_proxies
    out = {}
    for name in BENCHES:
        row = {f"{m} (live)": relative_spread(s[np.isfinite(s)]) for m, s in registry_scores(name).items()
               if np.isfinite(s).sum() > 2 and np.ptp(s[np.isfinite(s)]) > 0}
        for n, p in handcrafted_proxies().items():
            row[f"{n} (lang)"] = relative_spread(score_heldout(p.tokens, name))
        for r in ("realtime-digits", "transnas-micro", "transnas-macro", "nbmr-seg"):
            f = ROOT / "runs" / r / "best_proxy.json"
            if f.is_file():
                row[f"winner of runs/{r}"] = relative_spread(score_heldout(json.loads(f.read_text())["tokens"], name))
        out[name] = row
    return out


def shipped_table() -> dict:
    """The shipped general proxy on every benchmark's held-out architectures beside the best hand-designed proxy
    there (live registry, file scores excluded) and params. It was evolved on the training splits of all five."""
    from saswot_gp.proxy import Proxy
    p = Proxy.load("saswot")
    out = {}
    for name in BENCHES:
        t = heldout_data(name).test.target
        base = baselines(name)
        best = max(base, key=base.get)
        out[name] = {"saswot": kendall(score_heldout(p.tokens, name), t), "best_handcrafted": best,
                     "best_handcrafted_kendall": base[best], "nwot (live)": base.get("nwot (live)"),
                     "params (live)": base.get("params (live)")}
    return out


def nwot_table() -> dict:
    """Held-out Kendall of the registry's live nwot (ReLU-input codes, full tensors) beside the proxy language's
    nwot (``nwot_a(A)``: one kernel over all layers' sketched conv-output codes) and its per-layer variant."""
    from saswot_gp.handcrafted import handcrafted_proxies
    hp = handcrafted_proxies()
    out = {}
    for name in BENCHES:
        t = heldout_data(name).test.target
        live = registry_scores(name).get("nwot")
        out[name] = {"live nwot": kendall(live, t) if live is not None else float("nan"),
                     "nwot_a(A)": kendall(score_heldout(hp["nwot_gp"].tokens, name), t),
                     "nwot_layers": kendall(score_heldout(hp["nwot_layers"].tokens, name), t)}
    return out


def _md_table(title: str, head: str, align: str, rows) -> list:
    """Lines of one report section: title, header, alignment row, one line per row, blank line."""
    return [title, "", head, align, *rows, ""]


def _f(x, spec=".3f"):
    return "nan" if x is None or not np.isfinite(x) else format(x, spec)


def report() -> None:
    RESULTS.mkdir(exist_ok=True)
    variants = sorted(p.name for p in RUNS.iterdir() if p.is_dir() and p.name not in ("matrix", "general")) if RUNS.is_dir() else []
    res = {"settings": {**SETTINGS, "val_frac": VAL_FRAC, "benchmarks": BENCHES}, "lobo": {}, "matrix": {}, "general": {}}
    for v in variants:
        res["lobo"][v] = lobo_table(v)
    for v in sorted(p.name for p in (RUNS / "matrix").iterdir()) if (RUNS / "matrix").is_dir() else []:
        res["matrix"][v] = matrix_table(v)
    for v in sorted(p.name for p in (RUNS / "general").iterdir()) if (RUNS / "general").is_dir() else []:
        res["general"][v] = general_table(v)
    res["spread"] = spread_table()
    res["nwot"] = nwot_table()
    res["shipped"] = shipped_table()
    atomic_write_json(RESULTS / "transfer.json", res)
    L = ["# Transfer of discovered proxies (`python benchmarks/transfer.py report`)", ""]
    L += _lobo_lines(res) + _ablation_lines(res) + _matrix_general_lines(res) + _other_lines(res)
    atomic_write_text(RESULTS / "transfer.md", "\n".join(L) + "\n")
    print("\n".join(L))


def _lobo_lines(res: dict) -> list:
    L = []
    for v, rows in res["lobo"].items():
        L += [f"## LOBO, variant `{v}`", "",
              "| left out | n | seeds | transferred Kendall mean (sd) [95% CI] | best hand-designed on it (oracle) | its Kendall | margin [95% CI] | hand-designed chosen on the training benchmarks: Kendall | params |",
              "|---|---:|---:|---|---|---:|---|---|---:|"]
        for k, r in rows.items():
            L.append(f"| {k} | {r['n']} | {r['seeds']} | {_f(r['mean'])} ({_f(r['sd'])}) [{_f(r['ci_mean'][0])}, "
                     f"{_f(r['ci_mean'][1])}] | {r['best_handcrafted']} | {_f(r['best_handcrafted_kendall'])} | "
                     f"{_f(r['margin'], '+.3f')} [{_f(r['ci_margin'][0], '+.3f')}, {_f(r['ci_margin'][1], '+.3f')}] | "
                     f"{r['handcrafted_chosen_on_training']}: {_f(r['handcrafted_chosen_on_training_kendall'])} | "
                     f"{_f(r['params_kendall'])} |")
        five = [r["margin"] for k, r in rows.items() if k in BENCHES]
        val = [r["val_mean"] for k, r in rows.items() if k in BENCHES]
        if five:
            L += ["", f"Mean margin over the {len(five)} left-out benchmarks: {np.mean(five):+.3f}; "
                      f"beaten on {sum(m > 0 for m in five)} of {len(five)}. Mean transferred Kendall "
                      f"{np.mean([r['mean'] for k, r in rows.items() if k in BENCHES]):.3f}, hand-designed chosen on "
                      f"the training benchmarks "
                      f"{np.mean([r['handcrafted_chosen_on_training_kendall'] for k, r in rows.items() if k in BENCHES]):.3f}. "
                      f"Validation (training "
                      f"benchmarks only, mean Kendall of the chosen proxies on their validation splits): "
                      f"{_f(float(np.mean(val)) if val else float('nan'))}.", ""]
    return L


def _ablation_lines(res: dict) -> list:
    L = ["## LOBO ablation summary (the five left-out benchmarks; oracle = best hand-designed proxy on the left-out "
          "benchmark itself)", "",
          "| variant | folds x seeds | mean transferred Kendall | mean margin vs oracle | folds beating the oracle | "
          "mean margin vs hand-designed chosen on training | validation Kendall (training benchmarks) |",
          "|---|---|---:|---:|---:|---:|---:|"]
    for v, rows in res["lobo"].items():
        five = [r for k, r in rows.items() if k in BENCHES]
        if not five:
            continue
        L.append(f"| `{v}` | {len(five)} x {'/'.join(str(r['seeds']) for r in five)} | {np.mean([r['mean'] for r in five]):.3f} | "
                 f"{np.mean([r['margin'] for r in five]):+.3f} | {sum(r['margin'] > 0 for r in five)} of {len(five)} | "
                 f"{np.mean([r['mean'] - r['handcrafted_chosen_on_training_kendall'] for r in five]):+.3f} | "
                 f"{_f(float(np.mean([r['val_mean'] for r in five])))} |")
    L.append("")
    return L


def _matrix_general_lines(res: dict) -> list:
    L = []
    for v, m in res["matrix"].items():
        L += [f"## Transfer matrix, variant `{v}` (row: evolved on; column: held-out Kendall on; mean over seeds)", "",
              "| evolved on | " + " | ".join(SHORT[b] for b in BENCHES) + " |", "|---|" + "---:|" * len(BENCHES)]
        for src, row in m.items():
            L.append(f"| {SHORT[src]} | " + " | ".join(f"{_f(row[d]['mean'])} ({_f(row[d]['sd'])})" for d in BENCHES) + " |")
        L.append("")
    for v, g in res["general"].items():
        L += [f"## Evolved on all five, variant `{v}`", "", "| run | train | val | held-out (mean of 5) | expression |",
              "|---|---:|---:|---:|---|"]
        for r in g["runs"]:
            L.append(f"| {r['run']} | {_f(r['train_kendall'])} | {_f(r['val_kendall'])} | {_f(r['heldout_kendall'])} | `{r['sympy']}` |")
        L.append("")
    return L


def _other_lines(res: dict) -> list:
    L = _md_table("## The shipped general proxy `saswot` on each benchmark's held-out architectures",
                   "| benchmark | saswot | best hand-designed there (oracle) | its Kendall | nwot (live) | params (live) |",
                   "|---|---:|---|---:|---:|---:|",
                   [f"| {b} | {_f(r['saswot'])} | {r['best_handcrafted']} | {_f(r['best_handcrafted_kendall'])} | "
                    f"{_f(r['nwot (live)'])} | {_f(r['params (live)'])} |" for b, r in res["shipped"].items()])
    L += _md_table("## NWOT in the proxy language vs the registry's live measure (held-out Kendall)",
                   "| benchmark | live nwot | nwot_a(A) (language) | nwot_layers (per-layer sum) |", "|---|---:|---:|---:|",
                   [f"| {b} | {_f(r['live nwot'])} | {_f(r['nwot_a(A)'])} | {_f(r['nwot_layers'])} |"
                    for b, r in res["nwot"].items()])
    L += ["## Relative spread (q95 - q5) / max(|q5|, |q95|) on the held-out architectures", "",
          "| benchmark | smallest among hand-designed (which) | median of hand-designed | earlier winners (min) |",
          "|---|---|---:|---:|"]
    for b, row in res["spread"].items():
        hand = {k: v for k, v in row.items() if not k.startswith("winner")}
        lo = min(hand, key=hand.get)
        win = [v for k, v in row.items() if k.startswith("winner")]
        L.append(f"| {b} | {hand[lo]:.3g} ({lo}) | {np.median(list(hand.values())):.3g} | {min(win) if win else float('nan'):.3g} |")
    L.append("")
    return L
