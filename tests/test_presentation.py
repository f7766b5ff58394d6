"""What users see (issue 12, item 10): proxy drawings that fit, scatter plots that name their benchmark,
a reason next to swap's NaN, and a latency benchmark that does not overwrite recorded results."""

import importlib.util
import json
import math
import struct
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from torch import nn

from conftest import TINY_ARCHS, random_trees
from saswot_gp.cli import main as cli
from saswot_gp.groundtruth.base import Benchmark
from saswot_gp.groundtruth.loaders import save_csv
from saswot_gp.spaces import count_params, get_space
from saswot_gp.stats import build_model
from saswot_gp.zerocost import evaluate
from saswot_gp.zerocost.evaluate import ScoreCache, format_table, row_note, scatter_figure
from saswot_gp.zerocost.measures import compute_measures, swap_saturation

ROOT = Path(__file__).resolve().parents[1]
TOL = 0.5            # pixels


def _inside(inner, outer, tol=TOL):
    return (inner.x0 >= outer.x0 - tol and inner.y0 >= outer.y0 - tol and
            inner.x1 <= outer.x1 + tol and inner.y1 <= outer.y1 + tol)


def _overlap(a, b):
    return min(a.x1, b.x1) > max(a.x0, b.x0) + TOL and min(a.y1, b.y1) > max(a.y0, b.y0) + TOL


def _png_size(path):
    head = Path(path).read_bytes()[:24]
    assert head[:8] == b"\x89PNG\r\n\x1a\n"
    return struct.unpack(">II", head[16:24])


# ------------------------------------------------------------------------------- 1. proxy drawing

def _check_drawing(fig, tokens, title):
    fig.canvas.draw()                                  # lays out the label boxes
    renderer = fig.canvas.get_renderer()
    frame = fig.bbox
    heads = [t for t in fig.texts if t.get_gid() == "title"]
    assert len(heads) == 1
    head = heads[0]
    assert "".join(head.get_text().split()) == "".join(title.split())      # wrapped, nothing cut off
    assert _inside(head.get_window_extent(renderer), frame), (head.get_window_extent(renderer), frame)
    legend = [lg for lg in fig.legends if lg.get_gid() == "legend"]
    assert legend and _inside(legend[0].get_window_extent(renderer), frame)
    nodes = [t for ax in fig.axes for t in ax.texts if (t.get_gid() or "").startswith("node")]
    assert sorted(t.get_text() for t in nodes) == sorted(tokens)
    boxes = []
    for t in nodes:
        text_bb = t.get_window_extent(renderer)
        box_bb = t.get_bbox_patch().get_window_extent(renderer)
        assert _inside(text_bb, box_bb), (t.get_text(), text_bb, box_bb)        # the label fits its node
        assert _inside(box_bb, frame), (t.get_text(), box_bb, frame)             # the node is in the picture
        assert not _overlap(box_bb, head.get_window_extent(renderer))
        boxes.append((t.get_text(), box_bb))
    for i, (la, a) in enumerate(boxes):
        for lb, b in boxes[i + 1:]:
            assert not _overlap(a, b), (la, lb, a, b)                            # nodes do not cover each other


@pytest.mark.parametrize("shape", ["deep", "wide"])
def test_proxy_drawing_keeps_title_and_labels_inside(shape, tmp_path):
    from saswot_gp.proxy import Proxy
    from saswot_gp.viz import draw_proxy, proxy_graph, proxy_figure, tree_layout
    trees = random_trees(40, seed=3, min_=5, max_=7)
    layouts = [tree_layout(proxy_graph(t)).values() for t in trees]
    depth = [-min(y for _, y in pos) for pos in layouts]
    width = [max(x for x, _ in pos) for pos in layouts]
    tokens = trees[int(np.argmax(depth if shape == "deep" else width))]
    assert (max(depth) >= 6) if shape == "deep" else (max(width) >= 8)
    title = "best proxy: " + str(Proxy(tokens).sympy()) + " * " + "layers_mean(resolution_l*channels_l)" * 4
    assert len(title) > 150
    fig = proxy_figure(tokens, title=title)
    _check_drawing(fig, tokens, title)
    # the file written by draw_proxy (positional tokens and path, title=) is that figure
    out = tmp_path / "proxy.png"
    assert draw_proxy(tokens, out, title=title) is None
    w, h = fig.get_size_inches() * fig.dpi
    got = _png_size(out)
    assert abs(got[0] - w) <= 1 and abs(got[1] - h) <= 1, (got, w, h)


def test_proxy_drawing_single_node_and_dot(tmp_path):
    from saswot_gp.viz import draw_proxy, proxy_figure
    _check_drawing(proxy_figure(["flops"], title="x" * 400), ["flops"], "x" * 400)
    draw_proxy(["flops"], tmp_path / "p.dot", title="t")
    assert (tmp_path / "p.dot").read_text().startswith("digraph")


# ------------------------------------------------------------------------------ 2. scatter plots

def _row(proxy="nwot", n=12):
    rng = np.random.default_rng(0)
    return {"proxy": proxy, "kind": "measure", "kendall": 0.5, "spearman": 0.6, "scores": rng.normal(size=n),
            "note": ""}, rng.normal(size=n)


def test_scatter_names_benchmark_and_metric(tmp_path):
    row, target = _row()
    name = "transnas101-macro-segmentsemantic-with-a-rather-long-name"
    fig = scatter_figure(row, target, metric="mIoU", benchmark=name)
    ax = fig.axes[0]
    words = ax.get_title() + " " + ax.get_xlabel() + " " + ax.get_ylabel()
    assert name in ax.get_title().replace("\n", "") and "mIoU" in words and "nwot" in words
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    assert _inside(ax.title.get_window_extent(renderer), fig.bbox)
    path = evaluate.plot_scatter(row, target, tmp_path / "s.png", metric="mIoU", benchmark=name)
    assert path.is_file() and _png_size(path)[0] > 0


@pytest.fixture(scope="module")
def tiny_bench_csv(tmp_path_factory):
    """The tiny networks of conftest, their parameter count as target."""
    kw = {"num_classes": 5, "input_size": [16, 16]}
    sp = get_space("tiny", **kw)
    target = [float(count_params(build_model(sp, a, 0))) for a in TINY_ARCHS]
    b = Benchmark("tiny-present", "tiny", TINY_ARCHS, np.array(target), metric="mIoU", space_kwargs=kw)
    return save_csv(b, tmp_path_factory.mktemp("bench") / "tiny-present.csv")


def test_proxies_command_passes_benchmark_to_scatter(tiny_bench_csv, tmp_path, monkeypatch):
    seen = []
    real = evaluate.plot_scatter

    def spy(row, target, path, metric="target", benchmark=None):
        fig = scatter_figure(row, target, metric=metric, benchmark=benchmark)
        seen.append((row["proxy"], fig.axes[0].get_title().replace("\n", " ")))
        return real(row, target, path, metric=metric, benchmark=benchmark)

    monkeypatch.setattr(evaluate, "plot_scatter", spy)
    res = CliRunner().invoke(cli, ["proxies", "--benchmark", str(tiny_bench_csv), "--measures", "params",
                                   "--batch-size", "2", "--bootstrap", "0", "--out", str(tmp_path / "o")])
    assert res.exit_code == 0, res.output
    assert seen and all("tiny-present" in t and "mIoU" in t for _, t in seen), seen
    assert (tmp_path / "o" / "scatter_params.png").is_file()


# ---------------------------------------------------------------------------------- 3. swap's NaN

def test_swap_saturation_is_explained_by_proxies(tiny_bench_csv, tmp_path):
    out = tmp_path / "o"
    args = ["proxies", "--benchmark", str(tiny_bench_csv), "--measures", "swap,params", "--batch-size", "2",
            "--bootstrap", "0", "--out", str(out)]
    res = CliRunner().invoke(cli, args)
    assert res.exit_code == 0, res.output
    # 2 images allow 4 activation patterns; every tiny network shows all of them
    note = [ln for ln in res.output.splitlines() if ln.strip().startswith("swap: nan (saturated:")]
    assert len(note) == 1, res.output
    assert "2^2" in note[0] and "--batch-size 32" in note[0]
    with open(out / "proxies.csv", newline="") as fh:
        import csv
        rows = {r["proxy"]: r for r in csv.DictReader(fh)}
    assert rows["swap"]["kendall"] == "" and rows["swap"]["note"].startswith("nan (saturated:")
    assert rows["params"]["note"] == ""
    again = CliRunner().invoke(cli, args + ["--overwrite"])  # from the score cache: the same explanation
    assert again.exit_code == 0 and note[0] in again.output


def test_swap_saturation_text():
    assert swap_saturation([10.0, 200.0, math.nan], 8) is None
    part = swap_saturation([256.0, 200.0, 256.0], 8)
    assert part.startswith("saturated: 2 of 3 architectures") and "256 = 2^8" in part
    assert swap_saturation([256.0, 256.0], 8).startswith("saturated: all 2 architectures")
    # a partly saturated swap keeps its correlation and says how many are at the ceiling
    note = row_note("swap", "measure", [256.0, 100.0, 256.0, 30.0], [1.0, 2.0, 3.0, 4.0], 8)
    assert not note.startswith("nan") and "2 of 4" in note
    # the same numbers from another proxy are not swap's
    assert row_note("nwot", "measure", [4.0, 4.0, 4.0], [1.0, 2.0, 3.0], 2) == "nan (all 3 scores equal 4)"


def test_swap_without_relu_says_why_and_the_cache_keeps_it(tmp_path):
    images, labels = torch.randn(3, 3, 8, 8), torch.zeros(3, 8, 8, dtype=torch.long)
    errors = {}
    out = compute_measures(nn.Sequential(nn.Conv2d(3, 5, 1)), images, labels, names=["swap"], errors=errors)
    assert math.isnan(out["swap"]) and "no activation patterns" in errors["swap"]
    cache = ScoreCache(tmp_path / "c.jsonl", {"x": 1})
    cache.put("a", {"swap": math.nan, "params": 3.0}, {"swap": 0.1, "params": 0.0}, {"swap": errors["swap"]})
    again = ScoreCache(tmp_path / "c.jsonl", {"x": 1})
    assert again.error("a", "swap") == errors["swap"] and again.error("a", "params") is None
    note = row_note("swap", "measure", [math.nan] * 3, [1.0, 2.0, 3.0], 3, {"a": errors["swap"]})
    assert note.startswith("nan (only 0 finite scores") and "no activation patterns" in note
    table = format_table([{"proxy": "swap", "kind": "measure", "n": 0, "kendall": math.nan, "kendall_lo": math.nan,
                           "kendall_hi": math.nan, "spearman": math.nan, "spearman_lo": math.nan,
                           "spearman_hi": math.nan, "sec_per_arch": 0.1, "note": note}])
    assert f"  swap: {note}" in table.splitlines()


# ------------------------------------------------------------------------- 4. latency benchmark output

def _latency_script():
    spec = importlib.util.spec_from_file_location("latency_lut_script", ROOT / "benchmarks" / "latency_lut.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_latency_lut_default_output_is_new_and_untracked(tmp_path):
    mod = _latency_script()
    recorded = ROOT / "benchmarks" / "results" / "latency_lut.json"
    a = mod.output_path(None, now=0.0)
    b = mod.output_path(None, now=3600.0)
    assert a != b and a.parent == b.parent == ROOT / "benchmarks" / "runs" / "latency_lut"
    assert a.name == "latency_lut-19700101-000000.json" and a != recorded
    existing = tmp_path / "r.json"
    existing.write_text("{}")
    with pytest.raises(FileExistsError, match="--overwrite"):
        mod.output_path(str(existing))
    assert mod.output_path(str(existing), overwrite=True) == existing
    assert "--overwrite" in mod.__doc__ and "benchmarks/runs/latency_lut" in mod.__doc__


def test_latency_lut_main_refuses_then_writes_to_the_default(tmp_path, monkeypatch, capsys):
    mod = _latency_script()
    existing = tmp_path / "r.json"
    existing.write_text('{"keep": 1}')
    built = []
    monkeypatch.setattr(mod, "build_lut", lambda *a, **k: built.append(1) or SimpleNamespace(entries={}, meta={}))
    fake = {"n": 2, "kendall_tau": 1.0, "kendall_tau_second_pass": 1.0, "repeat_tau": 1.0, "median_ratio": 1.0,
            "measured_ms_range": [1.0, 2.0]}
    monkeypatch.setattr(mod, "check_lut", lambda *a, **k: dict(fake))
    with pytest.raises(SystemExit) as exc:
        mod.main(["--out", str(existing), "--n", "2"])
    assert exc.value.code == 2 and "--overwrite" in capsys.readouterr().err
    assert existing.read_text() == '{"keep": 1}' and not built          # refused before timing anything
    monkeypatch.setattr(mod, "DEFAULT_DIR", tmp_path / "runs")
    mod.main(["--n", "2", "--repeats", "1", "--rounds", "1"])
    written = list((tmp_path / "runs").glob("latency_lut-*.json"))
    assert len(written) == 1 and json.loads(written[0].read_text())["uniform"]["n"] == 2
    mod.main(["--out", str(existing), "--overwrite", "--n", "2"])
    assert json.loads(existing.read_text())["diverse"]["kendall_tau"] == 1.0


def test_figures_are_saved_atomically_in_the_format_their_extension_names(tmp_path):
    from matplotlib.figure import Figure
    from saswot_gp.io import atomic_save_figure
    fig = Figure()
    fig.add_subplot(1, 1, 1).plot([0, 1], [1, 0])
    atomic_save_figure(fig, tmp_path / "a.svg")
    atomic_save_figure(fig, tmp_path / "b.png")
    assert b"<svg" in (tmp_path / "a.svg").read_bytes()[:500]
    assert (tmp_path / "b.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    (tmp_path / "c.png").write_bytes(b"the previous picture")
    broken = Figure()
    broken.savefig = lambda *a, **k: (_ for _ in ()).throw(RuntimeError("renderer died"))
    with pytest.raises(RuntimeError, match="renderer died"):
        atomic_save_figure(broken, tmp_path / "c.png")
    assert (tmp_path / "c.png").read_bytes() == b"the previous picture"     # never half-written
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.svg", "b.png", "c.png"]   # no temporary files left
