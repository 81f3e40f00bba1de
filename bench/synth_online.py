"""Online synthesis speed on one core against the decode floor, measured in the same run.

    python bench/synth_online.py [--samples 600] [--seed 0] [--backgrounds scratch|coco-size]

Sources: the tuxpaint stamps and scratch backgrounds of DATA.md (run scripts/fetch_test_data.sh
first); `coco-size` backgrounds are the scratch photos enlarged to 640x480 (COCO's usual size) and
saved as JPEG q90 in a temporary folder. For the same samples, the floor is the time to only decode
the image files each sample used (cv2, full size). Synthesis and floor alternate in chunks of 25
samples, so a change in the machine's speed during the run weighs on both alike; ratio = floor /
actual (1.0: synthesis costs no more than decoding its files).
"""

import argparse
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import cv2

from codo_aug import SynthConfig, Synthesizer, open_source

DATA = Path(os.environ.get("CODO_TEST_DATA")
            or Path(__file__).resolve().parent.parent / ".cache" / "test-data")
CHUNK = 25


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


def measure(synth: Synthesizer, samples: int) -> tuple[float, float, int]:
    """Seconds of synthesis, seconds of the floor, files decoded: chunks of samples, then their files."""
    actual, floor, files = 0.0, 0.0, 0
    for start in range(0, samples, CHUNK):
        t0 = time.perf_counter()
        made = [synth.sample(i) for i in range(start, min(start + CHUNK, samples))]
        actual += time.perf_counter() - t0
        paths = [str(synth.instances.root / f) for s in made for f in s.instance_files]
        paths += [str(synth.backgrounds.root / f) for s in made for f in set(s.background_files)]
        files += len(paths)
        floor += decode_floor(paths)
    return actual, floor, files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=600)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--backgrounds", choices=("scratch", "coco-size"), default="scratch")
    args = parser.parse_args()
    if not (DATA / ".complete").exists():
        sys.exit(f"no test data in {DATA}: run scripts/fetch_test_data.sh first")
    os.sched_setaffinity(0, {max(os.sched_getaffinity(0))})  # one core
    cv2.setNumThreads(1)

    with tempfile.TemporaryDirectory() as tmp:
        bg_root = coco_size(Path(tmp)) if args.backgrounds == "coco-size" else DATA / "scratch"
        warm([DATA / "tuxpaint", bg_root])
        instances = open_source(f"folder:{DATA / 'tuxpaint'}", "instances")
        backgrounds = open_source(f"folder:{bg_root}", "backgrounds")
        synth = Synthesizer(instances, backgrounds, SynthConfig(), seed=args.seed)
        synth.sample(0)  # warm-up: imports, first allocations
        actual, floor, files = measure(synth, args.samples)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    n = args.samples
    print(f"samples: {n} (default config: views 224/224/112, 1-2 instances, hard+gaussian, SoCo "
          f"photometrics); backgrounds: {args.backgrounds}")
    print(f"files decoded per sample: {files / n:.2f}")
    print(f"synthesis:     {n / actual:8.1f} samples/s/core ({1000 * actual / n:.2f} ms/sample)")
    print(f"floor:         {n / floor:8.1f} samples/s/core ({1000 * floor / n:.2f} ms/sample, decode only)")
    target = 0.85 if args.backgrounds == "coco-size" else 0.7
    print(f"ratio floor/actual: {floor / actual:.2f} (target >= {target})")
    print(f"peak RSS: {rss:.0f} MiB")


if __name__ == "__main__":
    main()
