"""``composer search`` end to end with the fake evaluator (in process, so imports are paid once)."""

import json

import pytest

from composer.spec import load_spec
from search.results.leaderboard import read_leaderboard


def _summary(tmp_path, name):
    return json.loads((tmp_path / "runs" / name / "summary.json").read_text())


def test_oneshot_writes_every_output(cli, tmp_path):
    assert cli("--budget", "6", "--depth", "4", "--scale", "100M", "--sampler", "tpe", "--name", "one") == 0
    run = tmp_path / "runs" / "one"
    s = _summary(tmp_path, "one")
    df = read_leaderboard(run)
    assert s["budget"]["used"] == 6 and len(df[df.phase == "search"]) == 6
    assert not df.duplicated(["arch_id", "seed"]).any() and (df.status == "ok").all()
    fresh = df[df.seed >= 10_000]  # the winner and Llama rescored on three fresh seeds, outside the budget
    assert set(fresh.phase) == {"final"} and set(fresh.pattern) == {s["proxy"]["pattern"], "AMAM"}
    assert sorted(set(fresh.seed)) == [10_000, 10_001, 10_002]
    m = s["winner_vs_llama"]
    assert m["fresh_seeds"] and m["winner_seeds"] == [10_000, 10_001, 10_002] and "verdict" in m
    assert (run / "layouts.parquet").exists()
    spec = load_spec(str(run / "winner_100M.json"))
    assert spec.d_model == 1024 and spec.pattern == s["target"]["pattern"]
    assert s["proxy"]["pattern"] in set(df.pattern)  # the winner and the Llama layout are always evaluated
    assert s["llama"]["proxy"]["pattern"] == "AMAM" and s["llama"]["proxy"]["score"] is not None
    assert s["llama"]["target"]["params"] > 0 and s["target"]["kv_cache_bytes"] > 0
    for col in ("spec_json", "git_sha", "versions_json", "target_params", "target_flops_per_token",
                "target_kv_cache_bytes", "task_in_context_recall", "seed", "protocol", "started_at"):
        assert df[col].notna().all(), col


def test_a_space_that_fits_is_enumerated_then_the_budget_buys_seeds_for_the_leaders(cli, tmp_path):
    """Successive halving: 8 layouts at one seed, then the best 4 at 2 seeds, the best 2 at 4 seeds;
    one layout left stops the rungs, so 16 of the 50 evaluations asked for are used."""
    assert cli("--budget", "50", "--depth", "3", "--name", "small") == 0
    s = _summary(tmp_path, "small")
    assert s["budget"]["effective"] == 16 and s["budget"]["used"] == 16
    assert s["stages"][0]["sampler"] == "exhaustive" and s["stages"][0]["rung0_budget"] == 8
    assert [(r["rung"], r["layouts"], r["evaluations"]) for r in s["stages"][0]["rungs"]] == [(1, 4, 4), (2, 2, 4)]
    df = read_leaderboard(tmp_path / "runs" / "small")
    search = df[df.phase == "search"]
    seeds = search.groupby("pattern")["seed"].nunique().sort_values(ascending=False)
    assert list(seeds) == [4, 4, 2, 2, 1, 1, 1, 1]
    view = {v["pattern"]: v for v in s["per_layout"]}
    top2 = list(seeds.index[:2])
    # the two survivors of rung 2 were the best two by mean over their first two seeds
    means2 = search[search.seed.isin([0, 1])].groupby("pattern")["score"].mean()
    assert set(top2) == set(means2.sort_values(ascending=False).index[:2])
    assert all(view[p]["n_seeds"] >= 4 for p in top2)


def test_a_vote_that_scores_below_the_top_cluster_is_not_the_winner(cli, tmp_path):
    # The fake scores are flat among layouts with two attention layers anywhere, so the per-position
    # vote over the top cluster says "M" everywhere; the guard keeps the best candidate instead.
    assert cli("--budget", "64", "--depth", "6", "--name", "vote") == 0
    s = _summary(tmp_path, "vote")
    assert s["aggregated"]["pattern"] == "MMMMMM" and s["winner_choice"]["source"] == "best"
    assert s["proxy"]["score"] >= s["stages"][0]["winner"]["cluster_min_score"]
    assert "A" in s["proxy"]["pattern"] and s["target"]["kv_cache_bytes"] > 0


@pytest.mark.parametrize("method", ["end", "middle"])
def test_incremental_methods_freeze_the_previous_winner(cli, tmp_path, method):
    args = ("--method", method, "--depth", "2", "--total-depth", "5", "--budget", "9", "--sampler", "random")
    assert cli(*args, "--name", method) == 0
    s = _summary(tmp_path, method)
    stages = s["stages"]
    assert [st["space"]["depth"] for st in stages] == [2, 2, 1]
    for before, after in zip(stages, stages[1:]):
        frozen = before["winner"]["pattern"]
        space = after["space"]
        assert space["prefix"] + space["suffix"] == frozen
        if method == "middle":
            assert len(space["prefix"]) == len(frozen) // 2
        else:
            assert space["suffix"] == ""
    assert len(s["proxy"]["pattern"]) == 5


def test_multi_objective_reports_a_pareto_front(cli, tmp_path):
    assert cli("--objectives", "score,kv_cache", "--sampler", "nsga2", "--budget", "8", "--depth", "4",
               "--name", "mo") == 0
    front = _summary(tmp_path, "mo")["pareto_front"]
    assert front and all({"score", "kv_cache"} <= set(p) for p in front)
    kv = [p["kv_cache"] for p in sorted(front, key=lambda p: p["score"])]
    assert kv == sorted(kv)  # a better score costs more cache along the front


def test_resume_rules(cli, tmp_path, capsys):
    assert cli("--budget", "3", "--depth", "3", "--sampler", "random", "--name", "r") == 0
    # The same command continues the run (nothing left to do); other settings are refused.
    assert cli("--budget", "3", "--depth", "3", "--sampler", "random", "--name", "r") == 0
    assert cli("--budget", "3", "--depth", "3", "--name", "r") == 2
    assert "sampler: stored 'random', given 'gp'" in capsys.readouterr().err
    assert cli("--depth", "4", "--name", "r", "--resume") == 2
    assert "depth: stored 3, given 4" in capsys.readouterr().err
    assert cli("--name", "nothing", "--resume") == 2
    assert cli("--name", "r", "--resume", "--budget", "5") == 0  # the budget may grow; the rest is stored
    assert _summary(tmp_path, "r")["budget"]["used"] == 5


@pytest.mark.parametrize("args, message", [
    (["--objectives", "kv_cache"], "must start with score"),
    (["--min-share", "A"], "KEY=VALUE"),
    (["--fixed", "9=A", "--depth", "3"], "position 9"),
    (["--sampler", "exhaustive", "--depth", "20"], "too large to enumerate"),
    (["--scale", "2B"], "unknown scale"),
    (["--primitives", "A,Q"], "unknown primitive"),
    (["--budget", "0"], "--budget"),
    (["--max-params", "lots"], "--max-params"),
    (["--steps-scale", "0"], "--steps-scale"),
    (["--evaluator", "mad", "--protocol", "nope"], "unknown protocol"),
    (["--evaluator", "mad", "--protocol", "capacity", "--tasks", "sudoku"], "unknown task"),
    (["--evaluator", "mad", "--tasks", "memorization"], "has no MAD tasks; drop --tasks"),  # text-short
    (["--seed", "-1"], "--seed: must be an integer in [0,"),
    (["--primitives", "A,X"], "--primitives: unknown primitive shorthand"),
    (["--fixed", "0=A", "--depth", "3", "--primitives", "0A,M"], "run of zero layers"),
])
def test_bad_input_is_one_line_and_exit_2(cli, capsys, tmp_path, args, message):
    assert cli(*args, "--name", "bad") == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "runs" / "bad").exists()  # a refused run leaves no folder, study or lock


def test_a_refused_resume_keeps_the_stored_run(cli, tmp_path):
    assert cli("--budget", "2", "--depth", "3", "--sampler", "random", "--name", "keep") == 0
    assert cli("--name", "keep", "--resume", "--scale", "7Q") == 2
    assert (tmp_path / "runs" / "keep" / "study.db").exists()
    assert cli("--name", "keep", "--resume", "--budget", "3") == 0
    assert _summary(tmp_path, "keep")["budget"]["used"] == 3


def test_constraints_reach_the_space(cli, tmp_path):
    assert cli("--depth", "4", "--budget", "20", "--fixed", "0=A", "--max-share", "A=0.5",
               "--max-kv-bytes", "60M", "--name", "cap") == 0
    df = read_leaderboard(tmp_path / "runs" / "cap")
    search = df[df.phase == "search"]
    assert (search.pattern.str[0] == "A").all() and (search.pattern.str.count("A") <= 2).all()
    assert (search.target_kv_cache_bytes <= 60_000_000).all()


def test_any_sqlalchemy_storage(cli, tmp_path):
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    assert cli("--budget", "3", "--depth", "3", "--sampler", "random", "--storage", url, "--name", "ext") == 0
    import optuna

    assert {"ext", "ext/stage0", "ext/final"} <= set(optuna.get_all_study_names(url))
    assert not (tmp_path / "runs" / "ext" / "study.db").exists()
    assert (tmp_path / "runs" / "ext" / "leaderboard.parquet").exists()


def test_fresh_seeds_rescore_the_chosen_winner_even_when_the_guard_replaced_the_vote(cli, tmp_path):
    assert cli("--budget", "64", "--depth", "6", "--name", "guard", "--final-seeds", "2") == 0
    s = _summary(tmp_path, "guard")
    assert s["winner_choice"]["source"] == "best"  # the vote was replaced (see the test above)
    m = s["winner_vs_llama"]
    assert m["winner"] == s["proxy"]["pattern"] and m["winner_seeds"] == [10_000, 10_001]
    assert m["llama_seeds"] == [10_000, 10_001] and m["mean"] is not None
