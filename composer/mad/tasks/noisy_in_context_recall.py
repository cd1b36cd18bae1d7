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

from composer.mad.tasks._recall import PairRecallConfig, sample_pairs
from composer.mad.tasks._task_base import check_int, fail
from composer.mad.tasks.registry import register_task


@dataclasses.dataclass(frozen=True, kw_only=True)
class NoisyInContextRecallConfig(PairRecallConfig):
    """One noisy recall setting; defaults are the MAD baseline (V32 with 16 noise, T128, p0.2).

    ``vocab_size`` counts the noise tokens too; ``seq_len`` is ``T``, even.
    """

    vocab_size: int = 32
    noise_vocab_size: int = 16
    """Number of noise tokens ``[V - noise_vocab_size, V)``; the rest are keys and values."""
    frac_noise: float = 0.2
    """Probability that a context pair is a noise pair, in ``[0, 1)``."""

    def check(self) -> None:
        super().check()
        check_int(self, "noise_vocab_size", 0)
        if self.vocab_size - self.noise_vocab_size < 2:
            fail(self, "noise_vocab_size",
                 f"must leave >= 2 key/value tokens in vocab_size={self.vocab_size}")
        frac = self.frac_noise
        if isinstance(frac, bool) or not isinstance(frac, (int, float)) or not 0 <= frac < 1:
            fail(self, "frac_noise", "must be a number in [0, 1)")
        if frac > 0 and self.noise_vocab_size == 0:
            fail(self, "noise_vocab_size", "must be >= 1 when frac_noise > 0")


@register_task("noisy_in_context_recall", NoisyInContextRecallConfig)
def sample(config: NoisyInContextRecallConfig, rng: np.random.Generator, n: int,
           training: bool) -> tuple[np.ndarray, np.ndarray]:
    """``n`` instances, ``[n, T - 1]``."""
    return sample_pairs(config, rng, n, training, noise_vocab_size=config.noise_vocab_size,
                        frac_noise=float(config.frac_noise))
