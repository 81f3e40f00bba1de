"""Does CoDo pretraining transfer to detection? The staged protocol of issue 24 (docs/results.md).

Inits compared at equal pretraining compute (same backbone, views, steps, batch and rate): random,
a supervised positive control (RoI classification on the pretraining instances' classes), image-level
BYOL, CoDo on generic backgrounds, and CoDo on the fine-tuning set's own (unlabelled) train backgrounds
(CoDo's premise). Each is probed (background-invariant retrieval of held-out instances) and fine-tuned
(Faster R-CNN, boxes only) on two low-label sets: one whose classes overlap the pretraining classes
(other files, as ImageNet's classes overlap COCO's) and one with classes pretraining never saw.

The work is split into units, one per (init, seed): pretraining, export, probe and both fine-tunes.
Each unit writes a small JSON file (figures, its last training-health record, the health gate's verdict
and its timing) under --results, committed to docs/transfer/SIZE/ for the cpu and gpu sizes; running the
script again skips every unit whose file exists, so the experiment survives interruptions and moves
between machines. Stage A (random init, supervised control) runs first; stage B (image, codo-generic,
codo-downstream) runs only once stage A shows that the control separates from random init.

    python examples/transfer_experiment.py --size cpu --stage A   # 2 CPU cores, <= 2 h
    python examples/transfer_experiment.py --size cpu --stage B   # after A separates, <= 4 h
    python examples/transfer_experiment.py --size cpu --report    # tables, summary.json, results.png
    DEVICE=cuda python examples/transfer_experiment.py --size gpu --stage all
    python examples/transfer_experiment.py --size smoke --out /tmp/x --results /tmp/x/units  # the test

Data: docs/data.md's tuxpaint cutouts and scratch photos (scripts/fetch_test_data.sh).
"""

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
DISJOINT = ("food", "plants", "vehicles")      # fine-tuning classes pretraining never sees
OVERLAP = ("animals", "household", "clothes")  # fine-tuning classes pretraining also has (other files)
DOWNSTREAM = "Outdoors"                        # the fine-tuning set's background domain
INITS = ("random", "supervised", "image", "codo-generic", "codo-downstream")
STAGES = {"A": ("random", "supervised"), "B": ("image", "codo-generic", "codo-downstream")}
ARMS = ("overlap", "disjoint")
#: init -> (objective, background pool) of its pretraining run
PRETRAIN = {"image": ("image", "generic"), "codo-generic": ("codo", "generic"),
            "codo-downstream": ("codo", "downstream-train"), "supervised": ("supervised", "generic")}
#: The stages each objective trains, which the health gate requires to have moved (image-level BYOL
#: leaves the box head at its init).
TRAINED = {"codo": ("stem", "layer1", "layer2", "layer3", "layer4", "fpn", "box_head"),
           "supervised": ("stem", "layer1", "layer2", "layer3", "layer4", "fpn", "box_head"),
           "image": ("stem", "layer1", "layer2", "layer3", "layer4", "fpn")}
#: Health gate (issue 24): every trained stage drifted >= MIN_DRIFT of its norm (where the GPU pilot's
#: probe saw the control), none more than MAX_SPREAD x the median stage, and the embeddings' std at
#: least half a uniform embedding's (1/sqrt(256) for the 256-d projections; SimSiam's collapse figure).
MIN_DRIFT, MAX_SPREAD, MIN_STD = 0.03, 10.0, 0.5 / 256 ** 0.5
#: Sizes, fixed before any transfer figure of that size was read (docs/results.md, "The CPU size").
#: cpu: 2 cores; a unit (one init at one seed) is pretraining + probe + two fine-tunes, <= 30 min.
SIZES = {
    "smoke": dict(steps=2, batch=2, lr=1.0, views=[64, 64, 32], ft_size=96, ft_train=6, ft_val=6, iters=2,
                  rois=64, proposals=100, freeze_at=2, probe=4, seeds=[0], workers=0, ft_jobs=2,
                  min_drift=0.0),
    "cpu": dict(steps=600, batch=16, lr=2.0, views=[64, 64, 32], ft_size=128, ft_train=100, ft_val=300,
                iters=300, rois=32, proposals=50, freeze_at=2, probe=100, seeds=[0, 1, 2], workers=1,
                ft_jobs=2),
    "gpu": dict(steps=150, batch=64, lr=1.0, views=[224, 224, 112], ft_size=320, ft_train=100, ft_val=300,
                iters=300, rois=128, proposals=300, freeze_at=2, probe=100, seeds=[0, 1, 2], workers=4,
                ft_jobs=2, train=["--amp", "bf16", "--channels-last"]),
}
#: cpu steps: 200 in attempts 1-2, 600 (the GPU pilot's 9,600 samples) from attempt 3 on (issue 24 point 4).
#: The probe's views are the size's largest pretraining view (issue 24, point 4, attempt 2: the cpu size's
#: first probe, at 224 px, showed objects 3.5x larger in pixels than its 64-px pretraining ever saw).
for _size in SIZES.values():
    _size.setdefault("probe_view", max(_size["views"]))
FT_LR = 0.08  # for 16 images (4x detectron2's 0.02: the runs are short); fixed before any run
START = time.monotonic()


def say(text: str) -> None:
    """A log line with the minutes since the start (the log shows where time goes)."""
    print(f"[{(time.monotonic() - START) / 60:5.1f} min] {text}", file=sys.stderr, flush=True)


def codo(*args: str, capture: bool = False, threads: int = 0) -> str:
    """One codo command from this interpreter's install (with `threads` torch threads, 0: torch's own
    choice); its errors stop the experiment."""
    module = "codo_cli.aug" if args[0] == "aug" else "codo_cli.train"
    say("+ codo-" + " ".join(args))
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)} if threads else None
    proc = subprocess.run([sys.executable, "-m", module, *args[1:]], check=True, text=True, env=env,
                          stdout=subprocess.PIPE if capture else sys.stderr)
    return proc.stdout if capture else ""


def write_json(path: Path, data: dict) -> None:
    """`data` as JSON at `path`, whole or not at all."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1) + "\n")
    tmp.replace(path)


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


def boxes_only(folder: Path) -> str:
    """The COCO set of `folder` restricted to view 0 (one image per composite: no two val images share
    instances) and to boxes (no masks: Faster R-CNN); returns the finetune argument JSON:IMAGES."""
    single = folder / "annotations" / "boxes-view0.json"
    if not single.is_file():
        data = json.loads((folder / "annotations" / "instances.json").read_text())
        data["images"] = [im for im in data["images"] if im["codo_view"] == 0]
        keep = {im["id"] for im in data["images"]}
        data["annotations"] = [{k: v for k, v in a.items() if k != "segmentation"}
                               for a in data["annotations"] if a["image_id"] in keep]
        write_json(single, data)
    return f"{single}:{folder / 'images'}"


def coco_sets(root: Path, out: Path, size: dict) -> dict[str, dict[str, str]]:
    """{arm: {train, val}} fine-tuning sets, synthesised onto the downstream backgrounds."""
    sets: dict[str, dict[str, str]] = {}
    for arm in ARMS:
        for part, n, seed in (("train", size["ft_train"], 101), ("val", size["ft_val"], 102)):
            folder = out / "coco" / f"{arm}-{part}"
            if not (folder / "annotations" / "instances.json").is_file():
                codo("aug", "synth", "--format", "coco", "--out", str(folder), "--num-samples", str(n),
                     "--seed", str(seed), "--instances", f"folder:{root}/instances/ft-{arm}/{part}",
                     "--backgrounds", f"folder:{root}/backgrounds/downstream-{part}", "--overwrite",
                     "--set", f"view_sizes=[{size['ft_size']}, {size['ft_size']}]",
                     "--set", "instances_per_sample=[2, 4]",
                     "--set", "scale=[0.2, 0.5]", "--set", 'jitter="none"', "--set", 'photometric="none"',
                     "--set", 'view_crop="off"')
            sets.setdefault(arm, {})[part] = boxes_only(folder)
    return sets


def last_health(rundir: Path) -> dict:
    """The last training-health record of a run's metrics.jsonl (drift per stage, embedding std)."""
    last: dict = {}
    for line in (rundir / "metrics.jsonl").read_text().splitlines():
        record = json.loads(line)
        if "drift" in record:
            last = {k: record[k] for k in ("step", "drift", "target_drift", "embedding_std", "loss")
                    if k in record}
    return last


def gate(objective: str, health: dict, min_drift: float = MIN_DRIFT) -> dict:
    """The health gate's verdict on a pretrained init: {"passed", "drift" (trained stages), "reasons"}."""
    drift = {s: health.get("drift", {}).get(s, 0.0) for s in TRAINED[objective]}
    median = statistics.median(drift.values())
    reasons = [f"{s} drifted {d:.4f} < {min_drift}" for s, d in drift.items() if d < min_drift]
    reasons += [f"{s} drifted {d:.4f} > {MAX_SPREAD:g}x the median {median:.4f}"
                for s, d in drift.items() if d > MAX_SPREAD * median]
    std = health.get("embedding_std")
    if std is not None and std < MIN_STD:
        reasons.append(f"embedding std {std:.4f} < {MIN_STD:.4f} (collapse)")
    return {"passed": not reasons, "drift": drift, "embedding_std": std, "reasons": reasons}


def random_probe(instances: str, backgrounds: str, n: int, seed: int, view: int, device: str) -> dict:
    """The probe of a randomly initialised model, as `codo-train probe` measures its random baseline."""
    code = ("import json, sys, torch\n"
            "from codo_train.evaluate.probe import probe_views, embed, retrieval_accuracy\n"
            "from codo_train.models.codo import CoDoModel\n"
            "instances, backgrounds, n, seed, view, device = sys.argv[1:]\n"
            "first, second = probe_views(instances, backgrounds, int(n), int(seed), int(view))\n"
            "torch.manual_seed(int(seed))\n"
            "model = CoDoModel('resnet18').to(device).eval()\n"
            "print(json.dumps(retrieval_accuracy(embed(model, first), embed(model, second))))\n")
    say(f"+ random-init probe, seed {seed}")
    return json.loads(subprocess.run([sys.executable, "-c", code, instances, backgrounds, str(n), str(seed),
                                      str(view), device], check=True, capture_output=True, text=True).stdout)


class Experiment:
    """The experiment's data, sizes and folders: `out` holds what is rebuilt at will (data split, COCO
    sets, run folders, weights), `results` the unit files worth committing."""

    def __init__(self, size_name: str, data: Path, out: Path, results: Path, device: str):
        self.size_name, self.size, self.device = size_name, SIZES[size_name], device
        self.out, self.results, self.root = out, results, out / "data"
        split(data, self.root)
        self.sets = coco_sets(self.root, out, self.size)

    def unit_file(self, init: str, seed: int) -> Path:
        return self.results / f"{init}-s{seed}.json"

    def weights(self, init: str, seed: int) -> Path:
        return self.out / "runs" / f"{init}-s{seed}" / "weights.pth"

    def pretrain(self, init: str, seed: int) -> dict:
        """Pretraining and export of `init` at `seed`: the run's last health record."""
        objective, backgrounds = PRETRAIN[init]
        weights = self.weights(init, seed)
        rundir = weights.parent
        s = self.size
        synth = self.out / "synth.toml"
        synth.write_text(f"[synth]\nview_sizes = {s['views']}\n")
        if not weights.is_file():
            codo("train", "run", "--config", str(synth),
                 "--instances", f"folder:{self.root}/instances/pretrain",
                 "--backgrounds", f"folder:{self.root}/backgrounds/{backgrounds}", "--objective", objective,
                 "--arch", "resnet18", "--steps", str(s["steps"]), "--batch-size", str(s["batch"]),
                 "--lr", str(s["lr"]), "--seed", str(seed), "--workers", str(s["workers"]),
                 "--device", self.device, "--out", str(rundir), *s.get("train", []))
            codo("train", "export", str(rundir), "--out", str(weights), "--overwrite")
        return last_health(rundir)

    def probe(self, weights: Path | None, seed: int) -> dict:
        """Top-1/top-5 retrieval of held-out-class instances across two held-out downstream backgrounds."""
        where = (f"folder:{self.root}/instances/ft-disjoint",
                 f"folder:{self.root}/backgrounds/downstream-val")
        view = self.size["probe_view"]
        if weights is None:
            return random_probe(*where, self.size["probe"], seed, view, self.device)
        text = codo("train", "probe", str(weights.parent), "--instances", where[0], "--backgrounds", where[1],
                    "--num-instances", str(self.size["probe"]), "--seed", str(seed), "--device", self.device,
                    "--view-size", str(view), "--json", capture=True)
        return json.loads(text)["checkpoint"]

    def finetune(self, arm: str, weights: Path | None, seed: int, threads: int) -> dict:
        """COCOeval's bbox figures after fine-tuning on `arm`'s low-label set."""
        s = self.size
        text = codo("train", "finetune", "--weights", str(weights or "none"), "--arch", "resnet18",
                    "--coco", self.sets[arm]["train"], "--val", self.sets[arm]["val"],
                    "--iters", str(s["iters"]), "--lr", str(FT_LR), "--min-size", str(s["ft_size"]),
                    "--rois-per-image", str(s["rois"]), "--proposals", str(s["proposals"]),
                    "--freeze-at", str(s["freeze_at"]), "--seed", str(seed), "--device", self.device,
                    "--json", capture=True, threads=threads)
        return json.loads(text)

    def run_unit(self, init: str, seed: int) -> dict:
        """One unit: pretraining (not for random init), probe, both fine-tunes (at once, the cores shared
        between them); its file, timed. Each finished part is kept under OUT/parts, so an interrupted unit
        goes on from its last part."""
        timing: dict[str, float] = {}

        def part(name: str, fn, *args, valid: bool = True):
            cache = self.out / "parts" / f"{init}-s{seed}" / f"{name}.json"
            if not (valid and cache.is_file()):
                t = time.monotonic()
                value = fn(*args)
                write_json(cache, {"value": value, "seconds": round(time.monotonic() - t, 1)})
            saved = json.loads(cache.read_text())
            timing[name] = saved["seconds"]
            return saved["value"]

        weights, health, verdict = None, {}, None
        if init != "random":
            weights = self.weights(init, seed)
            health = part("pretrain", self.pretrain, init, seed, valid=weights.is_file())
            verdict = gate(PRETRAIN[init][0], health, self.size.get("min_drift", MIN_DRIFT))
        probe = part(f"probe {self.size['probe_view']}px", self.probe, weights, seed)
        metrics = {"probe top-1": probe["top1"], "probe top-5": probe["top5"]}
        jobs = self.size["ft_jobs"]
        threads = max(1, (os.cpu_count() or 1) // jobs) if jobs > 1 else 0
        with ThreadPoolExecutor(jobs) as pool:
            tuned = {arm: pool.submit(part, f"finetune {arm}", self.finetune, arm, weights, seed, threads)
                     for arm in ARMS}
        for arm, future in tuned.items():
            stats = future.result()
            metrics[f"{arm} bbox AP"], metrics[f"{arm} bbox AP50"] = stats["bbox"][0], stats["bbox"][1]
        tunes = [timing[f"finetune {arm}"] for arm in ARMS]
        # the unit's time on a machine of its own: its parts in turn, the fine-tunes side by side
        timing["probe"] = timing.pop(f"probe {self.size['probe_view']}px")
        timing["total"] = round(timing.get("pretrain", 0) + timing["probe"]
                                + (max(tunes) if jobs > 1 else sum(tunes)), 1)
        unit = {"init": init, "seed": seed, "size": self.size_name, "probe_view": self.size["probe_view"],
                "metrics": metrics, "health": health,
                "gate": verdict, "timing_s": timing, "machine": f"{platform.node()} ({os.cpu_count()} cores)",
                "device": self.device}
        write_json(self.unit_file(init, seed), unit)
        return unit


def load_units(results: Path) -> dict[tuple[str, int], dict]:
    """Every unit file under `results`, by (init, seed)."""
    units = {}
    for path in sorted(results.glob("*-s*.json")):
        unit = json.loads(path.read_text())
        units[unit["init"], unit["seed"]] = unit
    return units


def paired(units: dict, metric: str, init: str, base: str, seeds: list[int]) -> tuple[float, float] | None:
    """Mean and std over seeds of `init`'s `metric` minus `base`'s at the same seed (None when a unit is
    missing, or `init` failed the health gate)."""
    rows = [(units.get((init, s)), units.get((base, s))) for s in seeds]
    if not all(a and b for a, b in rows) or not all(passed(a) and passed(b) for a, b in rows):
        return None
    diffs = [a["metrics"][metric] - b["metrics"][metric] for a, b in rows]
    return statistics.mean(diffs), statistics.stdev(diffs) if len(diffs) > 1 else 0.0


def passed(unit: dict) -> bool:
    return unit["gate"] is None or unit["gate"]["passed"]


def separates(diff: tuple[float, float] | None) -> bool:
    """The analysis plan's rule: a paired difference is real when its mean exceeds twice its std."""
    return diff is not None and diff[0] > 2 * diff[1]


def metric_names() -> list[str]:
    return ["probe top-1", "probe top-5"] + [f"{arm} bbox {m}" for arm in ARMS for m in ("AP", "AP50")]


def control_separates(units: dict, seeds: list[int]) -> tuple[bool, str]:
    """Stage A's verdict: the supervised control beats random init beyond 2 std on the probe (top-1) and on
    at least one detection metric."""
    diffs = {m: paired(units, m, "supervised", "random", seeds) for m in metric_names()}
    if any(d is None for d in diffs.values()):
        done = sorted(f"{i}-s{s}" for (i, s) in units if i in STAGES["A"])
        return False, f"stage A is not complete or failed its gate (done: {', '.join(done) or 'none'})"
    probe = separates(diffs["probe top-1"])
    detection = [m for m in metric_names()[2:] if separates(diffs[m])]
    text = "; ".join(f"{m} {100 * d[0]:+.1f} ± {100 * d[1]:.1f}" for m, d in diffs.items())
    return probe and bool(detection), text


def pct(xs: list[float]) -> str:
    values = [100 * x for x in xs]
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.1f} ± {std:.1f}"


def report(units: dict, seeds: list[int], results: Path) -> str:
    """Markdown tables (figures per init, paired differences, health, timing), summary.json and, with
    matplotlib, results.png beside the unit files."""
    inits = [i for i in INITS if all((i, s) in units for s in seeds)]
    metrics = metric_names()
    lines = [f"**Figures** ({len(seeds)} seeds, per cent, mean ± std)\n",
             "| init | " + " | ".join(metrics) + " |", "|---|" + "---|" * len(metrics)]
    for init in inits:
        cells = [pct([units[init, s]["metrics"][m] for s in seeds]) for m in metrics]
        lines.append(f"| {init} | " + " | ".join(cells) + " |")
    comparisons = [("supervised", "random"), ("codo-generic", "random"), ("codo-downstream", "random"),
                   ("codo-generic", "image"), ("codo-downstream", "image"),
                   ("codo-downstream", "codo-generic")]
    lines += ["\n**Paired differences** (per seed, then mean ± std; * marks mean > 2 std)\n",
              "| comparison | " + " | ".join(metrics) + " |", "|---|" + "---|" * len(metrics)]
    for a, b in comparisons:
        if a in inits and b in inits:
            cells = []
            for m in metrics:
                d = paired(units, m, a, b, seeds)
                cells.append("failed gate" if d is None else
                             f"{100 * d[0]:+.1f} ± {100 * d[1]:.1f}{' *' if separates(d) else ''}")
            lines.append(f"| {a} − {b} | " + " | ".join(cells) + " |")
    stages = TRAINED["codo"]
    lines += ["\n**Health gate** (last record: drift of each trained stage, embedding std)\n",
              "| run | passed | " + " | ".join(stages) + " | embedding std |",
              "|---|---|" + "---|" * (len(stages) + 1)]
    gates = {}
    for (init, seed), unit in sorted(units.items(), key=lambda kv: (INITS.index(kv[0][0]), kv[0][1])):
        if unit["gate"] is None:
            continue
        g = unit["gate"]
        gates[f"{init}-s{seed}"] = {"passed": g["passed"], "drift": g["drift"]}
        std = "-" if g["embedding_std"] is None else f"{g['embedding_std']:.4f}"
        lines.append(f"| {init}-s{seed} | {'yes' if g['passed'] else 'NO'} | "
                     + " | ".join(f"{g['drift'][s]:.4f}" if s in g["drift"] else "-" for s in stages)
                     + f" | {std} |")
    lines += ["\n**Timing** (minutes per unit part)\n", "| run | pretrain | probe | finetune overlap | "
              "finetune disjoint | total |", "|---|---|---|---|---|---|"]
    for (init, seed), unit in sorted(units.items(), key=lambda kv: (INITS.index(kv[0][0]), kv[0][1])):
        t = unit["timing_s"]
        cells = [t.get(k) for k in ("pretrain", "probe", "finetune overlap", "finetune disjoint", "total")]
        lines.append(f"| {init}-s{seed} | " + " | ".join("-" if c is None else f"{c / 60:.1f}" for c in cells)
                     + " |")
    summary = {"metrics": {m: {i: [units[i, s]["metrics"][m] for s in seeds] for i in inits}
                           for m in metrics}, "gate": gates}
    write_json(results / "summary.json", summary)
    figure(summary, results / "results.png")
    return "\n".join(lines) + "\n"


def figure(summary: dict, path: Path) -> None:
    """Bars with error bars (mean ± std over seeds) per init, one panel per metric; skipped without
    matplotlib (pip install matplotlib)."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        say("no matplotlib: results.png not drawn (pip install matplotlib)")
        return
    metrics = list(summary["metrics"])
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.2 * len(metrics), 3.4))
    for ax, metric in zip(axes, metrics):
        by_init = summary["metrics"][metric]
        names = list(by_init)
        means = [100 * statistics.mean(v) for v in by_init.values()]
        stds = [100 * statistics.stdev(v) if len(v) > 1 else 0.0 for v in by_init.values()]
        ax.bar(range(len(names)), means, yerr=stds, capsize=3, color=[f"C{INITS.index(n)}" for n in names])
        ax.set_xticks(range(len(names)), names, rotation=45, ha="right", fontsize=8)
        ax.set_title(metric, fontsize=9)
        ax.set_ylabel("per cent" if ax is axes[0] else "")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="cpu")
    parser.add_argument("--stage", choices=("A", "B", "all"), default="A",
                        help="A: random and supervised; B: the self-supervised inits, once A separates")
    parser.add_argument("--report", action="store_true", help="only the tables from the unit files")
    parser.add_argument("--max-units", type=int, default=0, help="stop after this many new units (0: all)")
    parser.add_argument("--out", type=Path, default=Path("transfer-experiment"),
                        help="scratch folder: data split, COCO sets, runs and weights")
    parser.add_argument("--results", type=Path, default=None,
                        help="unit files and the report (default: docs/transfer/SIZE in the repository)")
    parser.add_argument("--data", type=Path,
                        default=Path(os.environ.get("CODO_TEST_DATA") or REPO / ".cache" / "test-data"))
    args = parser.parse_args()
    size, results = SIZES[args.size], args.results or REPO / "docs" / "transfer" / args.size
    seeds = size["seeds"]
    if args.report:
        print(report(load_units(results), seeds, results), end="")
        return
    for need in ("tuxpaint", "scratch"):
        if not (args.data / need).is_dir():
            sys.exit(f"transfer_experiment: no {args.data / need}; run scripts/fetch_test_data.sh")
    xp = Experiment(args.size, args.data, args.out, results, os.environ.get("DEVICE", "cpu"))
    stages = ("A", "B") if args.stage == "all" else (args.stage,)
    done = 0
    for stage in stages:
        if stage == "B":
            ok, why = control_separates(load_units(results), seeds)
            say(f"stage A: the control {'separates' if ok else 'does not separate'}: {why}")
            if not ok and args.size != "smoke":
                say("stage B waits until the control separates (issue 24, point 4)")
                break
        for init in STAGES[stage]:
            for seed in seeds:
                if xp.unit_file(init, seed).is_file():
                    continue
                if args.max_units and done >= args.max_units:
                    say(f"stopping after {done} new unit(s) (--max-units)")
                    print(report(load_units(results), seeds, results), end="")
                    return
                unit = xp.run_unit(init, seed)
                done += 1
                verdict = "" if unit["gate"] is None else (
                    " gate: passed" if unit["gate"]["passed"] else " gate: FAILED: " + "; ".join(
                        unit["gate"]["reasons"]))
                say(f"unit {init}-s{seed} done in {unit['timing_s']['total'] / 60:.1f} min;{verdict}")
    print(report(load_units(results), seeds, results), end="")


if __name__ == "__main__":
    main()
