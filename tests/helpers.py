"""Helpers for tests: run the installed console scripts as a user would."""

import os
import subprocess
import sys
from pathlib import Path

BIN = Path(sys.executable).parent


def cli(*args: str, env: dict | None = None, check: bool = False) -> subprocess.CompletedProcess:
    """Run `codo-aug` / `codo-train` from this interpreter's bin folder; `check` raises with its output."""
    proc = subprocess.run([str(BIN / args[0]), *args[1:]], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=900)
    if check and proc.returncode != 0:
        raise AssertionError(f"{args} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
    return proc
