"""Drawings: a proxy tree with networkx (PNG/SVG via matplotlib, or DOT text) and evolution curves."""

from __future__ import annotations

from pathlib import Path
from typing import List, Sequence

import networkx as nx

from .errors import SaswotError
from .io import atomic_save_figure, atomic_write_text, check_output_path
from .primitives import get_operator

TYPE_COLOURS = {"W": "#6baed6", "A": "#74c476", "L": "#fd8d3c", "S": "#e6550d", "R": "#9e9ac8"}


def proxy_graph(tokens: Sequence[str]) -> nx.DiGraph:
    """The proxy tree as a DiGraph: node ids are prefix positions, edges parent -> child (in argument order)."""
    g = nx.DiGraph()
    stack: List[int] = []
    for i in range(len(tokens) - 1, -1, -1):
        op = get_operator(tokens[i])
        g.add_node(i, label=tokens[i], type=op.out_type)
        for _ in range(op.arity):
            g.add_edge(i, stack.pop())
        stack.append(i)
    return g


def tree_layout(g: nx.DiGraph, root: int = 0) -> dict:
    """Tidy layered layout: leaves spaced evenly in order, parents centred over their children."""
    pos, counter = {}, [0.0]

    def place(n, depth):
        kids = sorted(g.successors(n))
        if not kids:
            x = counter[0]
            counter[0] += 1.0
        else:
            xs = [place(c, depth + 1) for c in kids]
            x = sum(xs) / len(xs)
        pos[n] = (x, -depth)
        return x

    place(root, 0)
    return pos


def to_dot(tokens: Sequence[str], title: str = "proxy") -> str:
    """Graphviz DOT text of the tree (no graphviz needed to produce it)."""
    g = proxy_graph(tokens)
    lines = [f'digraph "{title}" {{', "  node [style=filled, fontname=Helvetica];"]
    for n, d in sorted(g.nodes(data=True)):
        shape = "box" if get_operator(d["label"]).is_terminal else "ellipse"
        lines.append(f'  n{n} [label="{d["label"]}", shape={shape}, fillcolor="{TYPE_COLOURS[d["type"]]}"];')
    for a, b in g.edges():
        lines.append(f"  n{a} -> n{b};")
    lines.append("}")
    return "\n".join(lines) + "\n"


# Layout of :func:`proxy_figure`, in inches and points.
DPI = 110
PLOT_EXTENSIONS = (".png", ".svg")  # the picture formats drawings and plots are written in
NODE_FONT = 8.0                     # node label size; shrunk (down to MIN_NODE_FONT) when the tree gets wide
MIN_NODE_FONT = 5.0
TITLE_FONT = 9.0
MIN_TITLE_FONT = 6.0
MAX_TITLE_LINES = 6                 # more lines than this and the title font shrinks instead
MAX_WIDTH = 30.0                    # width the figure tries to stay within (it grows past it rather than overlap nodes)
MARGIN = 0.2
GAP_X, GAP_Y = 0.15, 0.45           # space between neighbouring node boxes
BOX_PAD = 0.3                       # box padding, in units of the label's font size
LEGEND = (("weight tensor", "W"), ("activation tensor", "A"), ("layer scalar", "L"), ("arch score", "S"),
          ("rank aggregate", "R"))


def _extent_in(artist, renderer, dpi: float):
    bb = artist.get_window_extent(renderer)
    return bb.width / dpi, bb.height / dpi


def wrap_text(artist, text: str, width_in: float, renderer, dpi: float, max_lines: int = MAX_TITLE_LINES,
              min_size: float = MIN_TITLE_FONT) -> None:
    """Set ``text`` on the Text ``artist`` wrapped (``textwrap``) so that it is at most ``width_in`` inches wide.

    Lines break at spaces where they can and inside long words where they must; when that takes more
    than ``max_lines`` lines the font shrinks (down to ``min_size``) and the text is wrapped again.
    """
    import textwrap
    paragraphs = text.split("\n")
    while True:
        artist.set_text(text)
        w, _ = _extent_in(artist, renderer, dpi)
        if w <= width_in:
            return
        longest = max(len(p) for p in paragraphs)
        chars = max(1, min(longest - 1, int(longest * width_in / w)))
        while True:
            lines = [ln for p in paragraphs for ln in (textwrap.wrap(p, chars, break_on_hyphens=False) or [""])]
            artist.set_text("\n".join(lines))
            if _extent_in(artist, renderer, dpi)[0] <= width_in or chars == 1:
                break
            chars -= 1
        size = artist.get_fontsize()
        if len(lines) <= max_lines or size <= min_size:
            return
        artist.set_fontsize(max(min_size, size * 0.85))


def proxy_figure(tokens: Sequence[str], title: str = ""):
    """The tree drawn on a matplotlib ``Figure`` (Agg canvas, no pyplot state), sized to fit it.

    Each node is its label in a box sized to the label (round boxes for operators, square ones for
    terminals, coloured by output type); columns are as wide as the widest box, so boxes never
    overlap, and the figure grows with the tree (labels shrink a little first when it gets wider than
    ``MAX_WIDTH`` inches). The title is wrapped to the figure's width. Node texts carry the gid
    ``node<i>`` (``i`` the prefix position), the title ``title`` and the legend ``legend`` (the node kinds the
    tree has).
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    g = proxy_graph(tokens)
    pos = tree_layout(g)
    n_cols = int(round(max(x for x, _ in pos.values()))) + 1
    n_rows = int(round(-min(y for _, y in pos.values()))) + 1
    fig = Figure(figsize=(6.0, 4.0), dpi=DPI)
    FigureCanvasAgg(fig)
    renderer = fig.canvas.get_renderer()

    probe = fig.text(0, 0, "")
    font = NODE_FONT
    while True:                                      # widest and tallest label box at this font size
        probe.set_fontsize(font)
        sizes = []
        for n in g.nodes:
            probe.set_text(str(g.nodes[n]["label"]))
            sizes.append(_extent_in(probe, renderer, DPI))
        pad = 2 * BOX_PAD * font / 72.0
        box_w, box_h = max(w for w, _ in sizes) + pad, max(h for _, h in sizes) + pad
        need = n_cols * (box_w + GAP_X) + 2 * MARGIN
        if need <= MAX_WIDTH or font <= MIN_NODE_FONT:
            break
        font = max(MIN_NODE_FONT, font * MAX_WIDTH / need)
    probe.remove()
    width = max(4.0, need)
    tree_h = n_rows * (box_h + GAP_Y)

    head = None
    head_h = 0.0
    if title:
        head = fig.text(0.5, 1.0, "", fontsize=TITLE_FONT, ha="center", va="top", gid="title",
                        parse_math=False)
        wrap_text(head, title, width - 2 * MARGIN, renderer, DPI)
        head_h = _extent_in(head, renderer, DPI)[1] + 0.1

    kinds = {d["type"] for _, d in g.nodes(data=True)}
    handles = [Patch(facecolor=TYPE_COLOURS[t], edgecolor="black", label=name) for name, t in LEGEND if t in kinds]
    legend = None
    for ncol in (4, 2, 1):
        if legend is not None:
            legend.remove()
        legend = fig.legend(handles=handles, loc="lower center", ncol=ncol, fontsize=7, frameon=False,
                            borderaxespad=0.0)
        if _extent_in(legend, renderer, DPI)[0] <= width - 2 * MARGIN:
            break
    legend.set_gid("legend")
    legend_h = _extent_in(legend, renderer, DPI)[1] + 0.1

    height = MARGIN + head_h + tree_h + legend_h + MARGIN
    fig.set_size_inches(width, height)
    if head is not None:
        head.set_position((0.5, 1.0 - MARGIN / height))
    legend.set_bbox_to_anchor((0.5, MARGIN / height), transform=fig.transFigure)
    ax = fig.add_axes((MARGIN / width, (MARGIN + legend_h) / height, 1 - 2 * MARGIN / width, tree_h / height))
    ax.set_xlim(-0.5, n_cols - 0.5)
    ax.set_ylim(-n_rows + 0.5, 0.5)
    ax.axis("off")
    for a, b in g.edges():
        ax.plot([pos[a][0], pos[b][0]], [pos[a][1], pos[b][1]], color="0.35", lw=1.0, zorder=1)
    for n in sorted(g.nodes):
        label = str(g.nodes[n]["label"])
        style = "square" if get_operator(label).is_terminal else "round"
        ax.text(pos[n][0], pos[n][1], label, fontsize=font, ha="center", va="center", zorder=3, gid=f"node{n}", parse_math=False,
                bbox=dict(boxstyle=f"{style},pad={BOX_PAD}", facecolor=TYPE_COLOURS[g.nodes[n]["type"]],
                          edgecolor="black", linewidth=0.8))
    return fig


def draw_proxy(tokens: Sequence[str], path, title: str = "") -> None:
    """Draw the tree to ``path`` (.png, .svg or .dot); the picture is :func:`proxy_figure`."""
    path = check_output_path(path, what="drawing file")
    ext = path.suffix.lower()
    if ext == ".dot":
        atomic_write_text(path, to_dot(tokens))
        return
    if ext not in PLOT_EXTENSIONS:
        raise SaswotError(f"drawing file {str(path)!r}: unsupported extension {ext!r}; expected .png, .svg or .dot")
    atomic_save_figure(proxy_figure(tokens, title=title), path, dpi=DPI)


def evolution_figure(history: Sequence[dict], title: str = ""):
    """Best, best-so-far and median training Kendall tau per generation on a matplotlib ``Figure`` (no pyplot
    state): generations as integer ticks; best so far (gid ``best_so_far``) a wide pale step line under the best
    of each generation (``best``, thin with markers), so both show where they coincide."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    def column(key):
        return [h[key] if h.get(key) is not None else float("nan") for h in history]

    gens = [h["gen"] for h in history]
    fig = Figure(figsize=(6, 4))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    ax.plot(gens, column("best_ever"), drawstyle="steps-post", lw=5, alpha=0.35, color="tab:orange", zorder=2,
            gid="best_so_far", label="best so far")
    ax.plot(gens, column("best"), "o-", lw=1, ms=4, color="tab:blue", zorder=3, gid="best",
            label="best of generation")
    ax.plot(gens, column("median_valid"), "s-", lw=1, ms=3, color="tab:green", zorder=3, gid="median",
            label="median (valid candidates)")
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("generation")
    ax.set_ylabel("Kendall tau (training split)")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return fig


def plot_evolution(history: Sequence[dict], path, title: str = "") -> None:
    """Write :func:`evolution_figure` to ``path``."""
    atomic_save_figure(evolution_figure(history, title), path, dpi=110)


def check_plot_path(path) -> Path:
    """``path`` as a Path if it ends in .png or .svg and can be written (:func:`saswot_gp.io.check_output_path`),
    else a one-line SaswotError (call it before long work)."""
    path = Path(path)
    if path.suffix.lower() not in PLOT_EXTENSIONS:
        raise SaswotError(f"plot file {str(path)!r}: unsupported extension {path.suffix!r}; expected "
                          f"{' or '.join(PLOT_EXTENSIONS)}")
    return check_output_path(path, what="plot file")


def latency_check_figure(res: dict, title: str = ""):
    """Predicted against measured latency of a latency check (:func:`saswot_gp.latency.check_lut`'s result) on a
    matplotlib ``Figure`` (no pyplot state): the table's predictions, the plain sum of entries (a calibrated
    table's ``raw_ms``, grey), the line predicted = measured and a band of +-5 % around it, with Kendall tau,
    the noise ceiling (with ``repeatability``) and the median error in the legend, and the calibration's drift
    (``calibration_drift``, when measured) in the title."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows = res["rows"]
    meas = [r["measured_ms"] for r in rows]
    fig = Figure(figsize=(5.5, 5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    if rows and "raw_ms" in rows[0]:
        raw = res["raw"]
        ax.scatter(meas, [r["raw_ms"] for r in rows], s=14, color="0.6", marker="x", gid="raw",
                   label=f"plain sum: tau {raw['kendall_tau']:.3f}, median |error| "
                         f"{100 * raw['median_abs_rel_error']:.1f} %")
    label = f"table: tau {res['kendall_tau']:.3f}, median |error| {100 * res['median_abs_rel_error']:.1f} %"
    if "repeat_tau" in res:
        label += f"\n(measured vs re-measured tau {res['repeat_tau']:.3f})"
    ax.scatter(meas, [r["predicted_ms"] for r in rows], s=16, color="tab:blue", gid="predicted", label=label)
    drawn = meas + [r["predicted_ms"] for r in rows] + [r["raw_ms"] for r in rows if "raw_ms" in r]
    lo, hi = min(drawn) * 0.95, max(drawn) * 1.05   # every point drawn is inside both axes
    ax.plot([lo, hi], [lo, hi], color="black", lw=1, gid="identity", label="predicted = measured")
    ax.fill_between([lo, hi], [0.95 * lo, 0.95 * hi], [1.05 * lo, 1.05 * hi], color="tab:green", alpha=0.12,
                    lw=0, label="within 5 %")
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    ax.set_xlabel("measured latency (ms)")
    ax.set_ylabel("predicted latency (ms)")
    if not title:
        title = (f"{res['n']} networks, {res['runtime']}, {res['threads']} thread(s), "
                 f"{res['resolution'][0]}x{res['resolution'][1]}")
        if "calibration_drift" in res:
            title += (f"\ncalibration networks now at {res['calibration_drift']['median_ratio']:.3f}x their "
                      f"calibration times")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    return fig


def plot_latency_check(res: dict, path, title: str = "") -> None:
    """Write :func:`latency_check_figure` to ``path`` (.png or .svg)."""
    atomic_save_figure(latency_check_figure(res, title), check_plot_path(path), dpi=DPI)


def search_figure(history: Sequence[dict], top: Sequence[dict], max_latency_ms: float, title: str = ""):
    """A search on a matplotlib ``Figure`` (no pyplot state): every scored architecture's proxy score against its
    predicted latency, coloured by when it was scored (gid ``scored``), the latency budget (``budget``), the top K
    ringed (``top``) and, where they were measured, their measured latency joined to the prediction (``measured``;
    a cross for one that misses the budget when measured). Scores spanning more than 100x are drawn on a log scale.
    A budget far off the points is an arrow at the edge (:func:`_budget`), not a line that squeezes them."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows = [h for h in history if h.get("score") is not None]
    fig = Figure(figsize=(6.5, 4.5))
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    if rows:
        dots = ax.scatter([h["latency_ms"] for h in rows], [h["score"] for h in rows], c=range(len(rows)),
                          cmap="viridis", s=12, gid="scored", label=f"scored ({len(history)})")
        fig.colorbar(dots, ax=ax, label="order scored")
    _budget(ax, max_latency_ms, [h["latency_ms"] for h in rows] + [r["latency_ms"] for r in top]
            + [r["measured_ms"] for r in top if r.get("measured_ms") is not None])
    ranked = [r for r in top if r.get("score") is not None]
    ax.scatter([r["latency_ms"] for r in ranked], [r["score"] for r in ranked], s=70, facecolors="none",
               edgecolors="tab:red", gid="top", label=f"top {len(ranked)} (predicted latency)")
    measured = [r for r in ranked if r.get("measured_ms") is not None]
    if measured:
        for r in measured:
            ax.plot([r["latency_ms"], r["measured_ms"]], [r["score"], r["score"]], color="0.4", lw=0.8)
        ax.scatter([r["measured_ms"] for r in measured], [r["score"] for r in measured], s=25,
                   marker="|", color="0.2", gid="measured", label="measured latency")
        missed = [r for r in measured if not r.get("meets_budget")]
        if missed:
            ax.scatter([r["measured_ms"] for r in missed], [r["score"] for r in missed], s=50, marker="x",
                       color="tab:red", gid="missed", label="misses the budget when measured")
    scores = [h["score"] for h in rows]
    if scores and min(scores) > 0 and max(scores) > 100 * min(scores):
        ax.set_yscale("log")
    ax.set_xlabel("predicted latency (ms)")
    ax.set_ylabel("proxy score")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    return fig


def _budget(ax, budget: float, xs: Sequence[float]) -> None:
    """The latency budget on ``ax`` (gid ``budget``): a dashed line when it lies within one data span of the
    points ``xs``, else the x-axis is clipped to the points and the budget is an arrow at the edge it lies past."""
    label = f"budget {budget:.3g} ms"
    if xs:
        lo, hi = min(xs), max(xs)
        span = (hi - lo) or abs(hi) or 1.0
        if not lo - span <= budget <= hi + span:
            pad = 0.05 * span
            ax.set_xlim(lo - pad, hi + pad)
            right = budget > hi
            ax.annotate(f"{label} (off the axis)", xy=(1.0 if right else 0.0, 0.96), xycoords="axes fraction",
                        xytext=(-45 if right else 45, 0), textcoords="offset points", ha="right" if right else "left",
                        va="center", color="tab:red", fontsize=8, gid="budget",
                        arrowprops=dict(arrowstyle="->", color="tab:red", lw=1.2))
            return
    ax.axvline(budget, color="tab:red", ls="--", lw=1, gid="budget", label=label)


def plot_search(history: Sequence[dict], top: Sequence[dict], max_latency_ms: float, path, title: str = "") -> None:
    """Write :func:`search_figure` to ``path`` (.png or .svg)."""
    atomic_save_figure(search_figure(history, top, max_latency_ms, title), check_plot_path(path), dpi=DPI)
