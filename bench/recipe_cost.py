"""What a sample's final recipe costs against the whole sample, measured in the same run.

    python bench/recipe_cost.py [--samples 300] [--seed 0] [--prepared]

`CoDoDataset.recipe(i)` against `ds[i]` (tuxpaint stamps on scratch photos, docs/data.md; run
scripts/fetch_test_data.sh first), and `CoDoMultiView.make_params(sample, i)` against the transform's call on
one scratch photo with two boxes, the scratch photos as backgrounds; default config, one core. A recipe is
laid out, not painted: it decodes its instances (their masks decide visibility) but a background only the
first time the dataset meets it (to find a substitute when it fails; paint reuses those pixels), so
recipes are timed twice: on a dataset that has met the chunk's backgrounds ("met") and on a fresh one
("first sight", made before timing). The three alternate in chunks of 25 samples, so a change in the
machine's speed weighs on all alike; ratio = recipe time / sample time. `--prepared` reads the dataset's
instances and backgrounds from prepared stores (made first, in a temporary folder): no file is decoded.
"""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import cv2
import torch
from torchvision import tv_tensors

from codo_aug import CoDoDataset, SynthConfig
from codo_aug.prepare import PrepareJob, run_prepare
from codo_aug.transforms import CoDoMultiView

DATA = Path(os.environ.get("CODO_TEST_DATA")
            or Path(__file__).resolve().parent.parent / ".cache" / "test-data")
CHUNK = 25


def timed(call: Callable[[int], object], indices: range) -> float:
    t0 = time.perf_counter()
    for i in indices:
        call(i)
    return time.perf_counter() - t0


def compare(make: Callable[[], object], recipe: str, sample: str, samples: int) -> tuple[float, float, float]:
    """Seconds of `sample` calls, of `recipe` calls on one warm object, and of `recipe` calls on a fresh
    object per chunk, over the same indices."""
    warm = make()
    getattr(warm, sample)(0)  # imports, first allocations
    spent = [0.0, 0.0, 0.0]
    for start in range(0, samples, CHUNK):
        chunk, fresh = range(start, min(start + CHUNK, samples)), make()
        spent[0] += timed(getattr(warm, sample), chunk)
        spent[1] += timed(getattr(warm, recipe), chunk)
        spent[2] += timed(getattr(fresh, recipe), chunk)
    return tuple(spent)


class Transform:
    """CoDoMultiView on one detection sample, called by index as the dataset is."""

    def __init__(self, detection: dict, seed: int):
        self.t, self.detection = CoDoMultiView(f"folder:{DATA / 'scratch'}", SynthConfig(), seed), detection

    def call(self, i: int):
        return self.t(self.detection, index=i)

    def make_params(self, i: int):
        return self.t.make_params(self.detection, i)


def detection() -> dict:
    """The first scratch photo with two boxes (a quarter of it each), as torchvision tv_tensors."""
    photo = cv2.cvtColor(cv2.imread(str(sorted((DATA / "scratch").rglob("*.jpg"))[0])), cv2.COLOR_BGR2RGB)
    h, w = photo.shape[:2]
    boxes = [[w * 0.1, h * 0.1, w * 0.5, h * 0.6], [w * 0.45, h * 0.3, w * 0.95, h * 0.9]]
    return {"image": tv_tensors.Image(torch.from_numpy(photo).permute(2, 0, 1)),
            "boxes": tv_tensors.BoundingBoxes(boxes, format="XYXY", canvas_size=(h, w))}


def report(name: str, spent: tuple[float, float, float], n: int) -> None:
    sample, met, first = (1000 * s / n for s in spent)
    print(f"{name}: sample {sample:.2f} ms; recipe {met:.2f} ms (ratio {met / sample:.2f}), "
          f"first sight of its backgrounds {first:.2f} ms (ratio {first / sample:.2f})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=300)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--prepared", action="store_true", help="the dataset reads prepared stores")
    args = parser.parse_args()
    if not (DATA / ".complete").exists():
        sys.exit(f"no test data in {DATA}: run scripts/fetch_test_data.sh first")
    os.sched_setaffinity(0, {max(os.sched_getaffinity(0))})  # one core
    cv2.setNumThreads(1)
    torch.set_num_threads(1)
    n = args.samples
    specs = (f"folder:{DATA / 'tuxpaint'}", f"folder:{DATA / 'scratch'}")
    stores = tempfile.TemporaryDirectory()
    if args.prepared:
        for spec, role in zip(specs, ("instances", "backgrounds")):
            run_prepare(PrepareJob(spec, role, Path(stores.name) / role))
        specs = tuple(f"prepared:{Path(stores.name) / role}" for role in ("instances", "backgrounds"))
    report(f"CoDoDataset.recipe(i) / ds[i]{' (prepared stores)' if args.prepared else ''}",
           compare(lambda: CoDoDataset(*specs, seed=args.seed, length=n), "recipe", "__getitem__", n), n)
    image = detection()
    report("CoDoMultiView.make_params / call",
           compare(lambda: Transform(image, args.seed), "make_params", "call", n), n)
    print(f"samples: {n} each (default config: views 224/224/112, 1-2 instances, SoCo photometrics)")


if __name__ == "__main__":
    main()
