"""Progress bars for long steps (tqdm: count, rate and ETA on stderr), silent when stderr is not a terminal."""

from __future__ import annotations

import sys
from typing import Optional

from tqdm import tqdm


class Progress:
    """A progress callback ``(done, total, **postfix)`` that drives one tqdm bar, opened on the first call and
    closed when ``done == total``; disabled (no output at all) when stderr is not a terminal."""

    def __init__(self, desc: str, unit: str = "it", disable: Optional[bool] = None):
        self.desc, self.unit, self.disable = desc, unit, disable
        self.bar: Optional[tqdm] = None

    def __call__(self, done: int, total: int, **postfix) -> None:
        if self.bar is None:
            self.bar = tqdm(total=total, initial=0, desc=self.desc, unit=self.unit, file=sys.stderr,
                            disable=self.disable, dynamic_ncols=True, leave=True)
        if total != self.bar.total:
            self.bar.total = total
        self.bar.update(done - self.bar.n)
        if postfix:
            self.bar.set_postfix(postfix, refresh=False)
        if done >= total:
            self.close()

    def close(self) -> None:
        """Close the bar (safe to call twice)."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None
