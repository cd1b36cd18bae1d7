"""Two drivers on one PostgreSQL storage share a run (search.claims): nothing evaluated twice, nothing lost,
and the same leaderboard as one driver alone on an exhaustively searched space.

The server is a real PostgreSQL from the ``pgserver`` wheel (the ``postgres`` extra), started on 127.0.0.1 at a
free port with its data in a temporary folder, and stopped at the end.
"""

from __future__ import annotations

import collections
import importlib.util
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna
import pandas as pd
import pytest

from search.evaluators.fake import FAKE_SLEEP_ENV
from search.results.leaderboard import DETERMINISTIC_COLUMNS, read_leaderboard
from search.study_attrs import CLAIM, DRIVER, KEY, ROW, STATUS

ARGS = ["--evaluator", "fake", "--quiet", "--depth", "4", "--sampler", "exhaustive", "--budget", "24", "--seed", "3",
        "--workers", "2", "--final-seeds", "2"]
"""16 layouts at rung 0, 8 more seeds in rung 1, the final check and its rescoring at 2 fresh seeds."""
COMPARED = [c for c in DETERMINISTIC_COLUMNS if c != "eval_index"] + ["rung", "part"]
"""eval_index numbers each driver's own rows; everything else is the same."""


def _bin_dir() -> Path:
    if importlib.util.find_spec("pgserver") is None:
        pytest.skip("the PostgreSQL server package pgserver is not installed (pip install -e '.[postgres]')")
    pytest.importorskip("psycopg2", reason="the PostgreSQL driver psycopg2 is not installed "
                                           "(pip install -e '.[postgres]')")
    return Path(importlib.util.find_spec("pgserver").submodule_search_locations[0]) / "pginstall" / "bin"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _as_user() -> dict:
    """PostgreSQL refuses to run as root: then run the server as the unprivileged ``nobody``."""
    if os.geteuid() != 0:
        return {}
    import pwd

    nobody = pwd.getpwnam("nobody")
    return {"user": nobody.pw_uid, "group": nobody.pw_gid, "extra_groups": []}


def _reachable(bindir: Path, root: Path, who: dict) -> Path:
    """The binaries where ``who`` can run them: inside a folder only root may enter (a checkout under /root),
    a copy in ``root``."""
    if not who or all(p.stat().st_mode & stat.S_IXOTH for p in (bindir, *bindir.parents)):
        return bindir
    site = bindir.parents[2]  # site-packages: pgserver/pginstall/bin, and the libraries in pgserver.libs
    for part in ("pgserver/pginstall", "pgserver.libs"):
        if (site / part).exists():
            shutil.copytree(site / part, root / "site" / part, symlinks=True)
    return root / "site" / "pgserver" / "pginstall" / "bin"


def _connect(port: int, dbname: str = "postgres"):
    import psycopg2

    return psycopg2.connect(host="127.0.0.1", port=port, user="postgres", dbname=dbname, connect_timeout=5)


@pytest.fixture
def postgres_url():
    """``postgresql+psycopg2://postgres@127.0.0.1:PORT/composer`` on a fresh server, stopped afterwards."""
    bindir, who = _bin_dir(), _as_user()
    # Not tmp_path: pytest keeps it in a folder only its owner may enter, and the server may run as nobody.
    root = Path(tempfile.mkdtemp(prefix="composer-pg-"))
    server = None
    try:
        if who:
            os.chown(root, who["user"], who["group"])
        bindir = _reachable(bindir, root, who)
        data, log = root / "data", root / "server.log"
        subprocess.run([str(bindir / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "--no-locale",
                        "--encoding=UTF8", "--no-sync"], check=True, capture_output=True, timeout=120, **who)
        port = _free_port()
        with open(log, "wb") as out:
            server = subprocess.Popen([str(bindir / "postgres"), "-D", str(data), "-h", "127.0.0.1", "-p", str(port),
                                       "-k", str(root), "-c", "fsync=off", "-c", "synchronous_commit=off",
                                       "-c", "full_page_writes=off"], stdout=out, stderr=subprocess.STDOUT, **who)
        deadline = time.time() + 60
        while True:
            try:
                conn = _connect(port)
                break
            except Exception:
                if server.poll() is not None or time.time() > deadline:
                    raise RuntimeError(f"PostgreSQL did not start:\n{log.read_text()[-3000:]}") from None
                time.sleep(0.1)
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("CREATE DATABASE composer")
        conn.close()
        yield f"postgresql+psycopg2://postgres@127.0.0.1:{port}/composer"
    finally:
        if server is not None and server.poll() is None:
            server.send_signal(signal.SIGINT)  # fast shutdown: disconnect clients, stop
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait(timeout=30)
        shutil.rmtree(root, ignore_errors=True)


def _search(*extra: str, cwd: Path, sleep: float = 0.0, env: dict[str, str] | None = None) -> subprocess.Popen:
    env = {**os.environ, "JAX_PLATFORMS": "cpu", FAKE_SLEEP_ENV: str(sleep), **(env or {})}
    return subprocess.Popen([sys.executable, "-m", "cli", "search", *ARGS, *extra], cwd=cwd, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _finish(proc: subprocess.Popen, timeout: float = 240) -> None:
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
    assert proc.returncode == 0, f"composer search exited {proc.returncode}:\n{out[-4000:]}"


def _table(run_dir: Path) -> pd.DataFrame:
    df = read_leaderboard(run_dir)
    df["part"] = df["study"].str.split("/", n=1).str[1]  # stage0, stage0-rung1, final (the run's name dropped)
    return df[COMPARED].sort_values(["phase", "stage", "part", "pattern", "seed"]).reset_index(drop=True)


def _evaluations(url: str, run: str) -> list[optuna.trial.FrozenTrial]:
    storage = optuna.storages.RDBStorage(url)
    try:
        out = []
        for name in optuna.get_all_study_names(storage):
            if name.startswith(run + "/"):
                trials = optuna.load_study(study_name=name, storage=storage).get_trials(deepcopy=False)
                assert not [t for t in trials if t.state == optuna.trial.TrialState.RUNNING], name
                out += [t for t in trials if ROW in t.user_attrs and t.user_attrs.get(STATUS) in ("ok", "error")]
        return out
    finally:
        storage.engine.dispose()


def test_two_drivers_share_one_postgres_run(postgres_url, tmp_path):
    # Both drivers together, each with its own run folder and two workers; evaluations sleep so they overlap.
    # One driver alone on its private SQLite storage runs alongside as the reference.
    drivers = [_search("--name", "shared", "--storage", postgres_url, "--runs-dir", str(tmp_path / f"driver{i}"),
                       cwd=tmp_path, sleep=0.3) for i in (1, 2)]
    single = _search("--name", "single", "--runs-dir", str(tmp_path / "single"), cwd=tmp_path)
    for proc in (*drivers, single):
        _finish(proc)

    evaluations = _evaluations(postgres_url, "shared")
    pairs = collections.Counter((t.user_attrs[ROW]["pattern"], t.user_attrs[ROW]["seed"]) for t in evaluations)
    assert [p for p, n in pairs.items() if n > 1] == []  # no (layout, seed) evaluated twice
    assert len({t.user_attrs[KEY] for t in evaluations}) == len(evaluations)
    by_driver = collections.Counter(t.user_attrs.get(DRIVER) for t in evaluations)
    assert len(by_driver) == 2 and None not in by_driver, by_driver  # both drivers evaluated

    reference = _table(tmp_path / "single" / "single")
    assert len(reference) == len(evaluations) >= 16 + 8
    assert set(pairs) == set(zip(reference.pattern, reference.seed))  # none lost
    for i in (1, 2):  # each driver's run folder holds the whole run, equal to the single driver's
        pd.testing.assert_frame_equal(_table(tmp_path / f"driver{i}" / "shared"), reference)
    summaries = [json.loads((tmp_path / f"driver{i}" / "shared" / "summary.json").read_text()) for i in (1, 2)]
    reference_summary = json.loads((tmp_path / "single" / "single" / "summary.json").read_text())
    for s in summaries:
        assert s["proxy"]["pattern"] == reference_summary["proxy"]["pattern"]
        assert [st["winner"]["pattern"] for st in s["stages"]] == [st["winner"]["pattern"]
                                                                  for st in reference_summary["stages"]]


def _claims_in_flight(url: str, run: str) -> list[tuple[str, str]]:
    """(dedup key, driver) of every RUNNING trial of the run that claims a (layout, seed)."""
    storage = optuna.storages.RDBStorage(url)
    try:
        return [(t.user_attrs[CLAIM], t.user_attrs.get(DRIVER)) for name in optuna.get_all_study_names(storage)
                if name.startswith(run + "/")
                for t in optuna.load_study(study_name=name, storage=storage).get_trials(deepcopy=False)
                if t.state == optuna.trial.TrialState.RUNNING and t.user_attrs.get(CLAIM)]
    finally:
        storage.engine.dispose()


def test_a_driver_killed_mid_evaluation_leaves_its_claims_to_the_survivor(postgres_url, tmp_path):
    # Heartbeats every second, stale after 4 s: the survivor takes over the killed driver's claims in seconds.
    timing = {"COMPOSER_HEARTBEAT_S": "1", "COMPOSER_GRACE_S": "4"}
    victim = _search("--name", "killed", "--storage", postgres_url, "--runs-dir", str(tmp_path / "victim"),
                     cwd=tmp_path, sleep=2.0, env=timing)
    deadline = time.monotonic() + 180
    while not (claimed := _claims_in_flight(postgres_url, "killed")):
        assert victim.poll() is None and time.monotonic() < deadline, "the driver never claimed an evaluation"
        time.sleep(0.2)
    victim.send_signal(signal.SIGKILL)
    victim.wait(timeout=30)

    survivor = _search("--name", "killed", "--storage", postgres_url, "--runs-dir", str(tmp_path / "survivor"),
                       cwd=tmp_path, env=timing)
    single = _search("--name", "single", "--runs-dir", str(tmp_path / "single"), cwd=tmp_path)
    for proc in (survivor, single):
        _finish(proc)

    evaluations = _evaluations(postgres_url, "killed")  # also: no trial is left RUNNING
    pairs = collections.Counter((t.user_attrs[ROW]["pattern"], t.user_attrs[ROW]["seed"]) for t in evaluations)
    assert [p for p, n in pairs.items() if n > 1] == []  # each (layout, seed) evaluated exactly once
    reference = _table(tmp_path / "single" / "single")
    assert len(evaluations) == len(reference)  # the whole budget spent, nothing lost
    first = reference[reference.part == "stage0"]
    assert set(zip(first.pattern, first.seed)) <= set(pairs)  # every layout of rung 0, as one driver alone
    # (which leaders get more seeds may differ from one driver alone: the killed driver's re-queued layouts
    # come back in another order; each is still evaluated once)
    by_key = {t.user_attrs[KEY]: t for t in evaluations}
    # what the killed driver had in flight was evaluated by the survivor (it claims each evaluation about 2 s
    # before it could finish it, so at least the first claim seen was still in flight at the kill)
    assert all(driver is not None and key in by_key for key, driver in claimed)
    assert any(by_key[key].user_attrs.get(DRIVER) not in (None, driver) for key, driver in claimed)
    assert len(read_leaderboard(tmp_path / "survivor" / "killed")) == len(reference)
