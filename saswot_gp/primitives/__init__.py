"""The operator library of the proxy language: typed records, the registry, custom-operator factory."""

from .registry import BIG, Operator, finite, get_operator, make_operator, operators, register, unregister  # noqa: F401
from .types import TYPES, AScore, ATensor, LScalar, WTensor  # noqa: F401
