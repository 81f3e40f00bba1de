"""Reading shards from a local S3-compatible server vs the local file system: same shards, one core;
and what checking each shard against `_info.json` (sha256 hashed as it streams) costs on each.

    python bench/shard_read.py [--samples 2000] [--repeat 3]

The shards are written once to a temporary folder and uploaded to moto's S3 server, which runs in its
own process on another core (so its work is not counted against the reader); the reader, pinned to one
core, reads them with ShardDataset (no shuffle: decode views, boxes, RoIs, ids) and, as the raw figure,
only streams the tar members (read_piece), each unchecked and checked (verify_shards). Ratios: S3 rate /
local rate (checked, as training reads), checked rate / unchecked rate; best of --repeat.
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
from codo_aug.shards.reader import BadRecord, expand_shards, listed_entries, read_piece

SERVER = ("import logging, time; from moto.server import ThreadedMotoServer; "
          "logging.getLogger('werkzeug').setLevel(logging.ERROR); "
          "s = ThreadedMotoServer(ip_address='127.0.0.1', port=0, verbose=False); s.start(); "
          "print(s.get_host_and_port()[1], flush=True); time.sleep(10**6)")


def rates(reads: list, n_expected: int, repeat: int) -> list[float]:
    """Best samples/s of each `read()` (which returns how many samples it read) over `repeat` rounds; the
    reads alternate within a round, in turned order each round, so a drift in the machine's speed or a
    warm cache touches each alike."""
    best = [0.0] * len(reads)
    for r in range(repeat):
        for k in range(len(reads))[::-1 if r % 2 else 1]:
            t0 = time.perf_counter()
            n = reads[k]()
            best[k] = max(best[k], n / (time.perf_counter() - t0))
            assert n == n_expected, (n, n_expected)
    return best


def read_rates(paths: list[str], n: int, repeat: int) -> dict[str, tuple[float, float]]:
    """Samples/s of `paths` (unchecked, checked) streamed as tar members and through ShardDataset."""
    entries = listed_entries(paths)

    def streamed(check: bool) -> int:
        return sum(not isinstance(item, BadRecord) for path, entry in zip(paths, entries)
                   for item in read_piece(path, 0, None, entry if check else None))

    def dataset(check: bool) -> int:
        return sum(1 for _ in ShardDataset(paths, world_size=1, shuffle=0, verify_shards=check))

    return {name: tuple(rates([lambda: read(False), lambda: read(True)], n, repeat))
            for name, read in (("streamed", streamed), ("ShardDataset", dataset))}


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
                figures[where] = read_rates(expand_shards(pattern), args.samples, args.repeat)
                print(f"{where:>5}: " + "; ".join(
                    f"{plain:8.1f} samples/s {name}, {checked:8.1f} checked (x{checked / plain:.3f})"
                    for name, (plain, checked) in figures[where].items()))
            size = sum(p.stat().st_size for p in local.glob("*.tar")) / args.samples / 1e3
            print("ratio s3/local (checked): " + ", ".join(
                f"{figures['s3'][name][1] / figures['local'][name][1]:.2f} {name}" for name in figures["s3"])
                  + f" ({args.samples} samples, {size:.0f} kB each)")
    finally:
        server.kill()


if __name__ == "__main__":
    main()
