"""Searchers: each one makes the Optuna sampler that proposes the next layout (docs/method.md §2.1).

The loop in ``search.loop`` owns ask/tell; a searcher only turns ``(space, seed)`` into a sampler.
A fresh sampler is made for every ask with a seed derived from the run seed and the number of trials
so far, so a resumed study proposes exactly what an uninterrupted one would have (``search.loop``).
Optuna is imported only when a sampler is made.
"""

from search.searchers.catalog import SEARCHERS, Searcher, get_searcher

__all__ = ["SEARCHERS", "Searcher", "get_searcher"]
