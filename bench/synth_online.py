"""Online synthesis speed on one core against the decode floor, measured in the same run.

    python bench/synth_online.py [--samples 400] [--seed 0]

Sources: the scratch backgrounds and tuxpaint stamps of DATA.md (run scripts/fetch_test_data.sh
first). For the same samples, the floor is the time to only decode the image files each sample
used (cv2, full size); ratio = floor / actual (1.0 would mean synthesis costs nothing but decoding).
"""

import argparse
import os
import resource
import sys
import time
from pathlib import Path

import cv2

from codo_aug import SynthConfig, Synthesizer, open_source

DATA = Path(os.environ.get("CODO_TEST_DATA")
            or Path(__file__).resolve().parent.parent / ".cache" / "test-data")


def decode_floor(paths: list[str]) -> float:
    """Seconds to decode `paths` (cv2, full size, alpha kept for PNG)."""
    t0 = time.perf_counter()
    for p in paths:
        img = cv2.imread(p, cv2.IMREAD_UNCHANGED)
        if img is None:
            raise SystemExit(f"cannot decode {p}")
    return time.perf_counter() - t0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=400)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    if not (DATA / ".complete").exists():
        sys.exit(f"no test data in {DATA}: run scripts/fetch_test_data.sh first")
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core
    cv2.setNumThreads(1)

    instances = open_source(f"folder:{DATA / 'tuxpaint'}", "instances")
    backgrounds = open_source(f"folder:{DATA / 'scratch'}", "backgrounds")
    synth = Synthesizer(instances, backgrounds, SynthConfig(), seed=args.seed)
    synth.sample(0)  # warm-up: imports, first allocations

    t0 = time.perf_counter()
    files = []
    for i in range(args.samples):
        s = synth.sample(i)
        files += [str(instances.root / f) for f in s.instance_files]
        files += [str(backgrounds.root / f) for f in set(s.background_files)]
    actual = time.perf_counter() - t0
    floor = decode_floor(files)
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    print(f"samples: {args.samples} (default config: views 224/224/112, 1-2 instances, "
          "hard+gaussian, SoCo photometrics)")
    print(f"files decoded per sample: {len(files) / args.samples:.2f}")
    print(f"synthesis: {args.samples / actual:8.1f} samples/s/core "
          f"({1000 * actual / args.samples:.2f} ms/sample)")
    print(f"floor:     {args.samples / floor:8.1f} samples/s/core "
          f"({1000 * floor / args.samples:.2f} ms/sample, decode only)")
    print(f"ratio floor/actual: {floor / actual:.2f} (target >= 0.5)")
    print(f"peak RSS: {rss:.0f} MiB")


if __name__ == "__main__":
    main()
