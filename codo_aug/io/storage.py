"""Where files live: a local folder (plain file I/O; complete files renamed into place) or a URL prefix
(s3://, gs://, https://, ... through fsspec: objects uploaded whole once complete, read as streams).

Credentials and endpoints come from the storage's own conventions (for S3: AWS_ACCESS_KEY_ID,
AWS_SECRET_ACCESS_KEY, AWS_ENDPOINT_URL, AWS_PROFILE, ...); codo stores none of them.
"""

import fnmatch
import io
import logging
import re
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO, Callable, Iterator, TypeVar

from ..errors import InputError
from .atomic import atomic_open

log = logging.getLogger("codo_aug.shards")
T = TypeVar("T")

_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*)://")
_BRACES = re.compile(r"\{([^{}]*)\}")
_RANGE = re.compile(r"(\d+)\.\.(\d+)")
#: Transient read errors are retried this many times, waiting BACKOFF_S x 2^attempt before each.
RETRIES = 4
BACKOFF_S = 0.5
INSTALL_HINT = "pip install 'codo[s3]' (fsspec, s3fs)"


def is_url(where: str) -> bool:
    """Whether `where` names remote storage (a scheme other than file://)."""
    m = _SCHEME.match(where)
    return bool(m) and m.group(1).lower() != "file"


def local_path(where: str) -> str:
    """`where` without a file:// prefix."""
    return where[len("file://"):] if where.startswith("file://") else where


def expand_braces(pattern: str) -> list[str]:
    """WebDataset's brace notation: '{000..099}' a zero-padded range (the width of its first bound),
    '{a,b}' alternatives; several braces multiply, left to right; other braces stay as they are."""
    m = _BRACES.search(pattern)
    if not m:
        return [pattern]
    body, head, tail = m.group(1), pattern[:m.start()], pattern[m.end():]
    rng = _RANGE.fullmatch(body)
    if rng:
        lo, hi = rng.groups()
        alts = [f"{i:0{len(lo)}d}" for i in range(int(lo), int(hi) + 1)]
    elif "," in body:
        alts = body.split(",")
    else:
        alts = ["{" + body + "}"]
    return [head + a + rest for a in alts for rest in expand_braces(tail)]


def split_location(where: str) -> tuple[str, str]:
    """(folder, name) of a shard path or URL."""
    folder, _, name = local_path(where).rstrip("/").rpartition("/")
    return folder or ".", name


def _exceptions(*builtin: type[BaseException], **optional: str) -> tuple[type[BaseException], ...]:
    """`builtin`, plus each exception class `name=module` of the packages that are installed."""
    kinds = list(builtin)
    for name, module in optional.items():
        try:
            kinds.append(getattr(__import__(module, fromlist=[name]), name))
        except ImportError:
            pass
    return tuple(kinds)


def remote_errors() -> tuple[type[BaseException], ...]:
    """The exceptions a remote file system raises for unreachable, missing or refused storage."""
    return _exceptions(OSError, TimeoutError, BotoCoreError="botocore.exceptions",
                       ClientError="botocore.exceptions", ClientConnectionError="aiohttp",
                       ClientPayloadError="aiohttp", ClientResponseError="aiohttp")


def final_errors() -> tuple[type[BaseException], ...]:
    """Errors no retry mends: a missing or refused object, and a server that refuses connections (botocore
    and aiohttp retry connecting themselves)."""
    return _exceptions(FileNotFoundError, PermissionError, ConnectionRefusedError,
                       EndpointConnectionError="botocore.exceptions", ClientConnectorError="aiohttp")


def _refused(exc: BaseException) -> bool:
    """An HTTP answer that asking again will not change: 4xx other than timeout (408) and throttling (429)."""
    status = getattr(exc, "status", None)
    return isinstance(status, int) and 400 <= status < 500 and status not in (408, 429)


def url_fs(url: str):
    """(fsspec file system, path inside it) of a URL; InputError naming what to install when missing."""
    try:
        from fsspec.core import url_to_fs
    except ImportError:
        raise InputError(f"{url}: reading and writing URLs needs fsspec: {INSTALL_HINT}") from None
    try:
        return url_to_fs(url)
    except ImportError as exc:  # fsspec knows the scheme, its package is missing (s3fs, gcsfs, aiohttp)
        raise InputError(f"{url}: {exc}".splitlines()[0] + f" ({INSTALL_HINT})") from None
    except ValueError as exc:  # an unknown scheme
        raise InputError(f"{url}: {exc}") from None


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


@contextmanager
def input_errors(where: str) -> Iterator[None]:
    """Remote storage that cannot be reached, does not exist or refuses access, as a one-line InputError."""
    try:
        yield
    except InputError:
        raise
    except remote_errors() as exc:
        raise InputError(f"{where}: {_one_line(exc)}") from None


def with_retries(attempt: Callable[[], T], name: str, on_error: Callable[[], None] = lambda: None,
                 backoff_s: float = BACKOFF_S) -> T:
    """attempt(), tried again after a transient error (on_error() first) up to RETRIES times, waiting
    backoff_s x 2^n; final_errors() and refused requests (HTTP 4xx) fail at once."""
    for n in range(RETRIES + 1):
        try:
            return attempt()
        except final_errors():
            raise
        except (*remote_errors(), EOFError) as exc:
            if _refused(exc):
                raise
            on_error()
            if n == RETRIES:
                raise OSError(f"{name}: gave up after {RETRIES} retries ({_one_line(exc)})") from None
            wait = backoff_s * 2 ** n
            log.warning("reading %s failed (%s); retrying in %.1f s", name, _one_line(exc), wait)
            time.sleep(wait)
    raise AssertionError("unreachable")


class RetryingReader(io.RawIOBase):
    """A read stream that reopens its source at the current offset after a transient error (with_retries)."""

    def __init__(self, opener: Callable[[], BinaryIO], name: str, backoff_s: float = BACKOFF_S):
        super().__init__()
        self.opener, self.name, self.backoff_s = opener, name, backoff_s
        self.pos, self.fh = 0, None

    def readable(self) -> bool:
        return True

    def _reopen(self) -> BinaryIO:
        fh = self.opener()
        try:
            fh.seek(self.pos)
        except (ValueError, OSError):  # a stream that cannot seek (fsspec's HTTP stream): read up to pos
            left = self.pos
            while left:
                chunk = fh.read(min(left, 1 << 20))
                if not chunk:
                    raise EOFError(f"{self.name} ended at {self.pos - left} bytes on reopening")
                left -= len(chunk)
        return fh

    def _read(self, size: int) -> bytes:
        if self.fh is None:
            self.fh = self._reopen()
        return self.fh.read(size)

    def readinto(self, buffer) -> int:
        data = with_retries(lambda: self._read(len(buffer)), f"{self.name} at byte {self.pos}", self._drop,
                            self.backoff_s)
        buffer[:len(data)] = data
        self.pos += len(data)
        return len(data)

    def _drop(self) -> None:
        if self.fh is not None:
            try:
                self.fh.close()
            except Exception:  # a broken connection may fail to close too; it is dropped either way
                pass
            self.fh = None

    def close(self) -> None:
        self._drop()
        super().close()


def open_stream(where: str) -> BinaryIO:
    """A buffered read stream of a local file or a URL (read as it arrives, never copied to disk)."""
    if not is_url(where):
        return open(local_path(where), "rb")
    fs, path = url_fs(where)
    # http(s) servers need not serve byte ranges: read those as one stream
    kwargs = {"block_size": 0} if fs.protocol in ("http", "https") or "http" in fs.protocol else {}
    return io.BufferedReader(RetryingReader(lambda: fs.open(path, "rb", **kwargs), where), 1 << 20)


class Folder:
    """A local folder of a job's files, addressed by member name ('codo-000000.tar',
    '_index/codo-000000.json', 'part-00000.bin'). Writes are complete-or-nothing: through a hidden file
    renamed into place."""

    def __init__(self, where: str | Path):
        self.path = Path(local_path(str(where)))

    def __str__(self) -> str:
        return str(self.path)

    def child(self, name: str) -> str:
        """The path (or URL) of member `name`."""
        return str(self.path / name)

    def exists(self, name: str = "") -> bool:
        return (self.path / name).exists()

    def names(self, pattern: str) -> list[str]:
        """Sorted names of the members matching a glob `pattern` ('*.tar', '_index/*.json')."""
        return sorted(p.relative_to(self.path).as_posix() for p in self.path.glob(pattern))

    def read_bytes(self, name: str) -> bytes | None:
        """The member's bytes; None when it does not exist."""
        try:
            return (self.path / name).read_bytes()
        except (FileNotFoundError, NotADirectoryError):
            return None

    def size(self, name: str) -> int | None:
        p = self.path / name
        return p.stat().st_size if p.is_file() else None

    def open(self, name: str) -> BinaryIO:
        return open_stream(self.child(name))

    def remove(self, name: str) -> None:
        (self.path / name).unlink(missing_ok=True)

    @contextmanager
    def writer(self, name: str) -> Iterator[BinaryIO]:
        """A file to write member `name` into; it appears whole when the block ends, or not at all."""
        (self.path / name).parent.mkdir(parents=True, exist_ok=True)
        with atomic_open(self.path / name) as fh:
            yield fh

    def write_bytes(self, name: str, data: bytes) -> None:
        with self.writer(name) as fh:
            fh.write(data)


class UrlFolder(Folder):
    """A prefix in object storage (or any fsspec file system). Objects are uploaded whole once complete
    (object stores have no rename), so an object exists only when complete; members are read as streams."""

    def __init__(self, url: str):
        self.url = url.rstrip("/")
        self.fs, self.root = url_fs(self.url)
        self.root = self.root.rstrip("/")

    def __reduce__(self):
        """Rebuilt from its URL in the process it is sent to (a worker opens its own connection)."""
        return UrlFolder, (self.url,)

    def __str__(self) -> str:
        return self.url

    def child(self, name: str) -> str:
        return f"{self.url}/{name}"

    def _p(self, name: str) -> str:
        return f"{self.root}/{name}" if name else self.root

    def exists(self, name: str = "") -> bool:
        self.fs.invalidate_cache()  # other processes and machines write to the same prefix
        with input_errors(self.child(name)):
            return bool(self.fs.exists(self._p(name)))

    def names(self, pattern: str) -> list[str]:
        """Members matching `pattern` (a glob on the name below the prefix; '*' stays within one level)."""
        folder, _, leaf = pattern.rpartition("/")
        with input_errors(self.url):
            try:  # refresh: other processes and machines write here too
                listed = with_retries(lambda: self.fs.ls(self._p(folder), detail=False, refresh=True),
                                      self.child(folder))
            except FileNotFoundError:
                return []
        prefix = f"{self._p(folder)}/"
        found = [p[len(prefix):] for p in listed if p.startswith(prefix)]
        return sorted(f"{folder}/{n}" if folder else n for n in found if fnmatch.fnmatchcase(n, leaf))

    def read_bytes(self, name: str) -> bytes | None:
        with input_errors(self.child(name)):
            try:
                with self.open(name) as fh:
                    return fh.read()
            except FileNotFoundError:
                return None

    def size(self, name: str) -> int | None:
        with input_errors(self.child(name)):
            try:
                return int(self.fs.info(self._p(name))["size"])
            except FileNotFoundError:
                return None

    def remove(self, name: str) -> None:
        with input_errors(self.child(name)):
            if self.fs.exists(self._p(name)):
                self.fs.rm_file(self._p(name))

    @contextmanager
    def writer(self, name: str) -> Iterator[BinaryIO]:
        """A local temporary file, uploaded as object `name` in one piece when the block ends well."""
        with tempfile.NamedTemporaryFile(prefix=".codo-upload-", suffix=".part") as tmp:
            yield tmp
            tmp.flush()
            with input_errors(self.child(name)):
                self.fs.put_file(tmp.name, self._p(name))
        self.fs.invalidate_cache(self.root)

    def write_bytes(self, name: str, data: bytes) -> None:
        with input_errors(self.child(name)):
            self.fs.pipe_file(self._p(name), data)
        self.fs.invalidate_cache(self.root)


def folder_at(where: str | Path) -> Folder:
    """The Folder for a local path, a file:// URL or a remote URL."""
    where = str(where)
    return UrlFolder(where) if is_url(where) else Folder(where)
