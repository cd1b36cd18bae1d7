"""Compression (MAD §6, "C"), the autoencoder task.

``x = [c_1 .. c_{T-1}, cmp]`` with ``c_i`` uniform over ``[0, V-1)`` and ``cmp = V - 1``. The
targets are ``x`` itself at all ``T`` positions (train = test, no shift, nothing ignored): the
autoencoder must rebuild the whole sequence from the encoder output at the last position. MAD's
noise options for this task are dead code (its generator returns ``(x, x)``) and are not offered.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from composer.mad.tasks._task_base import TaskConfig
from composer.mad.tasks.registry import register_task


@dataclasses.dataclass(frozen=True, kw_only=True)
class CompressionConfig(TaskConfig):
    """One compression setting; defaults are the MAD baseline (V16 T32 N12800).

    ``vocab_size``: content tokens ``[0, V-1)`` and the compression token ``V-1``. ``seq_len``: ``T``
    = input length = autoencoder output length (all scored).
    """

    seq_len: int = 32

    MIN_SEQ_LEN = 2


@register_task("compression", CompressionConfig, autoencoder=True)
def sample(config: CompressionConfig, rng: np.random.Generator, n: int,
           training: bool) -> tuple[np.ndarray, np.ndarray]:
    """``n`` instances, ``[n, T]``; ``training`` does not change the data (MAD §1.1)."""
    content = rng.integers(0, config.vocab_size - 1, (n, config.seq_len - 1))
    inputs = np.concatenate([content, np.full((n, 1), config.vocab_size - 1)], axis=1)
    return inputs, inputs
