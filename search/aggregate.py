"""The aggregator (docs/method.md §2.3): cluster the scores, then a layer-wise conditional mode.

1. K-means (k = 5, seeded) on the scores alone; the candidate set C is the cluster with the highest
   mean score. With fewer than k distinct scores, k is the number of distinct scores (one distinct
   score: C is everyone).
2. ``N_c``: for position i, the most frequent primitive at i among the members of C whose previous
   ``c`` positions equal the prefix chosen so far (``N_0``: plain per-position vote; ``N_1``: the
   previous position; ``N_all``: the whole prefix). ``best`` is the single best candidate.

The paper leaves two cases open; ours:
- **Ties** between primitives go to the larger summed score of their voters; if still equal, to the
  alphabetically first shorthand (deterministic).
- **No member matches** the prefix: fall back to ``c - 1`` (and further down to 0, which every member
  matches). With the votes above this cannot happen (the member that voted for position i-1 matches
  the prefix at i), so it is a guard, exercised directly by the tests.
``best`` breaks score ties by the earlier evaluation (input order).
"""

from __future__ import annotations

import dataclasses
from typing import Sequence

import numpy as np

__all__ = ["AGGREGATORS", "Aggregation", "top_cluster", "conditional_mode", "aggregate", "context_of",
           "matching"]

AGGREGATORS = ("N0", "N1", "Nall", "best")
K = 5


@dataclasses.dataclass(frozen=True)
class Aggregation:
    """The aggregated layout and how it was reached."""

    pattern: str
    method: str
    members: tuple[int, ...]
    """Indices (into the input) of the top cluster C."""
    k: int
    """Clusters actually used."""
    fallbacks: tuple[tuple[int, int], ...] = ()
    """``(position, context used)`` wherever no member matched the full context."""

    def to_dict(self) -> dict:
        return {"pattern": self.pattern, "method": self.method, "members": list(self.members), "k": self.k,
                "fallbacks": [list(f) for f in self.fallbacks]}


def top_cluster(scores: Sequence[float], k: int = K, seed: int = 0) -> tuple[list[int], int]:
    """Indices of the highest-mean K-means cluster of ``scores`` and the k used."""
    from sklearn.cluster import KMeans

    y = np.asarray(scores, dtype=np.float64)
    if y.ndim != 1 or not len(y):
        raise ValueError("aggregate: need at least one scored candidate")
    k_used = min(k, len(np.unique(y)))
    if k_used <= 1:
        return list(range(len(y))), 1
    labels = KMeans(n_clusters=k_used, n_init=10, random_state=seed).fit(y.reshape(-1, 1)).labels_
    means = {lab: y[labels == lab].mean() for lab in np.unique(labels)}
    best = max(means, key=lambda lab: (means[lab], -lab))
    return [i for i in range(len(y)) if labels[i] == best], k_used


def context_of(method: str, position: int) -> int:
    """Prefix length ``c`` that ``N_c`` conditions on at ``position``."""
    if method == "Nall":
        return position
    return min(int(method[1:]), position)  # any N<c> works; the CLI offers N0, N1 and Nall


def _vote(members: list[tuple[str, float]], position: int) -> str:
    tally: dict[str, list[float]] = {}
    for pattern, score in members:
        tally.setdefault(pattern[position], []).append(score)
    return min(tally, key=lambda ch: (-len(tally[ch]), -sum(tally[ch]), ch))


def conditional_mode(members: list[tuple[str, float]], method: str) -> tuple[str, tuple[tuple[int, int], ...]]:
    """Layer-wise conditional mode ``N_c`` over ``(pattern, score)`` members (module docstring)."""
    n = len(members[0][0])
    chosen = ""
    fallbacks = []
    for i in range(n):
        c = context_of(method, i)
        match, used = matching(members, chosen, i, c)
        if used != c:
            fallbacks.append((i, used))
        chosen += _vote(match, i)
    return chosen, tuple(fallbacks)


def matching(members: list[tuple[str, float]], chosen: str, i: int, c: int) -> tuple[list[tuple[str, float]], int]:
    """Members whose positions ``i-c .. i-1`` equal ``chosen``'s, lowering ``c`` until one matches."""
    while True:
        match = [(p, s) for p, s in members if p[i - c:i] == chosen[i - c:i]]
        if match or c == 0:
            return match, c
        c -= 1


def aggregate(patterns: Sequence[str], scores: Sequence[float], method: str = "N0", *, k: int = K,
              seed: int = 0) -> Aggregation:
    """Aggregate evaluated layouts into one (docs/method.md §2.3)."""
    if method not in AGGREGATORS:
        raise ValueError(f"aggregate: unknown method {method!r}; valid: {', '.join(AGGREGATORS)}")
    if len(patterns) != len(scores) or not patterns:
        raise ValueError("aggregate: need as many scores as patterns, and at least one")
    if len({len(p) for p in patterns}) != 1:
        raise ValueError("aggregate: every pattern must have the same depth")
    if method == "best":
        i = max(range(len(scores)), key=lambda j: (scores[j], -j))
        return Aggregation(patterns[i], method, (i,), 0)
    members, k_used = top_cluster(scores, k, seed)
    pattern, fallbacks = conditional_mode([(patterns[i], float(scores[i])) for i in members], method)
    return Aggregation(pattern, method, tuple(members), k_used, fallbacks)
