"""The value types of a proxy tree (DEAP typed GP needs classes; these are markers only).

* ``WTensor``: weight-shaped tensor, packed flat with a layer id per element (W and its gradient G).
* ``ATensor``: activation-shaped tensor, packed as rows (positions) x batch, a layer id per row
  (the layer output A and the gradient at that output AG).
* ``LScalar``: one value per layer.
* ``AScore``: one value per architecture (the proxy's output type).
* ``RScore``: one value per architecture relative to the set being ranked: the log-rank aggregate of score
  subtrees (``rank1`` .. ``rank4``); only ever the root of a proxy evolved with ``--root rank``.
"""


class WTensor:
    """Weight-shaped tensor type (W, G)."""


class ATensor:
    """Activation-shaped tensor type (A, AG), batch axis kept."""


class LScalar:
    """Per-layer scalar type."""


class AScore:
    """Per-architecture score type (the root of every proxy)."""


class RScore:
    """Rank-aggregate score type (the root of a rank-root proxy; nothing takes it as input)."""


TYPES = {"W": WTensor, "A": ATensor, "L": LScalar, "S": AScore, "R": RScore}
TYPE_CODE = {v: k for k, v in TYPES.items()}
TYPE_DOC = {"W": "weight-shaped tensor", "A": "activation-shaped tensor", "L": "layer scalar", "S": "architecture score",
            "R": "rank-aggregate score"}
ROOT_TYPES = ("S", "R")  # what a proxy's root may produce


# Registered zero-cost measures of saswot_gp.zerocost that are terminals of the proxy language (``zc_snip`` ...), in
# the registry's order (``params`` and ``flops`` are terminals of their own). A measure terminal is an ``AScore`` read
# from a value computed on the live model beside the statistics (saswot_gp.zerocost.terminals fills it).
MEASURE_TERMINALS = ("snip", "grad_norm", "plain", "fisher", "grasp", "synflow", "jacov", "nwot", "swap", "zico", "zen",
                     "l2_norm")
MEASURE_PREFIX = "zc_"
MEASURE_TOKENS = tuple(MEASURE_PREFIX + m for m in MEASURE_TERMINALS)  # their tokens: zc_snip ...
MEASURES_SUFFIX = "+measures"  # a terminal set named <set>+measures holds the measure terminals


def uses_measures(terminals: str) -> bool:
    """Whether a terminal set holds the measure terminals (``<set>+measures``)."""
    return terminals.endswith(MEASURES_SUFFIX)
