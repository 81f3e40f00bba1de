"""`prepared:DIR`: a source read from a store written by `codo-aug prepare` (codo_aug.prepare), its
items already cut and resized, so that reading one is a slice of a memory map instead of a decode.

DIR (a local folder or an object-storage prefix, `prepared:s3://bucket/store`) holds per part k
`part-NNNNN.bin` (the items' pixels back to back, in the store's codec) and `part-NNNNN.json` (PartIndex;
per item: the original item, offset, byte count, shape, form, original size, file header size), and
`prepared.json` (the manifest, written last). The default codec `raw` keeps uint8 pixels as they are,
H x W x C bytes an item (a 500x375 RGB image: 563 kB; 7x the JPEGs on the Scratch test photos), read as
zero-copy, read-only views; `jpeg` (RGB at quality 95, alpha as PNG
where not opaque) is 7-8x smaller than raw there, but decodes. A store in object storage is read
through fsspec: its manifest and indexes when it opens, each part's pixels fetched whole on first use
into $CODO_CACHE/prepared/DIGEST/ (keyed by the manifest, so a store rebuilt in place is fetched again)
and memory mapped from there: one process of the machine fetches a part while the others wait for it.
"""

import fcntl
import hashlib
import json
import logging
import mmap
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Callable, Iterator

import cv2
import numpy as np

from ..config import SynthConfig
from ..errors import InputError
from ..geometry.placement import crop_rect
from ..errors import RunError
from ..io.atomic import atomic_open, left_by_dead_process, temp_pattern
from ..io.cache import cache_dir
from ..io.storage import Folder, UrlFolder, folder_at, input_errors, is_url, local_path
from .base import Item, Source
from .cutout import crop_box, grabcut
from .decode import BadImage
from .sizing import CutNeed, SizeRule
from .skips import SkipLog

log = logging.getLogger("codo_aug.sources")

MANIFEST = "prepared.json"
FORMAT = "codo-prepared"
FORMAT_VERSION = 2
#: Forms of a stored item: cut at prepare time, or the whole image (cut by a random rect at use).
CUT, WHOLE = "cut", "whole"
#: Parts kept mapped per source and process: a map holds a file descriptor while referenced, and a store
#: of ImageNet (1281 parts of 1000) would pass the usual limit of 1024 in every DataLoader worker.
MAX_MAPS = 64
#: Cutout modes that cut every item alike in Source.cutout: 'box' takes the alpha, mask, xml box or
#: random rect exactly as 'auto' does.
SAME_CUT = {"box": "auto"}


def part_name(part: int, suffix: str) -> str:
    """`part-NNNNN.bin` (pixels) or `part-NNNNN.json` (its index)."""
    return f"part-{part:05d}.{suffix}"


@dataclass(frozen=True)
class Codec:
    """How item pixels become bytes in a part and back."""

    encode: Callable[[np.ndarray], bytes]
    decode: Callable[[np.ndarray, tuple[int, ...]], np.ndarray]


def _jpeg_encode(pixels: np.ndarray) -> bytes:
    """RGB as JPEG q95, then (when not all opaque) alpha as PNG; a 4-byte length leads the JPEG."""
    bgr = cv2.cvtColor(np.ascontiguousarray(pixels[:, :, :3]), cv2.COLOR_RGB2BGR)
    data = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, 95])[1].tobytes()
    alpha = b""
    if pixels.shape[2] == 4 and not (pixels[:, :, 3] == 255).all():
        alpha = cv2.imencode(".png", np.ascontiguousarray(pixels[:, :, 3]))[1].tobytes()
    return len(data).to_bytes(4, "little") + data + alpha


def _jpeg_decode(blob: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """The pixels `_jpeg_encode` wrote (alpha 255 where it stored none)."""
    n = int.from_bytes(blob[:4].tobytes(), "little")
    rgb = cv2.cvtColor(cv2.imdecode(blob[4:4 + n], cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    if shape[2] == 3:
        return rgb
    alpha = (cv2.imdecode(blob[4 + n:], cv2.IMREAD_GRAYSCALE) if len(blob) > 4 + n
             else np.full(shape[:2], 255, np.uint8))
    return np.dstack([rgb, alpha])


#: {name: Codec}: `raw` (default: no decode at all) and `jpeg` (a smaller store that decodes).
CODECS: dict[str, Codec] = {
    "raw": Codec(lambda pixels: np.ascontiguousarray(pixels).tobytes(),
                 lambda blob, shape: blob.reshape(shape)),
    "jpeg": Codec(_jpeg_encode, _jpeg_decode),
}


@dataclass(frozen=True)
class Entry:
    """Where one item's pixels lie (part, offset, nbytes), their `shape`, their `form` (CUT or WHOLE),
    the original `size` (w, h) they were resized from, and the `header` size (w, h) of the item's file,
    which the file source judges its minimum side on when it opens."""

    part: int
    offset: int
    nbytes: int
    shape: tuple[int, ...]
    form: str
    size: tuple[int, int]
    header: tuple[int, int]

    @property
    def scale(self) -> tuple[float, float]:
        """Stored pixels per original pixel, across and down."""
        return self.shape[1] / self.size[0], self.shape[0] / self.size[1]


def _record(item: Item, entry: Entry) -> dict:
    """One item of a part's index, as JSON."""
    return {"path": item.path, "label": item.label, "cutout": item.cutout,
            "box": None if item.box is None else list(item.box), "offset": entry.offset,
            "nbytes": entry.nbytes, "shape": list(entry.shape), "form": entry.form, "size": list(entry.size),
            "header": list(entry.header)}


def _from_record(part: int, rec: dict) -> tuple[Item, Entry]:
    box = None if rec["box"] is None else tuple(rec["box"])
    return (Item(rec["path"], rec["label"], rec["cutout"], box=box),
            Entry(part, rec["offset"], rec["nbytes"], tuple(rec["shape"]), rec["form"], tuple(rec["size"]),
                  tuple(rec["header"])))


@dataclass(frozen=True)
class PartIndex:
    """A part's index (`part-NNNNN.json`): its pixel file's byte count, its items with where their pixels
    lie, and the files of its range that failed (path: reason)."""

    part: int
    bytes: int
    items: tuple[tuple[Item, Entry], ...]
    skipped: dict[str, str]

    def to_dict(self) -> dict:
        return {"part": self.part, "bytes": self.bytes, "items": [_record(*it) for it in self.items],
                "skipped": dict(sorted(self.skipped.items()))}

    @classmethod
    def from_dict(cls, data: dict) -> "PartIndex":
        """The index JSON holds; KeyError or TypeError when it is not one."""
        part = data["part"]
        return cls(part, data["bytes"], tuple(_from_record(part, rec) for rec in data["items"]),
                   dict(data["skipped"]))


@dataclass(frozen=True)
class Manifest:
    """What a store's reader needs of `prepared.json`: its role, the original source, the SizeRule (as a
    dict), cutout mode, codec and minimum side it was prepared with, each part's byte count, the files
    skipped, and a digest of the whole file (PreparedSource.manifest_digest)."""

    role: str
    source: dict
    rule: dict
    cutout: str | None
    codec: str
    min_side: int
    part_bytes: tuple[int, ...]
    skipped: dict[str, str]
    digest: str

    @classmethod
    def from_dict(cls, data: dict) -> "Manifest":
        """The manifest JSON holds; KeyError or TypeError when it lacks a key."""
        return cls(data["role"], data["source"], data["rule"], data["cutout"], data["codec"],
                   data["min_side"], tuple(part["bytes"] for part in data["parts"]), dict(data["skipped"]),
                   hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest())


@contextmanager
def damaged(where: object) -> Iterator[None]:
    """A store's missing keys, wrong types or undecodable pixels (an edited or half-copied store) as one
    InputError naming `where`, not a traceback from deep in the reader."""
    try:
        yield
    except InputError:
        raise
    except (KeyError, TypeError, ValueError, AttributeError, IndexError, cv2.error) as exc:
        why = " ".join(str(exc).split())  # cv2's messages span lines
        raise InputError(f"prepared source: {where} is damaged ({type(exc).__name__}: {why}); prepare it "
                         "again with --overwrite") from None


def _map(path: Path) -> np.ndarray:
    """The whole file as a read-only uint8 array over a shared memory map."""
    with open(path, "rb") as fh:
        return np.frombuffer(mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ), np.uint8)


def _whole(path: Path, size: int) -> bool:
    return path.is_file() and path.stat().st_size == size


def _copy(store: UrlFolder, name: str, path: Path) -> None:
    """Member `name` of `store` into `path`, whole or not at all: the store's errors are InputErrors naming
    it, the local file's are OSErrors."""
    url = store.child(name)
    with atomic_open(path) as dst:
        with input_errors(url):
            src = store.open(name)
        with src:
            while True:
                with input_errors(url):
                    chunk = src.read(1 << 20)
                if not chunk:
                    break
                dst.write(chunk)


def _fetched(store: UrlFolder, name: str, size: int, digest: str) -> Path:
    """Member `name` (`size` bytes, as the manifest says) of a store in object storage, as a local file in
    the cache: fetched whole on first use by one process of the machine while the others wait for it (a
    lock file beside it), through a temporary file; a cached file of another size is fetched again."""
    folder = cache_dir() / "prepared" / digest[:16]
    path = folder / name
    if _whole(path, size):
        return path
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with open(folder / f".{name}.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes, also if this process dies
            if _whole(path, size):  # another process fetched it meanwhile
                return path
            for tmp in folder.glob(temp_pattern(name)):  # a killed fetch's leftover
                if left_by_dead_process(tmp.name):
                    tmp.unlink(missing_ok=True)
            _copy(store, name, path)
    except OSError as exc:  # the cache, not the store: a read-only or full $CODO_CACHE
        raise RunError(f"cannot cache {store.child(name)} in {folder} ({exc.strerror or exc}); set "
                       "CODO_CACHE to a folder with room for the store") from None
    if not _whole(path, size):
        got = path.stat().st_size
        path.unlink(missing_ok=True)
        raise InputError(f"prepared source: {store.child(name)} holds {got} bytes, its manifest says {size}; "
                         "the store changed or is damaged: prepare it again with --overwrite")
    return path


@dataclass
class PreparedSource(Source):
    """A Source over a prepared store: `entries[i]` locates item i's pixels; `cutout_mode` is the
    SynthConfig.cutout its instances were cut with (None for backgrounds); `rule` the SizeRule it was
    sized by (as a dict); `prepared_from` describes the original source; `manifest_digest` tells a store
    rebuilt in place from the one a job started on. Parts are mapped on first use in
    each process, the MAX_MAPS last used kept (never pickled)."""

    entries: list[Entry] = field(default_factory=list)
    cutout_mode: str | None = None
    codec: str = "raw"
    prepared_from: dict = field(default_factory=dict)
    rule: dict = field(default_factory=dict)
    manifest_digest: str = ""
    part_bytes: tuple[int, ...] = ()
    _maps: dict[int, np.ndarray] = field(default_factory=dict, repr=False, compare=False)

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_maps": {}}

    @cached_property
    def store(self) -> Folder:
        """The folder or prefix the store lies in."""
        return folder_at(self.root)

    def describe(self) -> dict:
        return {**super().describe(), "prepared_from": self.prepared_from}

    def identity(self) -> dict:
        return {"manifest_digest": self.manifest_digest}

    def check(self, config: SynthConfig) -> None:
        """Refuse a `config` whose cutout mode the store was not cut with; warn when its views or pastes
        are larger than the store was sized for (they enlarge its pixels)."""
        if self.role == "instances":
            self._check_mode(config.cutout)
        if self.rule.get("max_side") is not None:
            return
        needs = SizeRule.from_config(config)
        key = "paste" if self.role == "instances" else "view"
        if getattr(needs, key) > self.rule[key]:
            log.warning("prepared source %s was sized for a %s of %g px, the config asks for %g: its pixels "
                        "are enlarged", self.root, key, self.rule[key], getattr(needs, key))

    def _blob(self, part: int) -> np.ndarray:
        """Part `part`'s pixel file, mapped; the least recently used map is dropped past MAX_MAPS (its file
        closes once no view of it is left)."""
        blob = self._maps.pop(part, None)
        if blob is None:
            name = part_name(part, "bin")
            store = self.store
            blob = _map(_fetched(store, name, self.part_bytes[part], self.manifest_digest)
                        if isinstance(store, UrlFolder) else store.path / name)
            while len(self._maps) >= MAX_MAPS:
                del self._maps[next(iter(self._maps))]
        self._maps[part] = blob
        return blob

    def pixels(self, i: int) -> np.ndarray:
        """Item i's stored pixels: a read-only view of the part's memory map for the raw codec."""
        e = self.entries[i]
        with damaged(self.store.child(part_name(e.part, "bin"))):
            return CODECS[self.codec].decode(self._blob(e.part)[e.offset:e.offset + e.nbytes], e.shape)

    def _check_mode(self, how: str) -> None:
        if SAME_CUT.get(how, how) != SAME_CUT.get(self.cutout_mode, self.cutout_mode):
            raise InputError(f"prepared source {self.root} was cut with cutout={self.cutout_mode!r}, but the "
                             f"config asks for cutout={how!r}; a cut cannot be redone from the store: "
                             f"prepare it again with --set cutout={how}")

    def _path(self, i: int) -> str:
        """Item i's original file, as the original source names it in skips."""
        return str(Path(self.prepared_from["root"]) / self.items[i].path)

    def background(self, i: int, size: int | None = None, crop_area: float = 1.0) -> np.ndarray:
        """Item i as stored (already as small as the store's views allow)."""
        return self.pixels(i)

    def cutout(self, i: int, rect: tuple[float, float, float, float], how: str = "auto",
               min_side: int = 1, need: CutNeed | None = None) -> np.ndarray:
        """As Source.cutout: a cut item as stored; a whole image cut by the random `rect` (placed on the
        original size, scaled to the stored one). `min_side` is judged on the original pixels; `need` is
        not used (the store is already as small as its config allows)."""
        self._check_mode(how)
        e, pixels = self.entries[i], self.pixels(i)
        if e.form == CUT:
            cut, size = pixels, e.size
        else:
            sx, sy = e.scale
            x, y, cw, ch = crop_rect(*e.size, *rect)
            box = (x * sx, y * sy, (x + cw) * sx, (y + ch) * sy)
            cut = grabcut(pixels, box) if how == "grabcut" else crop_box(pixels, box)
            size = (cw, ch) if how != "grabcut" else (round(cut.shape[1] / sx), round(cut.shape[0] / sy))
        if min(size) < min_side:
            raise BadImage("too-small", self._path(i), f"cutout {size[0]}x{size[1]} < {min_side} px")
        return cut

    def rectangular(self, i: int, how: str = "auto") -> bool:
        self._check_mode(how)
        return super().rectangular(i, how)


def read_manifest(store: Folder) -> Manifest:
    """The finished store's manifest; InputError when `store` holds no finished store of this format."""
    data = store.read_bytes(MANIFEST)
    if data is None:
        why = "an unfinished store (run its codo-aug prepare command again to finish it)" \
            if store.names("part-*.bin") else "not a prepared store"
        raise InputError(f"prepared source: {store} is {why}: no {MANIFEST}")
    try:
        manifest = json.loads(data)
    except ValueError as exc:
        raise InputError(f"prepared source: cannot read {store.child(MANIFEST)}: {exc}") from None
    if manifest.get("format") != FORMAT or manifest.get("format_version") != FORMAT_VERSION:
        raise InputError(f"prepared source: {store.child(MANIFEST)} is not a {FORMAT} v{FORMAT_VERSION} "
                         "manifest")
    return Manifest.from_dict(manifest)


def _read_part(store: Folder, part_bytes: int, k: int) -> tuple[tuple[Item, Entry], ...]:
    """Part k's items; InputError when its pixel file is missing or not the size its index says."""
    size = store.size(part_name(k, "bin"))
    if size != part_bytes:
        holds = "is missing" if size is None else f"holds {size} bytes"
        raise InputError(f"prepared source: {store.child(part_name(k, 'bin'))} {holds}, its index says "
                         f"{part_bytes}; the store is damaged: prepare it again with --overwrite")
    data = store.read_bytes(part_name(k, "json"))
    if data is None:
        raise InputError(f"prepared source: the index of part {k} in {store} is missing; the store is "
                         "damaged: prepare it again with --overwrite")
    try:
        index = json.loads(data)
    except ValueError as exc:
        raise InputError(f"prepared source: cannot read the index of part {k} in {store} ({exc}); the store "
                         "is damaged: prepare it again with --overwrite") from None
    return PartIndex.from_dict(index).items


def open_prepared(text: str, role: str, min_side: int = 1) -> PreparedSource:
    """Open the store `text` (a folder or a URL prefix) for `role`. Under a `min_side` above the one it was
    prepared with, items whose file's header size is under it a side are skipped and counted, as the file
    source does when it opens (their cuts are judged when used, by `cutout`)."""
    store = folder_at(text if is_url(text) else Path(local_path(text)).expanduser())
    with damaged(store), input_errors(f"prepared source: {store}"):
        return _open_store(store, role, min_side)


def _open_store(store: Folder, role: str, min_side: int) -> PreparedSource:
    """open_prepared on `store` (a damaged store's KeyError and the like pass to `damaged`)."""
    manifest = read_manifest(store)
    if manifest.role != role:
        raise InputError(f"prepared source: {store} holds {manifest.role}, not {role}")
    skipped = SkipLog(dict(manifest.skipped))
    items, entries = [], []
    for k, part_bytes in enumerate(manifest.part_bytes):
        for item, entry in _read_part(store, part_bytes, k):
            if min_side > manifest.min_side and min(entry.header) < min_side:
                skipped.add(BadImage("too-small", str(Path(manifest.source["root"]) / item.path),
                                     f"{entry.header[0]}x{entry.header[1]} < {min_side} px"))
                continue
            items.append(item)
            entries.append(entry)
    if not items:
        raise InputError(f"prepared source: no usable {role} in {store}; {skipped.summary()}")
    root = store.url if isinstance(store, UrlFolder) else store.path
    return PreparedSource("prepared", root, items, skipped, role, entries, manifest.cutout, manifest.codec,
                          manifest.source, manifest.rule, manifest.digest, manifest.part_bytes)
