"""``--workers``: the default chosen by device and evaluator, and stored resolved with the run."""

import pytest

from search.settings import SearchSettings
from search.worker_choice import AUTO_WORKERS, resolve_workers


def test_a_cpu_host_evaluates_a_training_proxy_with_two_workers():
    assert resolve_workers(SearchSettings(), "cpu", cpus=2) == AUTO_WORKERS["cpu"] == 2
    assert resolve_workers(SearchSettings(protocol="capacity"), "cpu", cpus=16) == 2
    assert resolve_workers(SearchSettings(protocol="text"), "cpu", cpus=1) == 1  # never more than the cores


def test_accelerators_ray_and_the_fake_evaluator_keep_one():
    assert resolve_workers(SearchSettings(), "gpu", cpus=16) == 1
    assert resolve_workers(SearchSettings(), "tpu", cpus=16) == 1
    assert resolve_workers(SearchSettings(backend="ray"), "cpu", cpus=16) == 1
    assert resolve_workers(SearchSettings(evaluator="fake"), "cpu", cpus=16) == 1


def test_an_explicit_count_is_kept():
    assert resolve_workers(SearchSettings(workers=1), "cpu", cpus=2) == 1
    assert resolve_workers(SearchSettings(workers=3, evaluator="fake"), "gpu", cpus=2) == 3


@pytest.mark.parametrize("bad", [-1, 1.5, True])
def test_a_negative_or_non_integer_count_is_refused(bad):
    with pytest.raises(ValueError, match="--workers: must be an integer >= 0"):
        SearchSettings(workers=bad)


def test_the_stored_settings_record_the_workers_the_run_used(tmp_path, monkeypatch):
    from search.run import _validate

    monkeypatch.setenv("JAX_PLATFORMS", "cpu")
    settings = SearchSettings(budget=200, runs_dir=str(tmp_path))
    assert settings.workers == 0 and _validate(settings).workers == resolve_workers(settings)
    assert _validate(SearchSettings(budget=200, runs_dir=str(tmp_path), evaluator="fake")).workers == 1


def test_an_evaluator_registered_at_run_time_keeps_one_worker(monkeypatch):
    """A spawned worker cannot build a kind registered by the running script: only opted-in kinds get two."""
    from search import evaluators

    monkeypatch.setattr(evaluators, "EVALUATORS", dict(evaluators.EVALUATORS))

    class Mine:
        def __init__(self, config):
            self.protocol = config.label

    evaluators.register_evaluator("mine")(Mine)
    assert resolve_workers(SearchSettings(evaluator="mine"), "cpu", cpus=2) == 1
    Mine.cpu_bound = True
    assert resolve_workers(SearchSettings(evaluator="mine"), "cpu", cpus=2) == 2
