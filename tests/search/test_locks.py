"""One driver per run folder: a second one is refused while the first holds the lock, and a finished
run leaves no lock file behind."""

import multiprocessing

import pytest

from composer.errors import UsageError
from search.locks import run_lock


def _try_lock(run_dir, out):
    try:
        with run_lock(run_dir):
            out.put("got it")
    except UsageError as e:
        out.put(str(e))


def test_a_second_driver_is_refused_and_a_finished_run_leaves_no_lock(tmp_path):
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    with run_lock(tmp_path / "run"):
        assert (tmp_path / "run" / ".lock").exists()
        p = ctx.Process(target=_try_lock, args=(tmp_path / "run", out))
        p.start()
        p.join(60)
        assert "is in use by another `composer search`" in out.get(timeout=5)
    assert not (tmp_path / "run" / ".lock").exists()
    with run_lock(tmp_path / "run"):  # taken again after it was removed
        pass


def test_the_lock_is_released_when_the_run_fails(tmp_path):
    with pytest.raises(RuntimeError):
        with run_lock(tmp_path / "run"):
            raise RuntimeError("boom")
    with run_lock(tmp_path / "run"):
        pass
    assert not (tmp_path / "run" / ".lock").exists()
