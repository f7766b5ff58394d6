"""``saswot-gp export-net``: one network as an ONNX file, checked in ONNX Runtime (:func:`.export.export_onnx`)."""

from __future__ import annotations

from typing import Optional

import click

from ..spaces.base import parse_resolution


@click.command("export-net")
@click.argument("arch")
@click.option("--space", "space_name", default="realtime", show_default=True, help="search space of ARCH")
@click.option("--resolution", default=None, help="input HxW of the exported graph (default: the space's input size)")
@click.option("--base-width", default=None, type=click.IntRange(1),
              help="realtime space base width (space default if omitted)")
@click.option("--num-layers", default=None, type=click.IntRange(1),
              help="realtime space layer count (space default if omitted)")
@click.option("--onnx", "onnx_path", required=True, type=click.Path(dir_okay=False), help="ONNX file to write")
@click.option("--checkpoint", default=None, type=click.Path(dir_okay=False),
              help="weights from a `saswot-gp train --checkpoint` file (default: untrained, weights from --seed)")
@click.option("--seed", default=0, show_default=True, type=int, help="seeds the untrained weights and the check batch")
@click.option("--threads", default=1, show_default=True, type=click.IntRange(1),
              help="ONNX Runtime intra-op threads (and torch threads) of the check")
@click.option("--opset", default=18, show_default=True, type=click.IntRange(18), help="ONNX opset")
@click.option("--tolerance", default=1e-4, show_default=True, type=click.FloatRange(min=0, min_open=True),
              help="largest |ONNX Runtime - PyTorch| allowed, relative to max(1, max |output|)")
@click.option("--json", "as_json", is_flag=True, help="print the report as JSON")
def export_net(arch: str, space_name: str, resolution: Optional[str], base_width: Optional[int],
               num_layers: Optional[int], onnx_path: str, checkpoint: Optional[str], seed: int, threads: int,
               opset: int, tolerance: float, as_json: bool) -> None:
    """Export ARCH at batch 1 to ONNX and check it: ONNX Runtime (CPUExecutionProvider) against PyTorch on a
    seeded batch; the max abs difference is printed, and above --tolerance the command fails."""
    import json
    import torch
    from ..export import export_onnx
    skw = {k: v for k, v in (("base_width", base_width), ("num_layers", num_layers)) if v is not None}
    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        rep = export_onnx(space_name, arch, onnx_path, resolution=parse_resolution(resolution), checkpoint=checkpoint,
                          seed=seed, threads=threads, opset=opset, tolerance=tolerance, space_kwargs=skw)
    finally:
        torch.set_num_threads(old)
    if as_json:
        click.echo(json.dumps(rep, indent=2))
        return
    shape = "x".join(str(v) for v in rep["output_shape"])
    weights = f"weights of {checkpoint}" if checkpoint else f"untrained, seed {seed}"
    click.echo(f"wrote {rep['path']} ({rep['arch']}, {weights}; "
               f"1x3x{rep['resolution'][0]}x{rep['resolution'][1]} -> {shape}, opset {rep['opset']}, "
               f"{rep['bytes']} bytes)")
    click.echo(f"ONNX Runtime {rep['onnxruntime']} ({rep['provider']}, {threads} thread(s)) vs PyTorch "
               f"{rep['torch']} on a seeded batch: max abs difference {rep['max_abs_diff']:.3g} "
               f"(limit {rep['limit']:.3g})")
