"""The one atomic-write helper: all or nothing, and no temporary file left behind."""

import json

import pytest

from composer import atomic


def test_write_replaces_whole_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "a.json"
    atomic.write_json(path, {"x": 1})
    atomic.write_json(path, {"x": 2})
    assert json.loads(path.read_text()) == {"x": 2} and [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_a_failed_write_keeps_the_old_file(tmp_path):
    path = tmp_path / "t.parquet"
    atomic.write_bytes(path, b"old")
    with pytest.raises(RuntimeError):
        with atomic.atomic_path(path) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("writer died")
    assert path.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["t.parquet"]


def test_the_temporary_keeps_the_suffix_for_writers_that_sniff_it(tmp_path):
    with atomic.atomic_path(tmp_path / "fig.png") as tmp:
        assert tmp.suffix == ".png" and tmp.parent == tmp_path
        tmp.write_bytes(b"x")
