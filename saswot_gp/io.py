"""File helpers: atomic writes (temporary file in the same folder, then ``os.replace``), JSON, checkpoints, run folders."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, Callable, List, Mapping, Optional, Sequence, Union

PathLike = Union[str, os.PathLike]


def _new_file_mode() -> int:
    """The mode ``open(path, "w")`` gives a new file: 0666 less the process umask (read without changing it)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            umask = next(int(ln.split()[1], 8) for ln in fh if ln.startswith("Umask:"))
    except (OSError, StopIteration, ValueError):  # no /proc: set and restore (not thread-safe, but brief)
        umask = os.umask(0o022)
        os.umask(umask)
    return 0o666 & ~umask


def atomic_write(path: PathLike, writer: Callable[[str], None], suffix: str = "") -> None:
    """Call ``writer(tmp_path)`` then rename the temporary file onto ``path`` (never a half-written file). The file
    gets the mode a plain ``open`` would give it (the user's umask), not ``mkstemp``'s private 0600."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix + ".tmp", dir=path.parent)
    os.close(fd)
    try:
        writer(tmp)
        os.chmod(tmp, _new_file_mode())
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


def check_output_path(path: PathLike, folder: bool = False, what: str = "output file") -> Path:
    """``path`` as a Path if a file (or, with ``folder``, a folder) can be written there: a one-line SaswotError
    when it is a folder where a file is expected (or the reverse), when a folder above it is a file, or when the
    nearest existing folder above it is not writable. Checks only (creates nothing): call it before long work.
    The one output-path check of every command."""
    from .errors import SaswotError
    path = Path(path)
    if folder and path.exists() and not path.is_dir():
        raise SaswotError(f"{what} {str(path)!r} is a file; expected a folder")
    if not folder and path.is_dir():
        raise SaswotError(f"{what} {str(path)!r} is a folder; expected a file name")
    above = path if folder else path.parent
    for parent in [above, *above.parents]:
        if parent.is_dir():
            break
        if parent.exists() or parent.is_symlink():
            raise SaswotError(f"{what} {str(path)!r}: {str(parent)!r} is a file, not a folder; expected a "
                              f"path whose folders are folders")
    else:  # pragma: no cover - the root always exists
        return path
    if not os.access(parent, os.W_OK | os.X_OK) or not _accepts_files(parent):
        raise SaswotError(f"{what} {str(path)!r}: cannot write in folder {str(parent)!r} (not writable)")
    return path


def _accepts_files(folder: Path) -> bool:
    """Whether a file can be created in ``folder`` (root passes ``os.access`` everywhere, even in /proc)."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=".saswot-write-check.", dir=folder)
    except OSError:
        return False
    os.close(fd)
    os.unlink(tmp)
    return True


def run_files_in(out: PathLike, run_files: Sequence[str]) -> List[str]:
    """The names in ``out`` that ``run_files`` lists (a name may be a glob pattern such as ``scatter_*.png``)."""
    out = Path(out)
    if not out.is_dir():
        return []
    found: List[str] = []
    for f in run_files:
        found += sorted(p.name for p in out.glob(f)) if any(c in f for c in "*?[") else [f] * (out / f).exists()
    return found


def prepare_run_dir(out: PathLike, run_files: Sequence[str], resume: bool, overwrite: bool,
                    resume_hint: Optional[str]) -> Path:
    """Create the run folder ``out``; refuse one that already holds a run (any of ``run_files``, which may hold
    glob patterns) unless ``resume`` (continue it) or ``overwrite`` (its run files are deleted first).
    ``resume_hint`` names the option that resumes it, for the message (None: such a run cannot be resumed)."""
    from .errors import SaswotError
    out = Path(out)
    if resume and overwrite:
        raise SaswotError("--resume and --overwrite exclude each other; expected one of them")
    check_output_path(out, folder=True, what="output folder")
    present = run_files_in(out, run_files)
    if present and not resume:
        if not overwrite:
            how = f"continue it with {resume_hint} or replace it" if resume_hint else "replace it"
            raise SaswotError(f"{str(out)!r} already holds a run ({present[0]}); {how} with --overwrite")
        for f in present:
            path = out / f
            shutil.rmtree(path) if path.is_dir() else path.unlink()
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
    """Refuse to resume ``where`` when settings in ``keys`` differ between the checkpoint (``saved``) and now:
    one-line SaswotError naming each (``prefix`` + key, e.g. ``--population``) with both values. A key missing
    from an older checkpoint counts as ``defaults[key]``. The one settings check of every resumable run."""
    from .errors import SaswotError
    diff = []
    for k in keys:
        was = saved.get(k, (defaults or {}).get(k))
        if was != now[k]:
            diff.append(f"{prefix}{k} was {was!r}, now {now[k]!r}")
    if diff:
        raise SaswotError(f"cannot resume {where}: {'; '.join(diff)}; use the same settings, or start a new run "
                          f"elsewhere")
