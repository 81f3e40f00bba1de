"""Settings that cannot take effect where they are given: refused in one line when typed on the command line
(an option or --set: the user meant it to act), warned about when a --config file holds them (one recipe
file serves several runs; config.json records what the run used). A table maps each setting to when it
acts, {name: Acts(what, test)}; `what` is in the words of the fix."""

import json
import logging
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, Callable, Mapping

from codo_aug.config import SynthConfig
from codo_aug.errors import InputError
from codo_aug.io.jsonfiles import read_json
from codo_aug.io.storage import expand_braces, folder_at, input_errors, split_location
from codo_aug.shards.writer import INFO_FILE

from .config_files import Given

if TYPE_CHECKING:  # codo-aug does not load the trainer's modules
    from codo_train.config import TrainConfig

log = logging.getLogger("codo_cli")


@dataclass(frozen=True)
class Acts:
    """When a setting acts: `what` (e.g. 'loss "infonce"'), and `test` of the config or job that holds it."""

    what: str
    test: Callable[[Any], bool] = lambda _: False


_PAIRS = 'objective "codo" or "image" (objective "supervised" compares no views and uses no target)'
_ROIS = 'objective "codo" or "supervised" (objective "image" pools no RoIs)'


def _rois(levels: str) -> Callable[[Any], bool]:
    """Whether a run pools RoIs in `levels` mode."""
    return lambda c: c.levels == levels and c.objective != "image"


_QUEUE = Acts('loss "infonce" (its key queue) and ' + _PAIRS, lambda c: c.loss == "infonce"
              and c.objective != "supervised")

#: TrainConfig settings that some runs leave without effect.
TRAIN: dict[str, Acts] = {
    "loss": Acts(_PAIRS, lambda c: c.objective != "supervised"),
    "all_pairs": Acts(_PAIRS, lambda c: c.objective != "supervised"),
    "momentum_base": Acts(_PAIRS, lambda c: c.objective != "supervised"),
    "queue_size": _QUEUE,
    "temperature": _QUEUE,
    "image_weight": Acts('objective "codo" (with "image" the image-level term is the whole loss)',
                         lambda c: c.objective == "codo"),
    "levels": Acts(_ROIS, lambda c: c.objective != "image"),
    "level_rule": Acts('levels "size" and ' + _ROIS, _rois("size")),
    "level_weights": Acts('levels "all" and ' + _ROIS, _rois("all")),
    "max_bad_fraction": Acts("--shards (online synthesis skips unreadable source files as it meets them)",
                             lambda c: not c.online),
    "verify_shards": Acts("--shards (online synthesis reads no shards to check)", lambda c: not c.online),
    "prefetch": Acts("workers >= 1 (with 0 the training process loads each batch when it is due)",
                     lambda c: c.workers > 0),
}

_VIEW_CROP = Acts('view_crop "auto" or "on"', lambda s: s.view_crop != "off")


def _blend(mode: str) -> Acts:
    """A blend mode's own setting acts where the mode is drawn: listed, with a weight above 0."""
    return Acts(f'blend "{mode}" at a weight above 0',
                lambda s: any(m == mode and w > 0 for m, w in zip(s.blend, s.blend_weights)))


#: SynthConfig settings that other synthesis settings can switch off.
SYNTH: dict[str, Acts] = {
    "iou_floor": Acts('jitter "iou" in some view', lambda s: "iou" in s.jitter),
    "jitter_ratio": Acts('jitter "relative" in some view', lambda s: "relative" in s.jitter),
    "jitter_p": Acts('a jitter other than "none"', lambda s: set(s.jitter) != {"none"}),
    "feather_sigma": _blend("gaussian"),
    "motion_length": _blend("motion"),
    "view_crop_area": _VIEW_CROP,
    "view_crop_ratio": _VIEW_CROP,
}

#: Synthesis settings that a command (not a mode of it) never reads; a file that holds them is the synth
#: config shared with `codo-aug synth`, so only typed ones are refused.
UNREAD_ONLINE = {"jpeg_quality": Acts("codo-aug synth (online training encodes no image)")}
UNREAD_PREVIEW = {"jpeg_quality": Acts("codo-aug synth (the preview is a PNG)")}
#: codo-aug synth's own options and settings that its other options switch off.
SYNTH_JOB: dict[str, Acts] = {
    "image_format": Acts("--format webdataset (a COCO export writes JPEG images)",
                         lambda job: job.format == "webdataset"),
    "jpeg_quality": Acts("--image-format jpg or --format coco", lambda job: job.image_format == "jpg"
                         or job.format == "coco"),
}


def prepare_reads(role: str, max_side: int | None) -> tuple[str, ...]:
    """The synthesis settings `codo-aug prepare` reads for a `role` store: its minimum side, an instance
    store's cutout mode, and (unless `max_side` replaces them) those that size the items (SizeRule)."""
    if role == "backgrounds":
        return ("min_background_side",) + (() if max_side else ("view_sizes", "background_area"))
    sizes = ("view_sizes", "scale", "view_crop", "view_crop_area", "view_crop_ratio", "rect_area",
             "rect_ratio")
    return ("min_instance_side", "cutout") + (() if max_side else sizes)


def unread_by_prepare(role: str, max_side: int | None) -> dict[str, Acts]:
    """Acts of each synthesis setting `codo-aug prepare` does not read for this store."""
    reads, unsized = prepare_reads(role, max_side), prepare_reads(role, None)
    synth = Acts(f"codo-aug synth (prepare --role {role} reads {', '.join(unsized)})")
    sizes = Acts("codo-aug synth, or prepare without --max-side (which sets the items' sizes)")
    return {f.name: sizes if f.name in unsized else synth for f in fields(SynthConfig) if f.name not in reads}


def settle(rules: Mapping[str, Acts], subject: Any, given: Given, prefix: str = "",
           warn_file: bool = True) -> None:
    """InputError for the first typed setting that `subject` leaves without effect under `rules`; a warning
    naming those a --config file holds (with `warn_file`). `prefix`: how a --set names the table."""
    idle = {name: acts.what for name, acts in rules.items() if not acts.test(subject)}
    for name, value in given.typed.items():
        if name in idle:
            raise InputError(f"{prefix}{name}={_shown(value)} has no effect in this run: it acts only with "
                             f"{idle[name]}; drop it")
    in_file = [name for name in given.file if name in idle and name not in given.typed]
    if warn_file and in_file:
        log.warning("--config %s: %s %s no effect in this run (%s)", given.config,
                    ", ".join(prefix + n for n in in_file), "has" if len(in_file) == 1 else "have",
                    "; ".join(f"{prefix}{n} acts only with {idle[n]}" for n in in_file))


def _shown(value: Any) -> str:
    """A setting's value as TOML writes it (and --set takes it)."""
    return json.dumps(value)


def check_shard_run(cfg: "TrainConfig", synth: Given) -> None:
    """Training on shards: synthesis settings cannot change shards rendered already. Typed ones are refused;
    a --config file's [synth] must match what the shards were rendered with (their _info.json), and is
    warned about where there is nothing to compare it with."""
    fix = ("synthesis settings act in codo-aug synth, or online with --instances/--backgrounds; for shards, "
           "--photometric draws fresh photometrics each epoch")
    if synth.typed:
        name, value = next(iter(synth.typed.items()))
        raise InputError(f"synth.{name}={_shown(value)} cannot take effect: the shards are rendered already "
                         f"({fix}); drop it")
    if not synth.file:
        return
    folder = _shard_folder(cfg.shards)
    with input_errors(cfg.shards):
        rendered = SynthConfig.upgrade((read_json(folder_at(folder), INFO_FILE) or {}).get("config") or {})
    given = SynthConfig.upgrade(synth.file)
    wanted = SynthConfig.from_dict(given).to_dict()
    info = folder_at(folder).child(INFO_FILE)
    for name in given:
        if name in rendered and wanted[name] != rendered[name]:
            raise InputError(f"--config {synth.config}: [synth] {name}={_shown(wanted[name])} differs from "
                             f"the shards' {name}={_shown(rendered[name])} ({info}): the shards are rendered "
                             f"already; render them with this file or drop it ({fix})")
    unknown = [name for name in given if name not in rendered]
    if unknown:
        log.warning("--config %s: [synth] %s not applied: the shards are rendered already, and %s is not "
                    "there to say with what", synth.config, ", ".join(unknown), info)


def _shard_folder(shards: str) -> str:
    """The folder of --shards: itself, or the folder of a shard, glob or brace pattern it names."""
    first = expand_braces(shards)[0]
    named = first.endswith(".tar") or any(c in first for c in "*?[")
    return split_location(first)[0] if named else first


def check_run(cfg: "TrainConfig", train: Given, synth: Given) -> SynthConfig:
    """The synthesis settings of `codo-train run`, once no setting it was given is left without effect."""
    settle(TRAIN, cfg, train)
    if not cfg.online:
        check_shard_run(cfg, synth)
        return SynthConfig()
    config = SynthConfig.from_dict(synth.values)
    check_synth(config, synth, UNREAD_ONLINE, prefix="synth.")
    return config


def check_synth(config: SynthConfig, given: Given, unread: Mapping[str, Acts], prefix: str = "") -> None:
    """No typed synthesis setting left without effect: neither one the command does not read (`unread`; in a
    file, they are the synth config the command shares with codo-aug synth) nor one that other settings
    switch off (SYNTH, warned about in a file too)."""
    settle(unread, None, given, prefix, warn_file=False)
    settle({name: acts for name, acts in SYNTH.items() if name not in unread}, config, given, prefix)
