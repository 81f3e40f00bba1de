"""The examples run as documented (kept short), so they cannot rot."""

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.mark.slow
@pytest.mark.parametrize("script, args, expect", [
    ("online_training_loop.py", ["--steps", "2", "--batch-size", "2", "--workers", "2"], "step 2: loss"),
    ("byo_ssl_transforms.py", ["--steps", "2"], "step 2: "),
])
def test_example_runs(script, args, expect):
    proc = subprocess.run([sys.executable, str(EXAMPLES / script), *args], capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert expect in proc.stdout
