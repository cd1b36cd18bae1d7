"""Shared helpers: a fake-evaluator engine on in-memory or SQLite storage, and CLI runs."""

from __future__ import annotations

import optuna
import pytest

from search.dedup import EvaluatedIndex
from search.evaluators import EvaluatorConfig
from search.loop import Engine, EngineConfig, Stage
from search.results.rows import RunInfo, directions
from search.searchers import get_searcher
from search.space import SearchSpace

INFO = RunInfo(git_sha="test", git_dirty=False, versions={}, platform="test")


def run_stage(sampler: str, *, budget: int, space: SearchSpace | None = None, seed: int = 0,
              objectives=("score",), workers: int = 1, storage=None, study_name: str = "t/stage0"):
    """Run one stage with the fake evaluator; return ``(rows, study)``."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = space or SearchSpace(depth=4)
    evaluator = EvaluatorConfig(kind="fake").build()
    from search.backends import InlineBackend

    config = EngineConfig(run="t", objectives=tuple(objectives), seed=seed, scale="350M", rule="auto",
                          sampler_name=sampler)
    engine = Engine(config, evaluator=evaluator, backend=InlineBackend(evaluator), index=EvaluatedIndex(), info=INFO)
    study = optuna.create_study(storage=storage or optuna.storages.InMemoryStorage(), study_name=study_name,
                                directions=directions(tuple(objectives)))
    stage = Stage(0, study_name, space, budget, get_searcher(sampler))
    engine.run_stage(study, stage, workers)
    return engine.index.rows(), study


@pytest.fixture
def cli(tmp_path, monkeypatch):
    """``cli("--budget", "5", ...)`` runs ``composer search --evaluator fake --quiet`` in ``tmp_path``."""
    from cli.main import main

    monkeypatch.chdir(tmp_path)

    def _run(*args: str) -> int:
        return main(["search", "--evaluator", "fake", "--quiet", *args])

    return _run
