"""LUT keys of the realtime space's parts (stem, layer, head) and every part an arch of the space can contain.

The parts and their configurations come from the space itself (:meth:`RealtimeSpace.walk`, ``walk_start``,
``walk_step``, ``walk_end``): this module only names them.
"""

from __future__ import annotations

from typing import Dict, List, Sequence

from ..errors import SaswotError

SPACE_KWARGS = ("base_width", "input_size", "num_classes", "num_layers", "head_width", "residual")


def _hw(size: Sequence[int]) -> str:
    return f"{int(size[0])}x{int(size[1])}"


def stem_key(base_width: int, resolution: Sequence[int]) -> str:
    """Key of the stem for ``base_width`` on an input of ``resolution`` (H, W)."""
    return f"stem:{int(base_width)}:{_hw(resolution)}"


def layer_key(op: str, cin: int, cout: int, stride: int, in_size: Sequence[int]) -> str:
    """Key of one searchable layer (operator, channels in/out, stride, input spatial size)."""
    return f"layer:{op}:{int(cin)}:{int(cout)}:{int(stride)}:{_hw(in_size)}"


def head_key(c_hi: int, c_lo: int, level_hi: int, level_lo: int) -> str:
    """Key of the head fusing a ``c_hi``-channel branch at ``level_hi`` with a ``c_lo``-channel one at ``level_lo``."""
    return f"head:{int(c_hi)}:{int(c_lo)}:L{int(level_hi)}:L{int(level_lo)}"


def space_kwargs(space) -> Dict[str, object]:
    """The constructor settings of a realtime ``space`` as a JSON-friendly dict."""
    require_realtime(space)
    return {"base_width": int(space.base_width), "input_size": [int(v) for v in space.input_size],
            "num_classes": int(space.num_classes), "num_layers": int(space.num_layers),
            "head_width": int(space.head_width), "residual": bool(space.residual)}


def require_realtime(space) -> None:
    """Raise SaswotError unless ``space`` is the realtime space."""
    if getattr(space, "name", None) != "realtime":
        raise SaswotError(f"latency tables exist only for the 'realtime' space, not {getattr(space, 'name', space)!r}")


def part_key(space, part) -> str:
    """LUT key of one part of ``space`` (a ``StemPart``, ``LayerPart`` or ``HeadPart`` of ``RealtimeSpace.walk``)."""
    if part.kind == "stem":
        return stem_key(part.mid, space.input_size)
    if part.kind == "layer":
        return layer_key(part.op, part.cin, part.cout, part.stride, space.level_size(part.level_in))
    return head_key(part.c_hi, part.c_lo, part.level_hi, part.level_lo)


def arch_keys(space, arch: str) -> List[str]:
    """The LUT keys whose latencies add up to ``arch``'s (stem, one per layer, head), in network order."""
    require_realtime(space)
    return [part_key(space, part) for part in space.walk(arch)]


def enumerate_configs(space) -> Dict[str, object]:
    """Every distinct part (stem, layer, head) reachable in ``space``: key -> part (see ``RealtimeSpace.walk``).

    Reachability is exact: layer ``i`` sees the channel counts that layers before it can produce, and
    a path keeps 1-2 descents (the last layer must descend if none did).
    """
    from ..spaces.realtime import MAX_DOWNS, MIN_DOWNS, OPS, WIDTHS, RTLayer
    require_realtime(space)
    stem, start = space.walk_start()
    out: Dict[str, object] = {part_key(space, stem): stem}
    states = {start}
    for i in range(space.num_layers):
        remaining = space.num_layers - 1 - i
        new_states = set()
        for state in sorted(states):
            for down in (False, True):
                level = state.level + int(down)
                if level > MAX_DOWNS or level + min(remaining, MAX_DOWNS) < MIN_DOWNS:
                    continue
                for width in WIDTHS:
                    for op in OPS:
                        part, after = space.walk_step(state, RTLayer(op, width, down))
                        out.setdefault(part_key(space, part), part)
                    new_states.add(after)
        states = new_states
    for state in sorted(states):
        if MIN_DOWNS <= state.level <= MAX_DOWNS:
            head = space.walk_end(state)
            out.setdefault(part_key(space, head), head)
    return out
