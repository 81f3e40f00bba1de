"""Typed settings: build a frozen config dataclass from plain values (TOML, `--set key=value`).

Each value is checked against the field's annotation (int, float, str, bool, tuples of them, unions
such as `float | str`) so a wrong type fails in one line naming the field; range checks stay in the
dataclass itself.
"""

import dataclasses
import tomllib
import types
import typing
from typing import Any, TypeVar

from .errors import InputError

T = TypeVar("T")
_ONE = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}
_MANY = {int: "integers", float: "numbers", str: "strings", bool: "booleans"}


def require(ok: bool, name: str, value: Any, allowed: str) -> None:
    """InputError 'invalid NAME=VALUE: must be ALLOWED' unless `ok`."""
    if not ok:
        raise InputError(f"invalid {name}={value!r}: must be {allowed}")


def parse_value(text: str) -> Any:
    """A `--set` value: a TOML literal (1, 0.5, true, [0.2, 0.8], "x"), else the bare string."""
    try:
        return tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        return text


def _scalar(kind: type, value: Any, name: str) -> Any:
    if kind is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if kind is int and isinstance(value, int) and not isinstance(value, bool):
        return value
    if kind in (str, bool) and isinstance(value, kind):
        return value
    raise InputError(f"invalid {name}={value!r}: must be {_ONE[kind]}")


def _union(kinds: tuple[type, ...], value: Any, name: str) -> Any:
    """`value` as the first of `kinds` (e.g. float | str) it fits, or InputError listing them all."""
    for kind in kinds:
        try:
            return _scalar(kind, value, name)
        except InputError:
            pass
    raise InputError(f"invalid {name}={value!r}: must be {' or '.join(_ONE[k] for k in kinds)}")


def coerce(hint: Any, value: Any, name: str) -> Any:
    """`value` converted to the annotation `hint`, or InputError naming `name`."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return _union(typing.get_args(hint), value, name)
    if typing.get_origin(hint) is tuple:
        args = typing.get_args(hint)
        if isinstance(value, str) and args[0] is str:
            value = [value]  # a single mode stands for "the same for every view"
        variadic = len(args) == 2 and args[1] is Ellipsis
        kinds = [args[0]] * len(value) if variadic and isinstance(value, (list, tuple)) else list(args)
        shape = f"a list of {_MANY[args[0]]}" if variadic else f"a list of {len(args)} {_MANY[args[0]]}"
        if not isinstance(value, (list, tuple)) or len(value) != len(kinds):
            raise InputError(f"invalid {name}={value!r}: must be {shape}")
        try:
            return tuple(_scalar(k, v, name) for k, v in zip(kinds, value))
        except InputError:
            raise InputError(f"invalid {name}={list(value)!r}: must be {shape}") from None
    return _scalar(hint, value, name)


def build(cls: type[T], values: dict[str, Any], section: str = "") -> T:
    """An instance of dataclass `cls` from `values`; unknown keys and wrong types raise InputError."""
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        where = f" in [{section}]" if section else ""
        raise InputError(f"unknown setting(s){where}: {', '.join(unknown)} "
                         f"(known: {', '.join(sorted(known))})")
    return cls(**{k: coerce(hints[k], v, k) for k, v in values.items()})


def with_overrides(config: T, overrides: dict[str, Any]) -> T:
    """`config` with `overrides` applied (type-checked, range-checked by the dataclass)."""
    return build(type(config), {**dataclasses.asdict(config), **overrides})
