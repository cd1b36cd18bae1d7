"""The task registry: name -> config class, generator and the model facts a trainer needs."""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Literal

import numpy as np

from composer.mad.tasks._task_base import Seed, TaskBatch, TaskConfig, check_request, make_batch

Sampler = Callable[[Any, np.random.Generator, int, bool], tuple[np.ndarray, np.ndarray]]
"""``sample(config, rng, n, training) -> (inputs, targets)``: ``n`` instances drawn from ``rng``."""


@dataclasses.dataclass(frozen=True)
class TaskSpec:
    """One registered task."""

    name: str
    config_cls: type[TaskConfig]
    """Frozen config dataclass; ``config_cls()`` is the MAD baseline."""
    sample: Sampler
    """The task's sampler; ``generate`` wraps it."""
    autoencoder: bool
    """Whether the task uses MAD's autoencoder (compression) rather than the language model."""

    def generate(self, config: Any, n: int, seed: Seed, *, training: bool) -> TaskBatch:
        """``n`` instances drawn deterministically from ``seed`` (one seeded ``Generator``)."""
        check_request(n, seed)
        inputs, targets = self.sample(config, np.random.default_rng(seed), n, training)
        return make_batch(inputs, targets, self.name, training)

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


TASKS: dict[str, TaskSpec] = {}
"""Task name -> its entry, filled by ``register_task`` as the task modules are imported
(``composer/mad/tasks/__init__.py`` imports every one)."""


def register_task(name: str, config_cls: type[TaskConfig], *, autoencoder: bool = False):
    """Decorator on a task module's sampler (see ``Sampler``): registers the task under ``name``.

    A new task is one file (a ``TaskConfig`` subclass + its sampler) decorated so, plus its import
    in the package ``__init__`` and its settings in the protocols (docs/mad_tasks.md).
    """
    def deco(sample: Sampler) -> Sampler:
        if name in TASKS and TASKS[name].sample is not sample:
            raise ValueError(f"task {name!r} is already registered")
        TASKS[name] = TaskSpec(name, config_cls, sample, autoencoder=autoencoder)
        return sample

    return deco


def spec_for(config: TaskConfig) -> TaskSpec:
    """The registry entry of a config instance."""
    for spec in TASKS.values():
        if type(config) is spec.config_cls:
            return spec
    raise TypeError(f"{type(config).__name__} is not a registered task config")


def generate(config: TaskConfig, n: int, seed: Seed, *, training: bool) -> TaskBatch:
    """Generates ``n`` instances of the task that ``config`` belongs to."""
    return spec_for(config).generate(config, n, seed, training=training)


def generate_split(config: TaskConfig, split: Literal["train", "test", "dev"], seed: int) -> TaskBatch:
    """The ``num_train_examples`` training, or ``num_test_examples`` test or dev instances.

    The splits come from independent child streams of ``seed`` (MAD draws the test set from the train
    set's continuing stream; either way they are disjoint in expectation only, and independent streams
    let one split be regenerated without the other). ``dev`` (a third stream, the size of the test
    set) is what a protocol that chooses its learning rate on a held-out split reads
    (``Protocol.choose_on``); train and test are unchanged by it.
    """
    if split not in ("train", "test", "dev"):
        raise ValueError(f"split={split!r} is invalid; must be 'train', 'test' or 'dev'")
    child = np.random.SeedSequence(seed).spawn(3)[("train", "test", "dev").index(split)]
    n = config.num_train_examples if split == "train" else config.num_test_examples
    return generate(config, n, child, training=split == "train")
