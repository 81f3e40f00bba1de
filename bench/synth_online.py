"""Online synthesis speed on one core against the decode floor, measured in the same run.

    python bench/synth_online.py [--samples 600] [--seed 0] [--backgrounds scratch|coco-size] [--prepared]
                                 [--defer-photometrics] [--breakdown]

Sources: the tuxpaint stamps and scratch backgrounds of docs/data.md (run scripts/fetch_test_data.sh
first); `coco-size` backgrounds are the scratch photos enlarged to 640x480 (COCO's usual size) and
saved as JPEG q90 in a temporary folder. For the same samples, the floor is the time to only decode
the image files each sample used (cv2, full size). Synthesis and floor alternate in chunks of 25
samples, so a change in the machine's speed during the run weighs on both alike; ratio = floor /
actual (1.0: synthesis costs no more than decoding its files). With --prepared both sources are first
written by `codo-aug prepare` (raw codec, default sizes) and synthesis reads them; the floor stays the
decode of the original files of the same samples (the issue asks for samples/s >= 1.5x that floor).
With --defer-photometrics the views are rendered without their photometric draws, as the trainer's loader
workers render them with `--decode device` (the draws are then applied on the GPU). --breakdown then
renders the same samples again with a timer around each rendering stage and prints its ms/sample (the
timers add their own cost, so the stages are shares, not a second measurement of the total).
"""

import argparse
import collections
import functools
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import cv2

from codo_aug import SynthConfig, Synthesizer, open_source
from codo_aug import pipeline
from codo_aug.modes import BLENDS, PHOTOMETRICS
from codo_aug.prepare import PrepareJob, run_prepare
from codo_aug.render import layout, paint

DATA = Path(os.environ.get("CODO_TEST_DATA")
            or Path(__file__).resolve().parent.parent / ".cache" / "test-data")
CHUNK = 25
ROLES = ("instances", "backgrounds")


def decode_floor(paths: list[str]) -> float:
    """Seconds to decode `paths` (cv2, full size, alpha kept for PNG)."""
    t0 = time.perf_counter()
    for p in paths:
        if cv2.imread(p, cv2.IMREAD_UNCHANGED) is None:
            raise SystemExit(f"cannot decode {p}")
    return time.perf_counter() - t0


def coco_size(out: Path) -> Path:
    """The scratch photos enlarged to 640x480 JPEG q90 under `out` (the same folder layout)."""
    for p in sorted((DATA / "scratch").rglob("*.jpg")):
        img = cv2.resize(cv2.imread(str(p)), (640, 480), interpolation=cv2.INTER_CUBIC)
        dest = out / p.relative_to(DATA / "scratch")
        dest.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(dest), img, [cv2.IMWRITE_JPEG_QUALITY, 90])
    return out


def warm(roots: list[Path]) -> None:
    """Read every source file once, so the page cache holds them for synthesis and floor alike."""
    for root in roots:
        for p in root.rglob("*"):
            if p.is_file():
                p.read_bytes()


def prepared(spec: str, role: str, out: Path) -> str:
    """`spec` written by codo-aug prepare (raw codec, default sizes) into `out`; its prepared: spec."""
    run_prepare(PrepareJob(spec, role, out))
    return f"prepared:{out}"


def measure(synth: Synthesizer, roots: tuple[Path, Path], samples: int) -> tuple[float, float, int]:
    """Seconds of synthesis, seconds of the floor, files decoded: chunks of samples, then the original
    files under `roots` (instances, backgrounds) that they used."""
    actual, floor, files = 0.0, 0.0, 0
    for start in range(0, samples, CHUNK):
        t0 = time.perf_counter()
        made = [synth.sample(i) for i in range(start, min(start + CHUNK, samples))]
        actual += time.perf_counter() - t0
        paths = [str(roots[0] / f) for s in made for f in s.instance_files]
        paths += [str(roots[1] / f) for s in made for f in set(s.background_files)]
        files += len(paths)
        floor += decode_floor(paths)
    return actual, floor, files


#: What --breakdown times, under the name printed: (module, function) pairs, and (mode table, mode name)
#: pairs for the kernels of codo_aug.modes' rows.
STAGES = {
    "recipe": [(pipeline, "sample_recipe")],
    "layout_view (placement, masks, RoIs)": [(pipeline, "layout_view")],
    "paint_view (all below)": [(pipeline, "paint_view")],
    "background crop + resize": [(paint, "background_view")],
    "resizes (backgrounds, pastes)": [(layout, "resize"), (paint, "resize")],
    "compositing": [(BLENDS, name) for name in BLENDS],
    "photometrics": [(PHOTOMETRICS, name) for name in PHOTOMETRICS],
    "RoI jitter": [(layout, "jitter_rois")],
}


def _get(owner, name: str):
    return owner[name].kernel if isinstance(owner, dict) else getattr(owner, name)


def _set(owner, name: str, fn) -> None:
    if isinstance(owner, dict):
        owner[name] = owner[name]._replace(kernel=fn)
    else:
        setattr(owner, name, fn)


def breakdown(synth: Synthesizer, samples: int) -> tuple[float, dict[str, float]]:
    """Seconds to render `samples` samples again, and the seconds spent in each of STAGES."""
    spent: collections.Counter = collections.Counter()
    targets = [(stage, owner, name) for stage, pairs in STAGES.items() for owner, name in pairs]
    originals = [_get(owner, name) for _, owner, name in targets]

    def timed(stage, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            t0 = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                spent[stage] += time.perf_counter() - t0
        return wrapper

    for (stage, owner, name), fn in zip(targets, originals):
        _set(owner, name, timed(stage, fn))
    try:
        t0 = time.perf_counter()
        for i in range(samples):
            synth.sample(i)
        return time.perf_counter() - t0, dict(spent)
    finally:
        for (_, owner, name), fn in zip(targets, originals):
            _set(owner, name, fn)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=600)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--backgrounds", choices=("scratch", "coco-size"), default="scratch")
    parser.add_argument("--prepared", action="store_true", help="synthesise from prepared stores")
    parser.add_argument("--defer-photometrics", action="store_true",
                        help="render without photometrics (the trainer's workers with --decode device)")
    parser.add_argument("--breakdown", action="store_true", help="then time each rendering stage")
    args = parser.parse_args()
    if not (DATA / ".complete").exists():
        sys.exit(f"no test data in {DATA}: run scripts/fetch_test_data.sh first")
    os.sched_setaffinity(0, {max(os.sched_getaffinity(0))})  # one core
    cv2.setNumThreads(1)

    with tempfile.TemporaryDirectory() as tmp:
        roots = (DATA / "tuxpaint",
                 coco_size(Path(tmp) / "coco-size") if args.backgrounds == "coco-size" else DATA / "scratch")
        specs = [f"folder:{root}" for root in roots]
        if args.prepared:
            specs = [prepared(spec, role, Path(tmp) / role) for spec, role in zip(specs, ROLES)]
            warm([Path(tmp) / role for role in ROLES])
        warm(list(roots))
        instances, backgrounds = (open_source(spec, role) for spec, role in zip(specs, ROLES))
        synth = Synthesizer(instances, backgrounds, SynthConfig(), seed=args.seed,
                            defer_photometrics=args.defer_photometrics)
        synth.sample(0)  # warm-up: imports, first allocations
        actual, floor, files = measure(synth, roots, args.samples)
        stages = breakdown(synth, args.samples) if args.breakdown else None
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    n = args.samples
    print(f"samples: {n} (default config: views 224/224/112, 1-2 instances, hard+gaussian, SoCo "
          f"photometrics{' deferred' if args.defer_photometrics else ''}); backgrounds: {args.backgrounds}; "
          f"from {'stores' if args.prepared else 'files'}")
    print(f"files decoded per sample: {files / n:.2f}")
    print(f"synthesis:     {n / actual:8.1f} samples/s/core ({1000 * actual / n:.2f} ms/sample)")
    print(f"floor:         {n / floor:8.1f} samples/s/core ({1000 * floor / n:.2f} ms/sample, decode only)")
    if args.prepared:
        print(f"samples/s / floor samples/s: {floor / actual:.2f} (target >= 1.5)")
    else:
        target = 0.85 if args.backgrounds == "coco-size" else 0.7
        print(f"ratio floor/actual: {floor / actual:.2f} (target >= {target})")
    print(f"peak RSS: {rss:.0f} MiB")
    if stages:
        total, spent = stages
        print(f"breakdown, with timers: {1000 * total / n:.2f} ms/sample")
        for name in STAGES:
            print(f"  {name:<38}{1000 * spent.get(name, 0.0) / n:6.2f} ms/sample")


if __name__ == "__main__":
    main()
