"""Noisy in-context recall (MAD §3, "NR").

In-context recall (see ``in_context_recall``) in which each context pair is, with probability
``frac_noise``, replaced by two tokens drawn with replacement from a noise vocabulary. Noise pairs
register no key and are never scored at test time; training targets are the full next-token shift,
noise included.

Vocabulary: ``nsv = V - noise_vocab_size``; keys ``[0, nsv//2)``, values ``[nsv//2, nsv)``, noise
``[nsv, V)``. The noise share is per pair, so the token share is ``frac_noise * (P - 1) / P``.

Deviation from MAD (a fix, docs/mad_tasks.md §9 pitfall 1): the pair guaranteed to be real is drawn from
the ``P - 1`` context slots, not from all ``P`` slots, so a sequence always has a key to probe.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from composer.mad.tasks._common import (
    Seed,
    TaskBatch,
    check_bool,
    check_common,
    check_int,
    check_request,
    fail,
    make_batch,
)
from composer.mad.tasks._recall import sample_recall
from composer.mad.tasks.registry import register_task

NAME = "noisy_in_context_recall"


@dataclasses.dataclass(frozen=True, kw_only=True)
class NoisyInContextRecallConfig:
    """One noisy recall setting; defaults are the MAD baseline (V32 with 16 noise, T128, p0.2)."""

    vocab_size: int = 32
    """Total vocabulary, noise tokens included; also the model vocabulary."""
    noise_vocab_size: int = 16
    """Number of noise tokens ``[V - noise_vocab_size, V)``; the rest are keys and values."""
    frac_noise: float = 0.2
    """Probability that a context pair is a noise pair, in ``[0, 1)``."""
    seq_len: int = 128
    """Sequence length ``T`` in tokens, even; the model input has ``T - 1`` tokens."""
    num_train_examples: int = 12800
    """Size of the training split (``generate_split``)."""
    num_test_examples: int = 1280
    """Size of the test split (``generate_split``)."""
    train_on_scored_only: bool = False
    """Use test-form targets for training too (cpu protocol, docs/mad_tasks.md §11.3)."""

    def __post_init__(self):
        check_common(self, min_vocab=2, min_seq_len=4)
        if self.seq_len % 2:
            fail(self, "seq_len", "must be even (the sequence is key-value pairs)")
        check_int(self, "noise_vocab_size", 0)
        if self.vocab_size - self.noise_vocab_size < 2:
            fail(self, "noise_vocab_size",
                 f"must leave >= 2 key/value tokens in vocab_size={self.vocab_size}")
        frac = self.frac_noise
        if isinstance(frac, bool) or not isinstance(frac, (int, float)) or not 0 <= frac < 1:
            fail(self, "frac_noise", "must be a number in [0, 1)")
        if frac > 0 and self.noise_vocab_size == 0:
            fail(self, "noise_vocab_size", "must be >= 1 when frac_noise > 0")
        check_bool(self, "train_on_scored_only")

    @property
    def input_length(self) -> int:
        return self.seq_len - 1


@register_task(NAME, NoisyInContextRecallConfig)
def generate(config: NoisyInContextRecallConfig, n: int, seed: Seed, *,
             training: bool) -> TaskBatch:
    """Generates ``n`` instances, ``[n, T - 1]``, deterministically from ``seed``."""
    check_request(n, seed)
    tokens, test_targets = sample_recall(
        np.random.default_rng(seed), n, vocab_size=config.vocab_size, seq_len=config.seq_len,
        noise_vocab_size=config.noise_vocab_size, frac_noise=float(config.frac_noise))
    full = training and not config.train_on_scored_only
    return make_batch(tokens[:, :-1], tokens[:, 1:] if full else test_targets, NAME, training)
