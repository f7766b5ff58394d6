"""Runs a user can trust (issue 12): resume keeps the run's settings, run folders are never silently replaced,
bad files give one-line errors, Ctrl-C says how to continue, one resolution rule for every command."""

import json

import pytest
from click.testing import CliRunner

from saswot_gp.cli import main
from saswot_gp.errors import SaswotError

FAST = ["--benchmark", "synthetic", "--population", "8", "--train-size", "30", "--threads", "1"]


def _evolve(*args):
    return CliRunner().invoke(main, ["evolve", *FAST, *args])


def _gens(out):
    return [json.loads(line)["gen"] for line in (out / "log.jsonl").read_text().splitlines()]


def test_resume_keeps_the_checkpoints_generations(tmp_path, monkeypatch):
    """Interrupted at generation 1 of 3, a plain --resume finishes generation 3 (not the CLI default)."""
    import saswot_gp.evolution.job as job
    out = tmp_path / "run"
    real = job.run_evolve

    def interrupted(**kw):
        def log(msg):
            if msg.startswith("gen   1/"):
                raise KeyboardInterrupt
        return real(**{**kw, "log": log})

    monkeypatch.setattr(job, "run_evolve", interrupted)
    res = _evolve("--generations", "3", "--out", str(out))
    assert res.exit_code == 130
    assert f"saswot-gp evolve --resume {out}" in res.output and "Aborted" not in res.output
    assert _gens(out) == [0, 1]
    monkeypatch.setattr(job, "run_evolve", real)
    res = CliRunner().invoke(main, ["evolve", "--resume", str(out)])
    assert res.exit_code == 0, res.output
    assert "at generation 2 of 3" in res.output and "gen   3/3" in res.output
    assert _gens(out) == [0, 1, 2, 3]
    assert json.loads((out / "summary.json").read_text())["generations"] == 3
    # a finished run cannot be "resumed" to fewer generations, and its summary stays as it was
    before = (out / "summary.json").read_text()
    res = CliRunner().invoke(main, ["evolve", "--resume", str(out), "--generations", "1"])
    assert res.exit_code == 2 and res.output.count("\n") == 1
    assert "--generations 1" in res.output and "finished generation 3" in res.output
    assert (out / "summary.json").read_text() == before


def test_existing_run_folder_is_refused_unless_resume_or_overwrite(tmp_path):
    out = tmp_path / "run"
    assert _evolve("--generations", "1", "--out", str(out)).exit_code == 0
    before = json.loads((out / "summary.json").read_text())
    res = _evolve("--generations", "1", "--population", "6", "--out", str(out))
    assert res.exit_code == 2 and res.output.count("\n") == 1
    assert "already holds a run" in res.output and f"--resume {out}" in res.output and "--overwrite" in res.output
    assert json.loads((out / "summary.json").read_text()) == before
    res = _evolve("--generations", "1", "--population", "6", "--out", str(out), "--overwrite")
    assert res.exit_code == 0, res.output
    assert json.loads((out / "summary.json").read_text())["population"] == 6
    res = _evolve("--out", str(out), "--resume", str(out), "--overwrite")
    assert res.exit_code == 2 and "exclude each other" in res.output


@pytest.mark.parametrize("content, message", [
    ('{"format": "saswot-gp-checkpoint", "conf', "is not valid JSON"),
    ('{"hello": 1}', "is not a saswot-gp checkpoint (format None"),
    ('[1, 2]', "is not a saswot-gp checkpoint"),
    ('{"format": "saswot-gp-checkpoint", "config": {}}', "missing generation"),
])
def test_damaged_checkpoint_is_a_one_line_error(tmp_path, content, message):
    (tmp_path / "checkpoint.json").write_text(content)
    res = CliRunner().invoke(main, ["evolve", "--resume", str(tmp_path)])
    assert res.exit_code == 2 and res.output.count("\n") == 1, res.output
    assert res.output.startswith("error: cannot resume") and message in res.output


def test_checkpoint_with_damaged_fields_is_a_one_line_error(tmp_path):
    out = tmp_path / "run"
    assert _evolve("--generations", "1", "--out", str(out)).exit_code == 0
    ck = json.loads((out / "checkpoint.json").read_text())
    ck["random_state"] = "garbage"
    (out / "checkpoint.json").write_text(json.dumps(ck))
    res = CliRunner().invoke(main, ["evolve", "--resume", str(out), "--generations", "2"])
    last = res.output.strip().splitlines()[-1]
    assert res.exit_code == 2 and last.startswith("error: cannot resume") and "damaged" in last
    assert "Traceback" not in res.output


def test_too_small_benchmark_is_a_one_line_error(tmp_path):
    from saswot_gp.spaces import get_space
    import random
    sp, rng = get_space("realtime"), random.Random(0)
    f = tmp_path / "three.csv"
    f.write_text("# space: realtime\n# metric: mIoU\narch,mIoU\n"
                 + "".join(f"{sp.sample(rng)},{0.3 + i / 10}\n" for i in range(3)))
    res = CliRunner().invoke(main, ["evolve", "--benchmark", str(f), "--out", str(tmp_path / "e")])
    assert res.exit_code == 2 and res.output.count("\n") == 1
    assert "has 3 architectures; need at least 4" in res.output


def test_resolution_is_checked_against_the_space_for_every_command(tmp_path):
    from saswot_gp.spaces import get_space
    from saswot_gp.spaces.base import parse_resolution
    sp = get_space("realtime")
    assert sp.check_resolution((64, 96)) == (64, 96) and sp.check_resolution(None) == (64, 64)
    with pytest.raises(SaswotError, match="resolution 65x65 for space 'realtime'.*divisible by 32"):
        sp.check_resolution((65, 65))
    assert get_space("tiny").check_resolution((33, 33)) == (33, 33)
    assert parse_resolution("65x65") == (65, 65)
    res = CliRunner().invoke(main, ["evolve", "--resolution", "65x65", "--out", str(tmp_path / "e")])
    assert res.exit_code == 2 and "divisible by 32" in res.output and res.output.count("\n") == 1
    res = CliRunner().invoke(main, ["search", "--proxy", "params", "--max-latency", "5", "--resolution", "65x65",
                                    "--out", str(tmp_path / "s")])
    assert res.exit_code == 2 and "divisible by 32" in res.output


def test_train_resume_without_checkpoint_is_refused(tmp_path):
    from saswot_gp.spaces import get_space
    import random
    arch = get_space("realtime").sample(random.Random(0))
    res = CliRunner().invoke(main, ["train", arch, "--steps", "1", "--checkpoint", str(tmp_path / "missing.pt"),
                                    "--resume"])
    assert res.exit_code == 2 and "missing.pt" in res.output and "not found" in res.output


def test_ctrl_c_in_a_command_without_checkpoint_says_so(tmp_path, monkeypatch):
    import saswot_gp.training as training

    def stop(*a, **k):
        raise KeyboardInterrupt
    monkeypatch.setattr(training, "train_arch", stop)
    res = CliRunner().invoke(main, ["train", "x", "--steps", "1"])
    assert res.exit_code == 130 and "interrupted; nothing was saved" in res.output


def test_failed_bench_build_start_leaves_nothing_that_blocks_a_retry(tmp_path, monkeypatch):
    from saswot_gp import benchbuild
    from test_benchbuild import fake_job

    def broken(args):
        raise SaswotError("data set folder has no images")
    out = tmp_path / "b.csv"
    monkeypatch.setattr(benchbuild, "_train_job", broken)
    with pytest.raises(SaswotError, match="no images"):
        benchbuild.build(str(out), space="tiny", n=2, seeds=1, repeat=0, steps=5, log=lambda m: None)
    assert not out.exists()
    # a header-only file left by an older version is replaced, not held against the corrected command
    out.write_text("# space: tiny\n# training: {\"steps\": 99}\narch,mIoU,seed\n")
    monkeypatch.setattr(benchbuild, "_train_job", fake_job)
    benchbuild.build(str(out), space="tiny", n=2, seeds=1, repeat=0, steps=5, log=lambda m: None)
    assert len(benchbuild.done_rows(out)) == 2
    res = CliRunner().invoke(main, ["bench", "build", "--data", "imagenet", "--out", str(tmp_path / "c.csv")])
    assert res.exit_code == 2 and "imagenet" in res.output and not (tmp_path / "c.csv").exists()


def test_bench_build_names_the_benchmark_after_its_file(tmp_path, monkeypatch):
    from saswot_gp import benchbuild
    from saswot_gp.groundtruth.loaders import load_benchmark
    from test_benchbuild import fake_job
    monkeypatch.setattr(benchbuild, "_train_job", fake_job)
    benchbuild.build(str(tmp_path / "my-bench.csv"), space="tiny", n=4, seeds=1, repeat=0, steps=5, log=lambda m: None)
    assert load_benchmark(tmp_path / "my-bench.csv").name == "my-bench"
    benchbuild.build(str(tmp_path / "b.csv"), space="tiny", n=4, seeds=1, repeat=0, steps=5, name="mine",
                     log=lambda m: None)
    assert load_benchmark(tmp_path / "b.csv").name == "mine"


def test_scoring_leaves_the_users_model_exactly_as_it_was():
    """Proxy.score (and collect_stats under it) restores parameters, BN buffers, gradients and mode; no_grad works."""
    import torch
    from torch import nn
    from saswot_gp.proxy import Proxy
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 4, 1))
    x, y = torch.randn(2, 3, 16, 16), torch.randint(0, 4, (2, 16, 16))
    model(torch.randn(4, 3, 16, 16)).sum().backward()  # the user's own gradients and BN statistics
    model.eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    grads = {n: p.grad.clone() for n, p in model.named_parameters()}
    out_before = model(x)
    proxy = Proxy.load("snip_gp")
    s1 = proxy.score(model, x, y)
    with torch.no_grad():
        s2 = proxy.score(model, x, y)
    assert s1 == s2 and torch.isfinite(torch.tensor(s1))
    assert not model.training
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k
    for n, p in model.named_parameters():
        assert torch.equal(p.grad, grads[n]), n
    assert torch.equal(model(x), out_before)


def test_scoring_torchvision_lraspp_changes_nothing():
    """The issue's case: torchvision's LR-ASPP (no weights downloaded), scored by a tree, is left untouched."""
    import torch
    from torchvision.models.segmentation import lraspp_mobilenet_v3_large
    from saswot_gp.proxy import Proxy
    torch.manual_seed(0)
    net = lraspp_mobilenet_v3_large(weights=None, weights_backbone=None, num_classes=19).eval()

    class Logits(torch.nn.Module):  # torchvision segmenters return {"out": logits}
        def __init__(self, m):
            super().__init__()
            self.m = m

        def forward(self, x):
            return self.m(x)["out"]
    model = Logits(net).eval()
    x, y = torch.randn(2, 3, 64, 64), torch.randint(0, 19, (2, 64, 64))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with torch.no_grad():
        out_before = model(x)
        score = Proxy.load("saswot").score(model, x, y)
    assert torch.isfinite(torch.tensor(score)) and not model.training
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
    assert all(p.grad is None for p in model.parameters())
    with torch.no_grad():
        assert torch.equal(model(x), out_before)


def test_one_resolver_and_one_meaning_per_name(tmp_path):
    """Proxy.load, export, draw, search and proxies resolve a spec the same way; 'nwot' is always the live
    measure and 'nwot_gp' always the proxy-language tree."""
    from saswot_gp.handcrafted import HANDCRAFTED
    from saswot_gp.proxy import Proxy
    from saswot_gp.proxyspec import resolve_proxy
    from saswot_gp.search import ProxyScorer
    from saswot_gp.zerocost import measure_names
    assert Proxy.load("nwot_gp").tokens == ["nwot_a", "A"] == resolve_proxy("nwot_gp").tree().tokens
    assert Proxy.load("layers_sum(l2_w(G))").tokens == ["layers_sum", "l2_w", "G"]
    with pytest.raises(SaswotError, match="'nwot' is a registered zero-cost measure.*'nwot_gp'"):
        Proxy.load("nwot")
    assert resolve_proxy("nwot").kind == "measure" and ProxyScorer("nwot").kind == "measure"
    assert ProxyScorer("nwot_gp").identity() == {"kind": "file", "tokens": ["nwot_a", "A"]}
    assert ProxyScorer("layers_sum(l2_w(G))").proxy.tokens == ["layers_sum", "l2_w", "G"]
    # every name shared by the two families means the same count (params, flops); the rest are named apart
    assert set(HANDCRAFTED) & set(measure_names()) == {"params", "flops"}
    res = CliRunner().invoke(main, ["export", "nwot"])
    assert res.exit_code == 2 and "nwot_gp" in res.output and res.output.count("\n") == 1
    res = CliRunner().invoke(main, ["export", "nwot_gp", "--format", "tokens"])
    assert res.exit_code == 0 and res.output.strip() == "nwot_a A"
    res = CliRunner().invoke(main, ["search", "--proxy", "layers_sum(l2_w(G)", "--max-latency", "5",
                                    "--out", str(tmp_path / "s")])
    assert res.exit_code == 2 and res.output.startswith("error:")


def test_shared_names_score_alike_as_tree_and_live_measure():
    """params and flops: the tree (from collected statistics) equals the registry's count on live models."""
    import random
    from saswot_gp.batches import synthetic_batch
    from saswot_gp.proxy import Proxy
    from saswot_gp.spaces import get_space
    from saswot_gp.stats.cache import build_model
    from saswot_gp.zerocost import get_measure
    sp = get_space("realtime")
    x, y = synthetic_batch(n=2, size=(64, 64), num_classes=sp.num_classes, seed=0)
    rng = random.Random(3)
    for _ in range(3):
        model = build_model(sp, sp.sample(rng), 0)
        for name in ("params", "flops"):
            tree = Proxy.load(name).score(model, x, y)
            live = get_measure(name)(model, x, y)
            assert tree == pytest.approx(live, rel=1e-9), name


def test_tests_find_benchmark_files_through_saswot_benchdata(tmp_path, monkeypatch):
    from conftest import benchdata_dir, need_benchdata
    (tmp_path / "x.json").write_text("{}")
    monkeypatch.setenv("SASWOT_BENCHDATA", str(tmp_path))
    assert benchdata_dir() == tmp_path and need_benchdata("x.json") == tmp_path / "x.json"
    with pytest.raises(pytest.skip.Exception, match="SASWOT_BENCHDATA"):
        need_benchdata("absent.json")


@pytest.mark.parametrize("command", [["evolve"], ["train"], ["proxies"], ["search"], ["latency", "build"]])
def test_thread_defaults_are_never_the_slow_case(command):
    """One torch thread by default everywhere (two were slower here: 14.8 s vs 13.4 s idle, 309 s vs 13 s busy)."""
    params = {p.name: p for p in main.get_command(None, command[0]).params} if len(command) == 1 else \
        {p.name: p for p in main.get_command(None, command[0]).get_command(None, command[1]).params}
    assert params["threads"].default == 1
