"""Token streams for language-model training: a byte tokenizer and a plain-text source.

A ``TokenSource`` is a pure function of ``(split, step, seed)``: batch ``step`` is the same array
whenever it is asked for, so a run resumed at step ``s`` sees exactly the batches an uninterrupted
run would have seen, with no iterator position to checkpoint.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal, Protocol, runtime_checkable

import numpy as np

from composer.errors import UsageError

__all__ = ["Split", "TokenSource", "ByteTokenizer", "TextSource", "CorpusSource", "VAL_FRACTION", "EVAL_SPLITS",
           "eval_window_starts"]

Split = Literal["train", "validation", "dev"]
VAL_FRACTION = 0.1
"""Share of the token stream (its tail) held out for validation."""
EVAL_SPLITS = ("validation", "dev")
"""Splits a run can be scored on: ``validation`` (the reported score) and ``dev`` (carved out of the
training text, for choosing hyperparameters without ever reading the validation text)."""

_SPLIT_IDS = {"train": 0, "validation": 1, "dev": 2}


def _check_dev_fraction(dev_fraction: float) -> float:
    if not isinstance(dev_fraction, (int, float)) or isinstance(dev_fraction, bool) or not 0.0 <= dev_fraction < 0.5:
        raise UsageError(f"--dev-fraction: must be a number in [0, 0.5), got {dev_fraction!r}")
    return float(dev_fraction)


@runtime_checkable
class TokenSource(Protocol):
    """Deterministic, random-access batches of token windows."""

    vocab_size: int
    """Every token id is in ``[0, vocab_size)``."""

    def batch(self, split: Split, step: int, batch_size: int, seq_len: int, *, seed: int) -> np.ndarray:
        """int32 ``[batch_size, seq_len + 1]`` (inputs are ``[:, :-1]``, targets ``[:, 1:]``).

        Must depend only on the arguments, so equal arguments give equal arrays.
        """
        ...


class ByteTokenizer:
    """UTF-8 bytes as tokens: vocabulary 256, no special tokens, lossless on valid UTF-8."""

    vocab_size = 256

    def encode(self, text: str) -> np.ndarray:
        """int32 ``[n]`` byte values of ``text`` encoded as UTF-8."""
        return np.frombuffer(text.encode("utf-8"), dtype=np.uint8).astype(np.int32)

    def decode(self, ids) -> str:
        """Text of the byte ids; invalid UTF-8 (e.g. a cut multi-byte character) becomes U+FFFD."""
        arr = np.asarray(ids)
        if arr.size and (arr.min() < 0 or arr.max() > 255):
            raise ValueError(f"byte ids must be in [0, 255], got range [{arr.min()}, {arr.max()}]")
        return arr.astype(np.uint8).tobytes().decode("utf-8", errors="replace")


def _text_files(path: Path) -> list[Path]:
    """``path`` itself, or every regular file under the folder ``path`` (recursive, sorted, no dot files)."""
    if path.is_file():
        return [path]
    files = []
    for root, dirs, names in os.walk(path):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        files += [Path(root) / n for n in sorted(names) if not n.startswith(".")]
    return files


def eval_window_starts(n_tokens: int, seq_len: int, n_windows: int | None = None) -> np.ndarray:
    """Start offsets of the fixed validation windows: non-overlapping, evenly spread, seed-free.

    The split holds ``(n_tokens - 1) // seq_len`` non-overlapping windows of ``seq_len + 1`` tokens
    (consecutive windows share their boundary token, as the next window's first input). ``n_windows``
    of them, evenly spaced over the split, are taken (all when ``None`` or larger), so every run
    scored with the same ``(seq_len, n_windows)`` is scored on the very same text.
    """
    total = (n_tokens - 1) // seq_len
    if total < 1:
        raise UsageError(f"seq_len {seq_len}: the validation split has {n_tokens} tokens, fewer than one window")
    if n_windows is None or n_windows >= total:
        picked = np.arange(total)
    else:
        picked = (np.arange(n_windows) * total) // n_windows
    return picked.astype(np.int64) * seq_len


class _WindowSource:
    """Windows over a ``train`` and a ``validation`` byte stream (``self._splits``)."""

    vocab_size = ByteTokenizer.vocab_size
    _splits: dict[str, np.ndarray]
    label = "text"

    def num_tokens(self, split: Split | None = None) -> int:
        """Tokens in ``split`` (both splits when ``None``)."""
        if split is None:
            return sum(s.size for s in self._splits.values())
        return int(self._splits[split].size)

    def check_window(self, seq_len: int) -> None:
        """Raise ``UsageError`` unless every split holds at least one window of ``seq_len + 1`` tokens."""
        for split, toks in self._splits.items():
            if toks.size < seq_len + 1:
                raise UsageError(
                    f"--seq-len {seq_len}: the {split} split of {self.label} has only {toks.size} tokens, "
                    f"fewer than one window of seq_len + 1; use a shorter --seq-len or more text")

    def batch(self, split: Split, step: int, batch_size: int, seq_len: int, *, seed: int) -> np.ndarray:
        toks = self._splits[split]
        self.check_window(seq_len)
        rng = np.random.default_rng([seed, _SPLIT_IDS[split], step])
        starts = rng.integers(0, toks.size - seq_len, size=batch_size)
        idx = starts[:, None] + np.arange(seq_len + 1)
        return toks[idx].astype(np.int32)

    def eval_windows(self, seq_len: int, n_windows: int | None = None, split: Split = "validation") -> np.ndarray:
        """int32 ``[n, seq_len + 1]``: the fixed windows of ``split`` (``eval_window_starts``)."""
        if split not in EVAL_SPLITS or split not in self._splits:
            have = [s for s in EVAL_SPLITS if s in self._splits]
            hint = "; give the source a dev split (dev_fraction > 0)" if split == "dev" else ""
            raise UsageError(f"eval split {split!r}: {self.label} has the evaluation splits {have}{hint}")
        toks = self._splits[split]
        starts = eval_window_starts(toks.size, seq_len, n_windows)
        return toks[starts[:, None] + np.arange(seq_len + 1)].astype(np.int32)


class TextSource(_WindowSource):
    """Byte-level windows over a text file or a folder of text files.

    Split rule: the files are read in sorted path order and concatenated into one byte stream;
    the last ``val_fraction`` of it (rounded, at least 2 tokens) is the validation split, the rest is
    train. A folder's validation split is therefore its last files, i.e. held-out documents. With
    ``dev_fraction > 0`` the tail of the train part (that share of it) becomes a ``dev`` split, which
    no training batch reads, for choosing hyperparameters away from the validation text.
    Each training batch row is a window starting at a uniformly drawn offset of the train split, drawn
    by a NumPy generator seeded with ``(seed, split, step)``; validation uses the fixed windows of
    ``eval_windows``, which no seed changes.
    """

    def __init__(self, path: str | os.PathLike, *, val_fraction: float = VAL_FRACTION, dev_fraction: float = 0.0):
        self.dev_fraction = _check_dev_fraction(dev_fraction)
        if not 0.0 < val_fraction < 1.0:
            raise UsageError(f"val_fraction must be in (0, 1), got {val_fraction!r}")
        p = Path(path).expanduser()
        if not p.exists():
            raise UsageError(f"--data: {str(path)!r} does not exist; give a text file or a folder of text files")
        files = _text_files(p)
        if not files:
            raise UsageError(f"--data: folder {str(path)!r} holds no files")
        self.path = str(p.resolve())
        self.label = repr(self.path)
        self.files = tuple(str(f) for f in files)
        stream = np.concatenate([np.fromfile(f, dtype=np.uint8) for f in files])
        if stream.size < 4:
            raise UsageError(f"--data: {str(path)!r} holds {stream.size} bytes; need some text to train on")
        self.val_fraction = val_fraction
        n_val = max(2, int(round(stream.size * val_fraction)))
        self._splits = {"train": stream[:-n_val], "validation": stream[-n_val:]}
        if self.dev_fraction:
            train = self._splits["train"]
            n_dev = max(2, int(round(train.size * self.dev_fraction)))
            self._splits.update(train=train[:-n_dev], dev=train[-n_dev:])

    def __repr__(self) -> str:
        return f"TextSource({self.path!r}, files={len(self.files)}, tokens={self.num_tokens()})"

    def describe(self) -> dict:
        """JSON record of what was read (saved in a run's ``config.json``)."""
        return {"source": "text", "path": self.path, "files": len(self.files), "val_fraction": self.val_fraction,
                "dev_fraction": self.dev_fraction,
                "tokens": {split: int(toks.size) for split, toks in self._splits.items()}}


class CorpusSource(_WindowSource):
    """Byte-level windows over a registry corpus (``composer.corpus``), split by document.

    Each split is its documents concatenated in name order, separated by a blank line. With
    ``dev_fraction > 0`` the last share of every training book (cut at a byte, the same cut for every
    seed) is a ``dev`` split: in-distribution text that no training batch and no validation window
    reads, on which learning rates are chosen (docs/fidelity.md).
    """

    def __init__(self, corpus: str = "gutenberg", *, dev_fraction: float = 0.0, **load_kwargs):
        from composer.corpus import get_corpus, load_documents

        self.corpus = get_corpus(corpus)
        self.dev_fraction = _check_dev_fraction(dev_fraction)
        self.label = f"corpus {corpus!r}"
        docs = load_documents(self.corpus, **load_kwargs)
        if self.dev_fraction:
            train = docs["train"]
            cut = {d: len(b) - max(1, int(round(len(b) * self.dev_fraction))) for d, b in train.items()}
            docs = {"train": {d: b[:cut[d]] for d, b in train.items()},
                    "dev": {d: b[cut[d]:] for d, b in train.items()}, "validation": docs["validation"]}
        sep = np.frombuffer(b"\n\n", dtype=np.uint8)
        self._splits = {split: np.concatenate([part for d in sorted(by_doc) for part in (by_doc[d], sep)])
                        for split, by_doc in docs.items()}

    def __repr__(self) -> str:
        return f"CorpusSource({self.corpus.name!r}, tokens={self.num_tokens()})"

    def describe(self) -> dict:
        return {"source": "corpus", "corpus": self.corpus.name, "package": self.corpus.package,
                "sha256": self.corpus.sha256, "validation_documents": list(self.corpus.validation),
                "dev_fraction": self.dev_fraction,
                "tokens": {split: int(toks.size) for split, toks in self._splits.items()}}
