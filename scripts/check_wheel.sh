#!/usr/bin/env bash
# Prove that a normal (non-editable) install works: build codo's wheel, install it into a fresh venv
# and run every command from that install on tiny sizes. Editable installs hide packaging bugs (a
# package missing from the wheel imports fine from the checkout).
#
#   scripts/check_wheel.sh                 # uses .venv/bin/python to build and for the dependencies
#   PYTHON=/path/to/python scripts/check_wheel.sh
#
# codo itself comes only from the wheel: the check runs outside the checkout and asserts that every
# codo module is imported from the fresh venv. Third-party dependencies (torch alone is several GB)
# are borrowed from PYTHON's environment through a .pth line; .pth files of that environment (an
# editable codo among them) are not processed that way, so they cannot leak codo in.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PY=${PYTHON:-$repo/.venv/bin/python}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "check_wheel: building the wheel"
"$PY" -m pip wheel "$repo" --no-deps --quiet --wheel-dir "$work/dist" 2>&1 | grep -v "is ignored" || true
wheel=$(ls "$work"/dist/codo-*.whl)
"$PY" -m venv "$work/venv"
venv_py=$work/venv/bin/python
site=$("$venv_py" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
"$PY" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])' > "$site/_codo_dependencies.pth"
"$venv_py" -m pip install --quiet --no-deps --no-index "$wheel"

cd "$work"  # nothing may be imported from the checkout
"$venv_py" - "$site" <<'EOF'
import importlib, pkgutil, sys
site = sys.argv[1]
import codo_aug, codo_train, codo_cli
for pkg in (codo_aug, codo_train, codo_cli):
    for mod in pkgutil.walk_packages(pkg.__path__, pkg.__name__ + "."):
        importlib.import_module(mod.name)
codo = sorted(name for name in sys.modules if name.split(".")[0] in ("codo_aug", "codo_train", "codo_cli"))
outside = [name for name in codo if not (getattr(sys.modules[name], "__file__", None) or site).startswith(site)]
if outside:
    sys.exit(f"check_wheel: modules imported from outside the fresh venv: {outside}")
print(f"check_wheel: {len(codo)} codo modules import from the wheel")
EOF

bin=$work/venv/bin
set -x
"$bin/codo-aug" --version
"$bin/codo-train" --version
"$bin/codo-aug" synth --out shards --num-samples 8 --shard-size 4 --set 'view_sizes=[96, 96, 64]'
"$bin/codo-aug" verify shards
"$bin/codo-aug" prepare sample --role instances --out prep-inst --set 'view_sizes=[96, 96, 64]'
"$bin/codo-aug" prepare sample --role backgrounds --out prep-bg --set 'view_sizes=[96, 96, 64]' --codec jpeg
"$bin/codo-aug" synth --instances prepared:prep-inst --backgrounds prepared:prep-bg --out prep-shards \
    --num-samples 4 --set 'view_sizes=[96, 96, 64]'
"$bin/codo-train" run --shards 'shards/*.tar' --steps 2 --arch resnet18 --batch-size 4 --device cpu --out run
"$bin/codo-train" export run --out weights.pth
"$bin/codo-train" probe run --instances sample --backgrounds sample --num-instances 4
"$bin/codo-aug" synth --format coco --out coco --num-samples 4 --set 'view_sizes=[128, 96]'
"$bin/codo-train" finetune --weights weights.pth --coco "coco/annotations/instances.json:coco/images" \
    --val "coco/annotations/instances.json:coco/images" --iters 2 --arch resnet18 --min-size 96 --json > stats.json
"$venv_py" -c 'import json; s = json.load(open("stats.json")); assert len(s["bbox"]) == 12, s'
set +x
echo "check_wheel: ok ($(basename "$wheel"))"
