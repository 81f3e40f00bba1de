"""`codo-train`: CoDo pretraining of a detector-aligned ResNet-FPN."""

from pathlib import Path
from typing import Annotated

import typer

from codo_train.config import ARCHS, OPTIMIZERS, TrainConfig

from .common import exit_codes, new_app, progress, setup_logging, stderr

PROG = "codo-train"
app = new_app("Pretrain a ResNet-FPN + 4conv1fc box head with CoDo's object-level contrastive loss.")


@app.callback()
def _root() -> None:
    """Pretrain a ResNet-FPN + 4conv1fc box head with CoDo's object-level contrastive loss."""


@app.command()
def run(
    shards: Annotated[str, typer.Option("--shards", help="Shard glob, e.g. 'DIR/*.tar' (quote it), or a folder.")],
    out: Annotated[Path, typer.Option("--out", help="Run folder: config.json, metrics.jsonl, checkpoints/last.pt.")],
    steps: Annotated[int, typer.Option("--steps", help="Optimisation steps.")] = 1000,
    arch: Annotated[str, typer.Option("--arch", help=f"Backbone: {', '.join(ARCHS)}.")] = "resnet50",
    device: Annotated[str, typer.Option("--device", help="cpu or cuda[:N].")] = "cpu",
    batch_size: Annotated[int, typer.Option("--batch-size", help="Samples per step.")] = 32,
    optimizer: Annotated[str, typer.Option("--optimizer", help=f"One of {', '.join(OPTIMIZERS)}.")] = "sgd",
    lr: Annotated[float, typer.Option("--lr", help="Base learning rate for batch 256 (scaled by batch/256).")] = 0.3,
    workers: Annotated[int, typer.Option("--workers", help="DataLoader worker processes.")] = 0,
    seed: Annotated[int, typer.Option("--seed", help="Seed for initialisation and shard order.")] = 0,
    save_every: Annotated[int, typer.Option("--save-every", help="Write checkpoints/last.pt every K steps.")] = 100,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Start afresh instead of resuming the run in --out.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log more.")] = False,
) -> None:
    """Train on synthesised shards; writes the resolved config, per-step metrics and checkpoints.

    Run the same command again to resume from the last checkpoint.
    """
    setup_logging(verbose)
    with exit_codes(PROG):
        cfg = TrainConfig(
            shards=shards, out=str(out), steps=steps, arch=arch, device=device, batch_size=batch_size,
            optimizer=optimizer, lr=lr, workers=workers, seed=seed, save_every=save_every,
            overwrite=overwrite,
        )
        from codo_train.trainer import train  # torch loads here, not for --help

        with progress("train") as (start, advance):
            result = train(cfg, on_step=lambda m: advance(), on_start=start)
        resumed = f" (resumed at step {result.resumed_from})" if result.resumed_from else ""
        stderr.print(f"trained {result.steps} steps{resumed}, final loss {result.final_loss:.4f}; run in {result.out}")


@app.command()
def export(
    run: Annotated[Path, typer.Argument(help="A run folder (uses checkpoints/last.pt) or a checkpoint file.")],
    out: Annotated[Path, typer.Option("--out", help="File to write.")],
    format_: Annotated[str, typer.Option("--format", help="torchvision, detectron2 or mmdet.")] = "torchvision",
    part: Annotated[str, typer.Option("--part", help="backbone, fpn (backbone + FPN) or head (all three).")] = "head",
) -> None:
    """Export the online encoder for a detector: ResNet body, FPN and 4conv1fc box head."""
    with exit_codes(PROG):
        from codo_train.export.write import export as export_weights  # torch loads here

        stderr.print(str(export_weights(run, format_, part, out)))


def main() -> None:
    app(prog_name=PROG)


if __name__ == "__main__":  # python -m codo_cli.aug, or from a checkout: python -m cli.aug
    main()
