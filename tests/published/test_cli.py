"""``composer fidelity --published`` end to end: one small set from the CLI, resume after SIGKILL, bad input."""

import json
import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from cli.main import main
from search.results.parquet import read_parquet

CHEAP = ["--protocol", "capacity", "--steps-scale", "0.05", "--no-progress"]


def _cli(args, runs, **kw):
    return subprocess.run([sys.executable, "-m", "cli", "fidelity", "--runs-dir", str(runs), *args],
                          capture_output=True, text=True, timeout=600, **kw)


def test_small_set_end_to_end(tmp_path):
    out = _cli(["--published", "samba2025_position", "--seeds", "2", "--depth", "6", "--name", "p", *CHEAP],
               tmp_path)
    assert out.returncode == 0, out.stderr
    run = tmp_path / "p"
    df = pd.read_parquet(run / "published.parquet")
    summary = json.loads((run / "summary.json").read_text(), parse_constant=pytest.fail)  # strict JSON: no NaN
    (j,) = summary["judgements"]
    assert j["set"] == "samba2025_position" and j["protocol"] == "capacity@steps*0.05" and j["complete"]
    evaluated = {row["evaluated"] for row in j["layouts"]}
    assert len(df) == 2 * len(evaluated) and set(df["layout"]) == evaluated  # shared layouts evaluated once
    assert (df["status"] == "ok").all() and df["params"].gt(0).all()
    assert all(len(row["evaluated"]) <= 8 for row in j["layouts"])  # mapped, not the published 24 layers
    for key in ("spearman", "kendall"):
        assert -1 <= j[key]["value"] <= 1 and j[key]["n_layouts"] == 4
    assert j["heuristic"]["name"] == "attention_not_first" and j["ceiling"]["kind"] == "relative_sd"
    assert j["cost"]["evaluations"] == len(df) and "beats_heuristic" in j
    assert (run / "published-capacity_steps_0.05.png").stat().st_size > 10_000
    text = (run / "published.md").read_text()
    assert "samba2025_position" in text and "arXiv 2406.07522" in text and "ceiling" in text
    (run / "summary.json").unlink()
    again = _cli(["--published", "all", "--report-only", "--name", "p", "--no-progress"], tmp_path)
    assert again.returncode == 0, again.stderr
    assert json.loads((run / "summary.json").read_text())["judgements"][0]["spearman"] == j["spearman"]


def test_resume_after_sigkill_repeats_nothing(tmp_path):
    args = [sys.executable, "-m", "cli", "fidelity", "--runs-dir", str(tmp_path), "--published",
            "kimi2025_ratio", "--seeds", "3", "--depth", "8", "--name", "k", *CHEAP]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    rows = tmp_path / "k" / "published.parquet"
    deadline = time.time() + 300
    while time.time() < deadline and not (rows.exists() and len(read_parquet(rows)) >= 2):
        assert proc.poll() is None, "the study ended before it could be killed"
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    before = pd.read_parquet(rows)
    assert len(before) >= 2
    out = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr
    after = pd.read_parquet(rows)
    keys = list(zip(after["layout"], after["seed"], after["protocol"]))
    assert len(keys) == len(set(keys))  # nothing evaluated twice
    kept = after.merge(before[["layout", "seed", "finished_at"]], on=["layout", "seed"], suffixes=("", "_before"))
    assert len(kept) == len(before) and (kept["finished_at"] == kept["finished_at_before"]).all()
    (j,) = json.loads((tmp_path / "k" / "summary.json").read_text())["judgements"]
    assert j["complete"] and len(after) == 3 * j["n_evaluated_layouts"]


@pytest.mark.parametrize("args,words", [
    (["--published", "nosuch"], "unknown set 'nosuch'"),
    (["--published", "all", "--depth", "5"], "--depth"),
    (["--published", "all", "--patterns", "AMAM"], "drop --patterns"),
    (["--published", "all", "--steps-scale", "0"], "--steps-scale"),
    (["--published", "all", "--protocol", "nosuch"], "nosuch"),
    (["--published", "all", "--seeds", "x"], "--seeds"),
    (["--protocol", "cpu", "--patterns", "AM"], "belongs to --published"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys, args, words):
    assert main(["fidelity", "--runs-dir", str(tmp_path), "--no-progress", *args]) == 2
    err = capsys.readouterr().err.strip()
    assert words in err and len(err.splitlines()) == 1


def _set_file(tmp_path, layouts):
    from search.published.sets import SETS_DIR

    raw = json.loads((SETS_DIR / "samba2025_position.json").read_text())
    raw.update(name="custom", layouts=[{"layout": lay, "value": float(i)} for i, lay in enumerate(layouts)])
    path = tmp_path / "custom.json"
    path.write_text(json.dumps(raw))
    return str(path)


def test_small_or_malformed_set_files_exit_2(tmp_path, capsys):
    assert main(["fidelity", "--runs-dir", str(tmp_path), "--published", _set_file(tmp_path, ["AM"] * 3)]) == 2
    assert "at least 4" in capsys.readouterr().err
    bad = tmp_path / "broken.json"
    bad.write_text("{")
    assert main(["fidelity", "--runs-dir", str(tmp_path), "--published", str(bad)]) == 2
    assert "not valid JSON" in capsys.readouterr().err
    assert not (tmp_path / "published" / "published.parquet").exists()


def test_a_layout_the_protocol_cannot_build_exits_2(tmp_path, capsys, monkeypatch):
    """A protocol whose builder has no Mamba-2: refused before any evaluation, naming the layout."""
    from search import evaluators

    class NoMamba:
        protocol = "nomamba"

        def __init__(self, config):
            self.config = config

        def spec(self, pattern):
            if "S" in pattern:
                raise ValueError("primitive mamba2 is not available")
            from composer.presets import spec_from_pattern

            return spec_from_pattern(pattern, "proxy")

        def __call__(self, pattern, seed=None):
            raise AssertionError("never evaluated")

    monkeypatch.setitem(evaluators.EVALUATORS, "nomamba", NoMamba)
    monkeypatch.setitem(evaluators._PROTOCOL_KINDS, "nomamba", "nomamba")
    from search import protocols

    monkeypatch.setitem(protocols.PROTOCOLS, "nomamba", protocols.ProtocolSpec("nomamba", "nomamba", "test", "-"))
    code = main(["fidelity", "--runs-dir", str(tmp_path), "--published", "samba2025_position", "--protocol",
                 "nomamba", "--depth", "6", "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and "cannot build layout 'A at block 0'" in err and "mamba2" in err
    assert not (tmp_path / "published" / "published.parquet").exists()


def test_mix_rows_come_from_stored_parts(tmp_path):
    out = _cli(["--published", "samba2025_position", "--seeds", "1", "--depth", "4", "--name", "m",
                "--protocol", "capacity,text,mix", "--steps-scale", "0.02", "--no-progress"], tmp_path)
    assert out.returncode == 0, out.stderr
    df = pd.read_parquet(tmp_path / "m" / "published.parquet")
    mix = df[df["protocol"] == "mix@steps*0.02"]
    assert len(mix) == 2 and (mix["source"] == "parts").all()
    assert set(df["protocol"]) == {"capacity@steps*0.02", "text@steps*0.02", "mix@steps*0.02"}
    from search.evaluators.mix import combine

    for _, row in mix.iterrows():
        part = {p: df[(df["protocol"] == f"{p}@steps*0.02") & (df["layout"] == row["layout"])]["score"].item()
                for p in ("capacity", "text")}
        assert row["score"] == pytest.approx(combine(part))


def test_gpu_script_dry_run_needs_neither_optuna_nor_ray(tmp_path):
    """``experiments/published_gpu.sh`` in its CPU dry mode, on an image where Optuna and Ray do not import."""
    shim = tmp_path / "shim"
    for name in ("optuna", "ray"):
        (shim / name).mkdir(parents=True)
        (shim / name / "__init__.py").write_text(f"raise ImportError('{name} is not on the device image')\n")
    from composer.corpus import cache_root

    env = {**os.environ, "PUBLISHED_GPU_DRY": "1", "OUT": str(tmp_path / "out"), "PYTHON": sys.executable,
           "COMPOSER_DATA_DIR": str(cache_root()),
           "PYTHONPATH": os.pathsep.join([str(shim), os.environ.get("PYTHONPATH", "")])}
    script = os.path.join(os.path.dirname(__file__), "..", "..", "experiments", "published_gpu.sh")
    out = subprocess.run(["bash", script], capture_output=True, text=True, timeout=900, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    df = pd.read_parquet(tmp_path / "out" / "published-gpu-steps0.02" / "published.parquet")
    assert (df["status"] == "ok").all() and len(df) == 4 == df["layout"].nunique()  # 5 published -> 4 evaluated
    assert "GMAMGMGMGMAM" in out.stdout  # the table printed at the end
