"""``saswot-gp train``: train one architecture, report its quality and cost (:func:`saswot_gp.training.train_arch`)."""

from __future__ import annotations

from typing import Optional

import click

from ..errors import SaswotError
from ..progress import Progress
from . import device_option, resume_hint, runtime_option


@click.command("train")
@click.argument("arch")
@click.option("--space", default="realtime", show_default=True)
@click.option("--input-size", default=None, type=click.IntRange(32), help="square input size (space default if omitted)")
@click.option("--base-width", default=None, type=click.IntRange(1), help="realtime space base width")
@click.option("--data", type=click.Choice(["digits", "cityscapes", "camvid"]), default="digits", show_default=True)
@click.option("--root", default=None, type=click.Path(exists=True, file_okay=False), help="data set folder (cityscapes, camvid)")
@click.option("--steps", default=1000, show_default=True, type=click.IntRange(1))
@click.option("--epochs", default=None, type=float, help="train for this many epochs instead of --steps")
@click.option("--batch-size", default=16, show_default=True, type=click.IntRange(1))
@click.option("--optimizer", type=click.Choice(["adamw", "sgd"]), default="adamw", show_default=True)
@click.option("--lr", default=None, type=float)
@click.option("--seed", default=0, show_default=True, type=int)
@click.option("--threads", default=1, show_default=True, type=click.IntRange(1), help="torch threads")
@click.option("--checkpoint", default=None, type=click.Path(dir_okay=False), help="checkpoint file (written atomically)")
@click.option("--resume", is_flag=True, help="continue from --checkpoint")
@device_option
@runtime_option("eager", "what the reported latency is measured on: eager (PyTorch) or onnxruntime (the trained "
                "network exported to ONNX, 1 intra-op thread)")
def train(arch: str, space: str, input_size: Optional[int], base_width: Optional[int], data: str, root: Optional[str],
          steps: int, epochs: Optional[float], batch_size: int, optimizer: str, lr: Optional[float], seed: int,
          threads: int, checkpoint: Optional[str], resume: bool, device: str, runtime: str) -> None:
    """Train ARCH and report mIoU, pixel accuracy, params, FLOPs and latency (on --runtime)."""
    import json
    from ..execution import check_device
    from ..latency.runtime import model_latency
    from ..training import train_arch
    check_device(device)
    latency_fn = model_latency(runtime, threads=1, device=device)
    if data != "digits" and root is None:
        raise SaswotError(f"--data {data} needs --root pointing at your copy of the data set")
    if resume and not checkpoint:
        raise SaswotError("--resume needs --checkpoint FILE")
    skw = {k: v for k, v in (("input_size", input_size), ("base_width", base_width)) if v is not None}
    resume_hint(f"add --resume to the same command to continue from {checkpoint} (saved every tenth of the steps)"
                if checkpoint else "nothing was saved: give --checkpoint FILE to make a training resumable")

    bar = Progress("  training", unit="step")

    def progress(info: dict) -> None:
        if info.get("step") and info.get("steps"):
            bar(info["step"], info["steps"], loss=f"{info.get('loss', float('nan')):.4f}")

    row = train_arch(arch, space=space, data=data, space_kwargs=skw, data_root=root, steps=None if epochs else steps,
                     epochs=epochs, batch_size=batch_size, optimizer=optimizer, lr=lr, seed=seed, threads=threads,
                     checkpoint=checkpoint, resume=resume, progress=progress, device=device, latency_fn=latency_fn)
    row["latency_runtime"] = runtime
    click.echo(json.dumps(row, indent=2))
    click.echo(f"latency {row['latency_ms']:.2f} ms ({row['fps']:.0f} FPS) at batch 1, {row['input_size']}, 1 thread, "
               f"{device}, {runtime}", err=True)
