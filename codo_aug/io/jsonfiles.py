"""The JSON files codo writes (job files, indexes, manifests): the same data gives the same bytes, and
a file is read whole or taken as missing."""

import json

from .storage import Folder


def json_bytes(data: dict) -> bytes:
    """The JSON codo writes: indented, keys sorted, one trailing newline (same data, same bytes)."""
    return (json.dumps(data, indent=2, sort_keys=True) + "\n").encode()


def read_json(folder: Folder, name: str) -> dict | None:
    """Member `name` of `folder` as JSON; None when it is missing or does not parse."""
    data = folder.read_bytes(name)
    try:
        return None if data is None else json.loads(data)
    except ValueError:  # JSONDecodeError, UnicodeDecodeError
        return None


def write_json(folder: Folder, name: str, data: dict) -> None:
    """Member `name` of `folder` as JSON, written whole or not at all."""
    folder.write_bytes(name, json_bytes(data))
