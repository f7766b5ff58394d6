"""Held-out comparison tables: an evolve run beside every hand-designed proxy on the same held-out archs.

Usage: python benchmarks/heldout_table.py benchmarks/runs/transnas-micro [more run dirs ...]
       [--md benchmarks/results/heldout_tables.md]

Each run dir holds ``summary.json`` (written by ``saswot-gp evolve``) and ``proxies/proxies.csv`` (written
by ``saswot-gp proxies --train-size N --heldout-size M --split-seed S --proxy RUN/best_proxy.json``, i.e.
the same held-out architectures and the same statistics batch), and optionally ``proxies_swap32/proxies.csv``
(``--measures swap --batch-size 32``: SWAP counts distinct activation patterns over the batch, which
saturate at 2^8 with the 8-image batch, so its row comes from a 32-image batch of the same generator). Rows: the evolved proxy (from the evolve
run and re-scored on live models by ``proxies``), the 14 registered measures computed on live models with
bootstrap 95 % intervals, the hand-designed proxies written in the proxy language, and the benchmark
file's precomputed scores. Sorted by held-out Kendall tau.
"""
import argparse
import csv
import math
import sys
from pathlib import Path

from saswot_gp.io import atomic_write_text, read_json


def _f(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return float("nan")


def _csv(path: Path, required: bool = False) -> list:
    """The rows of a ``saswot-gp proxies`` table (``proxies.csv``), as dicts; [] when ``path`` does not exist
    (unless ``required``)."""
    if not required and not path.exists():
        return []
    with open(path, encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


def _summary(run: Path) -> dict:
    """The evolve run's ``summary.json``."""
    return read_json(run / "summary.json", f"{run / 'summary.json'}", "expected an evolve run folder")


def summary_row(run: Path) -> str:
    """One markdown row: evolved vs the best proxy of each kind on the held-out architectures."""
    s = _summary(run)
    ev = s["evolved"][0]
    rows = _csv(run / "proxies" / "proxies.csv", required=True)
    extra = run / "proxies_swap32" / "proxies.csv"
    live = [r for r in rows if r["kind"] != "file" and not (extra.exists() and r["proxy"] == "swap")]
    live += _csv(extra)
    again = [r for r in rows if r["kind"] == "file"]
    best = max((r for r in live if not math.isnan(_f(r["kendall"]))), key=lambda r: _f(r["kendall"]))
    lang = max(s.get("handcrafted", []), key=lambda h: h["heldout_kendall"])
    ref = max(s.get("reference", []), key=lambda h: h["heldout_kendall"] if not math.isnan(h["heldout_kendall"]) else -9)
    ci = f" [{_f(again[0]['kendall_lo']):.3f}, {_f(again[0]['kendall_hi']):.3f}]" if again else ""
    return (f"| {s['benchmark']} | {s['n_heldout']} | **{ev['heldout_kendall']:.3f}**{ci} | {best['proxy']} "
            f"{_f(best['kendall']):.3f} [{_f(best['kendall_lo']):.3f}, {_f(best['kendall_hi']):.3f}] | "
            f"{ref['name'].replace(' (file)', '')} {ref['heldout_kendall']:.3f} | {lang['name']} {lang['heldout_kendall']:.3f} |")


def table(run: Path) -> str:
    s = _summary(run)
    rows = []
    ev = s["evolved"][0]
    rows.append(("**evolved** (evolve run) `" + ev["sympy"] + "`", ev["heldout_kendall"], ev["heldout_spearman"], ""))
    live = _csv(run / "proxies" / "proxies.csv")
    for r in live:
        ci = f"[{_f(r['kendall_lo']):.3f}, {_f(r['kendall_hi']):.3f}]"
        name = ("evolved, re-scored on live models" if r["kind"] == "file" else f"{r['proxy']} (registry, live model)")
        rows.append((name, _f(r["kendall"]), _f(r["spearman"]), ci))
    extra = run / "proxies_swap32" / "proxies.csv"   # swap saturates at 2^8 patterns with 8 images
    for r in _csv(extra):
        rows = [x for x in rows if not x[0].startswith(f"{r['proxy']} (registry")]
        rows.append((f"{r['proxy']} (registry, live model, batch of 32)", _f(r["kendall"]), _f(r["spearman"]),
                     f"[{_f(r['kendall_lo']):.3f}, {_f(r['kendall_hi']):.3f}]"))
    for h in s.get("handcrafted", []):
        rows.append((f"{h['name']} (in the proxy language)", h["heldout_kendall"], h["heldout_spearman"], ""))
    for r in s.get("reference", []):
        rows.append((f"{r['name'].replace(' (file)', '')} (benchmark file, precomputed)", r["heldout_kendall"],
                     r["heldout_spearman"], ""))
    rows.sort(key=lambda r: -(r[1] if not math.isnan(r[1]) else -9))
    out = [f"### {s['benchmark']} ({s['metric']}): {s['n_heldout']} held-out architectures "
           f"(split seed {s['seed']}, {s['n_train']} for training)", "",
           "| proxy | held-out Kendall | 95% interval (live registry) | held-out Spearman |", "|---|---:|---:|---:|"]
    for name, k, sp, ci in rows:
        out.append(f"| {name} | {k:.3f} | {ci} | {sp:.3f} |")
    if not live:
        out.append("\n(registry not yet run on these architectures)")
    best_hand = max((r for r in rows if "evolved" not in r[0] and not math.isnan(r[1])), key=lambda r: r[1])
    out.append(f"\nBest hand-designed: {best_hand[0]} at Kendall {best_hand[1]:.3f}; evolved {rows_evolved(rows):.3f}.")
    return "\n".join(out)


def rows_evolved(rows):
    return next(r[1] for r in rows if r[0].startswith("**evolved**"))


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("runs", nargs="+")
    ap.add_argument("--md", default="benchmarks/results/heldout_tables.md")
    a = ap.parse_args()
    head = ["| benchmark | held out | evolved [95% CI] | best registered proxy, live model [95% CI] | "
            "best precomputed score in the benchmark file | best hand-designed proxy in the proxy language |",
            "|---|---:|---:|---:|---:|---:|"]
    text = "\n".join(head + [summary_row(Path(r)) for r in a.runs]) + "\n\n"
    text += "\n\n".join(table(Path(r)) for r in a.runs)
    print(text)
    atomic_write_text(a.md, "## Evolved proxies beside every hand-designed proxy on the same held-out architectures\n\n"
                          "Generated by `python benchmarks/heldout_table.py " + " ".join(a.runs) + "`.\n\n" + text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
