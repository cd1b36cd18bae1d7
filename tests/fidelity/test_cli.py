"""``composer fidelity`` end to end on the real corpus at the proxy scale: rows, report, resume, bad input."""

import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from search.results.leaderboard import write_leaderboard
from search.results.parquet import read_parquet
from search.results.records import Row

TINY = ["--scale", "proxy", "--tokens", "1536", "--batch-size", "4", "--seq-len", "64", "--val-windows", "8",
        "--proxy-seeds", "0", "--no-progress", "--lrs", "3e-3", "--dev-windows", "8"]


def _cli(args, runs, **kw):
    return subprocess.run([sys.executable, "-m", "cli", "fidelity", "--runs-dir", str(runs), *args],
                          capture_output=True, text=True, timeout=600, **kw)


def _proxy_file(tmp_path, scores):
    path = tmp_path / "proxy.jsonl"
    path.write_text("".join(json.dumps({"pattern": p, "seed": s, "score": v, "protocol": "cpu", "tasks": {}}) + "\n"
                            for p, per_seed in scores.items() for s, v in enumerate(per_seed)))
    return path


def test_tiny_study_end_to_end(tmp_path):
    proxy = _proxy_file(tmp_path, {"AM": [0.8, 0.7], "MA": [0.5, 0.6], "MM": [0.1, 0.2]})
    out = _cli(["--patterns", "AM,MA,MM", "--seeds", "2", "--name", "t", "--proxy-from", str(proxy),
                "--winner", "MA", "--pairs", "MA:AM", *TINY, "--lrs", "1e-3,3e-3", "--lr-extend", "0"], tmp_path)
    assert out.returncode == 0, out.stderr
    run = tmp_path / "t"
    df = pd.read_parquet(run / "fidelity.parquet")
    assert sorted(df["key"]) == sorted(f"{p}/s{s}/t1536" for p in ("AM", "MA", "MM") for s in (0, 1))
    assert (df["status"] == "ok").all() and df["val_loss"].notna().all()
    assert (df["val_bpb"] - df["val_loss"] / 0.6931471805599453).abs().max() < 1e-9
    assert (df["tokens"] == 1536).all() and (df["val_tokens"] == 8 * 64).all()
    from scaling.extrapolate import extrapolate

    for p in ("AM", "MA", "MM"):  # each layout extrapolated by the rule and matched in size, as deployed
        ext = extrapolate(p, "proxy", "auto", match="params", seq_len=64)
        got = df[df["layout"] == p].iloc[0]
        assert got["target_pattern"] == ext.spec.pattern and got["non_embedding_params"] == ext.non_embedding_params
        assert abs(got["param_ratio"] - 1) <= 0.02 and got["flops_per_token"] == ext.flops_per_token
    # The grid: both rates on seed 0, seed 1 at seed 0's choice; the choice is the best dev loss.
    grid = pd.read_parquet(run / "lr_grid.parquet")
    assert len(grid) == 3 * 2 + 3 and (grid["status"] == "ok").all()
    for p in ("AM", "MA", "MM"):
        g0 = grid[grid["cell"] == f"{p}/s0/t1536"]
        assert sorted(g0["lr"]) == [1e-3, 3e-3]
        best = float(g0.loc[g0["dev_loss"].idxmin(), "lr"])
        rows = df[df["layout"] == p].set_index("seed")
        assert rows.loc[0, "lr"] == best and rows.loc[1, "lr"] == best and rows.loc[0, "lr_source"] == "grid"
        assert json.loads(rows.loc[0, "lr_grid_json"]) == {f"{x:g}": v for x, v in zip(g0["lr"], g0["dev_loss"])}
        assert list(grid[grid["cell"] == f"{p}/s1/t1536"]["lr"]) == [best]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["correlation"]["all"]["spearman"]["n_layouts"] == 3
    assert summary["winner_vs_llama"]["winner"] == "MA" and summary["winner_vs_llama"]["llama"] == "AM"
    assert summary["winner_vs_llama"]["val_loss_difference"]["n_seeds"] == 2
    assert (run / "fidelity.png").stat().st_size > 10_000
    md = (run / "fidelity.md").read_text()
    assert "Rank agreement" in md and "Learning-rate grid" in md and "| MA - AM | 1,536 | 2 |" in md
    assert summary["pairs"][0]["pooled"]["df"] == 3  # 3 layouts x (2 seeds - 1)
    # Two seeds of one layout were scored on the same validation text: their window sets are equal.
    assert df.groupby("layout")["val_tokens"].nunique().eq(1).all()
    (run / "summary.json").unlink()
    again = _cli(["--report-only", "--name", "t", "--no-progress"], tmp_path)  # the stored recipe, no flags
    assert again.returncode == 0, again.stderr
    again = json.loads((run / "summary.json").read_text())
    assert again["correlation"] == summary["correlation"] and again["winner_vs_llama"]["winner"] == "MA"


def _kill_once_rows_appear(args, runs, table):
    """Start the study, SIGKILL it (process group) once ``table`` has a row; return the table then."""
    proc = subprocess.Popen([sys.executable, "-m", "cli", "fidelity", "--runs-dir", str(runs), *args],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 300
    while time.time() < deadline and not (table.exists() and len(read_parquet(table)) >= 1):
        time.sleep(0.2)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    return pd.read_parquet(table)


@pytest.mark.slow  # about a minute; the mid-grid SIGKILL test below keeps a resume in the default suite
def test_killed_study_resumes_without_redoing_finished_runs(tmp_path):
    args = ["--patterns", "AM,MA,MM,AA", "--seeds", "1", "--name", "k", "--tokens", "6144", *TINY[:2], *TINY[4:]]
    after = _kill_and_resume(args, tmp_path, tmp_path / "k" / "fidelity.parquet", "a finished run")
    assert sorted(after["key"]) == sorted(f"{p}/s0/t6144" for p in ("AM", "MA", "MM", "AA"))


def _kill_and_resume(args, tmp_path, table, what):
    """SIGKILL the study once ``table`` has rows, run it again; the rows finished before the kill are
    kept as they were (not retrained). Returns the table after the resume."""
    before = _kill_once_rows_appear(args, tmp_path, table)
    assert 1 <= len(before) < 4, "the study should have been killed part-way"
    out = _cli(args, tmp_path)
    assert out.returncode == 0, out.stderr
    after = pd.read_parquet(table)
    kept = after.set_index("key").loc[before["key"], "finished_at"]
    assert list(kept) == list(before["finished_at"]), f"{what} was trained again"
    return after


def _search_run(runs, name="srch"):
    rows = [{"pattern": p, "seed": 0, "score": s, "status": "ok", "protocol": "cpu", "eval_index": i}
            for i, (p, s) in enumerate([("AAMM", 0.9), ("MAAM", 0.8), ("MMAA", 0.7), ("MMMM", 0.1)])]
    write_leaderboard(Row.many(rows), runs / name / "leaderboard.parquet")
    (runs / name / "summary.json").write_text(json.dumps({"settings": {"rule": "stack"},
                                                          "proxy": {"pattern": "MAAM"}}))


def test_from_run_takes_top_winner_and_llama(tmp_path):
    from search.fidelity.plan import resolve_layouts

    _search_run(tmp_path)
    assert resolve_layouts(from_run=tmp_path / "srch", top=1) == ["AAMM", "MAAM", "AMAM"]


@pytest.mark.parametrize("args, message", [
    (["--from-run", "nope", "--top", "2"], "unknown run 'nope'"),
    (["--from-run", "srch", "--top", "9"], "--top 9"),
    (["--patterns", "AXQ"], "primitive"),
    (["--patterns", "AM", "--tokens", "lots"], "--tokens"),
    (["--patterns", "AM", "--scale", "9T"], "scale"),
    (["--patterns", "AM", "--name", "../escape"], "--name"),
    ([], "give the layouts"),
    (["--patterns", "AM", "--ladder", "16M:AM"], "--ladder: expected TOKENS:PATTERNS:SEEDS"),
    (["--patterns", "AM", "--ladder", "lots:AM:1"], "--ladder"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, args, message):
    _search_run(tmp_path)
    out = _cli([*args, "--no-progress"], tmp_path)
    assert out.returncode == 2, out.stderr
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], out.stderr


def test_changed_recipe_is_refused_and_keeps_the_table(tmp_path):
    out = _cli(["--patterns", "AM", "--seeds", "1", "--name", "r", *TINY], tmp_path)
    assert out.returncode == 0, out.stderr
    before = (tmp_path / "r" / "fidelity.parquet").read_bytes()
    out = _cli(["--patterns", "AM", "--seeds", "1", "--name", "r", *TINY, "--lrs", "0.01"], tmp_path)
    assert out.returncode == 2 and "lrs: stored (0.003,), given (0.01,)" in out.stderr
    assert (tmp_path / "r" / "fidelity.parquet").read_bytes() == before


def test_study_killed_mid_grid_resumes_per_rate(tmp_path):
    """SIGKILL inside a layout's learning-rate grid: the rates already trained are kept (not retrained),
    the interrupted one continues from its checkpoint, and the cell's choice is made once all are in."""
    args = ["--patterns", "AM,MA", "--seeds", "1", "--name", "g", *TINY, "--tokens", "6144", "--lrs", "1e-3,3e-3",
            "--lr-extend", "0"]
    after = _kill_and_resume(args, tmp_path, tmp_path / "g" / "lr_grid.parquet", "a finished grid run")
    assert sorted(after["key"]) == sorted(f"{p}/s0/t6144/{t}" for p in ("AM", "MA") for t in ("lr1e-03", "lr3e-03"))
    truth = pd.read_parquet(tmp_path / "g" / "fidelity.parquet")
    assert sorted(truth["key"]) == ["AM/s0/t6144", "MA/s0/t6144"] and truth["val_loss"].notna().all()
