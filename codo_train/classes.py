"""The supervised control's classes: the instance source's class names, known before training starts.

Online they are the Synthesizer's instance source `labels`. For shards, each shard folder's
`_info.json` lists them (sources.instances.labels, written by `codo-aug synth`), and several folders
give the sorted union: one small file per folder, so a run of any size starts at once and every rank
reads the same list, where scanning every record's JSON would read all the shards first.
"""


from codo_aug.dataset import CoDoDataset
from codo_aug.errors import InputError
from codo_aug.shards.dataset import ShardDataset
from codo_aug.io.jsonfiles import read_json
from codo_aug.io.storage import folder_at, split_location
from codo_aug.shards.writer import INFO_FILE

#: Fewer classes leave nothing to classify.
MIN_CLASSES = 2
_NEED = "objective 'supervised' classifies RoIs by their instance class"


def shard_classes(paths: list[str]) -> list[str]:
    """The sorted union of the class lists in the `_info.json` of each folder holding one of `paths`;
    InputError naming the folder whose `_info.json` is missing or lists none."""
    classes: set[str] = set()
    for folder in sorted({split_location(p)[0] for p in paths}):
        info = read_json(folder_at(folder), INFO_FILE)
        if not isinstance(info, dict):
            raise InputError(f"{_NEED}, listed in the shards' {INFO_FILE}, and {folder} has no readable one "
                             "(an unfinished codo-aug synth job?)")
        labels = info.get("sources", {}).get("instances", {}).get("labels")
        if not isinstance(labels, list):
            raise InputError(f"{_NEED}, and {folder}/{INFO_FILE} lists none (shards made by an older "
                             "codo-aug): run the codo-aug synth command that made them again; it keeps the "
                             f"shards and rewrites {INFO_FILE} with the classes")
        classes.update(labels)
    return sorted(classes)


def instance_classes(dataset: CoDoDataset | ShardDataset) -> list[str]:
    """The class names a supervised run classifies into, sorted (a class's index is its position);
    InputError when they cannot be known or are fewer than MIN_CLASSES."""
    if isinstance(dataset, CoDoDataset):
        classes, where = dataset.synth.instances.labels, "the instance source"
    else:
        classes, where = shard_classes(dataset.paths), "the shards' instance source"
    if len(classes) < MIN_CLASSES:
        raise InputError(f"{_NEED}, and {where} has {len(classes)} ({', '.join(map(repr, classes))}): give "
                         f"instances of {MIN_CLASSES} or more classes (folder:ROOT takes one subfolder per "
                         "class)")
    return classes
