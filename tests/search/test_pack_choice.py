"""``--pack``: the default chosen by device and checked against what the search can fill."""

import dataclasses

import pytest

from composer.errors import UsageError
from search import methods
from search.pack_choice import AUTO_PACK, device_kind, most_seeds_together, resolve_pack
from search.settings import SearchSettings


def _resolve(device: str, **flags) -> tuple[int, int]:
    settings = SearchSettings(**flags)
    n = methods.stage_space(settings, 0, None).n_feasible
    return resolve_pack(settings, n, device), most_seeds_together(settings, n)


def test_cpu_packs_four_only_where_a_rung_holds_four_seeds():
    pack, most = _resolve("cpu", budget=200)
    assert most >= 4 and pack == AUTO_PACK["cpu"] == 4
    # a small search's rungs hold at most 3 seeds of a layout: a pack of 2 or 3 is slower than none on a CPU
    pack, most = _resolve("cpu", budget=24)
    assert most < 4 and pack == 1


def test_accelerators_pack_what_the_search_can_fill():
    assert _resolve("gpu", budget=200) == (8, 8)
    pack, most = _resolve("gpu", budget=24)
    assert pack == most == 3
    assert _resolve("tpu", budget=24)[0] == 3


def test_an_unknown_device_and_ray_do_not_pack():
    assert _resolve("metal", budget=200)[0] == 1
    assert _resolve("cpu", budget=200, backend="ray")[0] == 1


def test_an_explicit_pack_is_kept_or_refused():
    assert _resolve("cpu", budget=200, pack=2)[0] == 2
    assert _resolve("gpu", budget=200, pack=1)[0] == 1
    with pytest.raises(UsageError, match="--pack 9: this search never trains more than 8 seeds"):
        _resolve("cpu", budget=200, pack=9)


def test_negative_pack_is_refused():
    with pytest.raises(ValueError, match="--pack: must be an integer >= 0"):
        SearchSettings(pack=-1)


def test_device_kind_reads_jax_platforms_without_starting_jax(monkeypatch):
    monkeypatch.setenv("JAX_PLATFORMS", "cuda,cpu")
    assert device_kind() == "gpu"
    monkeypatch.setenv("JAX_PLATFORMS", "cpu")
    assert device_kind() == "cpu"
    monkeypatch.setenv("JAX_PLATFORMS", "tpu")
    assert device_kind() == "tpu"


def test_the_stored_settings_record_the_pack_the_run_used(tmp_path):
    from search.run import _validate

    settings = SearchSettings(budget=200, runs_dir=str(tmp_path))
    resolved = _validate(settings)
    assert settings.pack == 0 and resolved.pack == resolve_pack(settings, 64)
    assert dataclasses.replace(resolved, pack=0, workers=0) == settings
