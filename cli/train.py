"""`codo-train`: CoDo pretraining of a detector-aligned ResNet-FPN."""

import contextlib
import dataclasses
import json
import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from codo_aug.config import SynthConfig
from codo_aug.errors import InputError
from codo_train.config import AMP, ARCHS, OPTIMIZERS, TrainConfig

from .common import exit_codes, new_app, progress, setup_logging, stderr
from .config_files import read_settings

PROG = "codo-train"
app = new_app("Pretrain a ResNet-FPN + 4conv1fc box head with CoDo's object-level contrastive loss.")


@app.callback()
def _root() -> None:
    """Pretrain a ResNet-FPN + 4conv1fc box head with CoDo's object-level contrastive loss."""


@app.command()
def run(
    shards: Annotated[Optional[str], typer.Option("--shards", help="Shard glob, e.g. 'DIR/*.tar' (quote it), or a folder.")] = None,
    instances: Annotated[Optional[str], typer.Option("--instances", help="Online synthesis instead of shards: instance source KIND[:PATH].")] = None,
    backgrounds: Annotated[Optional[str], typer.Option("--backgrounds", help="Online synthesis: background source KIND[:PATH].")] = None,
    out: Annotated[Optional[Path], typer.Option("--out", help="Run folder: config.json, metrics.jsonl, checkpoints/last.pt.")] = None,
    steps: Annotated[Optional[int], typer.Option("--steps", help="Optimisation steps. [default: 1000]")] = None,
    arch: Annotated[Optional[str], typer.Option("--arch", help=f"Backbone: {', '.join(ARCHS)}. [default: resnet50]")] = None,
    device: Annotated[Optional[str], typer.Option("--device", help="cpu or cuda[:N]. [default: cpu]")] = None,
    batch_size: Annotated[Optional[int], typer.Option("--batch-size", help="Samples per micro-batch. [default: 32]")] = None,
    accumulate: Annotated[Optional[int], typer.Option("--accumulate", help="Micro-batches per step. [default: 1]")] = None,
    optimizer: Annotated[Optional[str], typer.Option("--optimizer", help=f"One of {', '.join(OPTIMIZERS)}. [default: sgd]")] = None,
    lr: Annotated[Optional[float], typer.Option("--lr", help="Base rate for a global batch of 256. [default: 0.3]")] = None,
    objective: Annotated[Optional[str], typer.Option("--objective", help="codo (object-level, RoIs) or image (image-level BYOL baseline: same views, no boxes). [default: codo]")] = None,
    amp: Annotated[Optional[str], typer.Option("--amp", help=f"Mixed precision: {', '.join(AMP)}. [default: none]")] = None,
    channels_last: Annotated[Optional[bool], typer.Option("--channels-last/--no-channels-last", help="NHWC memory layout.")] = None,
    workers: Annotated[Optional[int], typer.Option("--workers", help="DataLoader worker processes. [default: 0]")] = None,
    seed: Annotated[Optional[int], typer.Option("--seed", help="Seed for initialisation and data order. [default: 0]")] = None,
    save_every: Annotated[Optional[int], typer.Option("--save-every", help="Write checkpoints/last.pt every K steps. [default: 100]")] = None,
    config: Annotated[Optional[Path], typer.Option("--config", help="TOML file of run settings (top level or \\[train]).")] = None,
    set_: Annotated[Optional[list[str]], typer.Option("--set", help="Override one setting: key=value (TOML value). Repeatable.")] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Start afresh instead of resuming the run in --out.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log more.")] = False,
) -> None:
    """Train on synthesised shards; writes the resolved config, per-step metrics and checkpoints.

    Settings come from --config (\\[train]; \\[synth] for online synthesis), then --set, then the options
    given here. Run the same command again to resume from the last checkpoint.
    """
    setup_logging(verbose)
    with exit_codes(PROG):
        given = dict(shards=shards, instances=instances, backgrounds=backgrounds, out=str(out) if out else None, steps=steps, arch=arch, device=device,
                     batch_size=batch_size, accumulate=accumulate, optimizer=optimizer, lr=lr, objective=objective, amp=amp,
                     channels_last=channels_last, workers=workers, seed=seed, save_every=save_every)
        values = read_settings(config, set_, "train")
        values.update({k: v for k, v in given.items() if v is not None}, overwrite=overwrite)
        cfg = TrainConfig.from_dict(values)
        from codo_train.trainer import train  # torch loads here, not for --help

        main_rank = os.environ.get("RANK", "0") == "0"  # under torchrun, rank 0 alone reports
        with progress("train", disable=not main_rank) as (start, advance):
            result = train(cfg, on_step=lambda m: advance(), on_start=start,
                           synth=SynthConfig.from_dict(read_settings(config, None, "synth")))
        resumed = f" (resumed at step {result.resumed_from})" if result.resumed_from else ""
        if main_rank:
            stderr.print(f"trained {result.steps} steps{resumed}, final loss {result.final_loss:.4f}; "
                         f"run in {result.out}")


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


@app.command()
def probe(
    run: Annotated[Path, typer.Argument(help="A run folder (uses checkpoints/last.pt) or a checkpoint file.")],
    instances: Annotated[str, typer.Option("--instances", help="Instances to probe, KIND[:PATH] (held out from training).")],
    backgrounds: Annotated[str, typer.Option("--backgrounds", help="Backgrounds not used for training, KIND[:PATH].")],
    num_instances: Annotated[int, typer.Option("--num-instances", help="Instances, each pasted on two backgrounds.")] = 100,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the pastes and of the random baseline.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Background invariance: retrieve each instance across two backgrounds (top-1/top-5, box-head features),
    for the checkpoint and a randomly initialised model of the same architecture."""
    with exit_codes(PROG):
        if num_instances < 2:
            raise InputError(f"invalid num_instances={num_instances}: must be >= 2")
        from codo_train.evaluate.probe import run_probe  # torch loads here

        path = run / "checkpoints" / "last.pt" if run.is_dir() else run
        result = run_probe(path, instances, backgrounds, num_instances, seed)
        if as_json:
            print(json.dumps(dataclasses.asdict(result), indent=2))
            return
        print(f"instances: {result.instances} (each on two backgrounds)")
        print(f"{'model':<14}{'top-1':>8}{'top-5':>8}")
        for name, acc in (("checkpoint", result.checkpoint), ("random init", result.random_init)):
            print(f"{name:<14}{acc['top1']:>8.3f}{acc['top5']:>8.3f}")


@app.command()
def finetune(
    weights: Annotated[str, typer.Option("--weights", help="A `codo-train export --format torchvision` file, or none.")],
    coco: Annotated[str, typer.Option("--coco", help="Training set: INSTANCES_JSON[:IMAGES_DIR].")],
    val: Annotated[str, typer.Option("--val", help="Validation set: INSTANCES_JSON[:IMAGES_DIR].")],
    iters: Annotated[int, typer.Option("--iters", help="Training iterations.")] = 1000,
    arch: Annotated[str, typer.Option("--arch", help=f"Backbone of the weights: {', '.join(ARCHS)}.")] = "resnet50",
    device: Annotated[str, typer.Option("--device", help="cpu or cuda.")] = "cpu",
    batch_size: Annotated[int, typer.Option("--batch-size", help="Images per iteration.")] = 2,
    min_size: Annotated[int, typer.Option("--min-size", help="Shorter image side the detector resizes to.")] = 512,
    lr: Annotated[float, typer.Option("--lr", help="SGD rate for 16 images, scaled to --batch-size (detectron2's 0.02).")] = 0.02,
    rois_per_image: Annotated[int, typer.Option("--rois-per-image", help="RoIs that train the box head per image.")] = 512,
    proposals: Annotated[int, typer.Option("--proposals", help="RPN proposals kept (0: torchvision's 2000 train / 1000 test).")] = 0,
    freeze_bn: Annotated[bool, typer.Option("--freeze-bn", help="Keep the ResNet's BatchNorm at the loaded statistics (torchvision's FrozenBatchNorm2d recipe).")] = False,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the head initialisation and data order.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the COCOeval stats as JSON at the end.")] = False,
) -> None:
    """Fine-tune torchvision's Mask R-CNN v2 (Faster R-CNN v2 without masks) from exported weights, then
    evaluate with pycocotools COCOeval (the standard 12-number summary for bbox and segm)."""
    with exit_codes(PROG):
        from codo_train.evaluate.finetune import CocoSplit, FinetuneConfig
        from codo_train.evaluate.finetune import finetune as run_finetune  # torch loads here

        cfg = FinetuneConfig(iters=iters, arch=arch, device=device, batch_size=batch_size, lr=lr, seed=seed,
                             min_size=min_size, rois_per_image=rois_per_image, proposals=proposals, freeze_bn=freeze_bn)
        train_split, val_split = CocoSplit.parse(coco, "--coco"), CocoSplit.parse(val, "--val")
        # with --json, stdout holds the JSON alone: COCOeval's printed summaries go to stderr
        summaries = contextlib.redirect_stdout(sys.stderr) if as_json else contextlib.nullcontext()
        with progress("finetune") as (start, advance), summaries:
            stats = run_finetune(None if weights == "none" else Path(weights), train_split, val_split, cfg,
                                 on_iter=lambda i, loss: advance(), on_start=start)
        if as_json:
            print(json.dumps(stats, indent=2))


def main() -> None:
    app(prog_name=PROG)


if __name__ == "__main__":  # python -m codo_cli.train, or from a checkout: python -m cli.train
    main()
