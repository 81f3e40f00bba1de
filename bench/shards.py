"""Shard writing and reading speed, and the writer's memory, against floors measured in the same run.

    python bench/shards.py [--samples 600] [--memory]

1. writer: `run_synth` (one process) vs rendering the same samples online without writing;
   target: within 15 % (ratio >= 0.85).
2. reader: ShardDataset (one process, no shuffle) vs only decoding the same shards' view images
   (cv2); target ratio floor/actual >= 0.6.
3. --memory: peak RSS of `codo-aug synth` for 20,000 samples vs 2,000; target within 1.2x.
Sources: tuxpaint stamps onto scratch backgrounds (scripts/fetch_test_data.sh), else `sample`.
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from codo_aug import ShardDataset, SynthJob, Synthesizer, run_synth
from codo_aug.shards.reader import expand_shards, iter_members

DATA = Path(os.environ.get("CODO_TEST_DATA")
            or Path(__file__).resolve().parent.parent / ".cache" / "test-data")


def sources() -> tuple[str, str]:
    if (DATA / ".complete").exists():
        return f"folder:{DATA / 'tuxpaint'}", f"folder:{DATA / 'scratch'}"
    print("(no test data: using the sample source; "
          "run scripts/fetch_test_data.sh for the documented figures)")
    return "sample", "sample"


def writer(tmp: Path, n: int, instances: str, backgrounds: str) -> float:
    synth = Synthesizer.from_specs(instances, backgrounds)
    synth.sample(0)
    t0 = time.perf_counter()
    for i in range(n):
        synth.sample(i)
    online = time.perf_counter() - t0
    t0 = time.perf_counter()
    run_synth(SynthJob(out=tmp / "w", num_samples=n, shard_size=200,
                       instances=instances, backgrounds=backgrounds))
    written = time.perf_counter() - t0
    print(f"online synthesis: {n / online:8.1f} samples/s/core")
    print(f"writing shards:   {n / written:8.1f} samples/s/core (render + encode + tar + sha256)")
    print(f"writer / online:  {online / written:.2f} (target >= 0.85)")
    return written


def reader(tmp: Path) -> None:
    paths = expand_shards(str(tmp / "w"))
    t0 = time.perf_counter()
    floor_n = 0
    for path in paths:
        for _, members in iter_members(path):
            for name, data in members.items():
                if name.endswith(".jpg"):
                    cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
            floor_n += 1
    floor = time.perf_counter() - t0
    t0 = time.perf_counter()
    n = sum(1 for _ in ShardDataset(paths, rank=0, world_size=1, shuffle=0))
    actual = time.perf_counter() - t0
    assert n == floor_n
    print(f"reading shards:   {n / actual:8.1f} samples/s/core (ShardDataset: decode views, boxes, ids)")
    print(f"decode floor:     {n / floor:8.1f} samples/s/core (view JPEGs only)")
    print(f"floor / actual:   {floor / actual:.2f} (target >= 0.6)")


def peak_rss(n: int, tmp: Path, instances: str, backgrounds: str) -> float:
    """Peak RSS (MiB, the kernel's VmHWM) of a fresh process writing n samples with run_synth.

    The high-water mark is reset at the child's start: a forked child otherwise inherits this
    process's (which holds torch).
    """
    code = ("import sys; from pathlib import Path; open('/proc/self/clear_refs', 'w').write('5'); "
            "from codo_aug import SynthJob, run_synth; "
            f"run_synth(SynthJob(out=Path(sys.argv[1]), num_samples={n}, shard_size=1000, "
            f"instances={instances!r}, backgrounds={backgrounds!r})); "
            "print([l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')][0])")
    out = subprocess.run([sys.executable, "-c", code, str(tmp / f"m{n}")],
                         capture_output=True, text=True, check=True)
    return int(out.stdout.split()[-1]) / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=600)
    parser.add_argument("--memory", action="store_true", help="also run the 2,000 vs 20,000 sample RSS check")
    args = parser.parse_args()
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})  # one core
    cv2.setNumThreads(1)
    instances, backgrounds = sources()
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        writer(tmp, args.samples, instances, backgrounds)
        reader(tmp)
        if args.memory:
            small, large = (peak_rss(2000, tmp, instances, backgrounds),
                            peak_rss(20000, tmp, instances, backgrounds))
            print(f"peak RSS: {small:.0f} MiB for 2,000 samples, {large:.0f} MiB for 20,000: "
                  f"x{large / small:.2f} (target <= 1.2)")


if __name__ == "__main__":
    main()
