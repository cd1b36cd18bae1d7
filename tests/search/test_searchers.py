"""The contract every searcher passes against the fake evaluator (docs/conventions.md: one shared suite)."""

import pytest

from search.searchers import SEARCHERS
from search.space import Constraints, SearchSpace
from search.study_attrs import DUPLICATE, DUPLICATE_OF, INFEASIBLE, STATUS
from tests.search.conftest import run_stage

ALL = sorted(SEARCHERS)


@pytest.mark.parametrize("sampler", ALL)
def test_budget_respected_and_no_duplicate_evaluated(sampler):
    rows, study = run_stage(sampler, budget=12, space=SearchSpace(depth=5), seed=3)
    assert len(rows) == 12
    assert len({r.arch_id for r in rows}) == 12
    assert [r.eval_index for r in rows] == list(range(1, 13))
    assert all(r.status == "ok" and len(r.pattern) == 5 for r in rows)


@pytest.mark.parametrize("sampler", ALL)
def test_seeded_runs_are_identical(sampler):
    first = [r.pattern for r in run_stage(sampler, budget=10, space=SearchSpace(depth=5), seed=7)[0]]
    again = [r.pattern for r in run_stage(sampler, budget=10, space=SearchSpace(depth=5), seed=7)[0]]
    assert first == again


@pytest.mark.parametrize("sampler", ALL)
def test_small_space_is_exhausted_not_looped(sampler):
    rows, _ = run_stage(sampler, budget=50, space=SearchSpace(depth=3))
    assert sorted(r.pattern for r in rows) == sorted(SearchSpace(depth=3).enumerate())


@pytest.mark.parametrize("sampler", ["random", "tpe"])
def test_duplicates_are_told_from_the_stored_value(sampler):
    rows, study = run_stage(sampler, budget=8, space=SearchSpace(depth=3), seed=1)
    dups = [t for t in study.trials if t.user_attrs.get(STATUS) == DUPLICATE and t.values]
    assert dups, "a small space makes a sampler repeat itself"
    scores = {r.pattern: r.score for r in rows}
    for t in dups:
        assert t.values[0] == scores["".join(t.params[f"layer_{i}"] for i in range(3))]
        assert t.user_attrs[DUPLICATE_OF].startswith("t/stage0#")


@pytest.mark.parametrize("sampler", ALL)
def test_constraints_hold_for_every_evaluation(sampler):
    c = Constraints(min_share=(("A", 0.4),), fixed=((0, "A"),))
    space = SearchSpace(depth=5, constraints=c)
    rows, study = run_stage(sampler, budget=6, space=space, seed=2)
    assert len(rows) == 6 and all(space.contains(r.pattern) for r in rows)
    assert all(t.state.name == "FAIL" for t in study.trials if t.user_attrs.get(STATUS) == INFEASIBLE)


@pytest.mark.parametrize("sampler", ["nsga2", "gp", "random"])
def test_multi_objective_values(sampler):
    rows, study = run_stage(sampler, budget=6, space=SearchSpace(depth=4), objectives=("score", "kv_cache"))
    done = [t for t in study.trials if t.values and t.user_attrs.get(STATUS) == "ok"]
    assert len(done) == 6 and all(len(t.values) == 2 for t in done)
    assert {t.values[1] for t in done} <= {r.target.kv_cache_bytes for r in rows}
