import json
import math
import random
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from saswot_gp.cli import main
from saswot_gp.errors import SaswotError
from saswot_gp.latency import (LatencyTable, arch_keys, build_lut, check_lut, enumerate_configs, head_key,
                               layer_key, stem_key)
from saswot_gp.spaces import get_space
from saswot_gp.spaces.base import count_flops, count_params
from saswot_gp.spaces.realtime import RealtimeSpace
from saswot_gp.stats.cache import build_model
from saswot_gp.training import speed

torch.set_num_threads(1)
SMALL = dict(base_width=4, input_size=32, num_layers=4)


@pytest.fixture(scope="module")
def space():
    return get_space("realtime", **SMALL)


@pytest.fixture(scope="module")
def lut(space):
    return build_lut(space, repeats=1, warmup=0)


def test_enumeration_has_exactly_the_reachable_configurations(space, lut):
    # 5 level transitions (stay at 1/8, 1/8->1/16, stay at 1/16, 1/16->1/32, stay at 1/32), each with
    # 4 input widths x 4 output widths x 7 ops; one stem; heads: 4 c_hi x (4 widths at 1/16 + 4 at 1/32)
    assert len(lut.entries) == 5 * 4 * 4 * 7 + 1 + 4 * 8
    assert set(lut.entries) == set(enumerate_configs(space))
    assert all(e["ms"] > 0 or k.startswith("layer:sk") for k, e in lut.entries.items())
    # with 2 layers a layer can only stay at 1/32 after two descents: impossible, so no such entry
    keys = enumerate_configs(get_space("realtime", base_width=4, input_size=32, num_layers=2))
    assert not any(k.startswith("layer:") and k.endswith(":1:1x1") for k in keys)
    assert any(k.startswith("layer:") and k.endswith(":2:2x2") for k in keys)


def test_predict_covers_random_archs_and_sums_reproduce_network_size(space, lut):
    rng = random.Random(3)
    archs = [space.sample(rng) for _ in range(25)] + [space.sample_diverse(rng) for _ in range(25)]
    for arch in archs:
        ms = lut.predict(arch)
        assert math.isfinite(ms) and ms > 0
        model = build_model(space, arch, 0)
        assert lut.predict_params(arch) == count_params(model), arch
        assert lut.predict_flops(arch) == count_flops(model, torch.zeros(1, 3, 32, 32)), arch


def test_prediction_is_the_sum_of_hand_checked_entries(lut):
    arch = "c3.w1.0.s-ir.w0.5.d-sk.w1.0.s-dw.w1.25.d"
    # base 4: stem ends with 8 channels at 4x4; level 0 width 1.0 -> 8; level 1: 0.5 -> 8, 1.0 -> 16;
    # level 2: 1.25 -> 40; head fuses the last 1/8 feature (8 ch) with the 1/32 one (40 ch)
    keys = [stem_key(4, (32, 32)), layer_key("c3", 8, 8, 1, (4, 4)), layer_key("ir", 8, 8, 2, (4, 4)),
            layer_key("sk", 8, 16, 1, (2, 2)), layer_key("dw", 16, 40, 2, (2, 2)), head_key(8, 40, 0, 2)]
    assert keys == ["stem:4:32x32", "layer:c3:8:8:1:4x4", "layer:ir:8:8:2:4x4", "layer:sk:8:16:1:2x2",
                    "layer:dw:16:40:2:2x2", "head:8:40:L0:L2"]
    assert arch_keys(lut.space(), arch) == keys
    assert lut.predict(arch) == pytest.approx(sum(lut.entries[k]["ms"] for k in keys), rel=1e-12)


def test_json_round_trip(lut, tmp_path, space):
    path = tmp_path / "lut.json"
    lut.save(path)
    assert [p.name for p in tmp_path.iterdir()] == ["lut.json"]  # no temporary file left behind
    doc = json.loads(path.read_text())
    assert doc["meta"]["space"] == "realtime" and doc["meta"]["resolution"] == [32, 32]
    assert doc["meta"]["threads"] == 1 and doc["meta"]["repeats"] == 1 and doc["meta"]["torch"] == torch.__version__
    assert doc["meta"]["space_kwargs"]["num_layers"] == 4 and "date" in doc["meta"]
    back = LatencyTable.load(path)
    assert back.entries == lut.entries and back.resolution == (32, 32) and back.digest() == lut.digest()
    arch = space.sample(random.Random(0))
    assert back.predict(arch) == lut.predict(arch)


def test_other_space_or_resolution_is_refused(lut):
    with pytest.raises(SaswotError, match="input_size"):
        lut.check_compatible(get_space("realtime", base_width=4, input_size=64, num_layers=4))
    with pytest.raises(SaswotError, match="base_width"):
        lut.check_compatible(get_space("realtime", base_width=8, input_size=32, num_layers=4))
    with pytest.raises(SaswotError, match="is for space 'realtime', not 'tiny'"):
        lut.check_compatible(get_space("tiny"))
    ten = get_space("realtime").sample(random.Random(0))
    with pytest.raises(SaswotError, match="10 layers"):
        lut.predict(ten)
    broken = LatencyTable({k: v for k, v in lut.entries.items() if not k.startswith("head:")}, lut.meta)
    with pytest.raises(SaswotError, match=r"no entry 'head:"):
        broken.predict("c3.w1.0.s-ir.w0.5.d-sk.w1.0.s-dw.w1.25.d")


@pytest.mark.parametrize("mutate, message", [
    (None, "not found"),
    ("{not json", "not valid JSON"),
    (lambda d: d.pop("format"), "not a saswot-gp latency table"),
    (lambda d: d["meta"].pop("threads"), "missing key 'threads'"),
    (lambda d: d["meta"]["space_kwargs"].pop("head_width"), "missing key 'head_width'"),
    (lambda d: d["meta"].update(resolution="64x64"), "is not \\[H, W\\]"),
    (lambda d: d["entries"]["stem:4:32x32"].update(ms=-1.0), "entry 'stem:4:32x32' has bad or missing 'ms'"),
    (lambda d: d["entries"]["stem:4:32x32"].pop("macs"), "bad or missing 'macs'"),
    (lambda d: d["meta"]["space_kwargs"].update(input_size=[33, 33]), "divisible by 32"),
])
def test_bad_lut_files_give_one_line_errors(lut, tmp_path, mutate, message):
    path = tmp_path / "bad.json"
    if isinstance(mutate, str):
        path.write_text(mutate)
    elif mutate is not None:
        doc = json.loads(json.dumps(lut.to_json()))
        mutate(doc)
        path.write_text(json.dumps(doc))
    with pytest.raises(SaswotError, match=message) as info:
        LatencyTable.load(path)
    assert "\n" not in str(info.value)


def test_check_reports_tau_and_ratio_on_given_archs(lut, space):
    rng = random.Random(1)
    archs = [space.sample(rng) for _ in range(4)]
    res = check_lut(lut, archs=archs, repeats=1, warmup=0, repeatability=True)
    assert res["n"] == 4 and [r["arch"] for r in res["rows"]] == archs
    assert -1 <= res["kendall_tau"] <= 1 and -1 <= res["repeat_tau"] <= 1
    for r in res["rows"]:
        assert r["predicted_ms"] == lut.predict(r["arch"]) and r["ratio"] == r["predicted_ms"] / r["measured_ms"]


def test_cli_build_and_check(tmp_path):
    out = tmp_path / "lut.json"
    res = CliRunner().invoke(main, ["latency", "build", "--resolution", "32x32", "--repeats", "1", "--warmup", "0",
                                    "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "593 entries" in res.output
    table = LatencyTable.load(out)
    assert table.space_kwargs["base_width"] == 16 and table.resolution == (32, 32)
    res = CliRunner().invoke(main, ["latency", "check", "--lut", str(out), "--n", "3", "--repeats", "1", "--warmup",
                                    "0", "--out", str(tmp_path / "check.json")])
    assert res.exit_code == 0, res.output
    assert "Kendall tau" in res.output and "median predicted/measured" in res.output
    check = json.loads((tmp_path / "check.json").read_text())
    assert check["n"] == 3 and len(check["rows"]) == 3 and check["median_ratio"] > 0


def test_cli_errors_are_one_line(tmp_path):
    res = CliRunner().invoke(main, ["latency", "check", "--lut", str(tmp_path / "nope.json")])
    assert res.exit_code == 2 and res.output.strip().startswith("error: latency table")
    assert len(res.output.strip().splitlines()) == 1
    res = CliRunner().invoke(main, ["latency", "build", "--resolution", "48x48", "--out", str(tmp_path / "x.json")])
    assert res.exit_code == 2 and "divisible by 32" in res.output


# A committed table (``saswot-gp latency build`` output): its keys for these archs and, while the file holds the
# same measurements (digest), its predictions, as recorded before the LUT used the space's own parts.
COMMITTED_LUT = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "compare" / "latency_lut.json"
COMMITTED = [
    ("ir.w0.5.s-c3.w0.5.s-zc.w0.5.d-dw.w0.75.s-c3.w0.5.s-dc.w1.25.s-c3.w0.75.d-c3.w1.25.s-c3.w0.5.s-c33.w0.5.s",
     ["stem:16:64x64", "layer:ir:32:16:1:8x8", "layer:c3:16:16:1:8x8", "layer:zc:16:32:2:8x8", "layer:dw:32:48:1:4x4",
      "layer:c3:48:32:1:4x4", "layer:dc:32:80:1:4x4", "layer:c3:80:96:2:4x4", "layer:c3:96:160:1:2x2",
      "layer:c3:160:64:1:2x2", "layer:c33:64:64:1:2x2", "head:16:64:L0:L2"], 1.8637480025063269, 505083, 8233472),
    ("c33.w0.5.d-dw.w0.75.s-zc.w1.25.s-c33.w0.5.s-dw.w1.0.s-dw.w0.75.s-c3.w0.75.d-zc.w0.5.s-dw.w0.5.s-dw.w0.5.s",
     ["stem:16:64x64", "layer:c33:32:32:2:8x8", "layer:dw:32:48:1:4x4", "layer:zc:48:80:1:4x4", "layer:c33:80:32:1:4x4",
      "layer:dw:32:64:1:4x4", "layer:dw:64:48:1:4x4", "layer:c3:48:96:2:4x4", "layer:zc:96:64:1:2x2",
      "layer:dw:64:64:1:2x2", "layer:dw:64:64:1:2x2", "head:32:64:L0:L2"], 1.7563690053066239, 263291, 6858240),
    ("c3.w1.0.d-c33.w0.75.s-sk.w1.0.s-c3.w1.25.s-ir.w1.0.s-c3.w1.25.s-c3.w1.25.s-c3.w0.75.s-c3.w1.25.s-c3.w1.0.s",
     ["stem:16:64x64", "layer:c3:32:64:2:8x8", "layer:c33:64:48:1:4x4", "layer:sk:48:64:1:4x4", "layer:c3:64:80:1:4x4",
      "layer:ir:80:64:1:4x4", "layer:c3:64:80:1:4x4", "layer:c3:80:80:1:4x4", "layer:c3:80:48:1:4x4",
      "layer:c3:48:80:1:4x4", "layer:c3:80:64:1:4x4", "head:32:64:L0:L1"], 1.4662665016658138, 457403, 11955200),
]
COMMITTED_DIGEST = "af4cbcf41b202efc"


@pytest.mark.skipif(not COMMITTED_LUT.exists(), reason=f"{COMMITTED_LUT} is not in this checkout")
def test_committed_lut_file_keeps_its_keys_and_predictions():
    table = LatencyTable.load(COMMITTED_LUT)
    space = table.space()
    for arch, keys, ms, params, macs in COMMITTED:
        assert table.keys_for(arch) == keys
        assert table.predict(arch) == pytest.approx(sum(table.entries[k]["ms"] for k in keys), rel=1e-12)
        assert table.predict_params(arch) == params == count_params(build_model(space, arch, 0))
        assert table.predict_flops(arch) == macs
        if table.digest() == COMMITTED_DIGEST:
            assert table.predict(arch) == pytest.approx(ms, rel=1e-12)


def test_lut_times_exactly_the_modules_the_space_builds(monkeypatch):
    sp = get_space("realtime", base_width=4, input_size=32, num_layers=2)
    built, timed = [], []
    part_module, forward_times = RealtimeSpace.part_module, speed.forward_times

    def building(self, part, num_classes=None):
        built.append((part, part_module(self, part, num_classes)))
        return built[-1][1]

    def timing(module, x, **kw):
        timed.append(module)
        return forward_times(module, x, **kw)

    monkeypatch.setattr(RealtimeSpace, "part_module", building)
    monkeypatch.setattr(speed, "forward_times", timing)
    table = build_lut(sp, repeats=1, warmup=0)
    assert [id(m) for m in timed] == [id(m) for _, m in built] and len(timed) == len(table.entries) == 385
    assert [p for p, _ in built] == list(enumerate_configs(sp).values())
    # a change to a part's module in the space reaches the table (here: an extra 1x1 conv after every layer)
    layer_module = RealtimeSpace.layer_module

    def wider(self, part):
        return torch.nn.Sequential(layer_module(self, part), torch.nn.Conv2d(part.cout, part.cout, 1))

    monkeypatch.setattr(RealtimeSpace, "layer_module", wider)
    changed = build_lut(sp, repeats=1, warmup=0)
    arch = "c3.w1.0.s-dw.w0.5.d"
    assert changed.predict_params(arch) == count_params(build_model(sp, arch, 0))
    assert changed.predict_params(arch) == table.predict_params(arch) + 2 * (8 * 8 + 8)  # 8 channels out of both layers
    assert changed.predict_flops(arch) == count_flops(build_model(sp, arch, 0), torch.zeros(1, 3, 32, 32))


def test_lut_and_measure_latency_share_one_timing_loop(monkeypatch, space):
    calls = []

    def fake(model, x, warmup=5, repeats=20, sync=None):
        calls.append((type(model).__name__, warmup, repeats))
        return [3.0, 1.0, 2.0, 6.0]

    monkeypatch.setattr(speed, "forward_times", fake)
    table = build_lut(space, repeats=4, warmup=2, rounds=2)
    assert len(calls) == 2 * len(table.entries) and {c[1:] for c in calls} == {(2, 4)}
    assert {e["ms"] for e in table.entries.values()} == {2.5}  # median of the repeats, then of the rounds
    assert {e["ms"] for e in build_lut(space, repeats=4, warmup=0, statistic="min").entries.values()} == {1.0}
    calls.clear()
    model = build_model(space, space.sample(random.Random(0)), 0)
    r = speed.measure_latency(model, (32, 32), warmup=3, repeats=4)
    assert calls == [("RealtimeNet", 3, 4)]
    assert (r["latency_ms"], r["min_ms"], r["mean_ms"], r["fps"]) == (2.5, 1.0, 3.0, 400.0)
    res = check_lut(table, archs=[space.sample(random.Random(i)) for i in range(2)], repeats=4, warmup=1)
    assert [r["measured_ms"] for r in res["rows"]] == [2.5, 2.5] and {c[0] for c in calls} == {"RealtimeNet"}


def test_forward_times_runs_in_eval_under_inference_mode_and_restores_mode():
    seen, synced = [], []

    class Probe(torch.nn.Module):
        def forward(self, x):
            seen.append((self.training, torch.is_inference_mode_enabled()))
            return x

    probe = Probe().train()
    times = speed.forward_times(probe, torch.zeros(1), warmup=2, repeats=3, sync=lambda: synced.append(1))
    assert len(times) == 3 and all(t >= 0 for t in times)
    assert seen == [(False, True)] * 5 and len(synced) == 4 and probe.training
    assert speed.summarise_ms([3.0, 1.0, 2.0], "median") == 2.0 and speed.summarise_ms([3.0, 1.0, 2.0], "min") == 1.0
    with pytest.raises(ValueError):
        speed.forward_times(probe, torch.zeros(1), repeats=0)


# ------------------------------------------------------------------ runtimes: eager or ONNX Runtime (issue 14)

def _as_runtime(table, runtime):
    """The table as if measured with ``runtime`` (None: an old table, without the field)."""
    meta = {k: v for k, v in table.meta.items() if k not in ("runtime", "runtime_version")}
    return LatencyTable(dict(table.entries), dict(meta, **({"runtime": runtime} if runtime else {})))


def test_eager_tables_record_their_runtime_and_old_tables_count_as_eager(lut, tmp_path):
    from saswot_gp.latency import RUNTIMES
    from saswot_gp.commands import RUNTIMES as CLI_RUNTIMES
    assert RUNTIMES == CLI_RUNTIMES == ("eager", "onnxruntime")
    assert lut.runtime == "eager" and lut.meta["runtime_version"] == torch.__version__
    assert lut.meta["threads"] == 1 and lut.meta["device"] == "cpu" and lut.meta["resolution"] == [32, 32]
    old = _as_runtime(lut, None)
    old.save(tmp_path / "old.json")
    assert "runtime" not in json.loads((tmp_path / "old.json").read_text())["meta"]
    assert LatencyTable.load(tmp_path / "old.json").runtime == "eager"
    doc = lut.to_json()
    doc["meta"] = dict(doc["meta"], runtime="tvm")
    (tmp_path / "bad.json").write_text(json.dumps(doc))
    with pytest.raises(SaswotError, match="meta.runtime 'tvm' is not one of"):
        LatencyTable.load(tmp_path / "bad.json")
    with pytest.raises(SaswotError, match="unknown runtime 'tvm'"):
        build_lut(lut.space(), runtime="tvm")
    with pytest.raises(SaswotError, match="on the CPU"):
        build_lut(lut.space(), runtime="onnxruntime", device="cuda")


def test_search_refuses_a_table_of_another_runtime_or_resolution(lut, space, tmp_path):
    from saswot_gp.search import resolve_lut, run_search
    ort_table = _as_runtime(lut, "onnxruntime")
    ort_table.save(tmp_path / "ort.json")
    _as_runtime(lut, None).save(tmp_path / "old.json")
    with pytest.raises(SaswotError, match="measured with runtime 'onnxruntime', but the search asks for 'eager'"):
        resolve_lut("realtime", None, str(tmp_path / "ort.json"), tmp_path, runtime="eager")
    with pytest.raises(SaswotError, match="measured with runtime 'eager', but the search asks for 'onnxruntime'"):
        resolve_lut("realtime", None, str(tmp_path / "old.json"), tmp_path, runtime="onnxruntime")
    with pytest.raises(SaswotError, match="measured at 32x32, but the search asks for 64x64"):
        resolve_lut("realtime", (64, 64), str(tmp_path / "old.json"), tmp_path)
    assert resolve_lut("realtime", (32, 32), str(tmp_path / "old.json"), tmp_path)[1].runtime == "eager"
    assert resolve_lut("realtime", None, str(tmp_path / "ort.json"), tmp_path, runtime="onnxruntime")[1] is not None
    with pytest.raises(SaswotError, match="runtime 'onnxruntime', but the search asks for 'eager'"):
        run_search(space, "params", ort_table, 10.0, 2, tmp_path / "run", runtime="eager")
    assert not (tmp_path / "run").exists()
    res = CliRunner().invoke(main, ["search", "--proxy", "params", "--lut", str(tmp_path / "ort.json"), "--max-latency",
                                    "5", "--out", str(tmp_path / "cli")])
    assert res.exit_code == 2 and len(res.output.strip().splitlines()) == 1
    assert "'onnxruntime'" in res.output and "'eager'" in res.output


def test_latency_check_and_the_benchmark_script_run_one_procedure(lut, tmp_path, monkeypatch):
    """`saswot-gp latency check --out` and benchmarks/latency_lut.py's check step: the same library call with the
    same arguments, so with a deterministic (fake) timing the same table and seed give the same figures."""
    import importlib.util
    import saswot_gp.latency as latency_pkg
    spec = importlib.util.spec_from_file_location("latency_lut_script",
                                                  Path(__file__).resolve().parents[1] / "benchmarks" / "latency_lut.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    assert script.check_lut is latency_pkg.check_lut

    def fake(model, x, warmup=5, repeats=20, sync=None):   # deterministic, differs between networks
        n = sum(p.numel() for p in model.parameters()) / 1e4
        return [n + 0.5, n, n + 2.0][:repeats]

    monkeypatch.setattr(speed, "forward_times", fake)
    calls = {"cli": [], "script": []}
    real = latency_pkg.check_lut

    def spy(who):
        def wrapped(*args, **kwargs):
            calls[who].append((args[1:], {k: v for k, v in kwargs.items() if k != "progress"}))
            return real(*args, **kwargs)
        return wrapped

    monkeypatch.setattr(latency_pkg, "check_lut", spy("cli"))
    monkeypatch.setattr(script, "check_lut", spy("script"))
    lut.save(tmp_path / "lut.json")
    opts = ["--n", "3", "--seed", "2", "--repeats", "3", "--warmup", "1", "--rounds", "2"]
    res = CliRunner().invoke(main, ["latency", "check", "--lut", str(tmp_path / "lut.json"), *opts, "--repeatability",
                                    "--out", str(tmp_path / "cli.json")])
    assert res.exit_code == 0, res.output
    script.main(["--lut", str(tmp_path / "lut.json"), *opts, "--out", str(tmp_path / "script.json")])
    assert len(calls["cli"]) == 1 and len(calls["script"]) == 2      # the script also checks a diverse set
    assert calls["script"][0] == calls["cli"][0]
    cli = json.loads((tmp_path / "cli.json").read_text())
    doc = json.loads((tmp_path / "script.json").read_text())
    skip = {"check_s", "lut", "lut_path"}
    assert {k: v for k, v in cli.items() if k not in skip} == {k: v for k, v in doc["uniform"].items() if k not in skip}
    assert doc["uniform"]["rows"][0]["measured_ms"] > 0 and doc["uniform"]["kendall_tau"] == cli["kendall_tau"]
    assert doc["cli_equivalent"].startswith(f"saswot-gp latency check --lut {tmp_path / 'lut.json'} --n 3 --seed 2")
