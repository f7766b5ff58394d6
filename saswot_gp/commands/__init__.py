"""The ``saswot-gp`` commands, one module each (``cli.py`` registers them with ``main.add_command``).

Each command is a thin click wrapper: it parses its options, calls one library function and prints.
"""


def resume_hint(text: str) -> None:
    """Set what the Ctrl-C message of the running command tells the user (printed by ``cli._Group``)."""
    import click
    click.get_current_context().meta["resume_hint"] = text


def dask_options(f):
    """``--workers N`` / ``--scheduler ADDRESS|FILE``, the same on every command that spreads work over Dask."""
    import click
    f = click.option("--scheduler", default=None,
                     help="run on an existing Dask cluster: its address (tcp://host:8786) or scheduler file")(f)
    return click.option("--workers", default=0, show_default=True, type=click.IntRange(0),
                        help="start a local Dask cluster of N single-thread worker processes (0: serial, in-process)")(f)


def device_option(f):
    """``--device cpu|cuda|cuda:N``, the same on every command that runs networks."""
    import click
    return click.option("--device", default="cpu", show_default=True,
                        help="where networks run: cpu, cuda or cuda:N (on a Dask cluster, each worker's own GPU)")(f)


RUNTIMES = ("eager", "onnxruntime")  # saswot_gp.latency.RUNTIMES, not imported here: it would load torch at startup


def runtime_option(default, text: str = "what runs the networks: eager (PyTorch) or onnxruntime (exported to "
                                         "ONNX, ONNX Runtime on the CPU)"):
    """``--runtime eager|onnxruntime``: what runs the networks a latency table times (``default`` None: the table's)."""
    import click
    text += " [default: the table's]" if default is None else ""
    return click.option("--runtime", default=default, show_default=default is not None, type=click.Choice(RUNTIMES),
                        help=text)
