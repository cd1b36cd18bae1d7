"""Task settings of the two protocols: MAD's (``paper``, docs/mad_tasks.md §2-§8) and ``cpu-v1`` (§11.3).

Only task data settings live here; model size, optimiser and schedule belong to the trainer.
"""

from __future__ import annotations

import dataclasses

from composer.mad.tasks.compression import CompressionConfig
from composer.mad.tasks.fuzzy_in_context_recall import FuzzyInContextRecallConfig
from composer.mad.tasks.in_context_recall import InContextRecallConfig
from composer.mad.tasks.memorization import MemorizationConfig
from composer.mad.tasks.noisy_in_context_recall import NoisyInContextRecallConfig
from composer.mad.tasks.registry import TASKS, TaskConfig
from composer.mad.tasks.selective_copying import SelectiveCopyingConfig

_TRAIN_SIZES = {"num_train_examples": (6400, 3200, 1600, 800)}
_CHANGES: dict[str, dict[str, tuple]] = {
    "in_context_recall": {"vocab_size": (32, 64, 128), "seq_len": (256, 512, 1024), **_TRAIN_SIZES},
    "noisy_in_context_recall": {"vocab_size": (48, 80, 144), "seq_len": (256, 512, 1024),
                                **_TRAIN_SIZES, "frac_noise": (0.4, 0.6, 0.8)},
    "fuzzy_in_context_recall": {"vocab_size": (32, 64, 128), "seq_len": (256, 512, 1024),
                                **_TRAIN_SIZES},
    "selective_copying": {"vocab_size": (32, 64, 128), "seq_len": (512, 1024), **_TRAIN_SIZES,
                          "num_tokens_to_copy": (32, 64, 96)},
    "compression": {"vocab_size": (32, 64, 128), "seq_len": (64, 128, 256), **_TRAIN_SIZES},
    "memorization": {"vocab_size": (512, 1024, 2048, 4096, 8192)},
}


PAPER_SETTINGS: dict[str, TaskConfig] = {name: TASKS[name].config_cls() for name in _CHANGES}
"""MAD's baseline setting of each task (the config defaults), in MAD's task order."""


def _sweep(name: str) -> tuple[TaskConfig, ...]:
    base = PAPER_SETTINGS[name]
    return (base,) + tuple(dataclasses.replace(base, **{field: value})
                           for field, values in _CHANGES[name].items() for value in values)


PAPER_SWEEPS: dict[str, tuple[TaskConfig, ...]] = {name: _sweep(name) for name in PAPER_SETTINGS}
"""All 66 MAD settings: per task the baseline, then its one-at-a-time changes (§1.6, §8)."""

CPU_STEPS: dict[str, int] = {
    "in_context_recall": 250,
    "noisy_in_context_recall": 600,
    "fuzzy_in_context_recall": 300,
    "selective_copying": 300,
    "compression": 200,
    "memorization": 150,
}
"""Suggested training steps per task under cpu-v1 (§11.3)."""

CPU_BATCH_SIZE = 32
"""cpu-v1 batch size; it only sizes the training streams below (one pass, ``steps * batch``)."""

CPU_NUM_TEST = 512
"""cpu-v1 test-set size (an independent seeded stream, ``generate_split``)."""


def _cpu(name: str, config: TaskConfig) -> TaskConfig:
    """A cpu-v1 setting: a one-pass training stream of ``steps * batch`` sequences, 512 test."""
    return dataclasses.replace(config, num_train_examples=CPU_STEPS[name] * CPU_BATCH_SIZE,
                               num_test_examples=CPU_NUM_TEST)


CPU_SETTINGS: dict[str, TaskConfig] = {name: _cpu(name, cfg) for name, cfg in {
    "in_context_recall": InContextRecallConfig(vocab_size=8, seq_len=32,
                                               train_on_scored_only=True),
    "noisy_in_context_recall": NoisyInContextRecallConfig(
        vocab_size=16, noise_vocab_size=8, frac_noise=0.2, seq_len=32, train_on_scored_only=True),
    "fuzzy_in_context_recall": FuzzyInContextRecallConfig(
        vocab_size=10, seq_len=32, k_motif=2, v_motif=2, train_on_scored_only=True),
    "selective_copying": SelectiveCopyingConfig(vocab_size=16, seq_len=32, num_tokens_to_copy=4),
    "compression": CompressionConfig(vocab_size=16, seq_len=16),
    "memorization": MemorizationConfig(vocab_size=256, seq_len=32),
}.items()}
"""cpu-v1 task settings (docs/mad_tasks.md §11.3): the three recall tasks train on scored positions
only (a deliberate deviation from MAD); memorization uses fresh sequences, not MAD's 256."""


CAPACITY_STEPS = 150
"""Training steps of the ``capacity`` protocol (the cpu memorization budget, 4,800 sequences)."""

CAPACITY_SETTINGS: dict[str, TaskConfig] = {
    "memorization": MemorizationConfig(vocab_size=2048, seq_len=32, num_train_examples=CAPACITY_STEPS * CPU_BATCH_SIZE,
                                       num_test_examples=CPU_NUM_TEST),
}
"""The ``capacity`` protocol's one task: memorization with 1,023 facts (8x the cpu setting's 127), each
seen about 75 times in one pass instead of about 600, so that scores stay graded (0.00-0.8 on six-layer
layouts) instead of saturating at 1.00 for any layout with a token mixer."""
