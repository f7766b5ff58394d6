"""The ``saswot-gp`` commands, one module each (``cli.py`` registers them with ``main.add_command``).

Each command is a thin click wrapper: it parses its options, calls one library function and prints.
"""


def resume_hint(text: str) -> None:
    """Set what the Ctrl-C message of the running command tells the user (printed by ``cli._Group``)."""
    import click
    click.get_current_context().meta["resume_hint"] = text
