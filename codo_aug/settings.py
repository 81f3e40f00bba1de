"""Typed settings: build a frozen config dataclass from plain values (TOML, `--set key=value`).

Each value is checked against the field's annotation (int, float, str, bool, tuples of them) so a
wrong type fails in one line naming the field; range checks stay in the dataclass itself.
"""

import dataclasses
import tomllib
import typing
from typing import Any, TypeVar

from .errors import InputError

T = TypeVar("T")
_NAMES = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}


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
    raise InputError(f"invalid {name}={value!r}: must be {_NAMES[kind]}")


def coerce(hint: Any, value: Any, name: str) -> Any:
    """`value` converted to the annotation `hint`, or InputError naming `name`."""
    if typing.get_origin(hint) is tuple:
        args = typing.get_args(hint)
        if isinstance(value, str) and args[0] is str:
            value = [value]  # a single mode stands for "the same for every view"
        if not isinstance(value, (list, tuple)):
            raise InputError(f"invalid {name}={value!r}: must be a list")
        if len(args) == 2 and args[1] is Ellipsis:
            return tuple(_scalar(args[0], v, name) for v in value)
        if len(value) != len(args):
            raise InputError(f"invalid {name}={value!r}: must be a list of {len(args)} values")
        return tuple(_scalar(a, v, name) for a, v in zip(args, value))
    return _scalar(hint, value, name)


def build(cls: type[T], values: dict[str, Any], section: str = "") -> T:
    """An instance of dataclass `cls` from `values`; unknown keys and wrong types raise InputError."""
    hints = typing.get_type_hints(cls)
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        where = f" in [{section}]" if section else ""
        raise InputError(f"unknown setting(s){where}: {', '.join(unknown)} (known: {', '.join(sorted(known))})")
    return cls(**{k: coerce(hints[k], v, k) for k, v in values.items()})


def with_overrides(config: T, overrides: dict[str, Any]) -> T:
    """`config` with `overrides` applied (type-checked, range-checked by the dataclass)."""
    return build(type(config), {**dataclasses.asdict(config), **overrides})
