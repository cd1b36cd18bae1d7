"""The task registry: name -> config class, generator and the model facts a trainer needs."""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Literal

import numpy as np

from composer.mad.tasks import (
    compression,
    fuzzy_in_context_recall,
    in_context_recall,
    memorization,
    noisy_in_context_recall,
    selective_copying,
)
from composer.mad.tasks._common import Seed, TaskBatch

TaskConfig = (in_context_recall.InContextRecallConfig
              | noisy_in_context_recall.NoisyInContextRecallConfig
              | fuzzy_in_context_recall.FuzzyInContextRecallConfig
              | selective_copying.SelectiveCopyingConfig
              | compression.CompressionConfig
              | memorization.MemorizationConfig)


@dataclasses.dataclass(frozen=True)
class TaskSpec:
    """One registered task."""

    name: str
    config_cls: type
    """Frozen config dataclass; ``config_cls()`` is the MAD baseline."""
    generate: Callable[..., TaskBatch]
    """``generate(config, n, seed, *, training) -> TaskBatch``."""
    autoencoder: bool
    """Whether the task uses MAD's autoencoder (compression) rather than the language model."""

    def vocab_size(self, config: Any = None) -> int:
        """Vocabulary the model needs (all token ids and labels lie in ``[0, vocab_size)``)."""
        return self._resolve(config).vocab_size

    def input_length(self, config: Any = None) -> int:
        """Model input length ``L`` of the ``[n, L]`` batches (``T - 1`` for CR and NR)."""
        return self._resolve(config).input_length

    def _resolve(self, config: Any) -> Any:
        config = self.config_cls() if config is None else config
        if not isinstance(config, self.config_cls):
            raise TypeError(f"{self.name} expects a {self.config_cls.__name__}, got "
                            f"{type(config).__name__}")
        return config


TASKS: dict[str, TaskSpec] = {
    m.NAME: TaskSpec(m.NAME, cls, m.generate, autoencoder=m is compression)
    for m, cls in [
        (in_context_recall, in_context_recall.InContextRecallConfig),
        (noisy_in_context_recall, noisy_in_context_recall.NoisyInContextRecallConfig),
        (fuzzy_in_context_recall, fuzzy_in_context_recall.FuzzyInContextRecallConfig),
        (selective_copying, selective_copying.SelectiveCopyingConfig),
        (compression, compression.CompressionConfig),
        (memorization, memorization.MemorizationConfig),
    ]
}

_BY_CONFIG = {spec.config_cls: spec for spec in TASKS.values()}


def spec_for(config: TaskConfig) -> TaskSpec:
    """The registry entry of a config instance."""
    try:
        return _BY_CONFIG[type(config)]
    except KeyError:
        raise TypeError(f"{type(config).__name__} is not a registered task config") from None


def generate(config: TaskConfig, n: int, seed: Seed, *, training: bool) -> TaskBatch:
    """Generates ``n`` instances of the task that ``config`` belongs to."""
    return spec_for(config).generate(config, n, seed, training=training)


def generate_split(config: TaskConfig, split: Literal["train", "test"], seed: int) -> TaskBatch:
    """The ``num_train_examples`` training or ``num_test_examples`` test instances.

    The two splits come from independent child streams of ``seed`` (MAD draws the test set from
    the train set's continuing stream; either way they are disjoint in expectation only, and
    independent streams let one split be regenerated without the other).
    """
    if split not in ("train", "test"):
        raise ValueError(f"split={split!r} is invalid; must be 'train' or 'test'")
    child = np.random.SeedSequence(seed).spawn(2)[split == "test"]
    n = config.num_train_examples if split == "train" else config.num_test_examples
    return generate(config, n, child, training=split == "train")
