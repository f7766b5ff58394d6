"""The four value types of a proxy tree (DEAP typed GP needs classes; these are markers only).

* ``WTensor``: weight-shaped tensor, packed flat with a layer id per element (W and its gradient G).
* ``ATensor``: activation-shaped tensor, packed as rows (positions) x batch, a layer id per row
  (the layer output A and the gradient at that output AG).
* ``LScalar``: one value per layer.
* ``AScore``: one value per architecture (the proxy's output type).
"""


class WTensor:
    """Weight-shaped tensor type (W, G)."""


class ATensor:
    """Activation-shaped tensor type (A, AG), batch axis kept."""


class LScalar:
    """Per-layer scalar type."""


class AScore:
    """Per-architecture score type (the root of every proxy)."""


TYPES = {"W": WTensor, "A": ATensor, "L": LScalar, "S": AScore}
TYPE_CODE = {v: k for k, v in TYPES.items()}
TYPE_DOC = {"W": "weight-shaped tensor", "A": "activation-shaped tensor", "L": "layer scalar", "S": "architecture score"}
