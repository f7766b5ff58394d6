"""File helpers: atomic writes (temporary file in the same folder, then ``os.replace``), JSON, checkpoints, run folders."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Mapping, Optional, Sequence, Union

PathLike = Union[str, os.PathLike]


def atomic_write(path: PathLike, writer: Callable[[str], None], suffix: str = "") -> None:
    """Call ``writer(tmp_path)`` then rename the temporary file onto ``path`` (never a half-written file)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix + ".tmp", dir=path.parent)
    os.close(fd)
    try:
        writer(tmp)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def atomic_write_text(path: PathLike, text: str) -> None:
    """Write ``text`` to ``path`` atomically."""
    def w(tmp):
        with open(tmp, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
    atomic_write(path, w)


def atomic_write_json(path: PathLike, obj: Any) -> None:
    """Write ``obj`` as indented JSON to ``path`` atomically."""
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def atomic_save_figure(fig: Any, path: PathLike, dpi: int = 110) -> None:
    """Save a matplotlib figure to ``path`` atomically, in the format its extension names (.png, .svg, ...)."""
    fmt = Path(path).suffix.lstrip(".").lower()
    atomic_write(path, lambda tmp: fig.savefig(tmp, dpi=dpi, format=fmt))


def read_json(path: PathLike, where: str, missing_hint: str) -> Any:
    """Parse the JSON file ``path``; a missing or unparsable file is a one-line SaswotError naming ``where``."""
    from .errors import SaswotError
    p = Path(path)
    try:
        found = p.is_file()
    except OSError:  # a name the file system refuses, such as one over 255 bytes
        found = False
    if not found:
        raise SaswotError(f"{where} not found; {missing_hint}")
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise SaswotError(f"{where} is not valid JSON: {str(exc).splitlines()[0]}") from None


def append_jsonl(path: PathLike, obj: Any) -> None:
    """Append one JSON line to ``path`` (flushed and fsynced)."""
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(json.dumps(obj) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def read_checkpoint(path: PathLike, fmt: str, keys: Sequence[str]) -> dict:
    """Read a JSON checkpoint for resuming: missing, unparsable, of another format or lacking one of ``keys``
    is a one-line SaswotError (the one reader every resumable command uses)."""
    from .errors import SaswotError
    p = Path(path)
    if not p.is_file():
        raise SaswotError(f"cannot resume: {str(p)!r} not found; start a new run without --resume")
    doc = read_json(p, f"cannot resume: checkpoint {str(p)!r}", "start a new run without --resume")
    missing = [k for k in keys if not isinstance(doc, dict) or k not in doc]
    if not isinstance(doc, dict) or doc.get("format") != fmt or missing:
        got = doc.get("format") if isinstance(doc, dict) else type(doc).__name__
        what = f"format {got!r}" if got != fmt else f"missing {', '.join(missing)}"
        raise SaswotError(f"cannot resume: {str(p)!r} is not a saswot-gp checkpoint ({what}; expected format {fmt!r})")
    return doc


def prepare_run_dir(out: PathLike, run_files: Sequence[str], resume: bool, overwrite: bool,
                    resume_hint: str) -> Path:
    """Create the run folder ``out``; refuse one that already holds a run (any of ``run_files``) unless
    ``resume`` (continue it) or ``overwrite`` (its run files are deleted first). ``resume_hint`` names the
    option that resumes it, for the message."""
    from .errors import SaswotError
    out = Path(out)
    if resume and overwrite:
        raise SaswotError("--resume and --overwrite exclude each other; expected one of them")
    if out.exists() and not out.is_dir():
        raise SaswotError(f"output folder {str(out)!r} is a file; expected a folder")
    present = [f for f in run_files if (out / f).exists()]
    if present and not resume:
        if not overwrite:
            raise SaswotError(f"{str(out)!r} already holds a run ({present[0]}); continue it with {resume_hint} "
                              f"or replace it with --overwrite")
        for f in present:
            (out / f).unlink()
    out.mkdir(parents=True, exist_ok=True)
    return out


def rng_to_json(state: tuple) -> list:
    """``random.Random.getstate()`` as JSON-able lists (checkpoints never pickle)."""
    return [state[0], list(state[1]), state[2]]


def rng_from_json(obj: Sequence) -> tuple:
    """Inverse of :func:`rng_to_json`, for ``random.Random.setstate``."""
    return (obj[0], tuple(obj[1]), obj[2])


def check_same_settings(saved: Mapping, now: Mapping, keys: Sequence[str], where: str, prefix: str = "",
                        defaults: Optional[Mapping] = None) -> None:
    """Refuse to resume ``where`` when a setting in ``keys`` differs between the checkpoint (``saved``) and now:
    one-line SaswotError naming it (``prefix`` + key, e.g. ``--population``) and both values. A key missing from
    an older checkpoint counts as ``defaults[key]``. The one settings check of every resumable run."""
    from .errors import SaswotError
    for k in keys:
        was = saved.get(k, (defaults or {}).get(k))
        if was != now[k]:
            raise SaswotError(f"cannot resume {where}: {prefix}{k} was {was!r}, now {now[k]!r}; use the same "
                              f"settings, or start a new run elsewhere")
