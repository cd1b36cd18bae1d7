"""A search over the whole primitive library's main kinds (``A,M,S,G``: attention, SwiGLU, Mamba-2,
Gated DeltaNet), end to end with the real default proxy (``text``) at a tiny step budget.

At 6 layers the space holds 4,096 layouts, too many to enumerate within the budget, so the sampler
(not the exhaustive enumeration of the ``A,M`` default) proposes them; every primitive must train
through the proxy and extrapolate to the target scale.
"""

import json

import pytest

from search.results.leaderboard import read_leaderboard


@pytest.mark.filterwarnings("ignore::optuna.exceptions.ExperimentalWarning")
def test_a_search_over_a_m_s_g_runs_the_sampler_and_extrapolates(tmp_path, monkeypatch, capsys):
    from cli.main import main

    monkeypatch.chdir(tmp_path)
    assert main(["search", "--quiet", "--primitives", "A,M,S,G", "--depth", "6", "--budget", "4",
                 "--final-seeds", "1", "--steps-scale", "0.007", "--scale", "100M", "--name", "lib"]) == 0
    s = json.loads((tmp_path / "runs" / "lib" / "summary.json").read_text())
    stage = s["stages"][0]
    assert stage["sampler"] != "exhaustive"  # 4,096 layouts: the sampler proposes them
    df = read_leaderboard(tmp_path / "runs" / "lib")
    search = df[df.phase == "search"]
    # 1 - bpb / 8 after two updates: about the uniform guess (0), never a perfect one (1)
    assert len(search) == 4 and (df.status == "ok").all() and search["score"].between(-0.1, 1).all()
    assert search.protocol.str.startswith("text@").all()
    assert set("".join(search.pattern)) <= set("AMSG") and search.pattern.str.len().eq(6).all()
    assert s["target"]["params"] > 0 and set(s["target"]["pattern"]) <= set("AMSG")
    assert s["settings"]["primitives"] == ["A", "M", "S", "G"]
