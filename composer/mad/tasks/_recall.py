"""What the three recall tasks share (MAD §2-§4): their config bases and the key-value sampler of
in-context recall and noisy in-context recall.

The sampler is vectorised over instances: one sequence is ``P = T/2`` pairs, ``P - 1`` context pairs
then a probe pair, and every array below is ``[n, ...]``.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from composer.mad.tasks._task_base import IGNORE, TaskConfig, check_bool, fail


@dataclasses.dataclass(frozen=True, kw_only=True)
class RecallConfig(TaskConfig):
    """A recall task's config: the shared fields plus the choice of training targets."""

    train_on_scored_only: bool = False
    """Use test-form targets for training too (the cpu protocol's deliberate deviation from MAD,
    docs/mad_tasks.md §11.3); sampling is unchanged."""

    def __post_init__(self):
        super().__post_init__()
        check_bool(self, "train_on_scored_only")

    def targets(self, shifted: np.ndarray, test: np.ndarray, training: bool) -> np.ndarray:
        """Training: the full next-token shift ``shifted`` (or, if ``train_on_scored_only``, the
        test-form labels ``test``); test: ``test``."""
        return shifted if training and not self.train_on_scored_only else test


@dataclasses.dataclass(frozen=True, kw_only=True)
class PairRecallConfig(RecallConfig):
    """In-context recall with or without noise: ``T/2`` key-value pairs, of which the model sees
    ``tokens[:-1]`` (``T - 1`` tokens)."""

    MIN_SEQ_LEN = 4

    def check(self) -> None:
        if self.seq_len % 2:
            fail(self, "seq_len", "must be even (the sequence is key-value pairs)")

    @property
    def input_length(self) -> int:
        return self.seq_len - 1


def sample_pairs(config: PairRecallConfig, rng: np.random.Generator, n: int, training: bool, *,
                 noise_vocab_size: int = 0, frac_noise: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Inputs ``[n, T - 1]`` and targets of ``n`` (noisy) in-context recall instances."""
    tokens, test_targets = sample_recall(rng, n, vocab_size=config.vocab_size, seq_len=config.seq_len,
                                         noise_vocab_size=noise_vocab_size, frac_noise=frac_noise)
    return tokens[:, :-1], config.targets(tokens[:, 1:], test_targets, training)


def sample_recall(rng: np.random.Generator, n: int, *, vocab_size: int, seq_len: int,
                  noise_vocab_size: int, frac_noise: float) -> tuple[np.ndarray, np.ndarray]:
    """Samples multi-query recall sequences.

    Vocabulary: keys ``[0, nsv//2)``, values ``[nsv//2, nsv)``, noise ``[nsv, vocab_size)`` with
    ``nsv = vocab_size - noise_vocab_size``. Every sequence draws a fresh key->value table (values
    with replacement, so two keys may share a value).

    Returns:
        ``tokens`` ``[n, T]`` and the test-form labels ``[n, T - 1]`` of the model inputs
        ``tokens[:, :-1]``: at the key of a real context pair whose key occurred in an earlier real
        pair, its value; at the probe key, the probe value; ``IGNORE`` elsewhere.
    """
    nsv = vocab_size - noise_vocab_size
    num_keys, ctx = nsv // 2, seq_len // 2 - 1
    rows = np.arange(n)[:, None]
    keys = rng.integers(0, num_keys, (n, ctx))
    table = rng.integers(num_keys, nsv, (n, num_keys))
    values = np.take_along_axis(table, keys, axis=1)
    noise = _noise_mask(rng, n, ctx, frac_noise)
    real = ~noise
    # First real occurrence of each key; a pair is "re-queried" if its key occurred earlier.
    first = np.full((n, num_keys), ctx)
    np.minimum.at(first, (np.broadcast_to(rows, keys.shape)[real], keys[real]),
                  np.broadcast_to(np.arange(ctx), keys.shape)[real])
    requeried = real & (np.take_along_axis(first, keys, axis=1) < np.arange(ctx))
    # The probe key is uniform over the distinct keys of the real context pairs (at least one
    # exists: _noise_mask always keeps one context pair real).
    probe_key = _uniform_true(rng, first < ctx)
    probe_val = table[np.arange(n), probe_key]

    pairs = np.stack([keys, values], axis=2)
    if noise.any():
        noise_tok = rng.integers(nsv, vocab_size, (n, ctx, 2))
        pairs = np.where(noise[:, :, None], noise_tok, pairs)
    tokens = np.concatenate([pairs.reshape(n, 2 * ctx), probe_key[:, None], probe_val[:, None]],
                            axis=1)
    labels = np.full((n, seq_len - 1), IGNORE, dtype=np.int64)
    labels[:, 0:2 * ctx:2] = np.where(requeried, values, IGNORE)
    labels[:, -1] = probe_val
    return tokens, labels


def _noise_mask(rng: np.random.Generator, n: int, ctx: int, frac_noise: float) -> np.ndarray:
    """Which context pairs are noise: each with probability ``frac_noise``, except one.

    MAD draws the exempt index from all ``P`` pair slots, the probe slot included, which can leave
    no real context pair and crash its generator (docs/mad_tasks.md §9, pitfall 1: about 2.6 % of
    instances at T=16, p=0.8). We draw it from the ``P - 1`` context slots instead.
    """
    if frac_noise <= 0:
        return np.zeros((n, ctx), dtype=bool)
    noise = rng.random((n, ctx)) < frac_noise
    noise[np.arange(n), rng.integers(0, ctx, n)] = False
    return noise


def _uniform_true(rng: np.random.Generator, allowed: np.ndarray) -> np.ndarray:
    """Per row of the boolean ``[n, m]`` mask, a uniform column index among its True entries."""
    return np.argmax(np.where(allowed, rng.random(allowed.shape), -1.0), axis=1)
