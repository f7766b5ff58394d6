"""Write saswot_gp/resources/splits.json: every benchmark's one committed split (seed 0) into training (70 %, a
quarter of it validation) and held-out (30 %) parts of all its usable architectures.

    SASWOT_BENCHDATA=../shared/benchdata python benchmarks/make_splits.py [--check]

TransNAS micro first loses its invalid cells and its isomorphic duplicates (the first cell of each class in file
order is kept; ``saswot_gp.spaces.transnas_cells``). NAS-Bench-MR seg and seg-4x hold the same architectures and
share one split. ``--check`` recomputes the splits and fails if they differ from the committed file.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from saswot_gp.groundtruth.loaders import resolve_benchmark
from saswot_gp.groundtruth.splits import SPLITS_FORMAT, make_split

OUT = Path(__file__).resolve().parent.parent / "saswot_gp" / "resources" / "splits.json"
FAMILIES = {"realtime-digits": ["realtime-digits"], "transnas-micro": ["transnas-micro"],
            "transnas-macro": ["transnas-macro"], "nbmr": ["nbmr-seg", "nbmr-seg-4x"]}
SEED = 0


def build() -> dict:
    """The split document for every family."""
    splits = {}
    for family, specs in FAMILIES.items():
        benches = [resolve_benchmark(s) for s in specs]
        if len({tuple(sorted(b.archs)) for b in benches}) != 1:
            raise SystemExit(f"{family}: its benchmarks do not hold the same architectures")
        entry = make_split(benches[0], seed=SEED)
        splits[family] = {"benchmarks": [b.name for b in benches], **entry}
        removed = {k: len(v) for k, v in entry["removed"].items()}
        print(f"{family}: {entry['n_file']} architectures, removed {removed or 'none'}; "
              f"{len(entry['train'])} train / {len(entry['val'])} val / {len(entry['heldout'])} held out")
    return {"format": SPLITS_FORMAT, "version": 1, "splits": splits}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="fail if the committed file differs")
    args = ap.parse_args()
    doc = build()
    text = json.dumps(doc, indent=1) + "\n"
    if args.check:
        same = OUT.exists() and OUT.read_text() == text
        print("committed splits reproduce" if same else "committed splits DIFFER")
        raise SystemExit(0 if same else 1)
    OUT.write_text(text)
    print(f"wrote {OUT} ({len(text) // 1024} KiB)")


if __name__ == "__main__":
    main()
