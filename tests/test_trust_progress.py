"""Progress of long steps (issue 22): one rule everywhere, a bar with rate and ETA on a terminal, a plain line every
few seconds and a final line otherwise; cached items counted apart, rates never absurd."""

import io
import math
import re

import pytest
from click.testing import CliRunner

from saswot_gp.cli import main
from saswot_gp.progress import LINE_INTERVAL_S, Progress


class Clock:
    """A fake clock: ``tick(s)`` moves it on."""

    def __init__(self):
        self.t = 100.0

    def __call__(self):
        return self.t

    def tick(self, s):
        self.t += s


class Terminal(io.StringIO):
    def isatty(self):
        return True


def _rates(text):
    return [float(x) for x in re.findall(r"([0-9.e+]+) net/s", text)]


def test_piped_progress_is_a_line_every_interval_and_a_final_line():
    clock, out = Clock(), io.StringIO()
    p = Progress("  stats", unit="net", file=out, clock=clock)
    for i in range(1, 101):                     # 100 items, 0.5 s each: 50 s
        clock.tick(0.5)
        p(i, 100, best="0.5")
    lines = out.getvalue().splitlines()
    assert "\r" not in out.getvalue()
    assert [int(re.search(r"(\d+)/100", ln).group(1)) for ln in lines] == [20, 40, 60, 80, 100]  # every 10 s
    assert lines[0] == "  stats: 20/100 net, 2 net/s, elapsed 00:10, ETA 00:40, best=0.5"
    assert lines[-1] == "  stats: 100/100 net, 2 net/s, elapsed 00:50, best=0.5"      # the final line, no ETA
    assert LINE_INTERVAL_S == 10.0


def test_cached_items_are_counted_apart_and_rates_stay_sane():
    clock, out = Clock(), io.StringIO()
    p = Progress("  stats", unit="net", file=out, clock=clock)
    clock.tick(1e-5)
    p(40, 40, cached=40)                        # the tiny-network case: everything from the cache at once
    assert out.getvalue() == "  stats: 40/40 net (40 cached), elapsed 00:00\n"   # no 640,351 net/s
    out.truncate(0), out.seek(0)
    p = Progress("  stats", unit="net", file=out, clock=clock, interval=1.0)
    p(40, 100, cached=40)
    for i in range(41, 101):                    # then 60 computed, 0.1 s each
        clock.tick(0.1)
        p(i, 100, cached=40)
    rates = _rates(out.getvalue())
    assert "(40 cached)" in out.getvalue().splitlines()[-1]
    assert rates and all(math.isfinite(r) and r == pytest.approx(10.0) for r in rates)
    out.truncate(0), out.seek(0)
    p = Progress("  timing", unit="net", file=out, clock=clock)
    clock.tick(38.0)                            # a long set-up, then the first item: no rate of 1/38 per s yet
    p(1, 593)
    assert out.getvalue() == "  timing: 1/593 net, ? net/s, elapsed 00:38, ETA ?\n"
    out.truncate(0), out.seek(0)
    p = Progress("  stats", unit="net", file=out, clock=clock)
    for i in range(1, 11):                      # too quick to measure: no rate rather than a silly one
        clock.tick(1e-4)
        p(i, 10)
    assert out.getvalue() == "  stats: 10/10 net, elapsed 00:00\n"


def test_a_terminal_gets_a_bar_with_rate_and_eta():
    clock, term = Clock(), Terminal()
    p = Progress("  stats", unit="net", file=term, clock=clock)
    p(40, 100, cached=40)
    for i in range(41, 61):
        clock.tick(0.5)
        p(i, 100, cached=40)
    shown = str(p.bar)
    assert "60/100" in shown and "2.00net/s" in shown and "<00:20" in shown and "cached=40" in shown  # 40 left at 2/s
    for i in range(61, 101):
        p(i, 100, cached=40)
    assert p.bar is None and "\r" in term.getvalue() and "100/100" in term.getvalue()
    quiet = io.StringIO()
    q = Progress("  stats", unit="net", file=quiet, disable=True)
    q(1, 1)
    assert quiet.getvalue() == ""


def test_evolve_shows_statistics_and_generation_eta_when_piped(tmp_path):
    res = CliRunner().invoke(main, ["evolve", "--benchmark", "synthetic", "--population", "8", "--train-size", "30",
                                    "--select", "train", "--threads", "1", "--generations", "2",
                                    "--out", str(tmp_path / "run")])
    assert res.exit_code == 0, res.output
    assert re.search(r"train statistics: 30/30 net\b.*elapsed", res.output)
    gens = [ln for ln in res.output.splitlines() if ln.startswith("gen ")]
    assert len(gens) == 3 and all(re.search(r"\d\.\d\ds  ETA \d\d:\d\d  ", ln) for ln in gens)
    assert "ETA 00:00" in gens[-1]


def test_bench_build_reports_through_progress_not_a_line_per_job(tmp_path, monkeypatch):
    from saswot_gp import benchbuild
    from test_benchbuild import fake_job
    monkeypatch.setattr(benchbuild, "_train_job", fake_job)
    res = CliRunner().invoke(main, ["bench", "build", "--space", "tiny", "--n", "4", "--seeds", "1", "--repeat", "0",
                                    "--steps", "5", "--out", str(tmp_path / "b.csv")])
    assert res.exit_code == 0, res.output
    progress = [ln for ln in res.output.splitlines() if ln.startswith("  training:")]
    assert len(progress) == 1 and progress[0].startswith("  training: 4/4 job") and "mIoU=" in progress[0]
    assert not re.search(r"^  \d+/4 ", res.output, re.M)


def test_search_counts_a_resumed_runs_scores_as_cached(lut, limit, tmp_path):
    path = tmp_path / "lut.json"
    lut.save(path)
    args = ["search", "--proxy", "params", "--space", "realtime", "--lut", str(path), "--resolution", "32x32",
            "--max-latency", str(limit), "--top", "2", "--population", "4", "--sample-size", "2", "--batch-size", "2",
            "--batch", "synthetic", "--no-remeasure", "--out", str(tmp_path / "run")]
    res = CliRunner().invoke(main, args + ["--budget", "4"])
    assert res.exit_code == 0 and "  scoring: 4/4 arch, " in res.output, res.output
    res = CliRunner().invoke(main, args + ["--budget", "6", "--resume"])
    assert res.exit_code == 0 and "  scoring: 6/6 arch (4 cached)" in res.output, res.output


def test_proxies_scoring_reports_through_progress_not_a_line_per_architecture(tmp_path):
    res = CliRunner().invoke(main, ["proxies", "--benchmark", "synthetic", "--measures", "params", "--n", "6",
                                    "--batch-size", "2", "--bootstrap", "0", "--out", str(tmp_path / "o")])
    assert res.exit_code == 0, res.output
    progress = [ln for ln in res.output.splitlines() if ln.startswith("  scoring:")]
    assert len(progress) == 1 and progress[0].startswith("  scoring: 6/6 arch, ") and "elapsed" in progress[0]
    assert not re.search(r"^  \[\d+/6\]", res.output, re.M)


def test_readme_and_help_state_the_progress_rule_the_code_follows():
    from pathlib import Path
    readme = " ".join((Path(__file__).resolve().parents[1] / "README.md").read_text().split())
    shown = " ".join(CliRunner().invoke(main, ["--help"]).output.split())
    rule = f"on a terminal a bar with rate and ETA, and when stderr is piped or redirected a plain line every " \
           f"{LINE_INTERVAL_S:g} s and a final line"
    assert rule in readme and rule in shown
    assert "nothing when the output is not a terminal" not in readme and "a few seconds" not in readme
