"""``saswot-gp export``, ``draw`` and ``operators``: a proxy in another format or as a picture; the operators."""

from __future__ import annotations

from typing import Optional

import click


@click.command("export")
@click.argument("proxy")
@click.option("--format", "fmt", type=click.Choice(["sympy", "latex", "json", "dot", "expression", "tokens"]),
              default="sympy", show_default=True)
@click.option("--raw", is_flag=True, help="sympy/latex of the constructed form, without simplify()")
def export(proxy: str, fmt: str, raw: bool) -> None:
    """Print PROXY (a JSON file, 'saswot', a proxy-language name such as nwot_gp, or functional notation) in another format."""
    import json
    from ..proxyspec import resolve_proxy
    from ..viz import to_dot
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


@click.command("draw")
@click.argument("proxy")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False), help=".png, .svg or .dot")
def draw(proxy: str, output: str) -> None:
    """Draw PROXY's tree to a .png, .svg or .dot file."""
    from ..proxyspec import resolve_proxy
    from ..viz import draw_proxy
    p = resolve_proxy(proxy).tree()
    draw_proxy(p.tokens, output, title=p.expression())
    click.echo(f"wrote {output}")


@click.command("operators")
@click.option("--type", "typ", type=click.Choice(["W", "A", "L", "S", "R"]), default=None, help="only this output type")
def operators(typ: Optional[str]) -> None:
    """List the registered operators and terminals with their typed signatures."""
    from ..primitives import operators as ops
    for op in ops(out_type=typ):
        sig = f"({', '.join(op.in_types)}) -> {op.out_type}" if op.in_types else f"terminal -> {op.out_type}"
        flags = ",".join(f for f, on in (("elementwise", op.elementwise), ("monotone", op.monotone)) if on)
        click.echo(f"{op.name:<16}{sig:<16}{flags:<22}{op.doc}")
