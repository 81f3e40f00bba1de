"""Does CoDo pretraining transfer to detection? The protocol of issue 11 (docs/results.md).

Inits compared at equal pretraining compute (same backbone, views, steps and batch): random,
image-level BYOL, CoDo on generic backgrounds, CoDo on the fine-tuning set's own (unlabelled)
train backgrounds (CoDo's premise), and a supervised positive control (RoI classification on the
pretraining instances' classes). Each is fine-tuned (Mask R-CNN v2) on two low-label sets: one
whose classes overlap the pretraining classes (other files, as ImageNet's classes overlap COCO's)
and one with classes pretraining never saw; val sets are larger and hold one image per composite.
Several seeds: mean +- std, and the paired difference to random init per seed.

    python examples/transfer_experiment.py --size cpu            # under 45 min on 2 CPU cores
    DEVICE=cuda python examples/transfer_experiment.py --size gpu  # one H200 and 16 cores, under 10 min
    python examples/transfer_experiment.py --size smoke --out /tmp/x   # what tests/test_examples.py runs

Data: DATA.md's tuxpaint cutouts and scratch photos (scripts/fetch_test_data.sh). Run it again to
resume: every finished step (split, COCO sets, runs, exports, probes, fine-tunes) is kept.
Nothing was tuned on the reported figures: the sizes below were fixed by the time budget alone.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DISJOINT = ("food", "plants", "vehicles")      # fine-tuning classes pretraining never sees
OVERLAP = ("animals", "household", "clothes")  # fine-tuning classes pretraining also has (other files)
DOWNSTREAM = "Outdoors"                        # the fine-tuning set's background domain
INITS = ("random", "image", "codo-generic", "codo-downstream", "supervised")
ARMS = ("overlap", "disjoint")
#: init -> (objective, background pool) of its pretraining run
PRETRAIN = {"image": ("image", "generic"), "codo-generic": ("codo", "generic"),
            "codo-downstream": ("codo", "downstream-train"), "supervised": ("supervised", "generic")}
#: Sized by measured time alone (docs/results.md): cpu, 2 cores, jobs of one thread each, ~45 min (the box
#: and mask heads' convs on every RoI are most of a fine-tune there, hence fewer RoIs and proposals);
#: gpu, one H200 and 16 cores, ~9 min: 8 jobs at once, pretraining ~1.4 min and a fine-tune ~1.6 min each
SIZES = {
    "smoke": dict(steps=2, batch=2, views=[64, 64, 32], ft_size=96, ft_train=6, ft_val=6, iters=2, rois=64,
                  proposals=100, probe=4, seeds=[0], workers=0, jobs=2),
    "cpu": dict(steps=40, batch=8, views=[128, 128, 64], ft_size=128, ft_train=100, ft_val=100, iters=60,
                rois=64, proposals=100, probe=100, seeds=[0, 1, 2], workers=0, jobs=2),
    "gpu": dict(steps=100, batch=64, views=[224, 224, 112], ft_size=320, ft_train=100, ft_val=300, iters=200,
                rois=128, proposals=300, probe=100, seeds=[0, 1, 2], workers=2, jobs=8,
                train=["--amp", "bf16", "--channels-last"]),
}
FT_LR = 0.08  # for 16 images (4x detectron2's 0.02: the runs are short); fixed before any run
START = time.monotonic()


def say(command: str) -> None:
    """The command about to run, with the minutes since the start (the log shows where time goes)."""
    print(f"[{(time.monotonic() - START) / 60:5.1f} min] + {command}", file=sys.stderr, flush=True)


def run(*args: str) -> None:
    """One codo command, from this interpreter's install; its stdout is ours, its errors stop us."""
    module = "codo_cli.aug" if args[0] == "aug" else "codo_cli.train"
    say("codo-" + " ".join(args))
    subprocess.run([sys.executable, "-m", module, *args[1:]], check=True, stdout=sys.stderr)


def run_json(out: Path, *args: str) -> dict:
    """A command's --json result, kept in `out` (so a second run does not redo it)."""
    if not out.is_file():
        module = "codo_cli.train"
        say("codo-train " + " ".join(args))
        text = subprocess.run([sys.executable, "-m", module, *args, "--json"], check=True,
                              capture_output=True, text=True).stdout
        out.parent.mkdir(parents=True, exist_ok=True)
        out.with_suffix(".tmp").write_text(text)
        out.with_suffix(".tmp").rename(out)
    return json.loads(out.read_text())


def split(data: Path, root: Path) -> None:
    """Instances: overlap classes' every third file and the disjoint classes go to fine-tuning (every
    third of those to val), the rest to pretraining; backgrounds: the downstream domain split in two
    (fine-tuning train / val), the other domains generic. Copied flat, one folder per class."""
    if (root / ".done").exists():
        return
    shutil.rmtree(root, ignore_errors=True)
    counts: dict[str, int] = {}
    for f in sorted((data / "tuxpaint").rglob("*.png")):
        rel = f.relative_to(data / "tuxpaint")
        cls = rel.parts[0]
        k = counts[cls] = counts.get(cls, -1) + 1
        if cls in DISJOINT:
            part = f"ft-disjoint/{'val' if k % 3 == 2 else 'train'}"
        elif cls in OVERLAP and k % 3 == 0:
            part = f"ft-overlap/{'val' if (k // 3) % 3 == 2 else 'train'}"
        else:
            part = "pretrain"
        dest = root / "instances" / part / cls
        dest.mkdir(parents=True, exist_ok=True)
        shutil.copy(f, dest / "_".join(rel.parts))
    for i, f in enumerate(sorted((data / "scratch").rglob("*.jpg"))):
        part = ("downstream-" + ("val" if i % 2 else "train")) if f.parent.name == DOWNSTREAM else "generic"
        (root / "backgrounds" / part).mkdir(parents=True, exist_ok=True)
        shutil.copy(f, root / "backgrounds" / part / f.name)
    (root / ".done").touch()


def one_view(folder: Path) -> str:
    """The COCO set of `folder` restricted to view 0: one image per composite (no two val images share
    instances); returns the finetune argument JSON:IMAGES."""
    full = folder / "annotations" / "instances.json"
    single = folder / "annotations" / "view0.json"
    if not single.is_file():
        data = json.loads(full.read_text())
        data["images"] = [im for im in data["images"] if im["codo_view"] == 0]
        keep = {im["id"] for im in data["images"]}
        data["annotations"] = [a for a in data["annotations"] if a["image_id"] in keep]
        single.write_text(json.dumps(data))
    return f"{single}:{folder / 'images'}"


def coco_sets(root: Path, out: Path, size: dict, arms: list[str]) -> dict[str, dict[str, str]]:
    """{arm: {train, val}} fine-tuning sets, synthesised onto the downstream backgrounds."""
    sets = {}
    for arm in arms:
        sets[arm] = {}
        for part, n, seed in (("train", size["ft_train"], 101), ("val", size["ft_val"], 102)):
            folder = out / "coco" / f"{arm}-{part}"
            if not (folder / "annotations" / "instances.json").is_file():
                run("aug", "synth", "--format", "coco", "--out", str(folder), "--num-samples", str(n),
                    "--seed", str(seed), "--instances", f"folder:{root}/instances/ft-{arm}/{part}",
                    "--backgrounds", f"folder:{root}/backgrounds/downstream-{part}",
                    "--set", f"view_sizes=[{size['ft_size']}, {size['ft_size']}]",
                    "--set", "instances=[2, 4]",
                    "--set", "scale=[0.2, 0.5]", "--set", 'jitter="none"', "--set", 'photometric="none"',
                    "--set", 'view_crop="off"')
            sets[arm][part] = one_view(folder)
    return sets


def pretrain(root: Path, out: Path, init: str, seed: int, size: dict, device: str) -> Path:
    """The exported weights of `init`'s pretraining run at `seed`."""
    objective, backgrounds = PRETRAIN[init]
    rundir = out / "runs" / f"{init}-s{seed}"
    weights = rundir / "weights.pth"
    if not weights.is_file():
        run("train", "run", "--config", str(out / "synth.toml"),
            "--instances", f"folder:{root}/instances/pretrain",
            "--backgrounds", f"folder:{root}/backgrounds/{backgrounds}", "--objective", objective,
            "--arch", "resnet18", "--steps", str(size["steps"]), "--batch-size", str(size["batch"]),
            "--seed", str(seed), "--workers", str(size["workers"]), "--device", device, "--out", str(rundir),
            *size.get("train", []))
        run("train", "export", str(rundir), "--out", str(weights))
    return weights


def health(rundir: Path) -> dict:
    """The last training-health figures of a run's metrics.jsonl (drift, collapse monitor)."""
    last = {}
    for line in (rundir / "metrics.jsonl").read_text().splitlines():
        record = json.loads(line)
        if "health" in record:
            last = record["health"]
    return last


def finetune(sets: dict, arm: str, weights: str, seed: int, size: dict, device: str, out: Path) -> dict:
    return run_json(out, "finetune", "--weights", weights, "--arch", "resnet18", "--coco", sets[arm]["train"],
                    "--val", sets[arm]["val"], "--iters", str(size["iters"]), "--lr", str(FT_LR),
                    "--min-size", str(size["ft_size"]), "--rois-per-image", str(size["rois"]),
                    "--proposals", str(size["proposals"]),
                    "--seed", str(seed), "--device", device)


def mean_std(xs: list[float]) -> str:
    pct = [100 * x for x in xs]
    std = statistics.stdev(pct) if len(pct) > 1 else 0.0
    return f"{statistics.mean(pct):.1f} ± {std:.1f}"


def table(results: dict, seeds: list[int]) -> str:
    """Markdown: per arm and init, mean ± std over seeds and the paired difference to random init."""
    metrics = (("bbox AP", "bbox", 0), ("bbox AP50", "bbox", 1), ("segm AP", "segm", 0))
    lines = []
    for arm, by_init in results["finetune"].items():
        lines += [f"\n**Fine-tuning classes {arm} with pretraining** ({len(seeds)} seeds, per cent)\n",
                  "| init | " + " | ".join(f"{m} | Δ {m}" for m, _, _ in metrics) + " |",
                  "|---|" + "---|---|" * len(metrics)]
        for init in (i for i in INITS if i in by_init):
            cells = []
            for _, kind, k in metrics:
                got = [by_init[init][s].get(kind, [0.0] * 12)[k] for s in seeds]
                base = [by_init["random"][s].get(kind, [0.0] * 12)[k] for s in seeds]
                cells += [mean_std(got),
                          "" if init == "random" else mean_std([g - b for g, b in zip(got, base)])]
            lines.append(f"| {init} | " + " | ".join(cells) + " |")
    if results["probe"]:
        lines += ["\n**Probe** (top-1 retrieval across two held-out backgrounds, per cent)\n",
                  "| init | top-1 | top-5 |", "|---|---|---|"]
        rows = {"random": [p["random_init"] for p in next(iter(results["probe"].values())).values()]}
        rows.update({init: [p["checkpoint"] for p in by_seed.values()]
                     for init, by_seed in results["probe"].items()})
        for init in (i for i in INITS if i in rows):
            top1, top5 = ([p[k] for p in rows[init]] for k in ("top1", "top5"))
            lines.append(f"| {init} | {mean_std(top1)} | {mean_std(top5)} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="cpu")
    parser.add_argument("--out", type=Path, default=Path("transfer-experiment"))
    parser.add_argument("--jobs", type=int, default=0,
                        help="commands run at once; 0: the size's own (2 cpu, 8 gpu)")
    parser.add_argument("--inits", default=",".join(INITS),
                        help="comma list of the inits to compare "
                             "(random is the baseline of every difference)")
    parser.add_argument("--arms", default=",".join(ARMS), help="comma list of the fine-tuning arms")
    parser.add_argument("--data", type=Path,
                        default=Path(os.environ.get("CODO_TEST_DATA") or REPO / ".cache" / "test-data"))
    args = parser.parse_args()
    inits, arms = args.inits.split(","), args.arms.split(",")
    for got, known in ((inits, INITS), (arms, ARMS)):
        if not set(got) <= set(known):
            parser.error(f"unknown {', '.join(sorted(set(got) - set(known)))}; "
                         f"choose from {', '.join(known)}")
    if "random" not in inits:
        parser.error("--inits must include random: every difference is taken to it")
    size, device = SIZES[args.size], os.environ.get("DEVICE", "cpu")
    for need in ("tuxpaint", "scratch"):
        if not (args.data / need).is_dir():
            sys.exit(f"transfer_experiment: no {args.data / need}; run scripts/fetch_test_data.sh")
    root = args.out / "data"
    split(args.data, root)
    sets = coco_sets(root, args.out, size, arms)
    (args.out / "synth.toml").write_text(f"[synth]\nview_sizes = {size['views']}\n")  # every run's views

    def pretrained(init: str, seed: int) -> tuple[dict, dict]:
        """Pretraining, export and probe of one init at one seed: its health and probe figures."""
        rundir = pretrain(root, args.out, init, seed, size, device).parent
        return health(rundir), run_json(
            args.out / "results" / f"probe-{init}-s{seed}.json", "probe", str(rundir),
            "--instances", f"folder:{root}/instances/ft-disjoint",  # never pretrained on
            "--backgrounds", f"folder:{root}/backgrounds/downstream-val",
            "--num-instances", str(size["probe"]), "--seed", str(seed), "--device", device)

    def tune(arm: str, init: str, seed: int) -> dict:
        weights = "none" if init == "random" else str(args.out / "runs" / f"{init}-s{seed}" / "weights.pth")
        return finetune(sets, arm, weights, seed, size, device,
                        args.out / "results" / f"ft-{arm}-{init}-s{seed}.json")

    jobs = args.jobs or size["jobs"]
    if jobs > 1:  # each job's torch threads get their share of the cores, or they all fight for every core
        os.environ.setdefault("OMP_NUM_THREADS", str(max(1, (os.cpu_count() or 1) // jobs)))
    results: dict = {"size": args.size, "device": device, "finetune": {}, "probe": {}, "health": {}}
    with ThreadPoolExecutor(jobs) as pool:  # first in, first run: pretraining first, then fine-tunes as ready
        runs = {pool.submit(pretrained, i, s): (i, s) for i in inits if i != "random" for s in size["seeds"]}
        tunes = {(a, "random", s): pool.submit(tune, a, "random", s)
                 for a in arms if "random" in inits for s in size["seeds"]}
        for done in as_completed(runs):
            init, seed = runs[done]
            (results["health"].setdefault(init, {})[seed],
             results["probe"].setdefault(init, {})[seed]) = done.result()
            tunes.update({(a, init, seed): pool.submit(tune, a, init, seed) for a in arms})
        for (arm, init, seed), future in sorted(tunes.items(),
                                                key=lambda kv: (kv[0][0], INITS.index(kv[0][1]))):
            results["finetune"].setdefault(arm, {}).setdefault(init, {})[seed] = future.result()
    text = table(results, size["seeds"])
    (args.out / "results.md").write_text(text)
    (args.out / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    print(text, end="")


if __name__ == "__main__":
    main()
