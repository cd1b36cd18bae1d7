"""``--backend ray`` on a real two-node Ray cluster on 127.0.0.1, and an actor killed mid-evaluation.

The cluster is started as in docs/distributed.md: a head and a second node, each with one CPU and
its own custom resource, so the two workers of a search land one on each node. Its processes are found
by the cluster's temp folder and killed by pid (what ``ray stop --force`` does, without touching any other
Ray on the machine), and none may be left behind. The nodes carry an injected fault (``FAKE_FAULT_ENV``)
that stays disarmed while its marker file exists: deleting the marker makes the next evaluation of AMA,
on whichever node, kill its actor's process once.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import pytest

from search.evaluators.fake import FAKE_FAULT_ENV
from search.results.leaderboard import read_leaderboard

pytestmark = pytest.mark.ray
ray = pytest.importorskip("ray")
psutil = pytest.importorskip("psutil")

from search.ray_backend import LOCAL_ONLY_ENV  # noqa: E402 - after the skip: it needs no Ray, but the tests do
from tests.search.helpers import evaluated_trials, same_leaderboard  # noqa: E402

BIN = Path(sys.executable).parent
ARGS = ("--depth", "3", "--budget", "8")
SEARCH = ("--evaluator", "fake", "--quiet", *ARGS)
# Ray 2.x on Linux rewrites 127.0.0.1 as the machine's network address when a second node joins (and refuses
# LOCAL_ONLY_ENV=0 for it); the ray CLI with that rewrite switched off keeps the node on 127.0.0.1.
NODE_CLI = ("import sys; import ray._private.services as s; s.resolve_ip_for_localhost = lambda host: host; "
            "from ray.scripts.scripts import main; sys.argv[0] = 'ray'; sys.exit(main())")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS" and k != LOCAL_ONLY_ENV}
    # No token authentication: a token would be written to the user's home (Ray's default for ray.init).
    env.update(RAY_USAGE_STATS_ENABLED="0", RAY_AUTH_MODE="disabled", **extra)
    return env


def _ours(tag: str) -> list:
    """Live processes whose command line names ``tag`` (our temp folder), with their descendants."""
    found = {}
    for p in psutil.process_iter(["cmdline"]):
        if any(tag in part for part in p.info["cmdline"] or ()):
            try:
                for q in [p, *p.children(recursive=True)]:
                    found[q.pid] = q
            except psutil.Error:
                pass
    return list(found.values())


def _gone(tag: str, timeout: float = 15.0) -> bool:
    """Whether our processes have all exited within ``timeout`` seconds."""
    end = time.time() + timeout
    while _ours(tag):
        if time.time() > end:
            return False
        time.sleep(0.5)
    return True


def _stop(tag: str) -> None:
    """Kill our Ray processes (``ray stop --force`` for this cluster only)."""
    procs = _ours(tag)
    for p in procs:
        with contextlib.suppress(psutil.Error):
            p.kill()
    psutil.wait_procs(procs, timeout=10)


def _ray(temp: str, *args: str, node: bool = False, **env: str) -> None:
    cmd = [sys.executable, "-c", NODE_CLI] if node else [str(BIN / "ray")]
    out = subprocess.run([*cmd, *args, "--temp-dir", temp, "--disable-usage-stats"], env=_env(**env),
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]


@pytest.fixture(scope="module")
def cluster():
    """``(address, fault marker)`` of a head (1 CPU, resource ``head``) and a second node (1 CPU, ``node2``)
    on 127.0.0.1."""
    temp = tempfile.mkdtemp(prefix="rc")  # short: Ray's socket paths must stay under 108 characters
    port, marker = _free_port(), Path(temp) / "fault-disarmed"
    marker.touch()
    fault = {FAKE_FAULT_ENV: f"exit:{marker}:AMA"}
    try:
        _ray(temp, "start", "--head", "--node-ip-address", "127.0.0.1", "--port", str(port), "--num-cpus", "1",
             "--num-gpus", "0", "--resources", '{"head": 1}', "--include-dashboard", "false",
             "--object-store-memory", "100000000", **{LOCAL_ONLY_ENV: "0"}, **fault)
        _ray(temp, "start", "--address", f"127.0.0.1:{port}", "--node-ip-address", "127.0.0.1", "--num-cpus", "1",
             "--num-gpus", "0", "--resources", '{"node2": 1}', "--object-store-memory", "100000000", node=True,
             **fault)
        yield f"127.0.0.1:{port}", marker
    finally:
        _stop(temp)
        assert _gone(temp), "Ray processes left behind"
        shutil.rmtree(temp, ignore_errors=True)


def _search(run_dir: Path, name: str, *args: str) -> subprocess.CompletedProcess:
    """``composer search`` in a process of its own (a Ray driver), in ``run_dir``."""
    out = subprocess.run([str(BIN / "composer"), "search", *SEARCH, "--name", name, *args], cwd=run_dir,
                         env=_env(), capture_output=True, text=True, timeout=240)
    (run_dir / f"{name}.stderr").write_text(out.stderr)  # kept with the run for a failing test's reader
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    return out






def _where(df: pd.DataFrame) -> pd.DataFrame:
    """Node address, node id and worker pid of each row, from ``device``."""
    return df.device.str.extract(r"@ ray node (?P<ip>\S+) (?P<node>[0-9a-f]+) pid (?P<pid>\d+)$")


def test_search_on_a_two_node_cluster_uses_both_nodes_and_matches_local(cluster, cli, tmp_path):
    address, _ = cluster
    start = time.time()
    _search(tmp_path, "ray", "--backend", "ray", "--ray-address", address, "--workers", "2")
    ray_df = read_leaderboard(tmp_path / "runs" / "ray")
    assert cli(*ARGS, "--name", "local", "--backend", "local") == 0
    same_leaderboard(read_leaderboard(tmp_path / "runs" / "local"), ray_df)
    where = _where(ray_df)
    assert where.notna().all().all(), ray_df.device.tolist()
    assert (where.ip == "127.0.0.1").all()
    assert where.node.nunique() == 2, where.value_counts()  # one worker per 1-CPU node: both nodes evaluated
    print(f"\nevaluations per node: {where.node.value_counts().to_dict()} ({time.time() - start:.1f} s)")
    summary = json.loads((tmp_path / "runs" / "ray" / "summary.json").read_text())
    assert summary["evaluations"]["search"] == len(ray_df[ray_df.phase == "search"]) == 8


def test_an_actor_killed_mid_evaluation_is_redone_and_counted_once(cluster, cli, tmp_path):
    address, marker = cluster
    marker.unlink()  # arms the fault: the first evaluation of AMA kills its actor's process (os._exit)
    out = _search(tmp_path, "killed", "--backend", "ray", "--ray-address", address, "--workers", "2")
    assert marker.exists(), "the fault should have fired"
    assert "retrying AMA" in out.stderr and "ActorDiedError" in out.stderr
    assert cli(*ARGS, "--name", "clean", "--backend", "local") == 0
    killed = read_leaderboard(tmp_path / "runs" / "killed")
    same_leaderboard(read_leaderboard(tmp_path / "runs" / "clean"), killed)
    ama = killed[(killed.pattern == "AMA") & (killed.phase == "search")]
    assert len(ama) == 1 and (ama.status == "ok").all()
    keys = evaluated_trials(tmp_path / "runs" / "killed")
    assert len(keys) == len(set(keys)) == len(evaluated_trials(tmp_path / "runs" / "clean"))
    assert _where(killed).pid.nunique() == 3  # the two first actors, and the one that replaced the killed one


def test_a_worker_the_cluster_cannot_hold_is_a_usage_error(cluster, cli, capsys, monkeypatch):
    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    assert cli(*ARGS, "--name", "gpu", "--backend", "ray", "--ray-address", cluster[0], "--gpus-per-worker", "1") == 2
    assert not ray.is_initialized()
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith("composer search: error: --cpus-per-worker/--gpus-per-worker: no node of the Ray cluster "
                           "has 1 CPU and 1 GPU"), last
    assert "lower --gpus-per-worker" in last


def test_an_address_nobody_answers_at_is_a_usage_error(cli, capsys):
    assert cli(*ARGS, "--name", "nobody", "--backend", "ray", "--ray-address", f"127.0.0.1:{_free_port()}") == 2
    err = capsys.readouterr().err
    assert "--ray-address: no Ray cluster answers at 127.0.0.1:" in err and "ray start --head" in err
