"""codo_aug.jobs: what the synth and prepare jobs share, by hand."""

import pytest

from codo_aug.errors import InputError
from codo_aug.jobs import Split, check_same_job, resolve_specs, run_units, start_units


def test_split_gives_each_node_its_units_and_each_unit_its_items():
    split = Split(10, 4, nodes=2, rank=1)
    assert (split.count, split.mine(), list(split.members(1)), list(split.members(2))) == (
        3, [1], [4, 5, 6, 7], [8, 9])
    assert Split(10, 4).mine() == [0, 1, 2] and Split(8, 4, 3, 2).mine() == []


def test_same_job_check_names_what_differs_and_what_overwrite_discards():
    check_same_job("out", {"a": 1, "b": 2}, {"b": 2, "a": 1}, "part", 3)
    with pytest.raises(InputError, match="holds a different prepare job \\(differs in: a, c\\); .* or pass "
                                         "--overwrite \\(discards the 3 finished parts\\)$"):
        check_same_job("out", {"a": 1, "b": 2}, {"a": 3, "b": 2, "c": 0}, "part", 3, "prepare ")
    with pytest.raises(InputError, match="^--out out holds shards of an unknown job; choose a new directory "
                                         "or pass --overwrite \\(discards the 1 finished shard\\)$"):
        check_same_job("out", None, {}, "shard", 1)
    with pytest.raises(InputError, match="pass --overwrite$"):  # nothing finished, nothing to discard
        check_same_job("out", None, {}, "shard", 0)


def test_same_job_check_reads_an_old_job_files_specs_as_places(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    old = {"seed": 0, "source_identity": {"instances": {"spec": "folder:imgs/", "items": 3}}}
    spec = f"folder:{tmp_path.resolve()}/imgs"
    new = {"seed": 0, "source_identity": {"instances": {"spec": spec, "items": 3}}}
    assert resolve_specs(old) == new
    check_same_job("out", old, new, "shard", 2)


def _write(state: tuple, unit: int) -> int:
    offset, progress = state
    progress()
    return unit + offset


def test_units_report_progress_for_done_units_and_in_process_items():
    seen, started = [], []
    start_units(Split(10, 4), [0, 2], started.append, lambda: seen.append("done"))
    assert started == [10] and seen == ["done"] * 6  # units 0 (4 items) and 2 (2 items)
    results = list(run_units(_write, [1], (100,), 1, lambda: seen.append("item"), lambda r: 99))
    assert results == [101] and seen[6:] == ["item"]
