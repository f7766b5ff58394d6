"""ONNX export of networks (``saswot-gp export-net``, :func:`saswot_gp.export.export_onnx`), checked in ONNX Runtime."""

import json
import random

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from saswot_gp.cli import main
from saswot_gp.errors import SaswotError
from saswot_gp.latency import LatencyTable, build_lut, check_lut, enumerate_configs
from saswot_gp.spaces import get_space
from saswot_gp.stats.cache import build_model
from saswot_gp.training import speed

import onnxruntime as ort  # noqa: E402  (a dependency, like onnxscript which the exporter uses)
from saswot_gp import export  # noqa: E402

torch.set_num_threads(1)
SMALL = dict(base_width=4, input_size=32, num_layers=4)
SMALL_OPTS = ["--base-width", "4", "--num-layers", "4", "--resolution", "32x32"]
ARCH = "c3.w1.0.s-ir.w0.5.d-sk.w1.0.s-dw.w1.25.d"


def _ort_run(path, x, threads=1):
    """Run an ONNX file in a fresh ONNX Runtime session, independently of the code under test."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return torch.from_numpy(session.run(None, {session.get_inputs()[0].name: x.numpy()})[0])


@pytest.fixture(scope="module")
def space():
    return get_space("realtime", **SMALL)


@pytest.mark.parametrize("i", [0, 1, 2])
def test_export_of_realtime_networks_runs_in_ort_and_matches_pytorch(space, tmp_path, i):
    rng = random.Random(i)
    arch = space.sample(rng) if i < 2 else space.sample_diverse(rng)
    rep = export.export_onnx(space, arch, tmp_path / "net.onnx", seed=i)
    assert rep["path"] == str(tmp_path / "net.onnx") and rep["arch"] == arch and rep["opset"] == export.OPSET
    assert rep["input_shape"] == [1, 3, 32, 32] and rep["output_shape"] == [1, 11, 32, 32]
    assert rep["onnxruntime"] == ort.__version__ and rep["provider"] == "CPUExecutionProvider" and rep["threads"] == 1
    assert 0 <= rep["max_abs_diff"] <= rep["limit"] == pytest.approx(1e-4 * max(1.0, rep["output_scale"]))
    # independently: the file against the same network built by the package, on another input
    x = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(100 + i))
    with torch.inference_mode():
        ref = build_model(space, arch, i).eval()(x)
    assert torch.allclose(_ort_run(tmp_path / "net.onnx", x), ref, atol=1e-4 * max(1.0, float(ref.abs().max())))


def test_cli_export_net_prints_the_difference_and_writes_the_file(tmp_path):
    out = tmp_path / "sub" / "net.onnx"
    res = CliRunner().invoke(main, ["export-net", ARCH, *SMALL_OPTS, "--onnx", str(out), "--seed", "3"])
    assert res.exit_code == 0, res.output
    assert f"wrote {out}" in res.output and "max abs difference" in res.output and "CPUExecutionProvider" in res.output
    assert "1x3x32x32 -> 1x11x32x32" in res.output and out.is_file()
    assert [p.name for p in out.parent.iterdir()] == ["net.onnx"]  # written atomically: no temporary file left
    x = torch.randn(1, 3, 32, 32)
    with torch.inference_mode():
        ref = build_model(get_space("realtime", **SMALL), ARCH, 3).eval()(x)
    assert torch.allclose(_ort_run(out, x), ref, atol=1e-4)


def test_trained_checkpoint_export_equals_the_checkpoint_outputs(tmp_path):
    from saswot_gp.training import train_arch
    ckpt = tmp_path / "trained.pt"
    train_arch(ARCH, space_kwargs=SMALL, steps=2, batch_size=4, latency=False, checkpoint=str(ckpt), lr=0.05)
    state = torch.load(ckpt, weights_only=True)
    sp = get_space("realtime", **SMALL)
    trained = sp.build(ARCH)
    trained.load_state_dict(state["model"])
    trained.eval()
    out = tmp_path / "trained.onnx"
    res = CliRunner().invoke(main, ["export-net", ARCH, *SMALL_OPTS, "--onnx", str(out), "--checkpoint", str(ckpt),
                                    "--json"])
    assert res.exit_code == 0, res.output
    assert '"checkpoint": "' + str(ckpt) in res.output
    x = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(7))
    with torch.inference_mode():
        ref, untrained = trained(x), build_model(sp, ARCH, 0).eval()(x)
    got = _ort_run(out, x)
    assert torch.allclose(got, ref, atol=1e-4 * max(1.0, float(ref.abs().max())))
    assert not torch.allclose(got, untrained, atol=1e-3)  # the checkpoint's weights, not the seed's


def _one_line_error(args, expect):
    res = CliRunner().invoke(main, ["export-net", *args])
    assert res.exit_code == 2, res.output
    lines = res.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and expect in lines[0], res.output
    return lines[0]


def test_bad_arch_missing_or_unfit_checkpoint_are_one_line_errors(tmp_path):
    out = str(tmp_path / "x.onnx")
    _one_line_error(["nope", "--onnx", out], "bad realtime arch 'nope'")
    _one_line_error([ARCH, *SMALL_OPTS, "--onnx", out, "--checkpoint", str(tmp_path / "missing.pt")], "not found")
    _one_line_error([ARCH, "--space", "nospace", "--onnx", out], "unknown search space")
    _one_line_error([ARCH, "--space", "tiny", "--base-width", "4", "--onnx", out], "does not take")
    wrong = tmp_path / "other.pt"
    other = get_space("realtime", base_width=8, input_size=32, num_layers=4).build(ARCH)
    torch.save({"model": other.state_dict(), "step": 1}, wrong)
    _one_line_error([ARCH, *SMALL_OPTS, "--onnx", out, "--checkpoint", str(wrong)], "does not fit")
    bare = tmp_path / "bare.pt"
    torch.save({"step": 1}, bare)
    _one_line_error([ARCH, *SMALL_OPTS, "--onnx", out, "--checkpoint", str(bare)], "holds no 'model' state_dict")
    junk = tmp_path / "junk.pt"
    junk.write_text("not a checkpoint")
    _one_line_error([ARCH, *SMALL_OPTS, "--onnx", out, "--checkpoint", str(junk)], "cannot read checkpoint")
    assert not (tmp_path / "x.onnx").exists()


def test_a_difference_above_the_tolerance_fails_in_one_line(tmp_path, monkeypatch):
    feeds = export.ort_feeds
    monkeypatch.setattr(export, "ort_feeds", lambda s, x: {k: v + 1.0 for k, v in feeds(s, x).items()})
    with pytest.raises(SaswotError, match="differs from PyTorch by") as info:
        export.export_onnx("realtime", ARCH, tmp_path / "x.onnx", space_kwargs=SMALL)
    assert "\n" not in str(info.value) and "kept for inspection" in str(info.value)


def test_session_helpers_take_the_thread_count_and_flatten_tuple_inputs():
    sp = get_space("realtime", **SMALL)
    head = sp.walk(ARCH)[-1]
    module, x = sp.part_module(head).eval(), sp.part_input(head)
    assert isinstance(x, tuple) and len(export.flat_inputs(x)) == 2
    session = export.ort_session(export.onnx_model(module, (x,)), threads=2)
    opts = session.get_session_options()
    assert (opts.intra_op_num_threads, opts.inter_op_num_threads) == (2, 1)
    got = session.run(None, export.ort_feeds(session, x))[0]
    with torch.inference_mode():
        np.testing.assert_allclose(got, module(x).numpy(), atol=1e-5)
    with pytest.raises(SaswotError, match="takes 2 input"):
        export.ort_feeds(session, x[0])


# ------------------------------------------------------------------ latency in ONNX Runtime (--runtime onnxruntime)

def _few_configs(sp):
    """A handful of the space's parts (stem, two layers, a head): enough to exercise ONNX Runtime timing quickly."""
    configs = enumerate_configs(sp)
    keys = [k for k in configs if k.startswith("stem:")] + [k for k in configs if k.startswith("layer:")][:2] + \
        [k for k in configs if k.startswith("head:")][:1]
    return {k: configs[k] for k in keys}


def test_onnxruntime_table_times_exported_parts_in_sessions(space, monkeypatch, tmp_path):
    from saswot_gp.latency import build as build_mod
    monkeypatch.setattr(build_mod, "enumerate_configs", _few_configs)
    runs, eager = [], []
    call_times, forward_times = speed.call_times, speed.forward_times

    def timing(call, warmup=5, repeats=20, sync=None):
        runs.append((call.__code__.co_names, warmup, repeats))
        return call_times(call, warmup=warmup, repeats=repeats, sync=sync)

    monkeypatch.setattr(speed, "call_times", timing)
    monkeypatch.setattr(speed, "forward_times", lambda *a, **k: eager.append(1) or forward_times(*a, **k))
    table = build_lut(space, threads=2, repeats=3, warmup=1, rounds=2, runtime="onnxruntime")
    assert len(table.entries) == 4 and all(e["ms"] > 0 for e in table.entries.values())
    assert not eager and len(runs) == 2 * 4 and {r[1:] for r in runs} == {(1, 3)}
    assert all("run" in names for names, _, _ in runs)            # each timed call is session.run
    meta = table.meta
    assert (meta["runtime"], meta["runtime_version"], meta["threads"]) == ("onnxruntime", ort.__version__, 2)
    assert (meta["intra_op_threads"], meta["inter_op_threads"], meta["device"]) == (2, 1, "cpu")
    assert meta["resolution"] == [32, 32] and meta["torch"] == torch.__version__ and meta["export_s"] > 0
    table.save(tmp_path / "ort.json")
    assert LatencyTable.load(tmp_path / "ort.json").runtime == "onnxruntime"
    # the timing loop and statistic are the eager ones: median of the repeats, then of the rounds
    monkeypatch.setattr(speed, "call_times", lambda call, warmup=5, repeats=20, sync=None: [3.0, 1.0, 2.0, 6.0])
    fake = build_lut(space, repeats=4, warmup=0, rounds=2, runtime="onnxruntime")
    assert {e["ms"] for e in fake.entries.values()} == {2.5}
    assert {e["ms"] for e in build_lut(space, repeats=4, warmup=0, statistic="min",
                                       runtime="onnxruntime").entries.values()} == {1.0}


def test_check_measures_whole_networks_in_onnxruntime(space, tmp_path):
    lut = build_lut(space, repeats=1, warmup=0)
    archs = [space.sample(random.Random(i)) for i in range(2)]
    res = check_lut(lut, archs=archs, repeats=2, warmup=1, runtime="onnxruntime")
    assert (res["runtime"], res["runtime_version"], res["lut_runtime"]) == ("onnxruntime", ort.__version__, "eager")
    assert all(r["measured_ms"] > 0 for r in res["rows"])
    ort_table = LatencyTable(lut.entries, dict(lut.meta, runtime="onnxruntime"))
    ort_table.save(tmp_path / "ort.json")
    out = tmp_path / "check.json"
    cli = CliRunner().invoke(main, ["latency", "check", "--lut", str(tmp_path / "ort.json"), "--n", "2", "--repeats",
                                    "1", "--warmup", "0", "--out", str(out)])
    assert cli.exit_code == 0, cli.output
    assert "onnxruntime" in cli.output and json.loads(out.read_text())["runtime"] == "onnxruntime"  # the table's
    with pytest.raises(SaswotError, match="on the CPU"):
        check_lut(ort_table, archs=archs, device="cuda:0")


def test_model_latency_times_the_network_in_onnxruntime(space, monkeypatch):
    from saswot_gp.latency.runtime import model_latency
    sessions = []
    real = export.ort_session
    monkeypatch.setattr(export, "ort_session", lambda *a, **k: sessions.append(1) or real(*a, **k))
    row = model_latency("onnxruntime", warmup=1, repeats=3)(build_model(space, ARCH, 0), (32, 32))
    assert sessions == [1] and row["latency_runtime"] == "onnxruntime" and row["runtime_version"] == ort.__version__
    assert 0 < row["min_ms"] <= row["latency_ms"] and row["fps"] == pytest.approx(1000 / row["latency_ms"])
    eager = model_latency("eager", warmup=1, repeats=3)(build_model(space, ARCH, 0), (32, 32))
    assert eager["latency_runtime"] == "eager" and sessions == [1] and eager["latency_ms"] > 0
    with pytest.raises(SaswotError, match="runtime 'tensorrt'"):
        model_latency("tensorrt")


def test_train_reports_latency_on_the_runtime_asked_for(monkeypatch):
    sessions = []
    real = export.ort_session
    monkeypatch.setattr(export, "ort_session", lambda *a, **k: sessions.append(1) or real(*a, **k))
    arch = "c3.w1.0.s-dw.w1.0.s-c3.w1.0.d-sk.w1.0.s-ir.w0.5.s-c3.w1.0.s-zc.w1.0.s-sk.w1.0.s-c3.w0.75.s-dc.w1.0.s"
    res = CliRunner().invoke(main, ["train", arch, "--base-width", "4", "--input-size", "32", "--steps", "2",
                                    "--batch-size", "2", "--runtime", "onnxruntime"])
    assert res.exit_code == 0, res.output
    row = json.loads(res.stdout[res.stdout.index("{"):])
    assert row["latency_runtime"] == "onnxruntime" and row["latency_ms"] > 0 and sessions == [1]


def test_a_second_pass_reuses_the_exports(space, monkeypatch):
    from collections import OrderedDict
    from saswot_gp.latency import check as check_mod
    monkeypatch.setattr(check_mod, "_EXPORTS", OrderedDict())
    exported = []
    real = export.onnx_model
    monkeypatch.setattr(export, "onnx_model", lambda *a, **k: exported.append(1) or real(*a, **k))
    lut = build_lut(space, repeats=1, warmup=0)
    archs = [space.sample(random.Random(i)) for i in range(3)]
    res = check_lut(lut, archs=archs, repeats=1, warmup=0, runtime="onnxruntime", repeatability=True)
    assert len(exported) == 3 and all(r["measured_ms_again"] > 0 for r in res["rows"])  # not 6: measured twice
    check_lut(lut, archs=archs, seed=1, repeats=1, warmup=0, runtime="onnxruntime")
    assert len(exported) == 6  # other weights (seed 1): exported anew
    monkeypatch.setattr(check_mod, "EXPORTS_KEPT", 2)
    check_lut(lut, archs=archs, seed=2, repeats=1, warmup=0, runtime="onnxruntime")
    assert len(check_mod._EXPORTS) == 2  # the cache stays bounded
