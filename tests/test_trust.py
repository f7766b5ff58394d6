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
