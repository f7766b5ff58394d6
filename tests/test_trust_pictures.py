"""Pictures a user can read (issue 22): integer generations and both best lines visible in evolution.png, a far
latency budget that does not squeeze search.png, every latency-check point on the axes, proxy.png's legend true."""

import pytest

from saswot_gp.proxy import Proxy
from saswot_gp.viz import (LEGEND, evolution_figure, latency_check_figure, plot_evolution, proxy_figure, proxy_graph,
                           search_figure)


def _inside(ax, points):
    (x0, x1), (y0, y1) = sorted(ax.get_xlim()), sorted(ax.get_ylim())
    return all(x0 <= x <= x1 and y0 <= y <= y1 for x, y in points)


def test_evolution_picture_has_integer_generations_and_both_best_lines_visible(tmp_path):
    best = [0.40, 0.55, 0.50, 0.62]
    history = [{"gen": g, "best": b, "best_ever": max(best[:g + 1]), "median_valid": b / 2}
               for g, b in enumerate(best)]
    fig = evolution_figure(history, title="t")
    fig.canvas.draw()
    ax, = [a for a in fig.axes]
    lo, hi = ax.get_xlim()
    ticks = [t for t in ax.get_xticks() if lo <= t <= hi]
    assert ticks and all(t == int(t) for t in ticks)
    assert all(lab.get_text().lstrip("\N{MINUS SIGN}-").isdigit() for lab in ax.get_xticklabels() if lab.get_text())
    lines = {ln.get_gid(): ln for ln in ax.lines}
    so_far, of_gen = lines["best_so_far"], lines["best"]
    assert list(so_far.get_ydata()) == [0.40, 0.55, 0.55, 0.62] and list(of_gen.get_ydata()) == best
    assert so_far.get_linewidth() >= 3 * of_gen.get_linewidth() and so_far.get_zorder() < of_gen.get_zorder()
    assert of_gen.get_marker() == "o" and so_far.get_alpha() < 1  # the thin line shows on top of the wide one
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert "best so far" in legend and "best of generation" in legend
    plot_evolution(history, tmp_path / "evolution.png")
    assert (tmp_path / "evolution.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _search(budget):
    history = [{"arch": f"a{i}", "score": float(i), "latency_ms": 10.0 + 0.1 * i} for i in range(10)]
    top = [dict(history[9], measured_ms=11.2, meets_budget=True), dict(history[8])]
    ax = search_figure(history, top, budget).axes[0]
    points = [tuple(p) for c in ax.collections for p in c.get_offsets()]
    return ax, points


@pytest.mark.parametrize("budget, side", [(100000.0, "right"), (1e-3, "left")])
def test_search_picture_clips_to_the_data_and_points_at_a_far_budget(budget, side):
    ax, points = _search(budget)
    assert len(points) == 10 + 2 + 1 and _inside(ax, points)
    lo, hi = ax.get_xlim()
    assert hi - lo < 2.0 and not lo <= budget <= hi              # the points spread over the axis, not squeezed
    assert not [ln for ln in ax.lines if ln.get_gid() == "budget"]
    note, = [t for t in ax.texts if t.get_gid() == "budget"]
    assert f"budget {budget:.3g} ms" in note.get_text() and note.arrow_patch is not None
    assert note.xy == ((1.0, 0.96) if side == "right" else (0.0, 0.96))   # at the edge it lies past


def test_search_picture_draws_a_near_budget_as_a_line():
    ax, points = _search(11.5)
    line, = [ln for ln in ax.lines if ln.get_gid() == "budget"]
    assert list(line.get_xdata()) == [11.5, 11.5] and ax.get_xlim()[0] <= 11.5 <= ax.get_xlim()[1]
    assert _inside(ax, points) and not [t for t in ax.texts if t.get_gid() == "budget"]


def test_latency_check_picture_keeps_every_plain_sum_point_on_the_axes():
    rows = [{"arch": f"a{i}", "measured_ms": m, "predicted_ms": 1.01 * m, "raw_ms": r}
            for i, (m, r) in enumerate([(1.0, 0.4), (1.5, 0.7), (2.0, 0.9), (2.5, 3.1), (3.0, 4.0), (3.5, 5.2)])]
    res = {"rows": rows, "n": 6, "runtime": "eager", "threads": 1, "resolution": [64, 64], "kendall_tau": 1.0,
           "median_abs_rel_error": 0.01, "raw": {"kendall_tau": 1.0, "median_abs_rel_error": 0.45}}
    ax, = latency_check_figure(res).axes
    drawn = {c.get_gid(): [tuple(p) for p in c.get_offsets()] for c in ax.collections if c.get_gid()}
    assert len(drawn["raw"]) == len(drawn["predicted"]) == 6
    assert _inside(ax, drawn["raw"] + drawn["predicted"])


@pytest.mark.parametrize("tokens", [["flops"], Proxy.load("saswot").tokens, ["layers_sum", "l2_w", "abs_w", "G"]])
def test_proxy_legend_lists_only_the_node_kinds_the_tree_has(tokens):
    kinds = {d["type"] for _, d in proxy_graph(tokens).nodes(data=True)}
    legend, = [lg for lg in proxy_figure(tokens).legends if lg.get_gid() == "legend"]
    assert [t.get_text() for t in legend.get_texts()] == [name for name, t in LEGEND if t in kinds]
    assert len(kinds) < len(LEGEND)
