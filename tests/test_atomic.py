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


def test_results_get_the_users_file_mode_not_0600(tmp_path, monkeypatch):
    """``mkstemp`` makes 0600 files; a leaderboard or summary must be readable as any file of the user's."""
    import stat

    from composer import atomic
    from composer.atomic import write_text

    monkeypatch.setattr(atomic, "_UMASK", 0o022)  # the common default, whatever this shell's is
    path = write_text(tmp_path / "summary.json", "{}\n")
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
