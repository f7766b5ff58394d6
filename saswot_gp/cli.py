"""The ``saswot-gp`` command: thin click wrappers, every command a call into the library."""

from __future__ import annotations

import sys

import click

from .commands import resume_hint
from .errors import SaswotError
from .progress import Progress
from .spaces.base import parse_resolution


def _k_option(value: str):
    if value in ("full", "none", "None"):
        return None
    try:
        k = int(value)
    except ValueError:
        raise click.BadParameter(f"{value!r}; expected a positive integer or 'full'") from None
    if k < 1:
        raise click.BadParameter(f"{value!r}; expected a positive integer or 'full'")
    return k


class _Group(click.Group):
    """Every command's errors in one place: a SaswotError is one line (exit 2); Ctrl-C says how to resume
    (the command's ``ctx.meta["resume_hint"]``; exit 130)."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except SaswotError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)
        except KeyboardInterrupt:
            hint = ctx.meta.get("resume_hint")
            click.echo(f"\ninterrupted{'; ' + hint if hint else ''}", err=True)
            sys.exit(130)


@click.group(cls=_Group)
@click.version_option(package_name="saswot-gp")
def main():
    """saswot-gp: discover training-free proxies for segmentation NAS with typed genetic programming."""


@main.command()
@click.option("--benchmark", "benchmarks", multiple=True, default=("realtime-digits",), show_default=True,
              help="registered name or path to a benchmark file; repeat it to evolve on several benchmarks at once "
                   "(default: the embedded trained realtime/digits benchmark; 'synthetic' is the planted test stand-in)")
@click.option("--metric", default=None, help="target column of the benchmark (default: the file's main metric)")
@click.option("--fitness", type=click.Choice(["mean", "min"]), default="mean", show_default=True,
              help="how the per-benchmark training Kendall taus are combined")
@click.option("--terminals", type=click.Choice(["all", "stats", "sizes", "scalefree"]), default="all", show_default=True,
              help="leaves of the trees: network statistics and layer sizes, statistics only (W, G, A, AG), sizes only, "
                   "or statistics through size-independent reductions only (scalefree)")
@click.option("--select", type=click.Choice(["train", "val"]), default="train", show_default=True,
              help="choose the final proxy among the hall of fame by training or validation Kendall")
@click.option("--val-frac", default=None, type=click.FloatRange(0, 1, max_open=True),
              help="fraction of each training split kept aside as validation (default: 0.25 with --select val, else 0)")
@click.option("--batch", type=click.Choice(["auto", "synthetic", "natural", "digits"]), default="auto", show_default=True,
              help="statistics batch: auto (digit scenes for digits-trained benchmarks, else synthetic), or one kind for all")
@click.option("--population", default=64, show_default=True, type=click.IntRange(4))
@click.option("--generations", default=None, type=click.IntRange(0),
              help="generations after the initial population [default: 20; with --resume: the checkpoint's, or more to extend it]")
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--data-seed", default=None, type=int, help="seed of splits, batches and weights (default: --seed)")
@click.option("--out", "out_dir", default="runs/evolve", show_default=True, type=click.Path(file_okay=False))
@click.option("--resume", "resume_dir", default=None, type=click.Path(file_okay=False),
              help="continue the run in DIR (settings come from its checkpoint; --generations may extend it)")
@click.option("--overwrite", is_flag=True, help="replace the run already in --out (default: refuse it)")
@click.option("--cache-dir", default=None, type=click.Path(file_okay=False),
              help="statistics cache shared between runs (default: OUT/stats_cache)")
@click.option("--k", "k", default="256", show_default=True, help="sketch size per tensor, or 'full'")
@click.option("--train-size", default=200, show_default=True, type=click.IntRange(2))
@click.option("--heldout-size", default=None, type=click.IntRange(2), help="at most this many held-out architectures (default: all the rest)")
@click.option("--batch-size", default=8, show_default=True, type=click.IntRange(2))
@click.option("--resolution", default=None, help="HxW of the statistics batch (default: the space's input size)")
@click.option("--workers", default=0, show_default=True, type=click.IntRange(0), help="process pool size (0 = serial)")
@click.option("--threads", default=1, show_default=True, type=click.IntRange(1),
              help="torch threads (1 is fastest for these small networks; more only helps on idle cores)")
def evolve(benchmarks, metric, fitness, terminals, select, val_frac, batch, population, generations, seed, data_seed,
           out_dir, resume_dir, overwrite, cache_dir, k, train_size, heldout_size, batch_size, resolution, workers, threads):
    """Evolve a proxy on one or several benchmarks and report it beside the hand-designed proxies."""
    import torch
    from .evolution.job import format_table, run_evolve
    torch.set_num_threads(threads)
    resume_hint(f"continue with: saswot-gp evolve --resume {resume_dir or out_dir} (from the last finished generation)")
    summary = run_evolve(benchmark=list(benchmarks), metric=metric, out_dir=resume_dir or out_dir, population=population,
                         generations=generations, seed=seed, k=_k_option(k), train_size=train_size,
                         batch_size=batch_size, workers=workers, resume=resume_dir is not None, heldout_size=heldout_size,
                         resolution=parse_resolution(resolution), fitness=fitness, terminals=terminals, select=select,
                         val_frac=val_frac, batch=batch, data_seed=data_seed, cache_dir=cache_dir,
                         overwrite=overwrite, log=lambda m: click.echo(m, err=True))
    click.echo(f"\n{summary['benchmark']} ({summary['metric']}): {summary['n_train']} train / "
               f"{summary['n_heldout']} held-out architectures; Kendall tau and Spearman rho")
    click.echo(format_table(summary))
    out = resume_dir or out_dir
    click.echo(f"\nwrote {out}/best_proxy.json, hall_of_fame.json, log.jsonl, proxy.png, evolution.png, summary.json")


@main.command()
@click.argument("proxy")
@click.option("--format", "fmt", type=click.Choice(["sympy", "latex", "json", "dot", "expression", "tokens"]),
              default="sympy", show_default=True)
@click.option("--raw", is_flag=True, help="sympy/latex of the constructed form, without simplify()")
def export(proxy, fmt, raw):
    """Print PROXY (a JSON file, 'saswot', a proxy-language name such as nwot_gp, or functional notation) in another format."""
    import json
    from .proxyspec import resolve_proxy
    from .viz import to_dot
    p = resolve_proxy(proxy).tree()
    if fmt == "json":
        click.echo(json.dumps(p.to_json(), indent=2))
    elif fmt == "dot":
        click.echo(to_dot(p.tokens), nl=False)
    elif fmt == "expression":
        click.echo(p.expression())
    elif fmt == "tokens":
        click.echo(" ".join(p.tokens))
    else:
        import sympy
        expr = p.sympy() if raw else p.simplified()
        click.echo(sympy.latex(expr) if fmt == "latex" else str(expr))


@main.command()
@click.argument("proxy")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help=".png, .svg or .dot")
def draw(proxy, output):
    """Draw PROXY's tree to a .png, .svg or .dot file."""
    from .proxyspec import resolve_proxy
    from .viz import draw_proxy
    p = resolve_proxy(proxy).tree()
    draw_proxy(p.tokens, output, title=p.expression())
    click.echo(f"wrote {output}")


@main.command()
@click.option("--type", "typ", type=click.Choice(["W", "A", "L", "S"]), default=None, help="only this output type")
def operators(typ):
    """List the registered operators and terminals with their typed signatures."""
    from .primitives import operators as ops
    for op in ops(out_type=typ):
        sig = f"({', '.join(op.in_types)}) -> {op.out_type}" if op.in_types else f"terminal -> {op.out_type}"
        flags = ",".join(f for f, on in (("elementwise", op.elementwise), ("monotone", op.monotone)) if on)
        click.echo(f"{op.name:<16}{sig:<16}{flags:<22}{op.doc}")


@main.command()
@click.argument("arch")
@click.option("--space", default="realtime", show_default=True)
@click.option("--input-size", default=None, type=click.IntRange(32), help="square input size (space default if omitted)")
@click.option("--base-width", default=None, type=click.IntRange(1), help="realtime space base width")
@click.option("--data", type=click.Choice(["digits", "cityscapes", "camvid"]), default="digits", show_default=True)
@click.option("--root", default=None, type=click.Path(exists=True, file_okay=False), help="data set folder (cityscapes, camvid)")
@click.option("--steps", default=1000, show_default=True, type=click.IntRange(1))
@click.option("--epochs", default=None, type=float, help="train for this many epochs instead of --steps")
@click.option("--batch-size", default=16, show_default=True, type=click.IntRange(1))
@click.option("--optimizer", type=click.Choice(["adamw", "sgd"]), default="adamw", show_default=True)
@click.option("--lr", default=None, type=float)
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--threads", default=1, show_default=True, type=click.IntRange(1), help="torch threads")
@click.option("--checkpoint", default=None, type=click.Path(dir_okay=False), help="checkpoint file (written atomically)")
@click.option("--resume", is_flag=True, help="continue from --checkpoint")
def train(arch, space, input_size, base_width, data, root, steps, epochs, batch_size, optimizer, lr, seed, threads,
          checkpoint, resume):
    """Train ARCH and report mIoU, pixel accuracy, params, FLOPs and latency."""
    import json
    from .training import train_arch
    if data != "digits" and root is None:
        raise SaswotError(f"--data {data} needs --root pointing at your copy of the data set")
    if resume and not checkpoint:
        raise SaswotError("--resume needs --checkpoint FILE")
    skw = {k: v for k, v in (("input_size", input_size), ("base_width", base_width)) if v is not None}
    resume_hint(f"add --resume to the same command to continue from {checkpoint} (saved every tenth of the steps)"
                if checkpoint else "nothing was saved: give --checkpoint FILE to make a training resumable")

    bar = Progress("  training", unit="step")

    def progress(info):
        if info.get("step") and info.get("steps"):
            bar(info["step"], info["steps"], loss=f"{info.get('loss', float('nan')):.4f}")

    row = train_arch(arch, space=space, data=data, space_kwargs=skw, data_root=root, steps=None if epochs else steps,
                     epochs=epochs, batch_size=batch_size, optimizer=optimizer, lr=lr, seed=seed, threads=threads,
                     checkpoint=checkpoint, resume=resume, progress=progress)
    click.echo(json.dumps(row, indent=2))
    click.echo(f"latency {row['latency_ms']:.2f} ms ({row['fps']:.0f} FPS) at batch 1, {row['input_size']}, 1 thread",
               err=True)


@main.group()
def bench():
    """Ground-truth benchmarks built by training."""


@bench.command("build")
@click.option("--space", default="realtime", show_default=True)
@click.option("--data", type=click.Choice(["digits", "cityscapes", "camvid"]), default="digits", show_default=True)
@click.option("--root", default=None, type=click.Path(exists=True, file_okay=False), help="data set folder (cityscapes, camvid)")
@click.option("--name", default=None, help="the benchmark's name in its header (default: the --out file name without extension)")
@click.option("--n", "n", default=200, show_default=True, type=click.IntRange(1))
@click.option("--seeds", default=2, show_default=True, type=click.IntRange(1))
@click.option("--repeat", default=50, show_default=True, type=click.IntRange(0), help="how many architectures get all --seeds")
@click.option("--steps", default=1000, show_default=True, type=click.IntRange(1))
@click.option("--batch-size", default=16, show_default=True, type=click.IntRange(1))
@click.option("--optimizer", type=click.Choice(["adamw", "sgd"]), default="adamw", show_default=True)
@click.option("--lr", default=None, type=click.FloatRange(min=0, min_open=True), help="peak learning rate (default: the optimizer's)")
@click.option("--warmup", default=0, show_default=True, type=click.IntRange(0), help="linear warm-up steps")
@click.option("--sampler", type=click.Choice(["uniform", "diverse"]), default="uniform", show_default=True,
              help="how architectures are drawn: i.i.d. layers, or per-architecture operator/width preferences")
@click.option("--input-size", default=None, type=click.IntRange(32))
@click.option("--base-width", default=None, type=click.IntRange(1))
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1))
@click.option("--out", required=True, type=click.Path(dir_okay=False))
def bench_build(space, data, root, name, n, seeds, repeat, steps, batch_size, optimizer, lr, warmup, sampler, input_size,
                base_width, workers, out):
    """Train N sampled architectures (append-only, resumable CSV; one row per architecture and seed)."""
    from .benchbuild import build, noise_ceiling
    skw = {k: v for k, v in (("input_size", input_size), ("base_width", base_width)) if v is not None}
    resume_hint(f"run the same command again to continue: the rows already in {out} are kept")
    build(out, space=space, data=data, n=n, seeds=seeds, repeat=repeat, steps=steps, batch_size=batch_size,
          optimizer=optimizer, lr=lr, warmup=warmup, sampler=sampler, space_kwargs=skw, workers=workers, name=name,
          data_root=root, log=lambda m: click.echo(m, err=True))
    nc = noise_ceiling(out)
    click.echo(f"seed-to-seed agreement over {nc['n']} architectures: Kendall {nc['kendall']:.3f}, Spearman {nc['spearman']:.3f}")


def _register_commands() -> None:
    from .commands.proxies import proxies
    main.add_command(proxies)
    from .commands.latency import latency
    main.add_command(latency)
    from .commands.search import search
    main.add_command(search)


_register_commands()

if __name__ == "__main__":  # pragma: no cover
    main()
