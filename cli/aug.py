"""`codo-aug`: synthesise CoDo samples into WebDataset shards; preview, verify and describe them."""

import dataclasses
import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from codo_aug.config import SynthConfig
from codo_aug.errors import InputError, RunError
from codo_aug.pipeline import Synthesizer
from codo_aug.plural import plural
from codo_aug.prepare import PrepareJob, run_prepare
from codo_aug.preview import preview_grid, write_png
from codo_aug.shards.format import IMAGE_FORMATS
from codo_aug.sources.prepared import CODECS
from codo_aug.sources.spec import KINDS, ROLES
from codo_aug.shards.reader import expand_shards
from codo_aug.shards.stats import collect_stats, format_stats
from codo_aug.io.storage import folder_at
from codo_aug.shards.writer import INFO_FILE
from codo_aug.shards.verify import verify as verify_folder
from codo_aug.synth import SynthJob, plan_synth, run_synth

from .common import VersionOpt, exit_codes, given, new_app, progress, run_app, setup_logging, stderr
from .config_files import Given, given_settings
from .inert import SYNTH_JOB, UNREAD_PREVIEW, check_synth, settle, unread_by_prepare

PROG = "codo-aug"
app = new_app("Synthesise background-invariant multi-view samples: instances pasted onto backgrounds.")
SPEC_HELP = f"Source as KIND[:PATH], KIND one of {', '.join(KINDS)}."
SeedOpt = Annotated[int, typer.Option("--seed", help="Seed; (seed, index) defines each sample.")]
InstancesOpt = Annotated[str, typer.Option("--instances", help="Instance source. " + SPEC_HELP)]
BackgroundsOpt = Annotated[str, typer.Option("--backgrounds", help="Background source. " + SPEC_HELP)]
ConfigOpt = Annotated[Path | None, typer.Option("--config", help="TOML file of engine settings (top level or "
                                                                 "\\[synth]).")]
SetOpt = Annotated[list[str] | None, typer.Option("--set", help="Override one setting: key=value "
                                                                "(TOML value). Repeatable.")]
WorkersOpt = Annotated[int, typer.Option("--workers", help="Processes; the output is the same for any "
                                                            "number.")]
NumNodesOpt = Annotated[int, typer.Option("--num-nodes", help="Machines sharing the job.")]
NodeRankOpt = Annotated[int, typer.Option("--node-rank", help="This machine: 0..num-nodes-1 (writes the "
                                                              "shards or parts k with k % N == R).")]


def synth_settings(config: Path | None, sets: list[str] | None) -> tuple[Given, SynthConfig]:
    """The engine settings from --config and --set, as given (file and typed apart) and checked."""
    settings = given_settings(config, sets, "synth")
    return settings, SynthConfig.from_dict(settings.values)


@app.callback()
def _root(version: VersionOpt = False) -> None:
    """Synthesise background-invariant multi-view samples: instances pasted onto backgrounds."""


@app.command()
def synth(
    ctx: typer.Context,
    out: Annotated[str, typer.Option("--out", help="Output folder for codo-%06d.tar shards and _info.json, "
                                                   "or an object-storage prefix (s3://bucket/prefix).")],
    num_samples: Annotated[int, typer.Option("--num-samples", help="Samples to write.")] = 1000,
    seed: SeedOpt = 0,
    instances: InstancesOpt = "sample",
    backgrounds: BackgroundsOpt = "sample",
    shard_size: Annotated[int, typer.Option("--shard-size", help="Samples per shard.")] = 1000,
    image_format: Annotated[str, typer.Option("--image-format", help="View encoding: "
                                                                     f"{', '.join(IMAGE_FORMATS)}.")] = "jpg",
    format_: Annotated[str, typer.Option("--format", help="webdataset (shards) or coco (images/ + "
                                                          "annotations/instances.json, one image per "
                                                          "view).")] = "webdataset",
    workers: WorkersOpt = 1,
    num_nodes: NumNodesOpt = 1,
    node_rank: NodeRankOpt = 0,
    config: ConfigOpt = None,
    set_: SetOpt = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Check sources and settings, print the plan, "
                                                            "write nothing.")] = False,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace the job already in --out.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log more.")] = False,
) -> None:
    """Write N samples (3 views each by default: 224, 224, 112 px) as WebDataset shards.

    Run the same command again to finish an interrupted job: finished shards are kept.
    """
    setup_logging(verbose)
    with exit_codes(PROG, resume=f"finished {'parts' if format_ == 'coco' else 'shards'} are kept"):
        settings, cfg = synth_settings(config, set_)
        job = SynthJob(out, num_samples, seed, instances, backgrounds, shard_size, image_format, cfg,
                       overwrite, workers, num_nodes, node_rank, format_)
        check_synth(cfg, settings, {})
        typed = {**settings.typed, **given(ctx, image_format=image_format)}
        settle(SYNTH_JOB, job, dataclasses.replace(settings, typed=typed))
        if dry_run:
            plan = plan_synth(job)
            stderr.print(f"plan: {plural(plan.samples, 'sample')} in {plan.shards} shard(s) on this node, "
                         f"about {plan.est_bytes / 1e6:.1f} MB and {plan.est_seconds:.0f} s "
                         f"with {workers} worker(s); nothing written (dry run)")
            return
        with progress("synth") as (start, advance):
            report = run_synth(job, on_sample=advance, on_start=start)
        stderr.print(report.summary())


@app.command()
def prepare(
    spec: Annotated[str, typer.Argument(help="The source to prepare. " + SPEC_HELP)],
    role: Annotated[str, typer.Option("--role", help=f"What the source is: {', '.join(ROLES)}.")],
    out: Annotated[str, typer.Option("--out", help="Folder of the store, or an object-storage prefix "
                                                   "(s3://bucket/prefix); use it as prepared:DIR.")],
    max_side: Annotated[int | None, typer.Option("--max-side", help="Longer side of each stored item at most "
                                                                    "this (default: what the largest view "
                                                                    "of the config can ask for).")] = None,
    codec: Annotated[str, typer.Option("--codec", help=f"Pixel encoding: {', '.join(CODECS)} (raw: no decode "
                                                       "when reading, 7-8x the disk of jpeg).")] = "raw",
    part_size: Annotated[int, typer.Option("--part-size", help="Items per part file.")] = 1000,
    workers: WorkersOpt = 1,
    num_nodes: NumNodesOpt = 1,
    node_rank: NodeRankOpt = 0,
    config: ConfigOpt = None,
    set_: SetOpt = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="Replace the store in --out.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log more.")] = False,
) -> None:
    """Cut and resize a source once into a store that synth, preview and training read as prepared:DIR
    without decoding.

    Sizes, minimum sides and the cutout mode come from the same settings as synth (--config, --set).
    Run the same command again to finish an interrupted job: finished parts are kept.
    """
    setup_logging(verbose)
    with exit_codes(PROG, resume="finished parts are kept"):
        settings, cfg = synth_settings(config, set_)
        job = PrepareJob(spec, role, out, config=cfg, max_side=max_side, codec=codec, part_size=part_size,
                         workers=workers, num_nodes=num_nodes, node_rank=node_rank, overwrite=overwrite)
        check_synth(cfg, settings, unread_by_prepare(role, max_side))
        with progress("prepare") as (start, advance):
            report = run_prepare(job, on_item=advance, on_start=start)
        stderr.print(report.summary())


@app.command()
def preview(
    out: Annotated[Path, typer.Option("--out", help="PNG file to write.")],
    num_samples: Annotated[int, typer.Option("--num-samples", help="Rows: samples 0..N-1.")] = 4,
    seed: SeedOpt = 0,
    instances: InstancesOpt = "sample",
    backgrounds: BackgroundsOpt = "sample",
    config: ConfigOpt = None,
    set_: SetOpt = None,
) -> None:
    """Draw N samples x views as a PNG grid: exact boxes green, jittered RoIs magenta, instance ids."""
    setup_logging(False)
    with exit_codes(PROG):
        if not 1 <= num_samples <= 256:
            raise InputError(f"invalid num_samples={num_samples}: must be in 1..256")
        if out.suffix.lower() != ".png":
            raise InputError(f"--out {out}: the preview is a PNG; name it *.png")
        settings, cfg = synth_settings(config, set_)
        check_synth(cfg, settings, UNREAD_PREVIEW)
        synth = Synthesizer.from_specs(instances, backgrounds, cfg, seed)
        grid = preview_grid([synth.sample(i) for i in range(num_samples)])
        out.parent.mkdir(parents=True, exist_ok=True)
        write_png(out, grid)
        stderr.print(f"wrote {out} ({grid.shape[1]}x{grid.shape[0]}): "
                     f"{plural(num_samples, 'sample')} x {len(cfg.view_sizes)} views")


@app.command()
def verify(folder: Annotated[str, typer.Argument(help="A shard folder (or s3://... prefix) written by "
                                                       "codo-aug synth.")]) -> None:
    """Check every shard against _info.json (size, sha256); exit 1 naming each bad or missing shard."""
    with exit_codes(PROG):
        where = folder_at(folder)
        info, problems = verify_folder(where)
        for problem in problems:
            print(f"{PROG}: {problem}", file=sys.stderr)
        if problems:
            raise RunError(f"{len(problems)} of {len(info['shards'])} shard(s) failed verification")
        stderr.print(f"ok: {len(info['shards'])} shard(s), {plural(info['num_samples'], 'sample')} "
                     f"match {where.child(INFO_FILE)}")


@app.command()
def stats(
    folder: Annotated[str, typer.Argument(help="A shard folder, a glob or brace pattern of shards, or a URL "
                                               "of either (s3://, https://).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of charts.")] = False,
) -> None:
    """Counts and histograms: instances per view, instance size, source classes."""
    with exit_codes(PROG):
        result = collect_stats(expand_shards(folder))
        print(json.dumps(result, indent=2) if as_json else format_stats(result))


def main() -> None:
    run_app(app, PROG)


if __name__ == "__main__":  # python -m codo_cli.aug, or from a checkout: python -m cli.aug
    main()
