"""Progress of long steps, one rule for all: on a terminal a tqdm bar with count, rate and ETA; otherwise (output
piped or redirected) a plain line every ``LINE_INTERVAL_S`` seconds and a final line. Items taken from a cache
are counted apart ("40 cached") and never enter the rate."""

from __future__ import annotations

import sys
import time
from typing import Callable, Optional, TextIO, Tuple

from tqdm import tqdm

LINE_INTERVAL_S = 10.0   # seconds between two plain progress lines when the output is not a terminal
MIN_ELAPSED_S = 0.05     # no rate (nor ETA) before this much time has passed: a rate over less is noise


def format_duration(seconds: Optional[float]) -> str:
    """``seconds`` as ``[H:]MM:SS`` (tqdm's format), or ``?`` when unknown."""
    if seconds is None or seconds != seconds or seconds in (float("inf"), float("-inf")):
        return "?"
    return tqdm.format_interval(max(0.0, seconds))


def format_rate(rate: Optional[float], unit: str) -> str:
    """``rate`` items per second as ``12.3 net/s``, or ``4.56 s/net`` when under one per second; ``? net/s``
    when unknown."""
    if not rate:
        return f"? {unit}/s"
    return f"{rate:.3g} {unit}/s" if rate >= 1 else f"{1 / rate:.3g} s/{unit}"


class _Bar(tqdm):
    """A tqdm bar whose rate (hence ETA) is its :class:`Progress`'s, not tqdm's own estimate."""

    def __init__(self, owner: "Progress", **kwargs):
        self.owner = owner
        super().__init__(**kwargs)

    @property
    def format_dict(self):
        """tqdm's fields with the owner's rate (None, shown as '?', until it has one)."""
        d = super().format_dict
        rate = self.owner.rate()
        d["rate"] = rate
        if rate is None:
            d["initial"] = d["n"]   # tqdm would fall back to (n - initial) / elapsed: make that 0, shown as '?'
        return d


class Progress:
    """A progress callback ``(done, total, cached=0, **postfix)`` for one long step.

    ``done`` counts finished items, ``cached`` how many of them came from a cache (shown apart, left out of the
    rate; :meth:`rate` says how it is taken); the ETA is the items left at that rate. On a terminal
    (``file.isatty()``; ``file`` default stderr) it draws a tqdm bar; otherwise it writes one line every
    ``interval`` seconds of ``clock`` and a final line when ``done >= total``. ``disable=True``: no output;
    ``disable=False``: a bar even when ``file`` is not a terminal. A call after the final one starts again."""

    def __init__(self, desc: str, unit: str = "it", disable: Optional[bool] = None, file: Optional[TextIO] = None,
                 interval: float = LINE_INTERVAL_S, clock: Callable[[], float] = time.monotonic):
        self.desc, self.unit, self.disable, self.file = desc, unit, disable, file
        self.interval, self.clock = interval, clock
        self.bar: Optional[tqdm] = None
        self._restart()

    def _restart(self) -> None:
        self.t0 = self.last_line = self.clock()
        self.done = self.total = self.cached = 0
        self.first: Optional[Tuple[float, int]] = None   # (time, computed items) at the first report
        self.finished = False

    def rate(self) -> Optional[float]:
        """Computed (not cached) items per second since the first report, or None before one more took measurable
        time (the first report leaves out set-up and warm-up: 38 s of set-up then one item is not 1/38 per s)."""
        if self.first is None:
            return None
        (t, m), now = self.first, self.clock()
        measured = self.done - self.cached - m
        return measured / (now - t) if measured >= 1 and now - t >= MIN_ELAPSED_S else None

    def eta(self) -> Optional[float]:
        """Seconds left at :meth:`rate`, or None when the rate is unknown."""
        rate = self.rate()
        return max(0, self.total - self.done) / rate if rate else None

    def __call__(self, done: int, total: int, *, cached: int = 0, **postfix) -> None:
        if self.finished:
            self._restart()
        self.done, self.total, self.cached = done, total, cached
        if self.first is None:
            self.first = (self.clock(), done - cached)
        self.finished = done >= total
        if self.disable:
            return
        stream = self.file or sys.stderr
        if self.disable is False or getattr(stream, "isatty", lambda: False)():
            self._draw(stream, postfix)
        elif self.finished or self.clock() - self.last_line >= self.interval:
            self.last_line = self.clock()
            print(self.line(**postfix), file=stream, flush=True)

    def line(self, **postfix) -> str:
        """The plain progress line: count, cached items, rate, elapsed time, ETA (until finished), ``postfix``."""
        rate = self.rate()
        parts = [f"{self.desc.rstrip()}: {self.done}/{self.total} {self.unit}"
                 + (f" ({self.cached} cached)" if self.cached else "")]
        if rate or not self.finished:
            parts.append(format_rate(rate, self.unit))
        parts.append(f"elapsed {format_duration(self.clock() - self.t0)}")
        if not self.finished:
            parts.append(f"ETA {format_duration(self.eta())}")
        parts += [f"{k}={v}" for k, v in postfix.items()]
        return ", ".join(parts)

    def _draw(self, stream: TextIO, postfix: dict) -> None:
        if self.bar is None:
            self.bar = _Bar(self, total=self.total, initial=self.done, desc=self.desc, unit=self.unit, file=stream,
                            dynamic_ncols=True, leave=True, delay=0, disable=False)
        if self.total != self.bar.total:
            self.bar.total = self.total
        if self.cached:
            postfix = {"cached": self.cached, **postfix}
        self.bar.set_postfix(postfix, refresh=False)
        self.bar.update(self.done - self.bar.n)   # tqdm redraws at most every 0.1 s
        if self.finished:
            self.close()

    def close(self) -> None:
        """Close the bar (safe to call twice)."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None
