#!/usr/bin/env bash
# Fetch the real test images of docs/data.md (Debian part) into a git-ignored cache, idempotently.
#
#   scripts/fetch_test_data.sh            # into <repo>/.cache/test-data
#   CODO_TEST_DATA=/some/dir scripts/fetch_test_data.sh
#
# Layout written (nothing of it may be committed: GPL / CC-BY-SA / Flickr terms):
#   $D/labelme_coco/annotations.json + JPEGImages/*.jpg   3 VOC photos, 12 polygon instances
#   $D/tuxpaint/<category path>/*.png                     real-photo RGBA stamps (alpha = mask)
#   $D/scratch/{Indoors,Nature,Outdoors,Sports}/*.jpg     480x360 scene photos (backgrounds)
#   $D/.complete                                          written last; its presence = done
#
# The set is built in $D.tmp.<pid> and moved into place at the end, so an interrupted run leaves
# nothing half-written. Without apt-get/dpkg, or when the packages cannot be downloaded as a
# non-root user, it prints one line and exits 0: the real-data tests then skip.
set -euo pipefail

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo_root=$(dirname "$script_dir")
D=${CODO_TEST_DATA:-$repo_root/.cache/test-data}
PY=${PYTHON:-python3}
PACKAGES=(labelme-examples tuxpaint-stamps-default scratch)

LABELME_DIR=usr/share/doc/labelme-examples/examples/instance_segmentation/data_dataset_coco
STAMPS_DIR=usr/share/tuxpaint/stamps
SCRATCH_DIR=usr/share/scratch/Media/Backgrounds
# Stamp folders that hold drawings, letters and symbols rather than photos (any path component).
STAMP_SKIP="cartoon alphabets symbols seasonal roadsigns flags space naturalforces medical"
# Scratch backgrounds that are drawings, not photos (basename without extension).
SCRATCH_SKIP="woods-and-bench school2 brick-wall1 party-room room1 room2 room3 spotlight-stage"

if [[ -e $D/.complete ]]; then
    echo "test data already in $D"
    exit 0
fi
for tool in apt-get dpkg; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "fetch_test_data: $tool not found (not a Debian system?); real-data tests will skip"
        exit 0
    fi
done
if ! "$PY" -c 'import numpy, PIL' >/dev/null 2>&1; then
    echo "fetch_test_data: $PY cannot import numpy and PIL (Pillow); set PYTHON to one that can" >&2
    exit 1
fi
if [[ -e $D && ! -d $D ]] || { [[ -d $D ]] && [[ -n $(ls -A "$D") ]]; }; then
    echo "fetch_test_data: $D exists, is not empty and lacks .complete; remove it and rerun" >&2
    exit 1
fi

start=$SECONDS
work=$(mktemp -d "${TMPDIR:-/tmp}/codo-test-data.XXXXXX")
build="$D.tmp.$$"
cleanup() { rm -rf "$work" "$build"; }
trap cleanup EXIT
trap 'exit 130' INT TERM HUP  # so the EXIT trap cleans up on a signal too

# --- download (apt-get update only when the package lists are missing or stale) ---------------
mkdir -p "$work/debs"
download() { (cd "$work/debs" && apt-get download -qq "${PACKAGES[@]}") >/dev/null 2>&1; }
if ! download; then
    if [[ $(id -u) -ne 0 ]]; then
        echo "fetch_test_data: apt-get download failed and not root (cannot apt-get update); real-data tests will skip"
        exit 0
    fi
    apt-get update -qq
    if ! download; then
        echo "fetch_test_data: apt-get download ${PACKAGES[*]} failed after apt-get update" >&2
        (cd "$work/debs" && apt-get download "${PACKAGES[@]}") >&2 || true
        exit 1
    fi
fi
for pkg in "${PACKAGES[@]}"; do
    debs=("$work/debs/${pkg}"_*.deb)
    [[ -f ${debs[0]} ]] || { echo "fetch_test_data: no .deb for $pkg was downloaded" >&2; exit 1; }
    dpkg -x "${debs[0]}" "$work/x"
done
x=$work/x

# --- lay out ----------------------------------------------------------------------------------
mkdir -p "$(dirname "$D")"
rm -rf "$build"
mkdir -p "$build"

# labelme COCO set: annotations.json + JPEGImages/ (file_name entries are JPEGImages/...).
mkdir -p "$build/labelme_coco"
cp "$x/$LABELME_DIR/annotations.json" "$build/labelme_coco/"
cp -r "$x/$LABELME_DIR/JPEGImages" "$build/labelme_coco/"

# Scratch backgrounds: photos only.
n_scratch=0
for sub in Indoors Nature Outdoors Sports; do
    mkdir -p "$build/scratch/$sub"
    for f in "$x/$SCRATCH_DIR/$sub"/*.jpg; do
        [[ -f $f ]] || continue
        name=$(basename "$f" .jpg)
        [[ " $SCRATCH_SKIP " == *" $name "* ]] && continue
        cp "$f" "$build/scratch/$sub/"
        n_scratch=$((n_scratch + 1))
    done
done

# Tux Paint stamps: PNGs with real transparency, photo folders only, no mirrored copies.
n_stamps=$("$PY" - "$x/$STAMPS_DIR" "$build/tuxpaint" "$STAMP_SKIP" <<'EOF'
import os
import shutil
import sys

import numpy as np
from PIL import Image

src, dst, skip = sys.argv[1], sys.argv[2], set(sys.argv[3].split())
kept = 0
for dirpath, dirnames, filenames in os.walk(src):
    rel_dir = os.path.relpath(dirpath, src)
    if skip & set(rel_dir.split(os.sep)):
        dirnames[:] = []
        continue
    dirnames.sort()
    for name in sorted(filenames):
        if not name.lower().endswith(".png") or name.endswith("_mirror.png"):
            continue
        path = os.path.join(dirpath, name)
        with Image.open(path) as im:
            if im.mode not in ("RGBA", "LA", "PA") and "transparency" not in im.info:
                continue
            alpha = np.asarray(im.convert("RGBA"))[:, :, 3]
        if alpha.min() == 255 or alpha.max() <= 127:  # no transparency, or nothing opaque
            continue
        os.makedirs(os.path.join(dst, rel_dir), exist_ok=True)
        shutil.copyfile(path, os.path.join(dst, rel_dir, name))
        kept += 1
print(kept)
EOF
)
n_labelme=$(find "$build/labelme_coco/JPEGImages" -name '*.jpg' | wc -l)

touch "$build/.complete"
if [[ -e $D/.complete ]]; then  # a concurrent run finished first: keep its copy
    echo "test data already in $D"
    exit 0
fi
[[ -d $D ]] && rmdir "$D"  # empty (checked above)
mv -T "$build" "$D"
echo "test data in $D ($((SECONDS - start)) s): tuxpaint: $n_stamps stamps, scratch: $n_scratch backgrounds, labelme: $n_labelme images"
