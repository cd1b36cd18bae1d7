"""Choosing the learning rate: the rule over dev losses, the dev split, and a study that never reads
the validation windows before its choice."""

import json
import math

import numpy as np
import pandas as pd
import pytest

from composer import lr_grid


def test_choose_is_the_best_dev_loss_ties_to_the_lower_rate_and_skips_diverged():
    assert lr_grid.choose({1e-3: 2.0, 2e-3: 1.9, 4e-3: 2.1}) == 2e-3
    assert lr_grid.choose({1e-3: 1.9, 2e-3: 1.9}) == 1e-3
    assert lr_grid.choose({1e-3: math.inf, 2e-3: 2.5}) == 2e-3
    assert lr_grid.choose({1e-3: math.inf}) is None and lr_grid.choose({}) is None


def test_next_rates_runs_the_grid_then_extends_past_an_edge_at_most_extend_times():
    grid = (5e-4, 1e-3, 2e-3)
    assert lr_grid.next_rates(grid, {}, 1) == list(grid)
    assert lr_grid.next_rates(grid, {5e-4: 2.0}, 1) == [1e-3, 2e-3]
    assert lr_grid.next_rates(grid, {5e-4: 2.0, 1e-3: 1.9, 2e-3: 2.1}, 1) == []  # bracketed
    assert lr_grid.next_rates(grid, {5e-4: 1.8, 1e-3: 1.9, 2e-3: 2.1}, 1) == [2.5e-4]  # low edge
    assert lr_grid.next_rates(grid, {5e-4: 2.2, 1e-3: 1.9, 2e-3: 1.8}, 1) == [4e-3]  # high edge
    done = {2.5e-4: 1.7, 5e-4: 1.8, 1e-3: 1.9, 2e-3: 2.1}
    assert lr_grid.next_rates(grid, done, 1) == [] and lr_grid.at_edge(done)  # budget spent, still an edge
    assert lr_grid.next_rates(grid, done, 2) == [1.25e-4]
    assert lr_grid.next_rates((1e-3,), {1e-3: 2.0}, 3) == []  # one rate: nothing to bracket
    assert not lr_grid.at_edge({5e-4: 2.0, 1e-3: 1.9, 2e-3: 2.1})


def test_dev_split_is_carved_from_the_training_books_and_disjoint_from_both(fake_corpus):
    from composer.corpus import CORPORA
    from composer.data import CorpusSource

    corpus, tarball, root = fake_corpus
    CORPORA[corpus.name] = corpus
    try:
        plain = CorpusSource(corpus.name, root=root, tarball=tarball)
        dev = CorpusSource(corpus.name, dev_fraction=0.1, root=root, tarball=tarball)
    finally:
        del CORPORA[corpus.name]
    v0, v1 = plain._splits["validation"], dev._splits["validation"]
    assert np.array_equal(v0, v1)  # the scored text is untouched
    t0, t1, d = plain._splits["train"], dev._splits["train"], dev._splits["dev"]
    n_books = len(corpus.train)  # each split ends every book with a blank line
    assert t1.size + d.size == t0.size + 2 * n_books  # the dev bytes leave training: no batch can read them
    assert abs(d.size / t0.size - 0.1) < 0.01
    from composer.corpus import load_documents

    books = load_documents(corpus, root=root)["train"]
    tails = b"".join(bytes(b[len(b) - max(1, round(len(b) * 0.1)):]) + b"\n\n" for _, b in sorted(books.items()))
    assert bytes(d) == tails  # the last 10 % of every training book, and nothing of the validation books
    assert dev.eval_windows(16, 4, split="dev").shape == (4, 17)
    with pytest.raises(Exception, match="dev split"):
        plain.eval_windows(16, 4, split="dev")
    assert dev.describe()["dev_fraction"] == 0.1


def test_a_tuned_study_chooses_on_dev_and_reads_validation_only_after(tmp_path, monkeypatch):
    """The grid runs read only dev windows; the validation windows are read once per cell, after its
    grid is complete, for the chosen rate, whose dev loss is the lowest; a validation score that
    disagrees with dev changes nothing."""
    import composer.data
    import composer.train
    from search.fidelity.plan import FidelitySettings, jobs
    from search.fidelity.truth_study import StudyRequest, run_study

    log = []
    real_windows = composer.data._WindowSource.eval_windows

    def spy(self, seq_len, n=None, split="validation"):
        log.append(("windows", split))
        return real_windows(self, seq_len, n, split=split)

    real_train, real_eval = composer.train.train, composer.train.evaluate_run

    def train_spy(spec, source, config, **kw):
        log.append(("train", config.lr, config.eval_split))
        return real_train(spec, source, config, **kw)

    def eval_spy(spec, source, config, split):
        loss, acc, se = real_eval(spec, source, config, split)
        log.append(("validation of", config.out_dir.rsplit("-", 1)[-1]))
        return 10.0 - loss, acc, se  # the opposite order of anything dev says

    monkeypatch.setattr(composer.data._WindowSource, "eval_windows", spy)
    monkeypatch.setattr(composer.train, "train", train_spy)
    monkeypatch.setattr(composer.train, "evaluate_run", eval_spy)
    settings = FidelitySettings.of(scale="proxy", batch_size=4, seq_len=64, val_windows=8, dev_windows=8,
                                   lrs=(1e-3, 1e-2), lr_extend=0)
    req = StudyRequest(run_dir=tmp_path / "s", settings=settings, layouts=["AM", "MA"],
                       jobs=jobs(["AM", "MA"], (0,), 1024), proxy_seeds=(), compute_proxy=False, progress=False)
    run_study(req)
    grid = pd.read_parquet(tmp_path / "s" / "lr_grid.parquet")
    truth = pd.read_parquet(tmp_path / "s" / "fidelity.parquet").set_index("layout")
    for layout in ("AM", "MA"):
        g = grid[grid["layout"] == layout]
        assert sorted(g["lr"]) == [1e-3, 1e-2]
        assert truth.loc[layout, "lr"] == float(g.loc[g["dev_loss"].idxmin(), "lr"])
        assert truth.loc[layout, "dev_loss"] == g["dev_loss"].min()
        assert json.loads(truth.loc[layout, "lr_grid_json"]) == {f"{r:g}": v for r, v in zip(g["lr"], g["dev_loss"])}
    assert [e for e in log if e[0] == "train"] == [("train", lr, "dev") for _ in ("AM", "MA") for lr in (1e-3, 1e-2)]
    # each cell: two dev-scored grid runs, then (and only then) one validation read
    reads = [e for e in log if e[0] in ("windows", "validation of")]
    val_at = [i for i, e in enumerate(reads) if e == ("windows", "validation")]
    assert len(val_at) == 2
    assert all(e == ("windows", "dev") for e in reads[:val_at[0]])
    assert reads[val_at[0] - 2:val_at[0]] == [("windows", "dev")] * 2


def test_a_packed_grid_gives_the_rows_of_the_solo_grid_and_resumes(tmp_path):
    """``--pack 2``: a cell's two rates train in one program; the grid, the choice and the validation
    score are those of one-at-a-time (float rounding), every grid row records its pack, and a study
    stopped after one pack (``--max-runs 2``) finishes on the next call without retraining it."""
    from search.fidelity.plan import FidelitySettings, jobs
    from search.fidelity.truth_study import StudyRequest, run_study

    settings = FidelitySettings.of(scale="proxy", batch_size=4, seq_len=64, val_windows=8, dev_windows=8,
                                   lrs=(1e-3, 1e-2), lr_extend=0)

    def study(name, pack, max_runs=None):
        run_study(StudyRequest(run_dir=tmp_path / name, settings=settings, layouts=["AM", "MA"],
                               jobs=jobs(["AM", "MA"], (0,), 1024), proxy_seeds=(), compute_proxy=False,
                               progress=False, pack=pack, max_runs=max_runs))
        return (pd.read_parquet(tmp_path / name / f).sort_values("key").reset_index(drop=True)
                for f in ("lr_grid.parquet", "fidelity.parquet"))

    solo_grid, solo_truth = study("solo", 1)
    part_grid, part_truth = study("packed", 2, max_runs=2)
    assert len(part_grid) == 2 and set(part_grid["layout"]) == {"AM"} and (part_grid["pack"] == 2).all()
    stamps = dict(zip(part_grid["key"], part_grid["finished_at"]))
    grid, truth = study("packed", 2)
    assert (solo_grid["pack"] == 1).all() and (grid["pack"] == 2).all()
    assert dict(zip(grid["key"], grid["finished_at"])).items() >= stamps.items()  # the first pack kept
    assert list(grid["key"]) == list(solo_grid["key"])
    np.testing.assert_allclose(grid["dev_loss"], solo_grid["dev_loss"], rtol=1e-4)
    assert list(truth["lr"]) == list(solo_truth["lr"])
    np.testing.assert_allclose(truth["val_loss"], solo_truth["val_loss"], rtol=1e-4)


def test_a_further_ladder_rung_trains_at_the_rate_chosen_at_the_main_budget(tmp_path):
    """``--ladder TOKENS:PATTERNS:SEEDS``: the rung's runs come after the main ones and train once, at
    the rate their layout's first-seed grid chose at the main budget (no grid of their own)."""
    from search.fidelity.plan import FidelitySettings, jobs
    from search.fidelity.truth_study import StudyRequest, run_study

    settings = FidelitySettings.of(scale="proxy", batch_size=4, seq_len=64, val_windows=8, dev_windows=8,
                                   lrs=(1e-3, 1e-2), lr_extend=0)
    assert [(j.tokens, j.layout) for j in jobs(["AM", "MA"], (0,), 1024, rungs=[(2048, ["MA"], (0,))])] == \
        [(1024, "AM"), (1024, "MA"), (2048, "MA")]
    plan = jobs(["MA"], (0,), 1024, rungs=[(2048, ["MA"], (0,))])
    run_study(StudyRequest(run_dir=tmp_path / "s", settings=settings, layouts=["MA"], jobs=plan,
                           proxy_seeds=(), compute_proxy=False, progress=False))
    grid = pd.read_parquet(tmp_path / "s" / "lr_grid.parquet")
    truth = pd.read_parquet(tmp_path / "s" / "fidelity.parquet")
    long = truth[truth["tokens"] > 1024]
    (row,) = long.to_dict("records")
    main = truth[(truth["layout"] == "MA") & (truth["tokens"] <= 1024)].iloc[0]
    assert row["layout"] == "MA" and row["lr"] == main["lr"] and row["lr_source"] == f"chosen on {main['key']}"
    assert list(grid[grid["cell"] == row["key"]]["lr"]) == [row["lr"]]  # one run at that rate, no grid


def test_a_cell_whose_run_folders_are_gone_retrains_its_chosen_rate_and_refuses_a_changed_recipe(tmp_path):
    """A fresh clone restores a study's tables but not its run folders: a cell whose grid is complete
    but whose validation score was never taken trains its chosen rate again and scores that run, the
    same to float rounding as the original; if the retrained dev loss disagrees with the stored one
    (the recipe changed), the study stops with an error that names the fix and writes no row."""
    import shutil

    from search.fidelity.plan import FidelitySettings, jobs
    from search.fidelity.truth_study import StudyRequest, run_study

    settings = FidelitySettings.of(scale="proxy", batch_size=4, seq_len=64, val_windows=8, dev_windows=8,
                                   lrs=(1e-3, 1e-2), lr_extend=0)
    run_dir = tmp_path / "s"
    req = StudyRequest(run_dir=run_dir, settings=settings, layouts=["AM", "MA"], jobs=jobs(["AM", "MA"], (0,), 1024),
                       proxy_seeds=(), compute_proxy=False, progress=False)
    run_study(req)
    truth, grid = (pd.read_parquet(run_dir / f) for f in ("fidelity.parquet", "lr_grid.parquet"))
    original = truth.set_index("layout").loc["MA"]
    shutil.rmtree(run_dir / "train")  # what a fresh clone lacks
    truth[truth["layout"] != "MA"].to_parquet(run_dir / "fidelity.parquet")  # MA's score not yet taken

    chosen = (grid["layout"] == "MA") & (grid["lr"] == original["lr"])
    grid.loc[chosen, "dev_loss"] -= 0.5  # as if the grid had run under another recipe
    grid.to_parquet(run_dir / "lr_grid.parquet")
    with pytest.raises(RuntimeError, match="recipe changed"):
        run_study(req)
    assert set(pd.read_parquet(run_dir / "fidelity.parquet")["layout"]) == {"AM"}

    grid.loc[chosen, "dev_loss"] += 0.5
    grid.to_parquet(run_dir / "lr_grid.parquet")
    run_study(req)
    again = pd.read_parquet(run_dir / "fidelity.parquet").set_index("layout").loc["MA"]
    assert again["lr"] == original["lr"] and again["dev_loss"] == original["dev_loss"]
    np.testing.assert_allclose(again["val_loss"], original["val_loss"], rtol=1e-4)
    assert len(pd.read_parquet(run_dir / "lr_grid.parquet")) == len(grid)  # the grid is not rerun
