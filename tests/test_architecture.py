"""docs/architecture.md stays true: every registry its extension table names exists where it says, as a
{name: entry} table holding the built-ins; every module it names exists (but the `mine.py` an extension
adds)."""

import importlib
import re
from collections.abc import Mapping
from pathlib import Path

import pytest

DOC = (Path(__file__).resolve().parents[1] / "docs" / "architecture.md").read_text()
#: (registry, module) pairs of the extension table: "... in `NAME` (`path/to/module.py`)".
REGISTRIES = re.findall(r"in `([A-Z_]+)` \(`([\w/]+)\.py`\)", DOC)


def test_the_extension_table_names_its_registries():
    assert {name for name, _ in REGISTRIES} == {"OPENERS", "BLENDS", "FORMATS", "LOSSES", "PREDICTOR_INITS"}


@pytest.mark.parametrize("name, module", REGISTRIES)
def test_each_registry_is_where_the_document_says(name, module):
    table = getattr(importlib.import_module(module.replace("/", ".").removesuffix(".__init__")), name)
    assert isinstance(table, Mapping) and len(table) >= 2


def test_every_module_the_document_names_exists():
    root = Path(__file__).resolve().parents[1]
    named = set(re.findall(r"`((?:codo_aug|codo_train|cli)/[\w/]+\.py)`", DOC))
    named = {path for path in named if not path.endswith("/mine.py")}  # the file an extension adds
    assert named and [path for path in sorted(named) if not (root / path).is_file()] == []
