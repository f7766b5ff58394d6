"""Search spaces: the interface and registry (``get_space``); importing registers the built-in spaces."""

from .base import SearchSpace, count_flops, count_params, get_space, register_space, space_names  # noqa: F401
from . import realtime  # noqa: F401,E402
from . import tiny  # noqa: F401,E402
from . import transnas, nbmr  # noqa: F401,E402
