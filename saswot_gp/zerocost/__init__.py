"""Hand-designed zero-cost proxies by their usual names (a registry), and tables of them on benchmarks."""

from .measures import (compute_measures, get_measure, measure_names, register_measure,  # noqa: F401
                       WEIGHT_LAYERS)
