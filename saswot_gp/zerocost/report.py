"""Tables and plots of zero-cost proxy rows (:func:`saswot_gp.zerocost.evaluate.proxy_table`).

:func:`format_table` prints the rows with their 95% intervals and the rows' notes under the table;
:func:`write_csv` writes one line per proxy (notes included), :func:`write_scores_csv` one line per
architecture, and :func:`plot_scatter` one proxy's scores against the target.
"""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from ..groundtruth.base import Benchmark
from .scoring import PathLike, safe_name

CSV_COLUMNS = ("proxy", "kind", "n", "kendall", "kendall_lo", "kendall_hi", "spearman", "spearman_lo",
               "spearman_hi", "sec_per_arch", "note")


def _fmt(v, spec: str) -> str:
    return "nan" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, spec)


def format_table(rows: Sequence[dict]) -> str:
    """Plain-text table of the rows (Kendall and Spearman with their 95% intervals), then the rows' notes."""
    head = f"{'proxy':<16}{'kind':<9}{'n':>5}{'kendall':>9}  {'95% CI':<16}{'spearman':>9}  {'95% CI':<16}{'s/arch':>8}"
    lines = [head, "-" * len(head)]
    for r in rows:
        ci_k = f"[{_fmt(r['kendall_lo'], '+.3f')}, {_fmt(r['kendall_hi'], '+.3f')}]"
        ci_s = f"[{_fmt(r['spearman_lo'], '+.3f')}, {_fmt(r['spearman_hi'], '+.3f')}]"
        lines.append(f"{r['proxy']:<16}{r['kind']:<9}{r['n']:>5}{_fmt(r['kendall'], '+.3f'):>9}  {ci_k:<16}"
                     f"{_fmt(r['spearman'], '+.3f'):>9}  {ci_s:<16}{_fmt(r['sec_per_arch'], '.3f'):>8}")
    notes = [f"  {r['proxy']}: {r['note']}" for r in rows if r.get("note")]
    if notes:
        lines += ["", "notes:"] + notes
    return "\n".join(lines)


def write_csv(rows: Sequence[dict], path: PathLike) -> Path:
    """Write the table (one row per proxy, columns ``CSV_COLUMNS``) to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(CSV_COLUMNS)
        for r in rows:
            w.writerow([r["proxy"], r["kind"], r["n"]] +
                       [("" if math.isnan(r[c]) else f"{r[c]:.6g}") for c in CSV_COLUMNS[3:-1]] + [r.get("note", "")])
    return path


def write_scores_csv(bench: Benchmark, rows: Sequence[dict], path: PathLike) -> Path:
    """Write every architecture's target and proxy scores (one row per architecture) to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["arch", bench.metric or "target"] + [r["proxy"] for r in rows])
        for i, a in enumerate(bench.archs):
            w.writerow([a, f"{bench.target[i]:.6g}"] +
                       [("" if math.isnan(r["scores"][i]) else f"{r['scores'][i]:.10g}") for r in rows])
    return path


def scatter_figure(row: dict, target: Sequence[float], metric: str = "target", benchmark: Optional[str] = None):
    """The scatter of one proxy's scores against the target as a matplotlib ``Figure`` (Agg canvas, no pyplot).

    The title names the benchmark (when given), the proxy and the target metric, then Kendall tau,
    Spearman rho and n; it is wrapped to the figure's width. A row's ``note`` is written in the axes.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from ..viz import wrap_text
    s = np.asarray(row["scores"], dtype=np.float64)
    t = np.asarray(target, dtype=np.float64)
    ok = np.isfinite(s) & np.isfinite(t)
    fig = Figure(figsize=(4.2, 3.6), dpi=100)
    FigureCanvasAgg(fig)
    renderer = fig.canvas.get_renderer()
    ax = fig.add_subplot(1, 1, 1)
    ax.scatter(s[ok], t[ok], s=10, alpha=0.6, edgecolors="none")
    ax.set_xlabel(f"{row['proxy']} score")
    ax.set_ylabel(metric)
    head = f"{row['proxy']} vs {metric}" if not benchmark else f"{benchmark}: {row['proxy']} vs {metric}"
    text = f"{head}\ntau {_fmt(row['kendall'], '+.3f')}, rho {_fmt(row['spearman'], '+.3f')} (n={int(ok.sum())})"
    title = ax.set_title("", fontsize=9)
    title.set_parse_math(False)
    width = fig.get_figwidth()
    wrap_text(title, text, width - 0.3, renderer, fig.dpi, max_lines=4, min_size=6.0)
    if row.get("note"):
        note = ax.text(0.02, 0.98, "", transform=ax.transAxes, ha="left", va="top", fontsize=7, color="0.25",
                       parse_math=False, bbox=dict(facecolor="white", alpha=0.8, edgecolor="none", pad=1.0))
        wrap_text(note, str(row["note"]), 2.9, renderer, fig.dpi, max_lines=6, min_size=5.0)
    fig.tight_layout()
    box = ax.get_position()                        # the title is centred on the axes: keep it inside the figure
    centre = (box.x0 + box.x1) / 2 * width
    room = 2 * min(centre, width - centre) - 0.1
    if title.get_window_extent(renderer).width / fig.dpi > room:
        title.set_fontsize(9)
        wrap_text(title, text, room, renderer, fig.dpi, max_lines=4, min_size=6.0)
        fig.tight_layout()
    return fig


def plot_scatter(row: dict, target: Sequence[float], path: PathLike, metric: str = "target",
                 benchmark: Optional[str] = None) -> Path:
    """Save :func:`scatter_figure` (one proxy's scores against the target of ``benchmark``) to ``path``."""
    from ..io import atomic_save_figure
    path = Path(path)
    atomic_save_figure(scatter_figure(row, target, metric=metric, benchmark=benchmark), path, dpi=100)
    return path


def scatter_name(proxy: str) -> str:
    """File name of a proxy's scatter plot: ``scatter_<name>.png`` with unsafe characters replaced."""
    return f"scatter_{safe_name(proxy)}.png"
