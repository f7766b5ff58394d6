"""The operator library of the proxy language: typed records, the registry, custom-operator factory.

Import order matters and is fixed here: :mod:`.registry` first (it never imports the built-ins), then
:mod:`.builtin`, which registers the built-in operators on import. Importing any module of this package
runs this file first, so the built-ins are registered exactly once before anything can be looked up or
registered, and there is no import cycle between the registry and the built-ins.
"""

from .context import StatsContext  # noqa: F401
from .registry import BIG, Operator, OperatorFn, finite, get_operator, make_operator, operators, register, unregister  # noqa: F401
from .types import TYPES, AScore, ATensor, LScalar, WTensor  # noqa: F401
from . import builtin  # noqa: F401,E402  (registers the built-in operators; must come after .registry)
