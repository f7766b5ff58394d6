"""Load pickles that hold only builtin containers and scalars, refusing anything that names a class.

A pickle can call any importable function while it loads (``__reduce__``), so benchmark files
downloaded from the internet are read with :class:`RestrictedUnpickler`: its ``find_class`` refuses
every lookup, so only values the pickle machine builds without looking up a class can load:
dict, list, tuple, str, bytes, int, float, bool and None (and sets from protocol 4). Objects,
functions, numpy arrays and anything built through ``__reduce__`` are refused with a
:class:`SaswotError` naming what the pickle tried to load; nothing it names is ever imported or called.
"""

from __future__ import annotations

import io
import os
import pickle
from typing import Any, BinaryIO, Union

from ..errors import SaswotError


class RestrictedUnpickler(pickle.Unpickler):
    """An Unpickler whose ``find_class`` refuses every class or function lookup."""

    source = "pickle"

    def find_class(self, module: str, name: str):  # noqa: D401 - pickle API
        """Refuse: raise SaswotError naming ``module.name``."""
        raise SaswotError(f"{self.source}: refusing to load {module}.{name} from a pickle; "
                          "only builtin containers and scalars (dict, list, tuple, str, int, float, bool, None) are allowed")

    def persistent_load(self, pid):  # noqa: D401 - pickle API
        """Refuse persistent ids (they would need a resolver)."""
        raise SaswotError(f"{self.source}: refusing a persistent id in a pickle; only builtin containers and scalars are allowed")


def safe_loads(data: bytes, source: str = "pickle") -> Any:
    """Unpickle ``data`` allowing only builtin containers and scalars (SaswotError otherwise)."""
    return safe_load(io.BytesIO(data), source=source)


def safe_load(file: Union[BinaryIO, str, os.PathLike], source: str | None = None) -> Any:
    """Unpickle a binary file object or path allowing only builtin containers and scalars (SaswotError otherwise)."""
    if isinstance(file, (str, os.PathLike)):
        path = os.fspath(file)
        try:
            with open(path, "rb") as fh:
                return safe_load(fh, source=source or path)
        except OSError as exc:
            raise SaswotError(f"{path}: cannot read pickle ({exc.strerror or exc})") from None
    unpickler = RestrictedUnpickler(file)
    unpickler.source = source or "pickle"
    try:
        return unpickler.load()
    except SaswotError:
        raise
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError,
            KeyError, MemoryError, OverflowError, UnicodeDecodeError, RecursionError) as exc:
        raise SaswotError(f"{unpickler.source}: not a readable pickle ({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})") from None
