"""Shared pieces of the MAD task generators: the config base, the batch type, validation and sampling.

Numpy only: reading or generating task data never imports JAX.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

import numpy as np

IGNORE = -100
"""Target value of an unscored position (the cross-entropy ``ignore_index``, MAD §1.4)."""

Seed = int | np.random.SeedSequence


@dataclasses.dataclass(frozen=True, eq=False)
class TaskBatch:
    """``n`` generated instances of one task.

    ``targets[i, t]`` is the label of the model output at position ``t`` (any shift is already
    applied); positions that are not scored hold ``IGNORE``.
    """

    inputs: np.ndarray
    """Token ids, ``[n, L]`` int32."""
    targets: np.ndarray
    """Labels, ``[n, L]`` int32, ``IGNORE`` where unscored."""
    task: str
    """Registry name of the task that produced the batch."""
    training: bool
    """Whether the batch was generated with training-form targets and sampling."""

    def __post_init__(self):
        if self.inputs.shape != self.targets.shape or self.inputs.ndim != 2:
            raise ValueError(f"inputs {self.inputs.shape} and targets {self.targets.shape} must "
                             "both be [n, L]")

    @property
    def scored(self) -> np.ndarray:
        """Boolean ``[n, L]`` mask of scored positions."""
        return self.targets != IGNORE

    @property
    def num_scored(self) -> np.ndarray:
        """Number of scored positions per instance, ``[n]``."""
        return self.scored.sum(axis=1)

    def __len__(self) -> int:
        return self.inputs.shape[0]


def make_batch(inputs: np.ndarray, targets: np.ndarray, task: str, training: bool) -> TaskBatch:
    return TaskBatch(np.ascontiguousarray(inputs, dtype=np.int32),
                     np.ascontiguousarray(targets, dtype=np.int32), task, training)


def fail(config: Any, field: str, allowed: str) -> None:
    """Raises the house-style error: the field, its bad value and what is allowed."""
    value = getattr(config, field)
    raise ValueError(f"{type(config).__name__}.{field}={value!r} is invalid; {allowed}")


def check_int(config: Any, field: str, low: int, high: int | None = None) -> None:
    value = getattr(config, field)
    ok = isinstance(value, (int, np.integer)) and not isinstance(value, bool)
    if not ok or value < low or (high is not None and value > high):
        bound = f"an integer >= {low}" if high is None else f"an integer in [{low}, {high}]"
        fail(config, field, f"must be {bound}")


def check_bool(config: Any, field: str) -> None:
    if not isinstance(getattr(config, field), bool):
        fail(config, field, "must be a bool")


def check_request(n: int, seed: Seed) -> None:
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 1:
        raise ValueError(f"n={n!r} is invalid; must be an integer >= 1")
    if not isinstance(seed, np.random.SeedSequence) and (
            not isinstance(seed, (int, np.integer)) or isinstance(seed, bool) or seed < 0):
        raise ValueError(f"seed={seed!r} is invalid; must be an integer >= 0 or a SeedSequence")


def distinct_tokens(rng: np.random.Generator, n: int, vocab: int, size: int) -> np.ndarray:
    """``[n, size]`` rows of ``size`` distinct tokens from ``[0, vocab)``, each row a uniform
    ordered tuple (the first ``s`` columns are then uniform over ordered ``s``-tuples too)."""
    order = np.argsort(rng.random((n, vocab)), axis=1)
    return order[:, :size]


@dataclasses.dataclass(frozen=True, kw_only=True)
class TaskConfig:
    """The fields every task config shares; each task's frozen config dataclass extends it.

    ``Config()`` is the task's MAD baseline: a subclass redeclares a shared field only to change its
    default, and says in its docstring how ``vocab_size`` and ``seq_len`` shape its sequences.
    """

    vocab_size: int = 16
    """The model vocabulary: every token id and label lies in ``[0, vocab_size)``."""
    seq_len: int = 128
    """Sequence length ``T`` in tokens (the model input has ``input_length`` of them)."""
    num_train_examples: int = 12800
    """Size of the training split (``generate_split``)."""
    num_test_examples: int = 1280
    """Size of the test split (``generate_split``)."""

    MIN_VOCAB: ClassVar[int] = 2
    """Smallest valid ``vocab_size``."""
    MIN_SEQ_LEN: ClassVar[int] = 1
    """Smallest valid ``seq_len``."""

    def __post_init__(self):
        check_int(self, "vocab_size", self.MIN_VOCAB)
        check_int(self, "seq_len", self.MIN_SEQ_LEN)
        check_int(self, "num_train_examples", 1)
        check_int(self, "num_test_examples", 1)
        self.check()

    def check(self) -> None:
        """Validates the task's own fields; runs after the shared ones passed."""

    @property
    def input_length(self) -> int:
        """Model input length ``L`` of the task's ``[n, L]`` batches."""
        return self.seq_len
