"""Atomic file writes (temporary file in the same folder, then ``os.replace``) and JSON helpers."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Union

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


def read_json(path: PathLike, where: str, missing_hint: str) -> Any:
    """Parse the JSON file ``path``; a missing or unparsable file is a one-line SaswotError naming ``where``."""
    from .errors import SaswotError
    p = Path(path)
    if not p.is_file():
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
