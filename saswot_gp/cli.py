"""The ``saswot-gp`` command group: one error handler for every command, and their registration.

Every command lives in a module of :mod:`saswot_gp.commands`, a thin click wrapper that parses its options,
calls one library function and prints; this module only gathers them under :func:`main`.
"""

from __future__ import annotations

import sys

import click

from .errors import SaswotError
from .progress import LINE_INTERVAL_S


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


@click.group(cls=_Group, help=f"""saswot-gp: discover training-free proxies for segmentation NAS with typed genetic
programming.

Long steps report progress on stderr: on a terminal a bar with rate and ETA, and when stderr is piped or
redirected a plain line every {LINE_INTERVAL_S:g} s and a final line (items taken from a cache counted apart).

A command that builds a batch refuses one whose estimated memory (the batch and the space's largest network
on it) is over SASWOT_MAX_MEMORY (such as 32G; default 3/4 of this machine's RAM), saying what fits.""")
@click.version_option(package_name="saswot-gp")
def main():
    """The ``saswot-gp`` command group (its help text is the group's ``help``)."""


def _register_commands() -> None:
    from .commands.bench import bench
    from .commands.evolve import evolve
    from .commands.export import draw, export, operators
    from .commands.export_net import export_net
    from .commands.latency import latency
    from .commands.proxies import proxies
    from .commands.search import search
    from .commands.train import train
    for command in (evolve, export, draw, operators, train, bench, proxies, latency, search, export_net):
        main.add_command(command)


_register_commands()

if __name__ == "__main__":  # pragma: no cover
    main()
