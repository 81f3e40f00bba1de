"""A `{name: entry}` registry (timm's register_model + create_model): built-in entries are named by where they
are defined ('module:attribute') and imported on first use, so that listing the names (a config's check, the
CLI's choices) loads no torch; more entries are added with `register` (a plug-in's one line)."""

import importlib
from typing import Iterator, Mapping, TypeVar

T = TypeVar("T")


class Registry(Mapping[str, T]):
    """`what` names the kind of entry in errors; `built_in` maps each built-in name to 'module:attribute'."""

    def __init__(self, what: str, built_in: dict[str, str]):
        self.what = what
        self._where = dict(built_in)
        self._entries: dict[str, T] = {}

    def register(self, name: str, entry: T) -> T:
        """Add `entry` under `name`; ValueError when the name is taken. Returns `entry`."""
        if name in self:
            raise ValueError(f"{self.what} {name!r} is registered already")
        self._entries[name] = entry
        return entry

    def __getitem__(self, name: str) -> T:
        if name not in self._entries and name in self._where:
            module, attribute = self._where[name].split(":")
            self._entries[name] = getattr(importlib.import_module(module), attribute)
        return self._entries[name]

    def __contains__(self, name: object) -> bool:
        return name in self._where or name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter([*self._where, *(n for n in self._entries if n not in self._where)])

    def __len__(self) -> int:
        return len(list(iter(self)))
