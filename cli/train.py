"""`codo-train`: CoDo pretraining of a detector-aligned ResNet-FPN."""

import contextlib
import dataclasses
import json
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from codo_aug.errors import InputError
from codo_aug.plural import plural
from codo_train.config import AMP, ARCHS, OPTIMIZERS, TrainConfig

from .common import VersionOpt, exit_codes, given, new_app, progress, run_app, setup_logging, stderr
from .config_files import SECTIONS, given_settings, read_settings
from .inert import check_run

if TYPE_CHECKING:  # torch loads with the trainer, not for --help
    from codo_train.trainer import TrainResult

PROG = "codo-train"
app = new_app("Pretrain a ResNet-FPN + 4conv1fc box head with CoDo's object-level contrastive loss.")


@app.callback()
def _root(version: VersionOpt = False) -> None:
    """Pretrain a ResNet-FPN + 4conv1fc box head with CoDo's object-level contrastive loss."""


#: TrainConfig's field defaults: what `run --help` shows, and what an option not given leaves alone.
DEFAULT = {f.name: f.default for f in dataclasses.fields(TrainConfig)}


def _opt(flag: str, text: str, **more) -> typer.Option:
    """A plain option: its flag and help (keeps `run`'s many options one line each)."""
    return typer.Option(flag, help=text, **more)


@app.command()
def run(
    ctx: typer.Context,
    shards: Annotated[str | None, _opt("--shards", "Shards: a folder, a glob 'DIR/*.tar' or braces "
                                                   "'DIR/codo-{000000..000009}.tar' (quote them), or "
                                                   "either as a URL (s3://bucket/prefix, https://).")] = None,
    instances: Annotated[str | None, _opt("--instances", "Online synthesis instead of shards: instance "
                                                         "source KIND[:PATH].")] = None,
    backgrounds: Annotated[str | None, _opt("--backgrounds", "Online synthesis: background source "
                                                             "KIND[:PATH].")] = None,
    out: Annotated[Path | None, _opt("--out", "Run folder: config.json, metrics.jsonl, "
                                              "checkpoints/last.pt.")] = None,
    steps: Annotated[int, _opt("--steps", "Optimisation steps.")] = DEFAULT["steps"],
    arch: Annotated[str, _opt("--arch", f"Backbone: {', '.join(ARCHS)}.")] = DEFAULT["arch"],
    device: Annotated[str, _opt("--device", "cpu or cuda[:N].")] = DEFAULT["device"],
    batch_size: Annotated[int, _opt("--batch-size", "Samples per micro-batch.")] = DEFAULT["batch_size"],
    accumulate: Annotated[int, _opt("--accumulate", "Micro-batches per step.")] = DEFAULT["accumulate"],
    optimizer: Annotated[str, _opt("--optimizer", f"One of {', '.join(OPTIMIZERS)}.")] = DEFAULT["optimizer"],
    lr: Annotated[float, _opt("--lr", "Base rate for a global batch of 256, scaled to the batch in use by "
                                      "lr_scaling (auto: linear from 256 up, square root below).")
                  ] = DEFAULT["lr"],
    objective: Annotated[str, _opt("--objective", "codo (object-level, RoIs), image (image-level BYOL "
                                                  "baseline: same views, no boxes) or supervised (positive "
                                                  "control: each RoI's instance class, cross-entropy).")
                         ] = DEFAULT["objective"],
    amp: Annotated[str, _opt("--amp", f"Mixed precision: {', '.join(AMP)}.")] = DEFAULT["amp"],
    channels_last: Annotated[bool, _opt("--channels-last/--no-channels-last", "NHWC memory layout.")
                             ] = DEFAULT["channels_last"],
    workers: Annotated[int, _opt("--workers", "DataLoader worker processes (kept across epochs).")
                       ] = DEFAULT["workers"],
    prefetch: Annotated[int, _opt("--prefetch", "Batches each loader worker reads ahead.")
                        ] = DEFAULT["prefetch"],
    compile_: Annotated[bool, _opt("--compile/--no-compile", "torch.compile the backbone and FPN (the first "
                                                             "steps take longer while it compiles).")
                        ] = DEFAULT["compile"],
    decode: Annotated[str, _opt("--decode", "Where shard views are decoded and photometrics applied (shards: "
                                            "--photometric; online: \\[synth] photometric): cpu (loader "
                                            "workers) or device (the training device).")
                      ] = DEFAULT["decode"],
    photometric: Annotated[str, _opt("--photometric", "Shards: fresh colour/blur/solarize draws per epoch "
                                                      "(soco, mocov2), or none (as stored).")
                           ] = DEFAULT["photometric"],
    seed: Annotated[int, _opt("--seed", "Seed for initialisation and data order.")] = DEFAULT["seed"],
    save_every: Annotated[int, _opt("--save-every", "Write checkpoints/last.pt every K steps.")
                          ] = DEFAULT["save_every"],
    tensorboard: Annotated[bool, _opt("--tensorboard/--no-tensorboard", "Also write metrics as TensorBoard "
                                                                        "event files to OUT/tensorboard.")
                           ] = DEFAULT["tensorboard"],
    verify_shards: Annotated[bool, _opt("--verify-shards/--no-verify-shards", "Check shards' sha256 "
                                                                              "against _info.json as read.")
                             ] = DEFAULT["verify_shards"],
    config: Annotated[Path | None, _opt("--config", "TOML file of run settings (top level or \\[train]).")
                      ] = None,
    set_: Annotated[list[str] | None, _opt("--set", "Override one setting: key=value (TOML value); "
                                                    "synth.key=value for online synthesis. Repeatable.")
                    ] = None,
    overwrite: Annotated[bool, _opt("--overwrite", "Start afresh instead of resuming the run in --out.")
                         ] = DEFAULT["overwrite"],
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log more.")] = False,
) -> None:
    """Train on synthesised shards; writes the resolved config, per-step metrics and checkpoints.

    Settings come from --config (\\[train]; \\[synth] for online synthesis), then --set, then the options
    given here. Run the same command again to resume from the last checkpoint.
    """
    setup_logging(verbose)
    with exit_codes(PROG, resume="from the last checkpoint"):
        values = read_settings(config, set_, "train", reads=SECTIONS)
        values.update(given(ctx, shards=shards, instances=instances, backgrounds=backgrounds, out=str(out),
                            steps=steps, arch=arch, device=device, batch_size=batch_size,
                            accumulate=accumulate, optimizer=optimizer, lr=lr, objective=objective, amp=amp,
                            channels_last=channels_last, workers=workers, prefetch=prefetch,
                            compile_=compile_, decode=decode, photometric=photometric, seed=seed,
                            save_every=save_every, tensorboard=tensorboard, verify_shards=verify_shards,
                            overwrite=overwrite))
        cfg = TrainConfig.from_dict(values)
        synth = check_run(cfg, given_settings(config, set_, "train", reads=SECTIONS, merged=values),
                          given_settings(config, set_, "synth", top_level=False, main="train",
                                         reads=SECTIONS))
        from codo_train.trainer import train  # torch loads here, not for --help

        main_rank = os.environ.get("RANK", "0") == "0"  # under torchrun, rank 0 alone reports
        with progress("train", disable=not main_rank) as (start, advance):
            result = train(cfg, on_step=lambda m: advance(f"loss {m['loss']:.3f}" if "loss" in m else None),
                           on_start=start, synth=synth)
        if main_rank:
            stderr.print(_summary(result))


def _summary(result: "TrainResult") -> str:
    """The last line of `codo-train run`: what this invocation trained, or that the run had finished."""
    steps = plural(result.steps, "step")
    if result.resumed_from >= result.steps:
        return (f"nothing left to train: the run in {result.out} has done its {steps} "
                f"(final loss {result.final_loss:.4f})")
    resumed = f" (resumed at step {result.resumed_from})" if result.resumed_from else ""
    return f"trained {steps}{resumed}, final loss {result.final_loss:.4f}; run in {result.out}"


RunArg = Annotated[Path, typer.Argument(help="A run folder (uses checkpoints/last.pt) or a checkpoint file.")]
COCO_HELP = "ROOT (the stock COCO layout) | JSON (images found as for `coco:` sources) | JSON:IMAGES."


def _iterations(text: str) -> tuple[int, ...]:
    """`--eval-at` 'I1,I2,...' as iterations; InputError when a part is not a whole number."""
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise InputError(f"invalid eval_at={text!r}: must be comma-separated iterations, e.g. 500,1000") \
            from None


@app.command()
def export(
    run: RunArg,
    out: Annotated[str, _opt("--out", "File to write (not a folder); a detectron2 export ends in .pkl.",
                             metavar="FILE")],
    format_: Annotated[str, _opt("--format", "torchvision, detectron2 or mmdet.")] = "torchvision",
    part: Annotated[str, _opt("--part", "backbone, fpn (backbone + FPN) or head (all three).")] = "head",
    overwrite: Annotated[bool, _opt("--overwrite", "Replace the file --out names if it exists.")] = False,
) -> None:
    """Export the online encoder for a detector: ResNet body, FPN and 4conv1fc box head."""
    with exit_codes(PROG):
        from codo_train.export.write import export as export_weights

        stderr.print(str(export_weights(run, format_, part, out, overwrite)))


@app.command()
def probe(
    run: RunArg,
    instances: Annotated[str, _opt("--instances", "Instances to probe, KIND[:PATH] (not trained on).")],
    backgrounds: Annotated[str, _opt("--backgrounds", "Backgrounds not trained on, KIND[:PATH].")],
    num_instances: Annotated[int, _opt("--num-instances", "Instances, each on two backgrounds.")] = 100,
    seed: Annotated[int, _opt("--seed", "Seed of the pastes and the random baseline.")] = 0,
    device: Annotated[str, _opt("--device", "cpu or cuda[:N].")] = "cpu",
    view_size: Annotated[int, _opt("--view-size", "Side of the two square views, px (e.g. the run's "
                                                  "largest view size).")] = 224,
    as_json: Annotated[bool, _opt("--json", "Print JSON.")] = False,
) -> None:
    """Background invariance: retrieve each instance across two backgrounds (top-1/top-5, box-head features),
    for the checkpoint and a randomly initialised model of the same architecture."""
    with exit_codes(PROG):
        if num_instances < 2:
            raise InputError(f"invalid num_instances={num_instances}: must be >= 2")
        if not 16 <= view_size <= 4096:
            raise InputError(f"invalid view_size={view_size}: must be in 16..4096")
        from codo_train.evaluate.probe import run_probe  # torch loads here

        from codo_train.checkpoint import CHECKPOINT

        path = run / CHECKPOINT if run.is_dir() else run
        result = run_probe(path, instances, backgrounds, num_instances, seed, device, view_size)
        if as_json:
            print(json.dumps(dataclasses.asdict(result), indent=2))
            return
        print(f"instances: {result.instances} (each on two backgrounds)")
        print(f"{'model':<14}{'top-1':>8}{'top-5':>8}")
        for name, acc in (("checkpoint", result.checkpoint), ("random init", result.random_init)):
            print(f"{name:<14}{acc['top1']:>8.3f}{acc['top5']:>8.3f}")


@app.command()
def finetune(
    weights: Annotated[str, _opt("--weights", "A `codo-train export --format torchvision` file, or none.")],
    coco: Annotated[str, _opt("--coco", "Training set: " + COCO_HELP)],
    val: Annotated[str, _opt("--val", "Validation set: " + COCO_HELP)],
    iters: Annotated[int, _opt("--iters", "Training iterations.")] = 1000,
    arch: Annotated[str, _opt("--arch", f"Backbone of the weights: {', '.join(ARCHS)}.")] = "resnet50",
    device: Annotated[str, _opt("--device", "cpu or cuda[:N].")] = "cpu",
    batch_size: Annotated[int, _opt("--batch-size", "Images per iteration.")] = 2,
    min_size: Annotated[int, _opt("--min-size", "Shorter image side the detector resizes to.")] = 512,
    lr: Annotated[float, _opt("--lr", "SGD rate for 16 images, scaled to --batch-size (detectron2's 0.02).")
                  ] = 0.02,
    rois_per_image: Annotated[int, _opt("--rois-per-image", "RoIs that train the box head per image.")] = 512,
    proposals: Annotated[int, _opt("--proposals", "RPN proposals kept (0: torchvision's 2000 train / 1000 "
                                                  "test).")] = 0,
    freeze_bn: Annotated[bool, _opt("--freeze-bn", "Keep the ResNet's BatchNorm at the loaded statistics "
                                                   "(torchvision's FrozenBatchNorm2d recipe).")] = False,
    freeze_at: Annotated[int, _opt("--freeze-at", "ResNet stages kept at the loaded weights: 0 none, 1 the "
                                                  "stem, 2 stem and res2 (detectron2's default), ... 5 all.")
                         ] = 0,
    schedule: Annotated[str, _opt("--schedule", "Rate after warm-up: step (x0.1 at 2/3 and 8/9 of --iters, "
                                                "detectron2's 1x) or cosine.")] = "step",
    eval_at: Annotated[str, _opt("--eval-at", "Also evaluate after these iterations: I1,I2,... (the last "
                                              "always).")] = "",
    weight_decay: Annotated[float, _opt("--weight-decay", "SGD weight decay (detectron2's 1e-4).")] = 1e-4,
    predictor_init: Annotated[str, _opt("--predictor-init", "Box predictor init: detectron2 (N(0, 0.01) "
                                                            "scores, N(0, 0.001) deltas) or torchvision.")
                              ] = "detectron2",
    box_head_bn: Annotated[bool, _opt("--box-head-bn", "BatchNorm after the box head's fc (InsLoc's "
                                                       "fine-tuning head).")] = False,
    seed: Annotated[int, _opt("--seed", "Seed of the head initialisation and data order.")] = 0,
    as_json: Annotated[bool, _opt("--json", "Print the COCOeval stats as JSON at the end: the final ones, "
                                            "and each evaluation under \"iters\".")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log more (each skipped image).")] = False,
) -> None:
    """Fine-tune torchvision's Mask R-CNN v2 (Faster R-CNN v2 without masks) from exported weights, and
    evaluate with pycocotools COCOeval (the standard 12-number summary for bbox and segm) after each
    --eval-at iteration and at the end; a table of AP by iteration closes the output.

    Images whose upright (EXIF-applied) size differs from the json's, and missing or unreadable ones,
    are skipped with a warning before training starts.
    """
    setup_logging(verbose)
    with exit_codes(PROG):
        from codo_aug.sources.coco import locate_coco
        from codo_train.evaluate.finetune_config import FinetuneConfig, locate_val, require_weights

        cfg = FinetuneConfig(iters=iters, arch=arch, device=device, batch_size=batch_size, lr=lr, seed=seed,
                             min_size=min_size, rois_per_image=rois_per_image, proposals=proposals,
                             freeze_bn=freeze_bn, schedule=schedule, eval_at=_iterations(eval_at),
                             weight_decay=weight_decay, predictor_init=predictor_init,
                             box_head_bn=box_head_bn, freeze_at=freeze_at)
        start_from = None if weights == "none" else Path(weights)
        require_weights(cfg, start_from)
        train_files, val_files = locate_coco(coco, "--coco"), locate_val(val)
        from codo_train.evaluate.finetune import finetune as run_finetune  # torch loads here, options checked

        # with --json, stdout holds the JSON alone: COCOeval's printed summaries go to stderr
        summaries = contextlib.redirect_stdout(sys.stderr) if as_json else contextlib.nullcontext()
        with progress("finetune") as (start, advance), summaries:
            result = run_finetune(start_from, train_files, val_files, cfg,
                                  on_iter=lambda i, loss: advance(f"loss {loss:.3f}"), on_start=start)
        print(json.dumps(result.to_dict(), indent=2) if as_json else result.table())


def main() -> None:
    run_app(app, PROG)


if __name__ == "__main__":  # python -m codo_cli.train, or from a checkout: python -m cli.train
    main()
