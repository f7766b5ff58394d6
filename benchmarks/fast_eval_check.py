"""Bit-identity of the library's proxy evaluation with the reference (the operators before the fast path).

Usage: python benchmarks/fast_eval_check.py [--space realtime] [--archs 48] [--trees 2000] [--seed 0]

Statistics of ``--archs`` networks sampled from ``--space`` (batch of 8, K = 256) are packed, and three contexts are
made from them: the real one; "huge", the same statistics times 1e150 (terminals W, G, A, AG, layer and
architecture scalars), so that squares, products, sums and quotients overflow; "poisoned", the real one with NaN,
+-inf, 0 and 1e300 written into every terminal at a few positions (non-finite inputs). ``--trees`` random typed
trees (DEAP ramped half-and-half on ``build_pset()``, heights 2-5, seed ``--seed``) plus hand-written overflow and
NaN cases are evaluated on each context by ``Proxy.evaluate`` and by ``reference_eval.evaluate_reference``.
Reported per context: trees whose scores are bit for bit identical (same float64 bit patterns), trees equal as
values only (NaN = NaN, -0.0 = 0.0; up to 5 examples), trees that differ, how many trees have a non-finite
score, and whether the statistics (terminals) were left untouched. Exit status 1 if any tree differs in value
or any statistic was overwritten.
Prints and writes benchmarks/results/fast_eval_check.json (or ``--out``).
"""

from __future__ import annotations

import argparse
import copy
import random
import sys
from pathlib import Path

import torch

from saswot_gp.batches import synthetic_batch
from saswot_gp.evolution import build_pset
from saswot_gp.io import atomic_write_json
from saswot_gp.proxy import Proxy
from saswot_gp.spaces import get_space
from saswot_gp.stats import collect_stats, pack
from saswot_gp.stats.cache import build_model

from reference_eval import evaluate_reference

ROOT = Path(__file__).resolve().parent

HAND = [  # overflow, NaN and division cases (prefix notation)
    "layers_sum(l1_w(exp_w(exp_w(exp_w(W)))))",
    "layers_sum(sum_w(square_w(square_w(square_w(square_w(square_w(W)))))))",
    "layers_sum(l2_a(square_a(square_a(square_a(mul_a(A, AG))))))",
    "layers_mean(mean_w(log_w(sub_w(W, W))))",
    "layers_sum(sum_w(div_w(W, sub_w(G, G))))",
    "layers_sum(sum_w(div_w(square_w(square_w(W)), G)))",
    "layers_sum(sum_w(recip_w(sub_w(W, W))))",
    "div_s(flops, sub_s(params, params))",
    "mul_s(square_s(square_s(square_s(flops))), square_s(square_s(square_s(params))))",
    "add_s(square_s(square_s(square_s(square_s(flops)))), square_s(square_s(square_s(square_s(flops)))))",
    "sub_s(neg_s(square_s(square_s(square_s(square_s(flops))))), square_s(square_s(square_s(square_s(flops)))))",
    "layers_sum(zscore_l(square_l(square_l(square_l(square_l(flops_l))))))",
    "layers_sum(minmax_l(mul_l(square_l(square_l(square_l(flops_l))), neg_l(square_l(square_l(square_l(params_l)))))))",
    "layers_sum(std_w(zscore_w(square_w(square_w(square_w(square_w(W)))))))",
    "layers_max(maxabs_a(minmax_a(mul_a(square_a(square_a(A)), square_a(square_a(AG))))))",
    "layers_sum(sum_a(div_a(exp_a(exp_a(A)), sub_a(AG, AG))))",
    "layers_mean(mean_w(mul_w(exp_w(exp_w(exp_w(W))), exp_w(exp_w(exp_w(G))))))",
    "layers_sum(mean_a(add_a(square_a(square_a(square_a(square_a(A)))), square_a(square_a(square_a(square_a(A)))))))",
    "add_s(layers_sum(logdet_a(A)), nwot_a(sub_a(A, A)))",
    "layers_min(l1_w(max_w(sqrt_w(neg_w(W)), min_w(tanh_w(G), sigmoid_w(W)))))",
    "layers_sum(l2_w(relu_w(div_w(W, recip_w(sub_w(G, G))))))",
]


def contexts(packed):
    """The real packed statistics, their "huge" copy and their "poisoned" copy (see the module docstring)."""
    huge = copy.copy(packed)
    for name in ("w", "g", "a", "ag"):
        setattr(huge, name, getattr(packed, name) * 1e150)
    huge.layer = {k: v * 1e150 for k, v in packed.layer.items()}
    huge.arch = {k: v * 1e150 for k, v in packed.arch.items()}
    huge._groups = None
    bad = copy.copy(packed)
    specials = torch.tensor([float("nan"), float("inf"), -float("inf"), 0.0, 1e300, -0.0], dtype=torch.float64)
    g = torch.Generator().manual_seed(0)

    def poison(t):
        t = t.clone()
        flat = t.view(-1)
        idx = torch.randint(0, flat.numel(), (min(64, flat.numel()),), generator=g)
        flat[idx] = specials[torch.arange(len(idx)) % len(specials)]
        return t

    for name in ("w", "g", "a", "ag"):
        setattr(bad, name, poison(getattr(packed, name)))
    bad.layer = {k: poison(v) for k, v in packed.layer.items()}
    bad.arch = {k: poison(v) for k, v in packed.arch.items()}
    bad._groups = None
    return {"real": packed, "huge": huge, "poisoned": bad}


def compare(a: torch.Tensor, b: torch.Tensor) -> str:
    """'bits' (identical float64 bit patterns), 'values' (equal with NaN = NaN and -0.0 = 0.0) or 'differ'."""
    if a.shape != b.shape or a.dtype != b.dtype:
        return "differ"
    if torch.equal(a.view(torch.int64), b.view(torch.int64)):
        return "bits"
    both_nan = torch.isnan(a) & torch.isnan(b)
    return "values" if bool(((a == b) | both_nan).all()) else "differ"


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--space", default="realtime")
    ap.add_argument("--archs", type=int, default=48)
    ap.add_argument("--trees", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", default=str(ROOT / "results" / "fast_eval_check.json"))
    args = ap.parse_args()
    torch.set_num_threads(1)
    from deap import gp
    space = get_space(args.space)
    rng = random.Random(args.seed)
    archs = list(dict.fromkeys(space.sample(rng) for _ in range(args.archs * 2)))[: args.archs]
    images, labels = synthetic_batch(8, space.input_size, space.num_classes, seed=args.seed)
    packed = pack([collect_stats(build_model(space, a, 0), images, labels, k=256, seed=0) for a in archs])
    pset = build_pset()
    random.seed(args.seed)
    trees = [[n.name for n in gp.PrimitiveTree(gp.genHalfAndHalf(pset, 2, 5))] for _ in range(args.trees)]
    trees += [Proxy.parse(h).tokens for h in HAND]
    result = {"space": args.space, "archs": len(archs), "random_trees": args.trees, "hand_trees": len(HAND),
              "seed": args.seed, "torch": torch.__version__, "contexts": {}}
    failed = False
    for name, ctx in contexts(packed).items():
        counts = {"bits": 0, "values": 0, "differ": 0}
        examples = {"values": [], "differ": []}
        nonfinite_scores = 0
        before = [t.clone() for t in (ctx.w, ctx.g, ctx.a, ctx.ag, *ctx.layer.values(), *ctx.arch.values())]
        with torch.no_grad():
            for toks in trees:
                old = evaluate_reference(toks, ctx)
                new = Proxy(toks).evaluate(ctx)
                how = compare(old, new)
                counts[how] += 1
                nonfinite_scores += int(not bool(torch.isfinite(old).all()))
                if how != "bits" and len(examples[how]) < 5:
                    examples[how].append(Proxy(toks).expression())
        after = (ctx.w, ctx.g, ctx.a, ctx.ag, *ctx.layer.values(), *ctx.arch.values())
        untouched = all(compare(b, a) == "bits" for b, a in zip(before, after))
        failed |= counts["differ"] > 0 or not untouched
        counts["statistics_untouched"] = untouched
        result["contexts"][name] = {**counts, "trees_with_nonfinite_scores": nonfinite_scores, "examples": examples}
        print(f"{name:>9}: {counts['bits']} bit-identical, {counts['values']} equal in value only, "
              f"{counts['differ']} differ (of {len(trees)}; {nonfinite_scores} with non-finite scores; "
              f"statistics {'untouched' if untouched else 'OVERWRITTEN'})"
              + (f"; e.g. {examples['differ'][:2] or examples['values'][:2]}" if counts["bits"] < len(trees) else ""),
              flush=True)
    atomic_write_json(args.out, result)
    print(f"wrote {args.out}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
