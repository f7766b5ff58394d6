"""Which TransNAS-Bench-101 micro cells compute the same function: invalid cells and isomorphic duplicates.

A cell (``64-41414-a_bc_def``; edges 0->1 ``a``, 0->2 ``b``, 1->2 ``c``, 0->3 ``d``, 1->3 ``e``, 2->3 ``f``) is
*invalid* when no path of non-zero ops joins its input (node 0) to its output (node 3): the network then
outputs a constant. An edge is *dead* when its source is unreachable from the input or its target never
reaches the output; dead edges change nothing the cell computes. When the edge 1->2 is zero (after removing
dead edges), nodes 1 and 2 play the same role and swapping them, ``(a, e) <-> (b, f)``, gives the same cell.
"""

from __future__ import annotations

from typing import Optional, Tuple

_EDGES = ((0, 1), (0, 2), (1, 2), (0, 3), (1, 3), (2, 3))  # the order of the codes a..f


def micro_codes(arch: str) -> Tuple[str, ...]:
    """The six op codes ``a..f`` of ``64-41414-a_bc_def``."""
    return tuple(arch.rsplit("-", 1)[1].replace("_", ""))


def micro_cell_class(arch: str) -> Optional[str]:
    """The canonical code string shared by every cell that computes the same function as ``arch``'s cell
    (dead edges zeroed, nodes 1 and 2 ordered when interchangeable), or None for an invalid cell."""
    ops = dict(zip(_EDGES, micro_codes(arch)))
    live_in = {0}
    for j in (1, 2, 3):
        if any(i in live_in and ops[(i, j)] != "0" for i in range(j)):
            live_in.add(j)
    if 3 not in live_in:
        return None
    to_out = {3}
    for i in (2, 1, 0):
        if any(j in to_out and ops[(i, j)] != "0" for j in range(i + 1, 4)):
            to_out.add(i)
    code = [ops[(i, j)] if i in live_in and j in to_out else "0" for i, j in _EDGES]
    a, b, c, d, e, f = code
    if c == "0":
        a, b, e, f = min((a, b, e, f), (b, a, f, e))
    return f"{a}_{b}{c}_{d}{e}{f}"
