"""Settings from a TOML `--config` file and `--set key=value` overrides, as plain values."""

import tomllib
from pathlib import Path
from typing import Any

from codo_aug.errors import InputError
from codo_aug.settings import parse_value


def read_settings(config: Path | None, sets: list[str] | None, table: str) -> dict[str, Any]:
    """Settings for `table`: the file's [table] (its top level when the file has no tables), then each --set."""
    values: dict[str, Any] = {}
    if config is not None:
        try:
            data = tomllib.loads(config.read_text())
        except FileNotFoundError:
            raise InputError(f"--config {config}: no such file") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"--config {config}: cannot read it ({exc})") from None
        except tomllib.TOMLDecodeError as exc:
            raise InputError(f"--config {config}: not valid TOML ({exc})") from None
        tables = any(isinstance(v, dict) for v in data.values())
        section = data.get(table, {} if tables else data)  # a file of tables, or of plain settings
        if not isinstance(section, dict):
            raise InputError(f"--config {config}: [{table}] must be a table")
        values.update(section)
    for item in sets or []:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise InputError(f"--set expects key=value, got {item!r}")
        values[key.strip()] = parse_value(text.strip())
    return values
