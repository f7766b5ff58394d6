"""Click commands kept outside ``cli.py``; ``cli.py`` registers them with ``main.add_command``."""


def resume_hint(text: str) -> None:
    """Set what the Ctrl-C message of the running command tells the user (printed by ``cli._Group``)."""
    import click
    click.get_current_context().meta["resume_hint"] = text
