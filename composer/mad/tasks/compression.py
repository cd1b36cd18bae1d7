"""Compression (MAD §6, "C"), the autoencoder task.

``x = [c_1 .. c_{T-1}, cmp]`` with ``c_i`` uniform over ``[0, V-1)`` and ``cmp = V - 1``. The
targets are ``x`` itself at all ``T`` positions (train = test, no shift, nothing ignored): the
autoencoder must rebuild the whole sequence from the encoder output at the last position. MAD's
noise options for this task are dead code (its generator returns ``(x, x)``) and are not offered.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from composer.mad.tasks._common import Seed, TaskBatch, check_common, check_request, make_batch
from composer.mad.tasks.registry import register_task

NAME = "compression"


@dataclasses.dataclass(frozen=True, kw_only=True)
class CompressionConfig:
    """One compression setting; defaults are the MAD baseline (V16 T32 N12800)."""

    vocab_size: int = 16
    """Content tokens ``[0, V-1)`` and the compression token ``V-1``; the model vocabulary."""
    seq_len: int = 32
    """Sequence length ``T`` = input length = autoencoder output length (all scored)."""
    num_train_examples: int = 12800
    """Size of the training split (``generate_split``)."""
    num_test_examples: int = 1280
    """Size of the test split (``generate_split``)."""

    def __post_init__(self):
        check_common(self, min_vocab=2, min_seq_len=2)

    @property
    def input_length(self) -> int:
        return self.seq_len


@register_task(NAME, CompressionConfig, autoencoder=True)
def generate(config: CompressionConfig, n: int, seed: Seed, *, training: bool) -> TaskBatch:
    """Generates ``n`` instances, ``[n, T]``; ``training`` does not change the data (MAD §1.1)."""
    check_request(n, seed)
    rng = np.random.default_rng(seed)
    content = rng.integers(0, config.vocab_size - 1, (n, config.seq_len - 1))
    inputs = np.concatenate([content, np.full((n, 1), config.vocab_size - 1)], axis=1)
    return make_batch(inputs, inputs, NAME, training)
