"""Settings from a TOML `--config` file and `--set key=value` overrides, as plain values."""

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from codo_aug.config import SynthConfig
from codo_aug.errors import InputError
from codo_aug.settings import parse_value

#: The tables a --config file may hold: engine settings and run settings.
SECTIONS = ("synth", "train")
#: {table: what puts its settings under today's names}: a file or --set may use a setting's old name.
RENAMED = {"synth": SynthConfig.upgrade}


def _read_toml(config: Path) -> dict[str, Any]:
    """The parsed file; InputError naming it when it is missing, unreadable or not TOML."""
    try:
        return tomllib.loads(config.read_text())
    except FileNotFoundError:
        raise InputError(f"--config {config}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"--config {config}: cannot read it ({exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"--config {config}: not valid TOML ({exc})") from None


def _section(config: Path, data: dict[str, Any], table: str, top_level: bool) -> dict[str, Any]:
    """The file's [table]; a file without tables is all `table`'s settings when `top_level` allows it.

    Unknown tables and settings beside tables are refused: they would otherwise be ignored in silence.
    """
    tables = sorted(k for k, v in data.items() if isinstance(v, dict))
    if not tables:
        return data if top_level else {}
    known = " or ".join(f"[{s}]" for s in SECTIONS)
    unknown = [f"[{t}]" for t in tables if t not in SECTIONS]
    if unknown:
        raise InputError(f"--config {config}: unknown section(s) {', '.join(unknown)} (known: {known})")
    loose = sorted(k for k in data if k not in tables)
    if loose:
        raise InputError(f"--config {config}: setting(s) outside any section ({', '.join(loose)}) in a file "
                         f"with sections; put them under {known}")
    return data.get(table, {})


def _set_key(key: str, main: str, reads: tuple[str, ...]) -> tuple[str, str]:
    """(table, setting) of a --set key: 'SECTION.name' names its table (one the command `reads`), a bare
    name is the command's `main` table's."""
    section, dot, name = key.rpartition(".")
    if not dot:
        return main, key
    if section not in reads or not name:
        raise InputError(f"--set {key}: a prefix names a section this command reads: "
                         f"{', '.join(reads)} (e.g. {reads[-1]}.name=value)")
    return section, name


def read_settings(config: Path | None, sets: list[str] | None, table: str, top_level: bool = True,
                  main: str | None = None, reads: tuple[str, ...] = ()) -> dict[str, Any]:
    """Settings for `table`: the file's [table] (with `top_level`, the whole file when it has no tables),
    then each --set of it: 'table.name=value', or a bare 'name=value' when `table` is the command's
    `main` one (by default `table` itself). A prefix may name any table the command `reads` (by default
    `main` and `table`; `codo-train run` reads [train] and [synth]); --sets of other tables are skipped
    here and read with those."""
    values: dict[str, Any] = {}
    renamed = RENAMED.get(table, dict)
    if config is not None:
        values.update(renamed(_section(config, _read_toml(config), table, top_level)))
    main = main or table
    reads = reads or tuple(dict.fromkeys((main, table)))
    for item in sets or []:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise InputError(f"--set expects key=value, got {item!r}")
        section, name = _set_key(key.strip(), main, reads)
        if section == table:
            values.update(renamed({name: parse_value(text.strip())}))
    return values


@dataclass(frozen=True)
class Given:
    """One table's settings as the user gave them: from the --config file, and on the command line (--set,
    options); the command line wins. Kept apart because a setting that cannot take effect is refused
    when typed, but only warned about in a file that may serve several commands."""

    config: Path | None
    file: dict[str, Any]
    typed: dict[str, Any]

    @property
    def values(self) -> dict[str, Any]:
        return {**self.file, **self.typed}


def given_settings(config: Path | None, sets: list[str] | None, table: str, top_level: bool = True,
                   main: str | None = None, reads: tuple[str, ...] = (),
                   merged: dict[str, Any] | None = None) -> Given:
    """read_settings of `table` with the file's settings apart from the typed ones: its --sets, and those of
    `merged` (the table as the command resolved it, options given included) that the file does not hold
    at that value."""
    file = read_settings(config, None, table, top_level, main, reads)
    typed = read_settings(None, sets, table, top_level, main, reads)
    options = {k: v for k, v in (merged or {}).items() if k not in typed and (k not in file or file[k] != v)}
    return Given(config, file, {**typed, **options})
