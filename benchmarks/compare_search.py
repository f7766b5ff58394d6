"""Issue 5 comparison: retrain what training-free search finds, against random search and LRASPP.

Usage (the command recorded in RESULTS.md):
    python benchmarks/compare_search.py --discovered benchmarks/runs/realtime-digits/best_proxy.json --handcrafted NAME \
        --max-latency MS --budget 300 --k 3 --steps 1500 --lr 0.01 --warmup 50 --workers 2 \
        --out benchmarks/results/compare

Under one latency budget (predicted by the latency table, 64x64, batch 1, 1 thread) and with the same
number k of trained networks per method:
  (a) the top-k of a training-free aging-evolution search scored by the discovered proxy,
  (b) the top-k of the same search scored by a hand-designed proxy,
  (c) k random architectures that meet the budget (the best of them is the method's result),
  (d) LRASPP on MobileNetV3-Small (no pretrained weights),
all trained the same way as the embedded ground truth (digits, AdamW, poly schedule, same steps, lr,
warm-up, batch, seed 0) and evaluated on the digits **test** split (the ground truth used val). FPS is
measured after all training, one network at a time (batch 1, 1 thread, median of 100 runs after 10
warm-up runs). Trained rows go to OUT/trained.jsonl
as they finish (a rerun skips them); searches resume from their checkpoints. Writes OUT/compare.json,
OUT/compare.md and OUT/compare.png (mIoU vs FPS with the Pareto front).
"""
import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path

from saswot_gp.io import append_jsonl, atomic_write_json, atomic_write_text

LRASPP = "lraspp_mobilenet_v3_small"  # the row key of baseline (d), which has no architecture string


def _train(job):
    method, arch, kw = job
    import torch
    torch.set_num_threads(1)
    from saswot_gp.spaces.base import count_flops, count_params
    from saswot_gp.training import measure_latency, train_arch, train_segmenter
    if arch is None:  # LRASPP baseline
        from saswot_gp.datasets import get_dataset
        from saswot_gp.training.baselines import lraspp_mobilenet_v3_small
        model = lraspp_mobilenet_v3_small(11, seed=kw["seed"])
        tr = get_dataset("digits", "train", image_size=(64, 64), seed=0)
        te = get_dataset("digits", "test", image_size=(64, 64), seed=0)
        res = train_segmenter(model, tr, te, steps=kw["steps"], batch_size=kw["batch_size"], optimizer="adamw",
                              lr=kw["lr"], warmup_steps=kw["warmup"], seed=kw["seed"], num_classes=11)
        lat = measure_latency(model, (64, 64), threads=1, repeats=50)
        row = {"mIoU": res["mIoU"], "pixel_acc": res["pixel_acc"], "params": count_params(model),
               "flops": count_flops(model, torch.zeros(1, 3, 64, 64)), "train_time_s": res["train_time_s"],
               "latency_ms": lat["latency_ms"]}
    else:
        r = train_arch(arch, steps=kw["steps"], batch_size=kw["batch_size"], lr=kw["lr"], warmup_steps=kw["warmup"],
                       seed=kw["seed"], threads=1, eval_split="test", data_kwargs={"seed": 0}, latency_repeats=50)
        row = {k: r[k] for k in ("mIoU", "pixel_acc", "params", "flops", "train_time_s", "latency_ms")}
    row.update({"method": method, "arch": arch or LRASPP, "fps": 1000.0 / row["latency_ms"]})
    return row


def pareto(points):
    """Indices of points (fps, miou) not dominated by another (higher or equal on both, better on one).

    The library's only Pareto front (``HallOfFame.pareto`` in ``saswot_gp.evolution.loop``) is over a proxy's size
    and training Kendall, a hall-of-fame structure, not a set of points; hence this one."""
    keep = []
    for i, (f, m) in enumerate(points):
        if not any((f2 >= f and m2 >= m) and (f2 > f or m2 > m) for j, (f2, m2) in enumerate(points) if j != i):
            keep.append(i)
    return sorted(keep, key=lambda i: points[i][0])


def parse_args(argv=None) -> argparse.Namespace:
    ap = argparse.ArgumentParser()
    ap.add_argument("--discovered", required=True)
    ap.add_argument("--handcrafted", required=True)
    ap.add_argument("--transferred", action="append", default=[], metavar="FILE[=LABEL]",
                    help="a proxy evolved without this benchmark (leave-one-benchmark-out): methods e (repeatable)")
    ap.add_argument("--max-latency", type=float, required=True)
    ap.add_argument("--budget", type=int, default=300)
    ap.add_argument("--k", type=int, default=3)
    ap.add_argument("--steps", type=int, default=800)
    ap.add_argument("--lr", type=float, default=0.01)
    ap.add_argument("--warmup", type=int, default=50)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--out", default="benchmarks/results/compare")
    return ap.parse_args(argv)


def search_methods(a: argparse.Namespace) -> list:
    """(method label, proxy spec, search subfolder) of every searched method: a, b and one e per --transferred."""
    methods = [("a: discovered proxy", a.discovered, "search_discovered"),
               (f"b: {a.handcrafted}", a.handcrafted, f"search_{a.handcrafted}")]
    for spec in a.transferred:
        path, _, label = spec.partition("=")
        methods.append((f"e: transferred proxy (LOBO{', ' + label if label else ''})", path,
                        f"search_transferred{'_' + label if label else ''}"))
    return methods


def run_searches(space, lut, a: argparse.Namespace, out: Path) -> dict:
    """Run (or resume, where a checkpoint exists) the training-free search of every searched method."""
    from saswot_gp.search import CHECKPOINT, run_search
    searches = {}
    for method, spec, sub in search_methods(a):
        sdir = out / sub
        s = run_search(space, spec, lut, a.max_latency, a.budget, sdir, top_k=a.k, seed=a.seed,
                       resume=(sdir / CHECKPOINT).is_file(), log=print)
        searches[method] = s
        print(f"{method}: scored {s['scored']} in {s['wall_s']:.1f} s ({s['archs_per_s']:.1f}/s)")
    return searches


def random_archs(space, lut, a: argparse.Namespace) -> list:
    """Baseline (c): the first k distinct seeded samples whose predicted latency meets the budget."""
    rng = random.Random(a.seed)
    rand = []
    while len(rand) < a.k:
        x = space.sample(rng)
        if lut.predict(x) <= a.max_latency and x not in rand:
            rand.append(x)
    return rand


def plan_jobs(searches: dict, rand: list) -> list:
    """(method, arch) of every network to train; arch None is the LRASPP baseline."""
    jobs = [(m, r["arch"]) for m, s in searches.items() for r in s["top"]] + [("c: random", x) for x in rand]
    jobs.append(("d: LRASPP-MobileNetV3-Small", None))
    jobs.sort(key=lambda j: j[0])  # methods in letter order (e, when given, after the baselines)
    return jobs


def load_trained(store: Path) -> dict:
    """Rows already in OUT/trained.jsonl, keyed by (method, arch). Written by ``saswot_gp.io.append_jsonl``; the
    library has no reader of such a file that skips a last line cut short by an interruption, hence this one."""
    done = {}
    if store.exists():
        for line in store.read_text().splitlines():
            try:
                r = json.loads(line)
            except ValueError:
                continue  # a line cut short by an interruption
            done[(r["method"], r["arch"])] = r
    return done


def train_missing(jobs: list, done: dict, kw: dict, store: Path, workers: int) -> None:
    """Train the jobs not yet in ``done``, appending each row to ``store`` (and ``done``) as it finishes."""
    todo = [(m, x, kw) for m, x in jobs if (m, x or LRASPP) not in done]
    print(f"{len(jobs)} networks to compare, {len(todo)} to train with {workers} worker(s)")
    from saswot_gp.execution import executor
    t0 = time.perf_counter()
    with executor(workers if workers > 1 else 0, log=print) as ex:  # the project's one execution seam
        for i, (_, row) in enumerate(ex.as_completed(_train, todo), 1):
            append_jsonl(store, row)
            done[(row["method"], row["arch"])] = row
            print(f"  [{i}/{len(todo)}] {row['method']}: mIoU {row['mIoU']:.4f}, {row['fps']:.0f} FPS, "
                  f"{row['train_time_s']:.0f} s  ({time.perf_counter() - t0:.0f} s)", flush=True)


def remeasure_fps(rows: list, space, lut) -> None:
    """FPS again for every network, one after the other in this process once no training runs (the figure taken
    right after training shared the cores with the other worker); also the LUT's predicted latency."""
    from saswot_gp.training import measure_latency
    from saswot_gp.training.baselines import lraspp_mobilenet_v3_small
    for r in rows:
        baseline = r["arch"] == LRASPP
        net = lraspp_mobilenet_v3_small(11) if baseline else space.build(r["arch"])
        r["latency_ms_after_training"] = r["latency_ms"]
        r["latency_ms"] = measure_latency(net, (64, 64), threads=1, warmup=10, repeats=100)["latency_ms"]
        r["fps"] = 1000.0 / r["latency_ms"]
        r["predicted_ms"] = None if baseline else lut.predict(r["arch"])


def summarise_methods(rows: list, searches: dict, per_net: float) -> list:
    """One summary per method (in row order): its best network, mean mIoU, search and training cost."""
    methods = []
    for m in dict.fromkeys(r["method"] for r in rows):
        rs = [r for r in rows if r["method"] == m]
        best = max(rs, key=lambda r: r["mIoU"])
        s = searches.get(m)
        methods.append({"method": m, "trained": len(rs), "best_mIoU": best["mIoU"],
                        "mean_mIoU": statistics.fmean(r["mIoU"] for r in rs), "best_arch": best["arch"],
                        "fps": best["fps"], "latency_ms": best["latency_ms"], "params": best["params"],
                        "predicted_ms": best["predicted_ms"],
                        "flops": best["flops"], "search_s": s["wall_s"] if s else 0.0,
                        "scored": s["scored"] if s else (len(rs) if m.startswith("c") else 0),
                        "train_s": sum(r["train_time_s"] for r in rs),
                        "train_every_scored_h": (s["scored"] * per_net / 3600) if s else None})
    return methods


def markdown(a: argparse.Namespace, methods: list, per_net: float) -> list:
    """The lines of OUT/compare.md."""
    md = [f"Latency budget {a.max_latency} ms predicted (64x64, batch 1, 1 thread), k = {a.k} trained networks per "
          f"method, {a.steps} steps; mIoU on the digits test split.", "",
          "| method | best mIoU | mean mIoU of k | FPS (measured) | predicted ms | params | MMACs | search s | scored | train s (all k) |",
          "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for m in methods:
        pm = "-" if m["predicted_ms"] is None else f"{m['predicted_ms']:.2f}"
        md.append(f"| {m['method']} | {m['best_mIoU']:.4f} | {m['mean_mIoU']:.4f} | {m['fps']:.0f} | {pm} | {m['params']:,} | "
                  f"{m['flops'] / 1e6:.2f} | {m['search_s']:.1f} | {m['scored']} | {m['train_s']:.0f} |")
    md.append("")
    for m in methods:
        if m["train_every_scored_h"] is not None:
            md.append(f"- {m['method']}: training-free search {m['search_s']:.1f} s for {m['scored']} architectures; "
                      f"training each of them ({per_net:.0f} s median per network, measured here) would take "
                      f"{m['train_every_scored_h']:.2f} h ({m['train_every_scored_h'] * 3600 / max(m['search_s'], 1e-9):.0f}x).")
    md += ["", "Best architectures:"] + [f"- {m['method']}: `{m['best_arch']}`" for m in methods]
    return md


def plot(rows: list, max_latency: float, path: Path) -> None:
    """mIoU against measured FPS of every trained network, per method, with the Pareto front and the budget."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    for m in dict.fromkeys(r["method"] for r in rows):
        rs = [r for r in rows if r["method"] == m]
        ax.scatter([r["fps"] for r in rs], [r["mIoU"] for r in rs], label=m, s=30)
    pts = [(r["fps"], r["mIoU"]) for r in rows]
    front = pareto(pts)
    ax.plot([pts[i][0] for i in front], [pts[i][1] for i in front], "k--", lw=1, marker="*", ms=14, mfc="none", label="Pareto front")
    ax.axvline(1000.0 / max_latency, color="grey", lw=0.8, ls=":", label="budget (predicted)")
    ax.set(xlabel="FPS (measured, batch 1, 1 thread, 64x64)", ylabel="mIoU (digits test)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> int:
    a = parse_args()
    import torch
    torch.set_num_threads(1)
    from saswot_gp.search import resolve_lut
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    space, lut = resolve_lut("realtime", (64, 64), None, out, threads=1, log=print)
    searches = run_searches(space, lut, a, out)
    rand = random_archs(space, lut, a)
    jobs = plan_jobs(searches, rand)
    kw = {"steps": a.steps, "lr": a.lr, "warmup": a.warmup, "batch_size": a.batch_size, "seed": a.seed}
    store = out / "trained.jsonl"
    done = load_trained(store)
    train_missing(jobs, done, kw, store, a.workers)
    rows = [dict(done[(m, x or LRASPP)]) for m, x in jobs]
    remeasure_fps(rows, space, lut)
    per_net = statistics.median(r["train_time_s"] for r in rows)
    methods = summarise_methods(rows, searches, per_net)
    res = {"settings": vars(a), "lut_threads": lut.threads, "median_train_s_per_net": per_net, "methods": methods,
           "networks": rows, "random_archs": rand,
           "searches": {m: {k: s[k] for k in ("scored", "wall_s", "archs_per_s", "proxy")} for m, s in searches.items()}}
    atomic_write_json(out / "compare.json", res)
    md = markdown(a, methods, per_net)
    atomic_write_text(out / "compare.md", "\n".join(md) + "\n")
    print("\n".join(md))
    plot(rows, a.max_latency, out / "compare.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
