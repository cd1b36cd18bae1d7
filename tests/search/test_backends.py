"""The real MAD evaluator end to end at tiny size, and the parallel backends."""

import json

import pytest

from search.results.leaderboard import read_leaderboard
from tests.search.helpers import same_leaderboard

TINY_REAL = ("--depth", "2", "--budget", "2", "--protocol", "cpu", "--tasks", "in_context_recall",
             "--steps-scale", "0.04", "--sampler", "random", "--scale", "100M")


def test_real_mad_evaluator_tiny_search(tmp_path, monkeypatch):
    from cli.main import main

    monkeypatch.chdir(tmp_path)
    assert main(["search", "--quiet", *TINY_REAL, "--name", "real"]) == 0
    df = read_leaderboard(tmp_path / "runs" / "real")
    summary = json.loads((tmp_path / "runs" / "real" / "summary.json").read_text())
    assert len(df[df.phase == "search"]) == 2 and (df.status == "ok").all()
    assert df.protocol.eq("cpu[in_context_recall]@steps*0.04").all()
    assert (df.steps == 10).all() and (df.tokens > 0).all() and df.compile_s.notna().all()
    assert df.score.between(0, 1).all() and df.task_in_context_recall.notna().all()
    assert summary["proxy"]["score"] is not None and summary["target"]["scale"] == "100M"


def test_capacity_is_graded_memorization(tmp_path, monkeypatch):
    """``capacity``: one task (memorization of 1,023 facts)."""
    from cli.main import main
    from composer.mad.protocol import CAPACITY

    monkeypatch.chdir(tmp_path)
    assert main(["search", "--quiet", "--depth", "2", "--budget", "2", "--steps-scale", "0.1", "--sampler", "random",
                 "--final-seeds", "0", "--protocol", "capacity", "--name", "cap"]) == 0
    df = read_leaderboard(tmp_path / "runs" / "cap")
    assert (df.status == "ok").all() and df.protocol.eq("capacity@steps*0.1").all()
    assert [c for c in df.columns if c.startswith("task_")] == ["task_memorization"]
    assert (df.steps == 15).all() and df.score.between(0, 1).all()
    assert CAPACITY.settings["memorization"].num_facts == 1023


def test_the_default_protocol_is_real_text(tmp_path, monkeypatch):
    """The default, ``text``: a byte LM of the layout on the real-text corpus after 300 updates,
    scored ``1 - bpb / 8`` on held-out windows (here 10 of its updates)."""
    from cli.main import main

    monkeypatch.chdir(tmp_path)
    assert main(["search", "--quiet", "--depth", "2", "--budget", "2", "--steps-scale", "0.034", "--sampler", "random",
                 "--final-seeds", "0", "--name", "default"]) == 0
    df = read_leaderboard(tmp_path / "runs" / "default")
    assert (df.status == "ok").all() and df.protocol.eq("text@steps*0.034").all()
    assert [c for c in df.columns if c.startswith("task_")] == ["task_text_bpb"]
    assert (df.steps == 10).all() and (df.tokens == 10 * 16 * 128).all()
    assert (df.score - (1 - df.task_text_bpb / 8)).abs().max() < 1e-9 and df.score.lt(1).all()


def _exhaustive(cli, tmp_path, name, *extra):
    assert cli("--depth", "3", "--budget", "8", "--name", name, *extra) == 0
    return read_leaderboard(tmp_path / "runs" / name)




def test_worker_processes_give_the_same_leaderboard(cli, tmp_path):
    same_leaderboard(_exhaustive(cli, tmp_path, "one"), _exhaustive(cli, tmp_path, "two", "--workers", "2"))


@pytest.mark.ray
@pytest.mark.slow  # starting Ray takes most of a minute on 2 cores
def test_ray_backend_gives_the_same_leaderboard(cli, tmp_path):
    pytest.importorskip("ray")
    ray = _exhaustive(cli, tmp_path, "ray", "--backend", "ray", "--workers", "2")
    same_leaderboard(_exhaustive(cli, tmp_path, "local"), ray)


DRIVER = """
import os, sys, time
from search.backends import ProcessBackend
from search.evaluators import EvaluatorConfig
backend = ProcessBackend(EvaluatorConfig(kind="fake"), 2)
backend.run(["AM", "MA"])
print(" ".join(str(p) for p in backend._pool._processes), flush=True)
time.sleep(600)
"""


def test_workers_stop_when_their_driver_is_killed(tmp_path):
    """SIGKILL of the driver leaves no worker behind (each watches its parent)."""
    import os
    import signal
    import subprocess
    import sys
    import time

    proc = subprocess.Popen([sys.executable, "-c", DRIVER], stdout=subprocess.PIPE, text=True)
    workers = [int(p) for p in proc.stdout.readline().split()]
    assert len(workers) == 2
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()

    def alive(pid):
        try:
            with open(f"/proc/{pid}/stat") as f:
                return f.read().split()[2] != "Z"  # a zombie has exited
        except FileNotFoundError:
            return False

    deadline = time.time() + 90  # a worker still importing reaches its watch late on a loaded machine
    while time.time() < deadline and any(alive(p) for p in workers):
        time.sleep(0.2)
    assert not any(alive(p) for p in workers)


def test_a_proxy_that_learned_nothing_says_so(tmp_path, monkeypatch, capsys):
    """``capacity`` at a twentieth of its steps scores about 1/1024 for every layout: one warning line,
    and ``summary.json`` records the check."""
    from cli.main import main

    monkeypatch.chdir(tmp_path)
    assert main(["search", "--quiet", "--depth", "2", "--budget", "2", "--steps-scale", "0.05", "--sampler",
                 "random", "--final-seeds", "0", "--protocol", "capacity", "--name", "blind"]) == 0
    err = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    assert len(err) == 1 and "at chance level" in err[0] and "--steps-scale 0.05" in err[0]
    learning = json.loads((tmp_path / "runs" / "blind" / "summary.json").read_text())["learning"]
    assert learning["at_chance"] and learning["chance"] == pytest.approx(1 / 1024)


def test_learning_check_threshold():
    from search.results.reports import LearningCheck

    assert LearningCheck("capacity", 0.0011, 1 / 1024).at_chance
    assert not LearningCheck("capacity", 0.2, 1 / 1024).at_chance
    assert LearningCheck("text", 0.005, 0.0).at_chance and not LearningCheck("text", 0.4, 0.0).at_chance
    assert LearningCheck("capacity", 0.3, 1 / 1024).warning(0.1) is None
