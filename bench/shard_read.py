"""Reading shards from a local S3-compatible server vs the local file system: same shards, one core.

    python bench/shard_read.py [--samples 2000] [--repeat 3]

The shards are written once to a temporary folder and uploaded to moto's S3 server, which runs in its
own process on another core (so its work is not counted against the reader); the reader, pinned to one
core, reads them with ShardDataset (no shuffle: decode views, boxes, RoIs, ids) and, as the raw figure,
only streams the tar members (iter_members). Ratio = S3 rate / local rate; best of --repeat.
Needs the dev extras (s3fs, moto[server]).
"""

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from codo_aug import ShardDataset, SynthConfig, SynthJob, run_synth
from codo_aug.shards.reader import expand_shards, iter_members

SERVER = ("import logging, time; from moto.server import ThreadedMotoServer; "
          "logging.getLogger('werkzeug').setLevel(logging.ERROR); "
          "s = ThreadedMotoServer(ip_address='127.0.0.1', port=0, verbose=False); s.start(); "
          "print(s.get_host_and_port()[1], flush=True); time.sleep(10**6)")


def rate(read, n_expected: int, repeat: int) -> float:
    """Best samples/s of `read()` (which returns how many samples it read) over `repeat` runs."""
    best = 0.0
    for _ in range(repeat):
        t0 = time.perf_counter()
        n = read()
        best = max(best, n / (time.perf_counter() - t0))
        assert n == n_expected, (n, n_expected)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    cores = sorted(os.sched_getaffinity(0))
    server = subprocess.Popen([sys.executable, "-c", SERVER], stdout=subprocess.PIPE, text=True,
                              preexec_fn=lambda: os.sched_setaffinity(0, {cores[-1]}))
    try:
        port = int(server.stdout.readline())
        os.environ.update(AWS_ENDPOINT_URL=f"http://127.0.0.1:{port}", AWS_ACCESS_KEY_ID="bench",
                          AWS_SECRET_ACCESS_KEY="bench", AWS_DEFAULT_REGION="us-east-1")
        import fsspec

        fs = fsspec.filesystem("s3")
        fs.mkdir("bench")
        with tempfile.TemporaryDirectory() as d:
            local = Path(d) / "shards"
            run_synth(SynthJob(out=local, num_samples=args.samples, shard_size=500, workers=len(cores),
                               config=SynthConfig()))
            fs.put(str(local) + "/", "bench/shards/", recursive=True)
            os.sched_setaffinity(0, {cores[0]})  # the reader: one core
            figures = {}
            for where, pattern in (("local", str(local)), ("s3", "s3://bench/shards/")):
                paths = expand_shards(pattern)
                raw = rate(lambda: sum(1 for p in paths for _ in iter_members(p)), args.samples, args.repeat)
                decoded = rate(lambda: sum(1 for _ in ShardDataset(paths, world_size=1, shuffle=0)),
                               args.samples, args.repeat)
                figures[where] = raw, decoded
                print(f"{where:>5}: {raw:9.1f} samples/s streamed (tar members), "
                      f"{decoded:8.1f} samples/s through ShardDataset")
            size = sum(p.stat().st_size for p in local.glob("*.tar")) / args.samples / 1e3
            print(f"ratio s3/local: {figures['s3'][0] / figures['local'][0]:.2f} streamed, "
                  f"{figures['s3'][1] / figures['local'][1]:.2f} through ShardDataset "
                  f"({args.samples} samples, {size:.0f} kB each)")
    finally:
        server.kill()


if __name__ == "__main__":
    main()
