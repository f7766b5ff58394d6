"""Drawings: a proxy tree with networkx (PNG/SVG via matplotlib, or DOT text) and evolution curves."""

from __future__ import annotations

from pathlib import Path
from typing import List, Sequence

import networkx as nx

from .errors import SaswotError
from .io import atomic_write_text
from .primitives import get_operator

TYPE_COLOURS = {"W": "#6baed6", "A": "#74c476", "L": "#fd8d3c", "S": "#e6550d"}


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


def draw_proxy(tokens: Sequence[str], path, title: str = "") -> None:
    """Draw the tree to ``path`` (.png, .svg or .dot)."""
    path = Path(path)
    ext = path.suffix.lower()
    if ext == ".dot":
        atomic_write_text(path, to_dot(tokens))
        return
    if ext not in (".png", ".svg"):
        raise SaswotError(f"drawing file {str(path)!r}: unsupported extension {ext!r}; expected .png, .svg or .dot")
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    g = proxy_graph(tokens)
    pos = tree_layout(g)
    width = max(4.0, 1.3 * (1 + max(x for x, _ in pos.values())))
    height = max(3.0, 1.1 * (1 - min(y for _, y in pos.values())))
    fig, ax = plt.subplots(figsize=(min(width, 30), min(height, 20)))
    colours = [TYPE_COLOURS[g.nodes[n]["type"]] for n in g.nodes]
    nx.draw_networkx_edges(g, pos, ax=ax, arrows=False)
    nx.draw_networkx_nodes(g, pos, ax=ax, node_color=colours, node_size=1400, edgecolors="black")
    nx.draw_networkx_labels(g, pos, {n: g.nodes[n]["label"] for n in g.nodes}, ax=ax, font_size=8)
    from matplotlib.patches import Patch
    ax.legend(handles=[Patch(color=c, label=k) for k, c in
                       zip(("weight tensor", "activation tensor", "layer scalar", "arch score"), TYPE_COLOURS.values())],
              loc="lower right", fontsize=7, frameon=False)
    ax.set_title(title, fontsize=9)
    ax.axis("off")
    ax.margins(0.15)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def plot_evolution(history: Sequence[dict], path, title: str = "") -> None:
    """Best, best-so-far and median training Kendall tau per generation."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    gens = [h["gen"] for h in history]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot(gens, [h["best"] for h in history], "o-", label="best of generation")
    ax.plot(gens, [h["best_ever"] if h.get("best_ever") is not None else float("nan") for h in history], "--", label="best so far")
    ax.plot(gens, [h["median_valid"] if h.get("median_valid") is not None else float("nan") for h in history],
            "s-", label="median (valid candidates)")
    ax.set_xlabel("generation")
    ax.set_ylabel("Kendall tau (training split)")
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
