"""Leaderboard, export, report, dashboard and the notebook over a real (fake-evaluator) run."""

import dataclasses
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cli.main import main

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A finished search: 6-layer A/M space, budget 80 (64 at one seed, then seed rungs)."""
    home = tmp_path_factory.mktemp("runs")
    cwd = os.getcwd()
    os.chdir(home)
    try:
        assert main(["search", "--evaluator", "fake", "--quiet", "--budget", "80", "--depth", "6", "--name", "r"]) == 0
    finally:
        os.chdir(cwd)
    return home / "runs" / "r"


def _cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "cli", *args], capture_output=True, text=True,
                          timeout=300, cwd=cwd)


def test_leaderboard_table_json_and_csv(run, capsys):
    assert main(["leaderboard", str(run), "--top", "5", "--json"]) == 0
    records = json.loads(capsys.readouterr().out)
    view = pd.read_parquet(run / "layouts.parquet")
    assert [r["pattern"] for r in records] == list(view["pattern"][:5])
    assert records[0]["n_seeds"] >= 2 and records[0]["score_se"] is not None
    assert main(["leaderboard", str(run), "--top", "3", "--csv"]) == 0
    assert len(capsys.readouterr().out.strip().splitlines()) == 4
    assert main(["leaderboard", str(run), "--top", "3"]) == 0
    assert records[0]["pattern"] in capsys.readouterr().out


def test_exported_archspec_inspects_to_the_same_numbers(run, tmp_path, capsys):
    assert main(["export", str(run), "--top", "2", "--scale", "1B", "--out", str(tmp_path)]) == 0
    paths = capsys.readouterr().out.split()
    assert len(paths) == 2
    from composer.spec import load_spec
    from scaling.extrapolate import extrapolate

    best = pd.read_parquet(run / "layouts.parquet")["pattern"].iloc[0]
    spec = load_spec(paths[0])  # schema-validated on load
    assert spec.pattern == extrapolate(best, "1B", "auto").spec.pattern and spec.d_model == 2048
    assert main(["inspect", paths[0], "--json"]) == 0
    inspected = json.loads(capsys.readouterr().out)
    card = Path(paths[0]).with_suffix(".md").read_text()
    assert f"{inspected['params']:,}" in card and f"{inspected['kv_cache_bytes_per_sequence']:,}" in card


def test_a_damaged_leaderboard_is_rebuilt_from_the_study(run, tmp_path, capsys):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(run, copy)
    before = pd.read_parquet(copy / "leaderboard.parquet")
    (copy / "leaderboard.parquet").write_bytes(b"not parquet")
    (copy / "layouts.parquet").unlink()
    assert main(["leaderboard", str(copy), "--top", "3"]) == 2
    assert main(["leaderboard", str(copy), "--rebuild", "--json", "--top", "3"]) == 0
    assert f"({len(before)} rows)" in capsys.readouterr().err
    pd.testing.assert_frame_equal(pd.read_parquet(copy / "leaderboard.parquet"), before)
    assert (copy / "layouts.parquet").exists()


def test_search_export_and_report_print_json(run, tmp_path, capsys):
    """``--json`` on every command that prints a result: one JSON object, nothing else on stdout."""
    assert main(["export", str(run), "--top", "2", "--out", str(tmp_path / "e"), "--json"]) == 0
    exported = json.loads(capsys.readouterr().out)
    assert len(exported["files"]) == 2 and all(Path(f).exists() for f in exported["files"])
    out = _cli("report", str(run), "--out", str(tmp_path / "r"), "--json")
    assert out.returncode == 0, out.stderr
    page = json.loads(out.stdout)
    assert Path(page["report"]).name == "report.html" and len(page["figures"]) == 6
    assert main(["search", "--evaluator", "fake", "--quiet", "--budget", "2", "--depth", "2", "--json",
                 "--runs-dir", str(tmp_path / "runs"), "--name", "j"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary == json.loads((tmp_path / "runs" / "j" / "summary.json").read_text())  # with what the judges say
    stored = json.loads((tmp_path / "runs" / "j" / "evidence.json").read_text())
    assert summary["evidence"] == {"published": stored["sets"], "real_text": stored["real_text"]}


def test_export_hf_config(run, tmp_path, capsys):
    assert main(["export", str(run), "--top", "1", "--format", "hf", "--out", str(tmp_path)]) == 0
    path = Path(capsys.readouterr().out.strip())
    config = json.loads(path.read_text())
    spec = config["composer_spec"]
    assert config["num_hidden_layers"] == len(spec["layers"]) == len(config["layer_types"])
    assert set(config["layer_types"]) <= {"full_attention", "mlp"} and config["hidden_size"] == spec["d_model"]
    assert "Proxy score" in (path.parent / "README.md").read_text()


def test_report_is_one_html_with_embedded_figures(run, tmp_path):
    out = _cli("report", str(run), "--out", str(tmp_path))
    assert out.returncode == 0, out.stderr
    html = (tmp_path / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 6 and "winner" in html.lower()
    study = tmp_path / "study"  # with a fidelity study beside it, the seventh figure is the scatter
    study.mkdir()
    top = list(pd.read_parquet(run / "layouts.parquet")["pattern"][:3])
    pd.DataFrame({"layout": top, "seed": 0, "status": "ok", "val_loss": [1.5, 1.6, 1.7]}).to_parquet(
        study / "fidelity.parquet")
    out = _cli("report", str(run), "--out", str(tmp_path / "with"), "--fidelity", str(study))
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "with" / "report.html").read_text().count("data:image/png;base64,") == 7
    for name in ("score_by_layout", "task_heatmap", "best_so_far", "position_frequency", "attention_share", "pareto"):
        assert (tmp_path / f"{name}.png").stat().st_size > 5_000


@pytest.mark.parametrize("args, message", [
    (["leaderboard", "nope"], "no search run at 'nope'"),
    (["export", "RUN", "--format", "onnx"], "unknown format 'onnx'"),
    (["export", "RUN", "--top", "999"], "--top 999"),
    (["leaderboard", "RUN", "--top", "0"], "--top"),
    (["report", "RUN", "--top", "0"], "--top: must be >= 1"),
    (["export", "RUN", "--top", "0"], "--top: must be >= 1"),
    (["leaderboard", "TRUNCATED"], "cannot be read (ArrowInvalid); it is rebuilt from the run's study: composer "
                                   "leaderboard"),
    (["report", "TRUNCATED"], "--rebuild"),
    (["export", "TRUNCATED"], "--rebuild"),
    (["leaderboard", "TRUNCATED", "--rebuild"], "has no study.db to rebuild from"),
    (["report", "EMPTY"], "no successful evaluation"),
    (["report", "RUN", "--fidelity", "nope"], "no fidelity study at 'nope'"),
    (["fidelity", "--patterns", "AM", "--runs-dir", "RUNS", "--name", "r"], "is a search run"),
])
def test_bad_input_is_one_line_and_exit_2(run, tmp_path, args, message):
    empty = tmp_path / "empty"
    empty.mkdir()
    pd.DataFrame({"status": pd.Series([], dtype=str), "pattern": pd.Series([], dtype=str)}).to_parquet(
        empty / "leaderboard.parquet")
    truncated = tmp_path / "truncated"
    truncated.mkdir()
    (truncated / "leaderboard.parquet").write_bytes((run / "leaderboard.parquet").read_bytes()[:500])
    named = {"RUN": run, "EMPTY": empty, "RUNS": run.parent, "TRUNCATED": truncated}
    args = [str(named.get(a, a)) for a in args]
    out = _cli(*args)
    assert out.returncode == 2, out.stderr
    assert len(out.stderr.strip().splitlines()) == 1 and message in out.stderr


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_dashboard_serves_the_study_on_loopback(run):
    pytest.importorskip("optuna_dashboard")
    port = _free_port()
    proc = subprocess.Popen([sys.executable, "-m", "cli", "dashboard", str(run), "--port", str(port)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline, status = time.time() + 60, None
        while time.time() < deadline and status is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/studies", timeout=2) as r:
                    status, body = r.status, json.loads(r.read())
            except OSError:
                assert proc.poll() is None, proc.stdout.read()
                time.sleep(0.3)
        assert status == 200 and any(s["study_name"] == "r/stage0" for s in body["study_summaries"])
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_notebook_runs_top_to_bottom(run, tmp_path):
    """Executed as a user would (a kernel, every cell), on the run plus a fidelity table beside it."""
    nbformat = pytest.importorskip("nbformat")
    import shutil

    from nbclient import NotebookClient

    nb = nbformat.read(ROOT / "experiments" / "notebooks" / "leaderboard.ipynb", as_version=4)
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code"), "commit the notebook stripped"
    folder = shutil.copytree(run, tmp_path / "r")
    top = list(pd.read_parquet(run / "layouts.parquet")["pattern"][:3])
    pd.DataFrame({"layout": top * 2, "seed": [0] * 3 + [1] * 3, "status": "ok",
                  "val_loss": [1.50, 1.52, 1.55, 1.51, 1.53, 1.56]}).to_parquet(folder / "fidelity.parquet")
    os.environ["COMPOSER_RUN"] = str(folder)
    try:
        NotebookClient(nb, timeout=300, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}).execute()
    finally:
        os.environ.pop("COMPOSER_RUN")
    images = sum(1 for c in nb.cells for o in c.get("outputs", []) if "image/png" in o.get("data", {}))
    assert images == 7  # six figures of the search and the fidelity scatter


def _points(fig):
    """(axes, data coordinates) of every marker and line vertex drawn in a figure."""
    for ax in fig.axes:
        yield from ((ax, c.get_offsets()) for c in ax.collections)
        yield from ((ax, line.get_xydata()) for line in ax.lines)


@pytest.mark.parametrize("figure", ["attention_share", "pareto"])
def test_the_baseline_key_hides_no_point(run, figure):
    """The box keying the numbered baselines sits outside the axes: no layout's point is under it
    (it once sat in the lower right corner, over the low-scoring all-attention layout)."""
    from search.analysis import figures
    from search.analysis.tables import load_run

    loaded = load_run(run)
    # the hard case: the all-attention layout (largest attention share, KV cache, FLOPs) scores lowest
    v = loaded.layouts.copy()
    v.loc[v["pattern"] == "AAAAAA", "score_mean"] = v["score_mean"].min() - 0.01
    loaded = dataclasses.replace(loaded, layouts=v.sort_values("score_mean", ascending=False, ignore_index=True))
    fig = getattr(figures, figure)(loaded)
    fig.canvas.draw()
    keys = [t for ax in fig.axes for t in ax.texts if t.get_gid() == "baseline-key"]
    assert len(keys) == 1 and "llama" in keys[0].get_text()
    box = keys[0].get_window_extent(fig.canvas.get_renderer())
    points = np.concatenate([ax.transData.transform(np.asarray(xy, float)) for ax, xy in _points(fig) if len(xy)])
    assert len(points) >= 64
    inside = (points[:, 0] >= box.x0) & (points[:, 0] <= box.x1) & (points[:, 1] >= box.y0) & (points[:, 1] <= box.y1)
    assert not inside.any(), points[inside]


def test_the_bar_chart_names_the_baselines(run):
    from search.analysis import figures
    from search.analysis.tables import load_run

    fig = figures.score_by_layout(load_run(run), k=64)
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert any(label.endswith("(llama)") for label in labels)
    assert sum("(" in label for label in labels) == len(figures.baselines(load_run(run)))
