"""Layout search: space, searchers behind one ask/tell loop, durable studies, leaderboard, aggregator.

Importing ``search`` loads nothing heavy: Optuna, Ray and JAX are imported by the modules that need
them (``search.run`` and the searchers, ``search.ray_backend``, the evaluators), and
``search.results.leaderboard`` reads results with pandas alone. Entry point: ``composer search``
(docs/search.md); in Python, ``search.run.run_search``.
"""
