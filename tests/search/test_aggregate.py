import pytest

from search.aggregate import aggregate, conditional_mode, context_of, matching, top_cluster


def test_top_cluster_is_the_highest_mean_cluster():
    scores = [0.1, 0.11, 0.3, 0.31, 0.5, 0.52, 0.7, 0.71, 0.9, 0.91, 0.92]
    members, k = top_cluster(scores, seed=0)
    assert k == 5 and members == [8, 9, 10]


@pytest.mark.parametrize("scores, k", [([0.5, 0.5, 0.5], 1), ([0.2, 0.8, 0.8, 0.2], 2), ([0.1, 0.5, 0.9], 3)])
def test_fewer_distinct_scores_than_k(scores, k):
    members, used = top_cluster(scores)
    assert used == k
    expected = set(scores) if k == 1 else {max(scores)}
    assert {scores[i] for i in members} == expected


def test_n0_is_a_per_position_majority():
    assert conditional_mode([("AAM", 1.0), ("AMM", 1.0), ("MAM", 1.0)], "N0") == ("AAM", ())


def test_ties_go_to_the_larger_summed_score_then_the_alphabet():
    assert conditional_mode([("AM", 0.9), ("MA", 0.8)], "N0")[0] == "AM"
    assert conditional_mode([("AM", 0.8), ("MA", 0.9)], "N0")[0] == "MA"
    assert conditional_mode([("AM", 0.5), ("MA", 0.5)], "N0")[0] == "AA"


def test_conditioning_follows_the_chosen_prefix():
    members = [("AAM", 1.0), ("AAM", 1.0), ("MMA", 1.0), ("MMA", 1.0), ("MAA", 1.0)]
    # Per position: M (3 of 5), A (3 of 5: AAM, AAM, MAA), M (AAM x2) vs A (MMA x2, MAA) -> A.
    assert conditional_mode(members, "N0")[0] == "MAA"
    # N1 at position 1 only counts members with M at 0: MMA x2 beat MAA -> M; then after M: MMA -> A.
    assert conditional_mode(members, "N1")[0] == "MMA"
    assert conditional_mode(members, "Nall")[0] == "MMA"


def test_empty_match_falls_back_to_a_shorter_context():
    members = [("AMA", 1.0), ("MMM", 1.0)]
    match, used = matching(members, "AA", 2, 2)  # nobody starts with "AA"
    assert used == 0 and match == members
    match, used = matching(members, "MM", 2, 2)
    assert used == 2 and match == [("MMM", 1.0)]
    match, used = matching([("AMA", 1.0), ("MAM", 1.0)], "MM", 2, 2)  # "MM" absent, "M" at 1 present
    assert used == 1 and match == [("AMA", 1.0)]


def test_context_lengths():
    assert [context_of("N0", i) for i in range(3)] == [0, 0, 0]
    assert [context_of("N1", i) for i in range(3)] == [0, 1, 1]
    assert [context_of("Nall", i) for i in range(3)] == [0, 1, 2]


def test_best_breaks_score_ties_by_evaluation_order():
    agg = aggregate(["AM", "MA", "AA"], [0.5, 0.9, 0.9], "best")
    assert agg.pattern == "MA" and agg.members == (1,)


def test_bad_input_is_rejected():
    with pytest.raises(ValueError, match="same depth"):
        aggregate(["AM", "A"], [0.1, 0.2])
    with pytest.raises(ValueError, match="unknown method"):
        aggregate(["AM"], [0.1], "N7")
    with pytest.raises(ValueError, match="at least one"):
        aggregate([], [])


def test_aggregate_uses_the_top_cluster_and_is_seeded():
    patterns = ["AAMMMM", "AAMMAM", "AMMMMM", "MMMMMM", "MMMMMA", "AAAAAA", "AMAMAM"]
    scores = [0.90, 0.89, 0.60, 0.20, 0.21, 0.45, 0.70]
    a = aggregate(patterns, scores, "N0", seed=3)
    assert a == aggregate(patterns, scores, "N0", seed=3)
    assert set(a.members) == {0, 1} and a.pattern in ("AAMMMM", "AAMMAM") and a.k == 5
