"""Every ``saswot-gp`` command the README shows names a real (sub)command, and every option it uses exists there,
with a valid value where the option takes a fixed choice."""

import shlex
from pathlib import Path

import click
import pytest

from saswot_gp.cli import main

README = Path(__file__).resolve().parents[1] / "README.md"


def _code_blocks():
    """The README's shell and plain code blocks, each as its lines."""
    blocks, current, lang = [], None, ""
    for line in README.read_text().splitlines():
        if line.startswith("```"):
            if current is None:
                current, lang = [], line[3:].strip()
            else:
                if lang in ("", "bash", "sh"):
                    blocks.append(current)
                current = None
        elif current is not None:
            current.append(line)
    return blocks


def readme_commands():
    """The ``saswot-gp`` command lines of the README's code blocks: continuation lines (a trailing backslash, or a
    synopsis's lines indented under it) joined, comments dropped."""
    out = []
    for block in _code_blocks():
        current = ""
        for i, raw in enumerate(block):
            text = raw.split("  #")[0].rstrip()
            if current:
                current += " " + text.strip().rstrip("\\")
            elif text.startswith("saswot-gp "):
                current = text.rstrip("\\")
            synopsis_goes_on = i + 1 < len(block) and block[i + 1].startswith("                 [")
            if current and not text.endswith("\\") and not synopsis_goes_on:
                out.append(current)
                current = ""
    return out


def _resolve(words):
    """The click command the words name, and the words after its name."""
    cmd, rest = main, list(words)
    while isinstance(cmd, click.Group) and rest and not rest[0].startswith("-"):
        name = rest.pop(0)
        assert name in cmd.commands, f"README: `saswot-gp ... {name}`: no such command (has {sorted(cmd.commands)})"
        cmd = cmd.commands[name]
    return cmd, rest


COMMANDS = readme_commands()


def test_the_readme_shows_commands():
    names = {" ".join(c.split()[:2]) for c in COMMANDS}
    assert len(COMMANDS) >= 15 and {"saswot-gp evolve", "saswot-gp search", "saswot-gp latency"} <= names


@pytest.mark.parametrize("line", COMMANDS)
def test_readme_command_uses_real_options(line):
    words = [w.strip("[]") for w in shlex.split(line.replace("...", ""))[1:]]
    cmd, rest = _resolve([w for w in words if w])
    options = {opt: p for p in cmd.params if isinstance(p, click.Option) for opt in p.opts + p.secondary_opts}
    for i, word in enumerate(rest):
        if not word.startswith("-") or word == "-":
            continue
        name = word.split("=")[0]
        assert name in options or name == "--help", f"README: `{line}`: {cmd.name} has no option {name}"
        param = options.get(name)
        if isinstance(getattr(param, "type", None), click.Choice) and i + 1 < len(rest):
            for value in rest[i + 1].split("|"):
                if not value.isupper():   # a placeholder such as M or NAME
                    assert value in param.type.choices, f"README: `{line}`: {value!r} is not a choice of {name}"
